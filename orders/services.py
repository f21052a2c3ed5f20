"""Every write about gigs, requests, custom offers, orders, reviews and calls.

Each state change is one transaction: a conditional update or a row lock decides it once
(double clicks, two tabs and retries change nothing more), an OrderEvent row records it, and a
card or system message in the conversation tells both people live.
"""

import re
import secrets
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from inbox.models import Conversation, Message
from inbox.payloads import iso_timestamp
from inbox.services import get_or_create_conversation, post_card_message, update_card
from marketplace.errors import Conflict, Forbidden, InvalidInput, NotFound
from marketplace.patterns import SPACE
from moderation.scanning import screen
from notifications.models import Kind as NotificationKind
from notifications.services import conversation_url, display_name, excerpt, notify

from .models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review

PRICE_MIN, PRICE_MAX = Decimal("5"), Decimal("50000")
DELIVERY_DAYS_MAX = 365
REVISIONS_MAX = 20
OFFER_EXPIRY_DAYS_MAX = 30
TEXT_MAX = 2000
NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud on the phone
# A price written as text: dollars from 5 to 50,000 with at most two decimals ("120", "99.50"),
# spaces around allowed (a form field). The API schema declares this same pattern.
PRICE_PATTERN = (
    rf"^[{SPACE}]*"
    r"(?:(?:[5-9]|[1-9][0-9]{1,3}|[1-4][0-9]{4})(?:\.[0-9]{1,2})?|50000(?:\.00?)?)"  # 5 to 50000
    rf"[{SPACE}]*$"
)


# --- validation shared by gigs, offers and requests ----------------------------------------


def clean_price(value, *, what: str = "The price") -> Decimal:
    """Text as PRICE_PATTERN says, or a number from PRICE_MIN to PRICE_MAX (rounded to cents)."""
    if isinstance(value, str):
        if not re.fullmatch(PRICE_PATTERN, value):
            try:
                Decimal(value)
            except InvalidOperation:
                raise InvalidInput(
                    f"{what} must be a number, like 120 or 99.50.", code="invalid_price"
                ) from None
            raise InvalidInput(
                f"{what} must be between ${PRICE_MIN} and ${PRICE_MAX:,}, with at most two decimals.",
                code="invalid_price",
            )
        return Decimal(value.strip()).quantize(Decimal("0.01"))
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInput(f"{what} must be a number, like 120 or 99.50.", code="invalid_price")
    price = Decimal(str(value))
    if not price.is_finite() or not PRICE_MIN <= price <= PRICE_MAX:
        raise InvalidInput(f"{what} must be between ${PRICE_MIN} and ${PRICE_MAX:,}.", code="invalid_price")
    return price.quantize(Decimal("0.01"))


def _clean_int(value, *, low: int, high: int, message: str, code: str) -> int:
    try:
        number = int(value)
    except (ValueError, TypeError):
        raise InvalidInput(message, code=code) from None
    if isinstance(value, float) and not value.is_integer():
        raise InvalidInput(message, code=code)
    if not low <= number <= high:
        raise InvalidInput(message, code=code)
    return number


def clean_delivery_days(value) -> int:
    return _clean_int(
        value,
        low=1,
        high=DELIVERY_DAYS_MAX,
        message=f"Delivery takes 1 to {DELIVERY_DAYS_MAX} days.",
        code="invalid_delivery_days",
    )


def clean_revisions(value) -> int:
    return _clean_int(
        value,
        low=0,
        high=REVISIONS_MAX,
        message=f"Revisions are 0 to {REVISIONS_MAX}.",
        code="invalid_revisions",
    )


def clean_text(value, *, what: str, max_length: int = TEXT_MAX, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text.", code="invalid_text")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character.", code="invalid_text")
    if required and not value.strip():
        raise InvalidInput(f"{what} cannot be empty.", code="invalid_text")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is at most {max_length} characters.", code="invalid_text")
    return value.strip()


def _require_seller(user, *, doing: str) -> None:
    if not user.profile.is_seller:
        raise Forbidden(f"Only sellers {doing}.", code="not_a_seller")


def _other_member(conversation: Conversation, user):
    if user.pk == conversation.user_low_id:
        return conversation.user_high
    if user.pk == conversation.user_high_id:
        return conversation.user_low
    raise NotFound("Conversation not found.")


