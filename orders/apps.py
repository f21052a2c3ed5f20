from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Gigs and orders"

    def ready(self):
        from inbox.services import block_requirements

        from .services import completed_order_required

        if completed_order_required not in block_requirements:
            block_requirements.append(completed_order_required)
