from django.apps import AppConfig


class SellersConfig(AppConfig):
    """Seller tools: the dashboard, availability, auto-reply and quick responses. Pages and API
    only; the data and rules live in inbox and accounts."""

    name = "sellers"
    verbose_name = "Seller tools"