def _money(value: Decimal) -> str:
    return f"${value:,.2f}".replace(".00", "")


# --- notifications: who is told, and where they act on it -----------------------------------


def _order_url(order: Order) -> str:
    return reverse("orders:order", args=[order.number])


# --- gigs -----------------------------------------------------------------------------------


def create_gig(*, seller, title: str, description: str, price, delivery_days, revisions=1) -> Gig:
    """Publish a gig. Only sellers publish gigs."""
    _require_seller(seller, doing="publish gigs; switch your profile to seller first")
    return Gig.objects.create(
        seller=seller,
        title=clean_text(title, what="The title", max_length=120),
        description=clean_text(description, what="The description", max_length=5000),
        price=clean_price(price),
        delivery_days=clean_delivery_days(delivery_days),
        revisions=clean_revisions(revisions),
    )


def update_gig(*, seller, gig: Gig, **changes) -> Gig:
    """Change a gig's title, description, terms or whether it is shown."""
    if gig.seller_id != seller.pk:
        raise NotFound("Gig not found.")
    cleaners = {
        "title": lambda v: clean_text(v, what="The title", max_length=120),
        "description": lambda v: clean_text(v, what="The description", max_length=5000),
        "price": clean_price,
        "delivery_days": clean_delivery_days,
        "revisions": clean_revisions,
        "is_active": bool,
    }
    for field, value in changes.items():
        if value is None:
            continue
        if field not in cleaners:
            raise InvalidInput(f"A gig has no field {field!r}.", code="invalid_field")
        setattr(gig, field, cleaners[field](value))
    gig.save()
    return gig


# --- requests -------------------------------------------------------------------------------


def send_request(*, buyer, seller, description: str, budget, deadline: date) -> BuyerRequest:
    """A buyer's brief to a seller: opens or joins their conversation as a request card, and
    shows under the Requests filter for both."""
    if buyer.pk == seller.pk:
        raise InvalidInput("You cannot send a request to yourself.", code="invalid_request")
    if not seller.profile.is_seller:
        raise InvalidInput(f"{seller.profile.display_name} is not a seller.", code="not_a_seller")
    description = clean_text(description, what="What you need")
    screen(description, sender=buyer, recipient=seller, what="Your request")
    budget = clean_price(budget, what="The budget")
    today = timezone.localdate()
    if not isinstance(deadline, date) or isinstance(deadline, datetime):
        raise InvalidInput("The deadline is a date, like 2026-12-24.", code="invalid_deadline")
    if not today < deadline <= today + timedelta(days=DELIVERY_DAYS_MAX):
        raise InvalidInput(
            f"The deadline must be after today and within {DELIVERY_DAYS_MAX} days.", code="invalid_deadline"
        )
    with transaction.atomic():
        conversation = get_or_create_conversation(user=buyer, other_user=seller)
        request = BuyerRequest.objects.create(
            buyer=buyer, seller=seller, conversation=conversation, description=description, budget=budget,
            deadline=deadline,
        )  # fmt: skip
        request.message = post_card_message(
            sender=buyer,
            conversation=conversation,
            kind=Message.Kind.REQUEST,
            body=f"Request: {description[:120]} (budget {_money(budget)}, by {deadline:%b %-d, %Y})",
            card={
                "request_id": request.pk,
                "description": description,
                "budget": str(budget),
                "deadline": deadline.isoformat(),
            },
            flags=("has_request",),
        )
        request.save(update_fields=["message"])
        notify(
            recipient=seller,
            kind=NotificationKind.REQUEST_RECEIVED,
            title=f"{display_name(buyer)} sent you a request",
            body=f"{excerpt(description)} (budget {_money(budget)}, by {deadline:%b %-d, %Y})",
            url=conversation_url(conversation.pk, request.message.pk),
            dedupe_key=f"request:{request.pk}",
        )
    return request


# --- custom offers --------------------------------------------------------------------------


def _offer_card(offer: CustomOffer, order: Order | None = None) -> dict:
    return {
        "offer_id": offer.pk,
        "title": offer.title,
        "description": offer.description,
        "price": str(offer.price),
        "delivery_days": offer.delivery_days,
        "revisions": offer.revisions,
        "expires_at": iso_timestamp(offer.expires_at),
        "status": offer.status,
        "order_number": order.number if order else None,
    }


