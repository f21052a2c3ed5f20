from django.urls import path

from . import views

app_name = "attachments"

urlpatterns = [
    path("<int:attachment_id>/", views.download, name="download"),
    path("parts/<str:token>/", views.upload_part, name="upload-part"),
]
