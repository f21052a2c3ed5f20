from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox, name="index"),
    path("new/", views.new_conversation, name="new"),
    path("conversations/", views.conversation_list, name="conversation-list"),
    path("search/", views.message_search, name="search"),
    path("<int:conversation_id>/", views.inbox, name="conversation"),
    path("<int:conversation_id>/messages/", views.thread_messages, name="messages"),
    path("<int:conversation_id>/send/", views.send, name="send"),
    path("<int:conversation_id>/read/", views.mark_read, name="read"),
    path("<int:conversation_id>/typing/", views.typing, name="typing"),
    # Organising the inbox: actions, blocks, drafts, the Enter key, labels, edits.
    path("actions/", views.file_conversations, name="actions"),
    path("<int:conversation_id>/block/", views.block, name="block"),
    path("<int:conversation_id>/unblock/", views.unblock, name="unblock"),
    path("<int:conversation_id>/report/", views.report, name="report"),
    path("<int:conversation_id>/draft/", views.save_draft, name="draft"),
    path("<int:conversation_id>/orders/", views.order_history, name="order-history"),
    path("preferences/", views.preferences, name="preferences"),
    path("labels/", views.labels, name="labels"),
    path("labels/<int:label_id>/", views.label_update, name="label-update"),
    path("labels/<int:label_id>/delete/", views.label_delete, name="label-delete"),
    path("messages/<int:message_id>/", views.message_fragment, name="message"),
    path("messages/<int:message_id>/edit/", views.edit_message, name="message-edit"),
    path("messages/<int:message_id>/delete/", views.delete_message, name="message-delete"),
    path("messages/<int:message_id>/translate/", views.translate_message, name="translate"),
]