def create_offer(
    *,
    seller,
    conversation: Conversation,
    description: str,
    price=None,
    delivery_days=None,
    revisions=None,
    expires_in_days=7,
    gig: Gig | None = None,
    title: str = "",
) -> CustomOffer:
    """A seller's custom offer to the buyer of this conversation, stand-alone or from one of
    their gigs (whose terms fill what is not given). It shows as a card, live for the buyer."""
    _require_seller(seller, doing="make custom offers")
    buyer = _other_member(conversation, seller)
    if gig is not None:
        if gig.seller_id != seller.pk or not gig.is_active:
            raise NotFound("Gig not found.")
        title = title or gig.title
        price = gig.price if price is None else price
        delivery_days = gig.delivery_days if delivery_days is None else delivery_days
        revisions = gig.revisions if revisions is None else revisions
    if price is None or delivery_days is None:
        raise InvalidInput("An offer needs a price and a delivery time.", code="invalid_offer")
    expires_in_days = _clean_int(
        expires_in_days,
        low=1,
        high=OFFER_EXPIRY_DAYS_MAX,
        message=f"An offer is valid for 1 to {OFFER_EXPIRY_DAYS_MAX} days.",
        code="invalid_expiry",
    )
    description = clean_text(description, what="The offer's description")
    screen(f"{title}\n{description}", sender=seller, recipient=buyer, what="Your offer")
    offer = CustomOffer(
        seller=seller,
        buyer=buyer,
        conversation=conversation,
        gig=gig,
        title=clean_text(title or description[:80], what="The title", max_length=120),
        description=description,
        price=clean_price(price),
        delivery_days=clean_delivery_days(delivery_days),
        revisions=clean_revisions(0 if revisions is None else revisions),
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    with transaction.atomic():
        offer.save()
        offer.message = post_card_message(
            sender=seller,
            conversation=conversation,
            kind=Message.Kind.OFFER,
            body=f"Custom offer: {offer.title} ({_money(offer.price)}, {offer.delivery_days}-day delivery)",
            card=_offer_card(offer),
            flags=("has_custom_offer",),
        )
        offer.save(update_fields=["message"])
        notify(
            recipient=buyer,
            kind=NotificationKind.OFFER_RECEIVED,
            title=f"{display_name(seller)} sent you a custom offer",
            body=f"{excerpt(offer.title)} ({_money(offer.price)}, {offer.delivery_days}-day delivery)",
            url=conversation_url(conversation.pk, offer.message.pk),
            dedupe_key=f"offer:{offer.pk}:received",
        )
    return offer


def _decide_offer(*, offer: CustomOffer, to_status: str) -> CustomOffer:
    """Move a pending, unexpired offer to `to_status`, once: one conditional UPDATE decides it."""
    now = timezone.now()
    changed = CustomOffer.objects.filter(
        pk=offer.pk, status=CustomOffer.Status.PENDING, expires_at__gt=now
    ).update(status=to_status, decided_at=now)
    offer.refresh_from_db()
    if not changed:
        if offer.status == CustomOffer.Status.PENDING:  # past its expiry; the beat task marks it
            raise Conflict("This offer has expired; ask the seller for a new one.", code="offer_expired")
        raise Conflict(
            f"This offer was already {offer.get_status_display().lower()}.", code=f"offer_{offer.status}"
        )
    return offer


def accept_offer(*, buyer, offer: CustomOffer) -> Order:
    """The buyer accepts: an order starts (payment is out of scope: a placeholder step is
    recorded). Two clicks, two tabs or a retry make one order."""
    if offer.buyer_id != buyer.pk:
        raise NotFound("Offer not found.")
    with transaction.atomic():
        offer = _decide_offer(offer=offer, to_status=CustomOffer.Status.ACCEPTED)
        order = _create_order(offer=offer)
        update_card(message=offer.message, card=_offer_card(offer, order))
        notify(
            recipient=offer.seller,
            kind=NotificationKind.OFFER_ACCEPTED,
            title=f"{display_name(buyer)} accepted your offer",
            body=f"{excerpt(offer.title)}: order #{order.number} has started.",
            url=_order_url(order),
            dedupe_key=f"offer:{offer.pk}:accepted",
        )
    return order


def decline_offer(*, buyer, offer: CustomOffer) -> CustomOffer:
    if offer.buyer_id != buyer.pk:
        raise NotFound("Offer not found.")
    with transaction.atomic():
        offer = _decide_offer(offer=offer, to_status=CustomOffer.Status.DECLINED)
        update_card(message=offer.message, card=_offer_card(offer))
        notify(
            recipient=offer.seller,
            kind=NotificationKind.OFFER_DECLINED,
            title=f"{display_name(buyer)} declined your offer",
            body=excerpt(offer.title),
            url=conversation_url(offer.conversation_id, offer.message_id),
            dedupe_key=f"offer:{offer.pk}:declined",
        )
    return offer


def withdraw_offer(*, seller, offer: CustomOffer) -> CustomOffer:
    if offer.seller_id != seller.pk:
        raise NotFound("Offer not found.")
    with transaction.atomic():
        offer = _decide_offer(offer=offer, to_status=CustomOffer.Status.WITHDRAWN)
        update_card(message=offer.message, card=_offer_card(offer))
        notify(
            recipient=offer.buyer,
            kind=NotificationKind.ORDER_UPDATED,
            title=f"{display_name(seller)} withdrew their offer",
            body=excerpt(offer.title),
            url=conversation_url(offer.conversation_id, offer.message_id),
            dedupe_key=f"offer:{offer.pk}:withdrawn",
        )
    return offer


def _expire(offer: CustomOffer) -> bool:
    with transaction.atomic():
        changed = CustomOffer.objects.filter(
            pk=offer.pk, status=CustomOffer.Status.PENDING, expires_at__lte=timezone.now()
        ).update(status=CustomOffer.Status.EXPIRED, decided_at=timezone.now())
        if changed:
            offer.refresh_from_db()
            if offer.message_id:
                update_card(message=offer.message, card=_offer_card(offer))
            seller, buyer = offer.seller, offer.buyer
            for recipient, title in (
                (seller, f"Your offer to {display_name(buyer)} expired"),
                (buyer, f"{display_name(seller)}'s offer expired"),
            ):
                notify(
                    recipient=recipient,
                    kind=NotificationKind.OFFER_EXPIRED,
                    title=title,
                    body=excerpt(offer.title),
                    url=conversation_url(offer.conversation_id, offer.message_id),
                    dedupe_key=f"offer:{offer.pk}:expired",
                )
    return bool(changed)


def expire_offers(*, batch_size: int = 200) -> int:
    """Beat: mark pending offers past their expiry as expired and update their cards."""
    expired = 0
    while True:
        due = list(
            CustomOffer.objects.filter(status=CustomOffer.Status.PENDING, expires_at__lte=timezone.now())
            .select_related("message")
            .order_by("expires_at")[:batch_size]
        )
        if not due:
            return expired
        expired += sum(_expire(offer) for offer in due)
        if len(due) < batch_size:
            return expired


# --- orders ---------------------------------------------------------------------------------


def _new_order_number() -> str:
    return "FO" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def _create_order(*, offer: CustomOffer) -> Order:
    now = timezone.now()
    for _attempt in range(5):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    number=_new_order_number(),
                    buyer_id=offer.buyer_id,
                    seller_id=offer.seller_id,
                    conversation_id=offer.conversation_id,
                    gig_id=offer.gig_id,
                    offer=offer,
                    title=offer.title,
                    description=offer.description,
                    price=offer.price,
                    delivery_days=offer.delivery_days,
                    revisions_included=offer.revisions,
                    due_at=now + timedelta(days=offer.delivery_days),
                    created_at=now,
                )
            break
        except IntegrityError:
            if Order.objects.filter(offer=offer).exists():
                raise
    else:  # pragma: no cover - five collisions in a 32**8 space
        raise Conflict("Could not number the order; try again.", code="order_number_collision")
    Conversation.objects.filter(pk=offer.conversation_id).update(active_order=order)
    buyer = offer.buyer
    _record(
        order,
        actor=buyer,
        kind=OrderEvent.Kind.CREATED,
        text=f"Order #{order.number} started: {order.title} "
        f"({_money(order.price)}, due in {order.delivery_days} days).",
    )
    _record(
        order,
        actor=buyer,
        kind=OrderEvent.Kind.PAYMENT,
        text=f"Payment of {_money(order.price)} recorded for #{order.number} "
        "(placeholder: no money moves here).",
        data={"amount": str(order.price), "placeholder": True},
    )
    # The buyer placed it: only the seller is told.
    notify(
        recipient=offer.seller,
        kind=NotificationKind.ORDER_CREATED,
        title=f"New order #{order.number} from {display_name(buyer)}",
        body=f"{excerpt(order.title)} ({_money(order.price)}, due in {order.delivery_days} days)",
        url=_order_url(order),
        dedupe_key=f"order:{order.pk}:created",
    )
    return order


