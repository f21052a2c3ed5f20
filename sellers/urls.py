from django.urls import path

from . import views

app_name = "sellers"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("availability/", views.availability, name="availability"),
    path("availability/end/", views.availability_end, name="availability-end"),
    path("auto-reply/", views.auto_reply, name="auto-reply"),
    path("quick-responses/", views.quick_responses, name="quick-responses"),
    path("quick-responses/<int:quick_response_id>/", views.quick_response_edit, name="quick-response-edit"),
    path(
        "quick-responses/<int:quick_response_id>/delete/",
        views.quick_response_delete,
        name="quick-response-delete",
    ),
]
