"""The JSON shapes of gigs, requests, offers, orders and calls: one shape per object, shared by
the API and the pages.

Money is a string with two decimals ("120.00"), dates ISO 8601 ("2026-12-24"), times in the API's
form (ISO 8601, milliseconds, Z for UTC). People are user summaries on gigs and orders (shown
away from any conversation) and usernames on what lives inside a conversation (offers, requests,
calls, timeline events, reviews), like a message's `sender`.
"""

from decimal import Decimal

from inbox.payloads import iso_timestamp, user_summary

from .models import BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def _username(user) -> str | None:
    return user.username if user is not None else None


def gig_payload(gig: Gig) -> dict:
    return {
        "id": gig.pk,
        "seller": user_summary(gig.seller),
        "title": gig.title,
        "description": gig.description,
        "price": money(gig.price),
        "delivery_days": gig.delivery_days,
        "revisions": gig.revisions,
        "is_active": gig.is_active,
        "created_at": iso_timestamp(gig.created_at),
    }


def request_payload(request: BuyerRequest) -> dict:
    return {
        "id": request.pk,
        "buyer": request.buyer.username,
        "seller": request.seller.username,
        "conversation_id": request.conversation_id,
        "message_id": request.message_id,
        "description": request.description,
        "budget": money(request.budget),
        "deadline": request.deadline.isoformat(),
        "created_at": iso_timestamp(request.created_at),
    }


def offer_payload(offer: CustomOffer) -> dict:
    return {
        "id": offer.pk,
        "conversation_id": offer.conversation_id,
        "message_id": offer.message_id,
        "seller": offer.seller.username,
        "buyer": offer.buyer.username,
        "gig_id": offer.gig_id,
        "title": offer.title,
        "description": offer.description,
        "price": money(offer.price),
        "delivery_days": offer.delivery_days,
        "revisions": offer.revisions,
        "status": offer.status,
        "expires_at": iso_timestamp(offer.expires_at),
        "created_at": iso_timestamp(offer.created_at),
        "decided_at": iso_timestamp(offer.decided_at),
    }


def order_event_payload(event: OrderEvent) -> dict:
    return {
        "kind": event.kind,
        "actor": _username(event.actor),
        "created_at": iso_timestamp(event.created_at),
        "data": event.data,
        "message_id": event.message_id,
    }


def review_payload(review: Review) -> dict:
    return {
        "id": review.pk,
        "order_number": review.order.number,
        "author": review.author.username,
        "subject": review.subject.username,
        "rating": review.rating,
        "text": review.text,
        "created_at": iso_timestamp(review.created_at),
    }


def order_payload(order: Order) -> dict:
    """An order with its timeline and reviews (prefetch them: selectors.attach_order_details)."""
    return {
        "number": order.number,
        "title": order.title,
        "description": order.description,
        "status": order.status,
        "price": money(order.price),
        "delivery_days": order.delivery_days,
        "revisions_included": order.revisions_included,
        "revisions_used": order.revisions_used,
        "revisions_left": order.revisions_left,
        "buyer": user_summary(order.buyer),
        "seller": user_summary(order.seller),
        "conversation_id": order.conversation_id,
        "gig_id": order.gig_id,
        "offer_id": order.offer_id,
        "requirements": order.requirements,
        "requirements_submitted_at": iso_timestamp(order.requirements_submitted_at),
        "due_at": iso_timestamp(order.due_at),
        "created_at": iso_timestamp(order.created_at),
        "delivered_at": iso_timestamp(order.delivered_at),
        "completed_at": iso_timestamp(order.completed_at),
        "cancelled_at": iso_timestamp(order.cancelled_at),
        "events": [order_event_payload(event) for event in order.events.all()],
        "reviews": [review_payload(review) for review in order.reviews.all()],
    }


def call_payload(call: Call) -> dict:
    return {
        "id": call.pk,
        "conversation_id": call.conversation_id,
        "message_id": call.message_id,
        "kind": call.kind,
        "seller": call.seller.username,
        "buyer": call.buyer.username,
        "url": call.url,
        "starts_at": iso_timestamp(call.starts_at),
        "duration_minutes": call.duration_minutes,
        "status": call.status,
        "booked_at": iso_timestamp(call.booked_at),
        "created_at": iso_timestamp(call.created_at),
    }