def _record(order: Order, *, actor, kind: str, text: str, data: dict | None = None) -> OrderEvent:
    """One timeline row and its system message in the conversation, tagged with the order."""
    message = post_card_message(
        sender=actor,
        conversation=order.conversation,
        kind=Message.Kind.SYSTEM,
        body=text,
        order=order,
        card={"event": kind, "order_number": order.number, "status": order.status},
    )
    return OrderEvent.objects.create(order=order, kind=kind, actor=actor, data=data or {}, message=message)


def _transition(
    *, order: Order, actor, role: str, allowed_from, to_status: str | None, precondition=None, **changes
) -> Order:
    """Lock the order, check who acts, from which status and `precondition(order)`, apply the change."""
    locked = Order.objects.select_for_update().select_related("conversation").get(pk=order.pk)
    if getattr(locked, f"{role}_id") != actor.pk:
        other_side = "buyer" if role == "buyer" else "seller"
        if actor.pk in (locked.buyer_id, locked.seller_id):
            raise Forbidden(f"Only the {other_side} can do this.", code="wrong_side")
        raise NotFound("Order not found.")
    if locked.status not in allowed_from:
        raise Conflict(
            f"Order #{locked.number} is {locked.get_status_display().lower()}; that step is not possible.",
            code="invalid_transition",
        )
    if precondition is not None:
        precondition(locked)
    if to_status:
        locked.status = to_status
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.save()
    if not locked.is_open and locked.conversation.active_order_id == locked.pk:
        still_open = (
            Order.objects.filter(conversation_id=locked.conversation_id, status__in=Order.OPEN_STATUSES)
            .order_by("-created_at")
            .first()
        )
        Conversation.objects.filter(pk=locked.conversation_id).update(active_order=still_open)
    return locked


