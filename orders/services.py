from decimal import Decimal, InvalidOperation

from marketplace.errors import Forbidden, InvalidInput

from .models import Gig


def create_gig(*, seller, title: str, description: str, price, delivery_days: int, revisions: int = 1) -> Gig:
    """Publish a gig. Only sellers publish gigs."""
    if not seller.profile.is_seller:
        raise Forbidden(
            "Only sellers publish gigs; switch your profile to seller first.", code="not_a_seller"
        )
    title, description = title.strip(), description.strip()
    if not title or len(title) > 120:
        raise InvalidInput("A gig title is 1 to 120 characters.")
    if not description:
        raise InvalidInput("Describe what the buyer gets.")
    try:
        price = Decimal(str(price))
    except InvalidOperation as exc:
        raise InvalidInput("The price must be a number.") from exc
    if price < 5:
        raise InvalidInput("The lowest price is 5.")
    if int(delivery_days) < 1:
        raise InvalidInput("Delivery takes at least one day.")
    return Gig.objects.create(
        seller=seller,
        title=title,
        description=description,
        price=price,
        delivery_days=int(delivery_days),
        revisions=int(revisions),
    )
