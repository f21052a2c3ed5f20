from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox, name="index"),
    path("new/", views.new_conversation, name="new"),
    path("conversations/", views.conversation_list, name="conversation-list"),
    path("<int:conversation_id>/", views.inbox, name="conversation"),
    path("<int:conversation_id>/messages/", views.thread_messages, name="messages"),
    path("<int:conversation_id>/send/", views.send, name="send"),
    path("<int:conversation_id>/read/", views.mark_read, name="read"),
    path("<int:conversation_id>/typing/", views.typing, name="typing"),
]