def submit_requirements(*, buyer, order: Order, requirements: str) -> Order:
    """The buyer tells the seller what the order needs (once)."""
    requirements = clean_text(requirements, what="The requirements")

    def not_yet_submitted(locked: Order) -> None:
        if locked.requirements_submitted_at is not None:
            raise Conflict("The requirements were already submitted.", code="requirements_already_submitted")

    with transaction.atomic():
        order = _transition(
            order=order,
            actor=buyer,
            role="buyer",
            allowed_from=(Order.Status.ACTIVE,),
            to_status=None,
            precondition=not_yet_submitted,
            requirements=requirements,
            requirements_submitted_at=timezone.now(),
        )
        screen(requirements, sender=buyer, recipient=order.seller, what="Your list of requirements")
        _record(
            order,
            actor=buyer,
            kind=OrderEvent.Kind.REQUIREMENTS,
            text=f"Requirements for #{order.number}:\n{requirements}",
        )
        notify(
            recipient=order.seller,
            kind=NotificationKind.REQUIREMENTS_SUBMITTED,
            title=f"{display_name(buyer)} submitted the requirements for #{order.number}",
            body=excerpt(requirements),
            url=_order_url(order),
            dedupe_key=f"order:{order.pk}:requirements",
        )
    return order


def deliver_order(*, seller, order: Order, message: str) -> Order:
    """The seller delivers, with a message (files arrive with attachments)."""
    message = clean_text(message, what="The delivery message")
    with transaction.atomic():
        order = _transition(
            order=order,
            actor=seller,
            role="seller",
            allowed_from=(Order.Status.ACTIVE, Order.Status.REVISION_REQUESTED),
            to_status=Order.Status.DELIVERED,
            delivered_at=timezone.now(),
        )
        screen(message, sender=seller, recipient=order.buyer, what="Your delivery")
        _record(
            order, actor=seller, kind=OrderEvent.Kind.DELIVERED, text=f"Delivered #{order.number}:\n{message}"
        )
        # One delivery per round: the first (0 revisions used), then one after each revision.
        notify(
            recipient=order.buyer,
            kind=NotificationKind.ORDER_DELIVERED,
            title=f"{display_name(seller)} delivered order #{order.number}",
            body=excerpt(message),
            url=_order_url(order),
            dedupe_key=f"order:{order.pk}:delivered:{order.revisions_used}",
        )
    return order


