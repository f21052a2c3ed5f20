from django.apps import AppConfig


class AttachmentsConfig(AppConfig):
    """Files sent in conversations: upload, private download, thumbnails, archival, purge."""

    name = "attachments"
    default_auto_field = "django.db.models.BigAutoField"
