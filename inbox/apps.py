from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbox"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from marketplace.accounts.signals import access_revoked

        from .signals import on_access_revoked, on_user_logged_out

        access_revoked.connect(on_access_revoked, dispatch_uid="inbox.close_sockets_on_revoke")
        user_logged_out.connect(on_user_logged_out, dispatch_uid="inbox.close_sockets_on_logout")