def request_revision(*, buyer, order: Order, reason: str) -> Order:
    """The buyer asks for changes to a delivery, while revisions are left."""
    reason = clean_text(reason, what="What should change")
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.pk)
        if (
            current.buyer_id == buyer.pk
            and current.status == Order.Status.DELIVERED
            and not current.revisions_left
        ):
            raise Conflict(
                f"All {current.revisions_included} revisions of #{current.number} were used.",
                code="no_revisions_left",
            )
        order = _transition(
            order=current,
            actor=buyer,
            role="buyer",
            allowed_from=(Order.Status.DELIVERED,),
            to_status=Order.Status.REVISION_REQUESTED,
            revisions_used=current.revisions_used + 1,
        )
        screen(reason, sender=buyer, recipient=order.seller, what="Your revision request")
        _record(
            order,
            actor=buyer,
            kind=OrderEvent.Kind.REVISION,
            text=f"Revision requested on #{order.number}:\n{reason}",
        )
        notify(
            recipient=order.seller,
            kind=NotificationKind.REVISION_REQUESTED,
            title=f"{display_name(buyer)} asked for a revision of #{order.number}",
            body=excerpt(reason),
            url=_order_url(order),
            dedupe_key=f"order:{order.pk}:revision:{order.revisions_used}",
        )
    return order


def complete_order(*, buyer, order: Order) -> Order:
    """The buyer accepts the delivery: the order is complete."""
    with transaction.atomic():
        order = _transition(
            order=order,
            actor=buyer,
            role="buyer",
            allowed_from=(Order.Status.DELIVERED,),
            to_status=Order.Status.COMPLETED,
            completed_at=timezone.now(),
        )
        _record(
            order, actor=buyer, kind=OrderEvent.Kind.COMPLETED, text=f"Order #{order.number} is complete."
        )
        notify(
            recipient=order.seller,
            kind=NotificationKind.ORDER_COMPLETED,
            title=f"{display_name(buyer)} completed order #{order.number}",
            body=f"{excerpt(order.title)}: you can now review {display_name(buyer)}.",
            url=_order_url(order),
            dedupe_key=f"order:{order.pk}:completed",
        )
    return order


def cancel_order(*, user, order: Order, reason: str) -> Order:
    """Either side cancels an order that was not delivered yet, saying why. Once work was
    delivered, the buyer asks for a revision instead."""
    reason = clean_text(reason, what="The reason")
    role = "buyer" if user.pk == order.buyer_id else "seller"
    with transaction.atomic():
        order = _transition(
            order=order,
            actor=user,
            role=role,
            allowed_from=(Order.Status.ACTIVE,),
            to_status=Order.Status.CANCELLED,
            cancelled_at=timezone.now(),
        )
        other = order.buyer if role == "seller" else order.seller
        screen(reason, sender=user, recipient=other, what="Your message")
        _record(
            order,
            actor=user,
            kind=OrderEvent.Kind.CANCELLED,
            text=f"Order #{order.number} was cancelled by the {role}: {reason}",
            data={"reason": reason, "by": role},
        )
        notify(
            recipient=other,
            kind=NotificationKind.ORDER_UPDATED,
            title=f"{display_name(user)} cancelled order #{order.number}",
            body=excerpt(reason),
            url=_order_url(order),
            dedupe_key=f"order:{order.pk}:cancelled",
        )
    return order


def leave_review(*, author, order: Order, rating, text: str = "") -> Review:
    """After completion, each side may review the other once (1 to 5 stars)."""
    rating = _clean_int(rating, low=1, high=5, message="A rating is 1 to 5 stars.", code="invalid_rating")
    text = clean_text(text, what="The review", required=False)
    if author.pk not in (order.buyer_id, order.seller_id):
        raise NotFound("Order not found.")
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.pk)
        if current.status != Order.Status.COMPLETED:
            raise Conflict("Reviews come after the order is complete.", code="invalid_transition")
        subject_id = current.seller_id if author.pk == current.buyer_id else current.buyer_id
        try:
            with transaction.atomic():
                review = Review.objects.create(
                    order=current, author=author, subject_id=subject_id, rating=rating, text=text
                )
        except IntegrityError:
            raise Conflict("You already reviewed this order.", code="already_reviewed") from None
        _record(
            current,
            actor=author,
            kind=OrderEvent.Kind.REVIEW,
            text=f"{author.profile.display_name} left a {rating}-star review on #{current.number}.",
            data={"rating": rating},
        )
        notify(
            recipient=review.subject,
            kind=NotificationKind.REVIEW_RECEIVED,
            title=f"{display_name(author)} left you a {rating}-star review",
            body=excerpt(text),
            url=_order_url(current),
            dedupe_key=f"review:{review.pk}",
        )
    return review


def completed_order_required(blocker, blocked) -> str | None:
    """Blocking rule from the brief: only once an order between the two is completed."""
    completed = Order.objects.filter(
        Q(buyer=blocker, seller=blocked) | Q(buyer=blocked, seller=blocker), status=Order.Status.COMPLETED
    ).exists()
    return None if completed else "You can block someone once an order between you is completed."


# --- calls ----------------------------------------------------------------------------------


def _call_card(call: Call) -> dict:
    return {
        "call_id": call.pk,
        "kind": call.kind,
        "url": call.url,
        "starts_at": iso_timestamp(call.starts_at),
        "duration_minutes": call.duration_minutes,
        "status": call.status,
    }


def _meeting_url() -> str:
    room = f"marketplace-{uuid.uuid4().hex[:16]}"
    return settings.CALL_URL_TEMPLATE.format(room=room)


def start_call(*, seller, conversation: Conversation) -> Call:
    """Only sellers start a video call: a card with a unique meeting link, live for the buyer."""
    _require_seller(seller, doing="start calls")
    buyer = _other_member(conversation, seller)
    with transaction.atomic():
        call = Call.objects.create(
            conversation=conversation, seller=seller, buyer=buyer, kind=Call.Kind.CALL, url=_meeting_url(),
            status=Call.Status.OPEN,
        )  # fmt: skip
        call.message = post_card_message(
            sender=seller,
            conversation=conversation,
            kind=Message.Kind.CALL,
            body=f"{seller.profile.display_name} started a video call: {call.url}",
            card=_call_card(call),
        )
        call.save(update_fields=["message"])
    return call


def offer_consultation(*, seller, conversation: Conversation, starts_at: datetime, duration_minutes) -> Call:
    """A seller offers a consultation slot; the buyer books it (once)."""
    _require_seller(seller, doing="offer consultations")
    buyer = _other_member(conversation, seller)
    duration_minutes = _clean_int(
        duration_minutes,
        low=15,
        high=240,
        message="A consultation lasts 15 to 240 minutes.",
        code="invalid_duration",
    )
    if not isinstance(starts_at, datetime) or timezone.is_naive(starts_at):
        raise InvalidInput("The start is a date and time with its time zone.", code="invalid_start")
    if not timezone.now() < starts_at <= timezone.now() + timedelta(days=90):
        raise InvalidInput("A consultation starts in the future, within 90 days.", code="invalid_start")
    with transaction.atomic():
        call = Call.objects.create(
            conversation=conversation, seller=seller, buyer=buyer, kind=Call.Kind.CONSULTATION,
            url=_meeting_url(), starts_at=starts_at, duration_minutes=duration_minutes,
            status=Call.Status.OFFERED,
        )  # fmt: skip
        call.message = post_card_message(
            sender=seller,
            conversation=conversation,
            kind=Message.Kind.CALL,
            body=f"Consultation offered: {duration_minutes} minutes on {starts_at:%b %-d at %H:%M %Z}",
            card=_call_card(call),
        )
        call.save(update_fields=["message"])
    return call


def book_consultation(*, buyer, call: Call) -> Call:
    if call.buyer_id != buyer.pk or call.kind != Call.Kind.CONSULTATION:
        raise NotFound("Consultation not found.")
    with transaction.atomic():
        changed = Call.objects.filter(
            pk=call.pk, status=Call.Status.OFFERED, starts_at__gt=timezone.now()
        ).update(status=Call.Status.BOOKED, booked_at=timezone.now())
        call.refresh_from_db()
        if not changed:
            if call.status == Call.Status.BOOKED:
                raise Conflict("This consultation is already booked.", code="already_booked")
            raise Conflict("This consultation slot has passed.", code="slot_passed")
        update_card(message=call.message, card=_call_card(call))
    return call
