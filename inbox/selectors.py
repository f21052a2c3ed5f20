"""Reads for pages and the API. Each runs a fixed number of queries whatever the data size."""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Avg, Count, Exists, F, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from marketplace.accounts.selectors import current_away
from marketplace.errors import Gone, InvalidInput, NotFound

from .models import (
    FOLLOW_UP_LABEL,
    MAX_ROW_ID,
    AutoReply,
    Block,
    Event,
    EventLogHead,
    Label,
    Membership,
    MembershipLabel,
    Message,
    QuickResponse,
    ResponseObligation,
)
from .placeholders import fill_placeholders, placeholder_values


@dataclass
class Page:
    items: list
    next_cursor: str | int | None
    # Only for a thread page opened `around` an old message: there are newer messages than the
    # page holds; pass this as `after` to fetch them.
    newer_cursor: int | None = None


def conversation_for_user(*, user, conversation_id, details: bool = False) -> Membership:
    """The user's membership in a conversation, or NotFound: a stranger learns nothing, not even
    that the conversation exists. `details` also loads what a conversation is shown with (the
    other person's profile, the last message); a write needs only the conversation."""
    if not user.is_authenticated:
        raise NotFound("Conversation not found.")
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise NotFound("Conversation not found.") from None
    if not 0 < conversation_id <= MAX_ROW_ID:
        # No row has such an id, and SQLite raises OverflowError on integers past 64 bits.
        raise NotFound("Conversation not found.")
    related = (
        ("conversation__last_message__sender", "conversation__last_message__order", "other_user__profile")
        if details
        else ("conversation",)
    )
    membership = (
        Membership.objects.select_related(*related).filter(user=user, conversation_id=conversation_id).first()
    )
    if membership is None:
        raise NotFound("Conversation not found.")
    return membership


def conversation_between(*, user, other_user) -> Membership | None:
    return Membership.objects.filter(user=user, other_user=other_user).first()


# The pages' `limit` ranges (the API schema declares them from these).
CONVERSATIONS_PAGE_MAX = 100
MESSAGES_PAGE_MAX = 200
# What the server hands out: base64url without padding (conversations, search), and a message id
# (a thread). Anything else is refused before it is read (b64decode would skip stray characters).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
THREAD_CURSOR_PATTERN = r"^[0-9]*$"


def _encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        if not re.fullmatch(CURSOR_PATTERN, cursor):
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, dict):
            raise ValueError
        return values
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor") from None


def _clamp_limit(limit: int | None, *, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}.", code="invalid_limit")
    return limit


FILTERS = {
    "all": "All conversations",
    "unread": "Unread",
    "starred": "Starred",
    "needs_reply": "Needs reply",
    "archived": "Archived",
    "spam": "Spam",
    "custom_offers": "Custom Offers",
    "requests": "Requests",
    "follow_up": "Follow-up",
}
MAX_NAME_QUERY = 100

_ACTIVE = Q(deleted_at__isnull=True, spam_at__isnull=True)
# The last word is the other person's. An auto-reply is nobody's word: after one, the seller
# still owes the answer and the buyer owes nothing.
_NEEDS_REPLY = Q(
    conversation__last_message__sender_id=F("other_user_id"),
    conversation__last_message__deleted_at__isnull=True,
    conversation__last_message__is_automatic=False,
) | Q(conversation__last_message__sender_id=F("user_id"), conversation__last_message__is_automatic=True)
FILTER_CONDITIONS = {
    "all": _ACTIVE & Q(archived_at__isnull=True),
    "unread": _ACTIVE & Q(unread_count__gt=0),
    "starred": _ACTIVE & Q(starred_at__isnull=False),
    "needs_reply": _ACTIVE & Q(archived_at__isnull=True) & _NEEDS_REPLY,
    "archived": _ACTIVE & Q(archived_at__isnull=False),
    "spam": Q(deleted_at__isnull=True, spam_at__isnull=False),
    "custom_offers": _ACTIVE & Q(has_custom_offer=True),
    "requests": _ACTIVE & Q(has_request=True),
}


def _filter_condition(*, user, filter_name: str, label_id: int | None) -> Q:
    if label_id is not None:
        label = label_for_user(user=user, label_id=label_id)
        return Q(deleted_at__isnull=True, membershiplabel__label=label)
    if filter_name == "follow_up":
        return Q(
            deleted_at__isnull=True,
            membershiplabel__label__user__isnull=True,
            membershiplabel__label__name=FOLLOW_UP_LABEL,
        )
    if filter_name not in FILTER_CONDITIONS:
        raise InvalidInput(
            f"Unknown filter {filter_name!r}; known: {', '.join(FILTERS)}.", code="invalid_filter"
        )
    return FILTER_CONDITIONS[filter_name]


def _name_condition(query: str) -> Q:
    return Q(other_user__username__icontains=query) | Q(other_user__profile__display_name__icontains=query)


def _clean_name_query(query: str | None) -> str:
    query = query or ""
    if len(query) > MAX_NAME_QUERY:  # as sent: the limit a client sees
        raise InvalidInput(
            f"Search for a name of at most {MAX_NAME_QUERY} characters.", code="query_too_long"
        )
    return query.strip().replace("\x00", "")


def attach_label_ids(memberships: list[Membership]) -> None:
    """Give each membership its `label_ids` (one query for the whole list)."""
    by_membership: dict[int, list[int]] = {m.pk: [] for m in memberships}
    for membership_id, label_id in MembershipLabel.objects.filter(membership__in=memberships).values_list(
        "membership_id", "label_id"
    ):
        by_membership[membership_id].append(label_id)
    for membership in memberships:
        membership.label_ids = sorted(by_membership[membership.pk])


def _listed(user):
    """The memberships a user's inbox lists: those with a message the user can see. A
    conversation whose first message waits for review exists for its recipient only once a
    moderator approves that message."""
    return Membership.objects.filter(user=user, last_message_at__isnull=False)


def inbox_page(
    *,
    user,
    filter_name: str = "all",
    label_id: int | None = None,
    query: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page:
    """A user's conversations in one filter, most recent activity first (keyset on
    last_message_at, id). A name query searches every conversation of the filter, and with the
    default filter also the ones the user deleted, so a deleted conversation can be found again."""
    limit = _clamp_limit(limit, default=30, maximum=CONVERSATIONS_PAGE_MAX)
    query = _clean_name_query(query)
    condition = _filter_condition(user=user, filter_name=filter_name, label_id=label_id)
    if query:
        condition = _name_condition(query) & (
            Q(deleted_at__isnull=True, spam_at__isnull=True) | Q(deleted_at__isnull=False)
            if filter_name == "all" and label_id is None
            else condition
        )
    memberships = (
        _listed(user)
        .filter(condition)
        .select_related(
            "other_user__profile", "conversation__last_message__sender", "conversation__last_message__order"
        )
        .prefetch_related("conversation__last_message__attachments")
    )
    if cursor:
        values = _decode_cursor(cursor)
        try:
            at, pk = datetime.fromisoformat(values["at"]), int(values["id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(
                "The cursor is not one this server handed out.", code="invalid_cursor"
            ) from None
        memberships = memberships.filter(Q(last_message_at__lt=at) | Q(last_message_at=at, id__lt=pk))
    rows = list(memberships.order_by("-last_message_at", "-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor({"at": last.last_message_at.isoformat(), "id": last.pk})
    other_reads = dict(
        Membership.objects.filter(conversation_id__in=[m.conversation_id for m in rows])
        .exclude(user=user)
        .values_list("conversation_id", "last_read_message_id")
    )
    for membership in rows:
        membership.other_last_read_message_id = other_reads.get(membership.conversation_id)
    attach_label_ids(rows)
    return Page(items=rows, next_cursor=next_cursor)


def filter_counts(*, user) -> dict:
    """Beside each filter, how many conversations it holds (for Unread: how many are unread);
    beside each label, how many carry it. Three queries whatever the inbox size."""
    counts = _listed(user).aggregate(
        **{name: Count("pk", filter=condition) for name, condition in FILTER_CONDITIONS.items()}
    )
    by_label = dict(
        MembershipLabel.objects.filter(
            membership__user=user,
            membership__deleted_at__isnull=True,
            membership__last_message_at__isnull=False,
        )
        .values_list("label_id")
        .annotate(n=Count("pk"))
    )
    follow_up_id = (
        Label.objects.filter(user__isnull=True, name=FOLLOW_UP_LABEL).values_list("pk", flat=True).first()
    )
    counts["follow_up"] = by_label.get(follow_up_id, 0)
    counts["labels"] = by_label
    return counts


def labels_for_user(*, user) -> list[Label]:
    """The user's own labels and the ones everyone has."""
    return list(Label.objects.filter(Q(user=user) | Q(user__isnull=True)).order_by("user_id", "name"))


def label_for_user(*, user, label_id) -> Label:
    try:
        label_id = int(label_id)
    except (TypeError, ValueError):
        raise NotFound("Label not found.") from None
    if not 0 < label_id <= MAX_ROW_ID:
        raise NotFound("Label not found.")
    label = Label.objects.filter(Q(user=user) | Q(user__isnull=True), pk=label_id).first()
    if label is None:
        raise NotFound("Label not found.")
    return label


def correspondent(*, user, username: str):
    """Someone the user has a conversation with, by username (any case), or NotFound."""
    if not isinstance(username, str) or "\x00" in username:
        raise NotFound("You have no conversation with this user.")
    membership = (
        Membership.objects.select_related("other_user__profile")
        .filter(user=user, other_user__username__iexact=username)
        .first()
    )
    if membership is None:
        raise NotFound("You have no conversation with this user.")
    return membership.other_user


def has_blocked(*, user, other_user_id: int) -> bool:
    """Whether `user` blocked the other person (what their panel offers: block or unblock)."""
    return Block.objects.filter(blocker=user, blocked_id=other_user_id).exists()


def message_for_user(*, user, message_id) -> Message:
    """A message of one of the user's conversations, or NotFound."""
    try:
        message_id = int(message_id)
    except (TypeError, ValueError):
        raise NotFound("Message not found.") from None
    if not user.is_authenticated or not 0 < message_id <= MAX_ROW_ID:
        raise NotFound("Message not found.")
    message = (
        Message.objects.select_related("sender", "conversation", "reply_to__sender", "order")
        .prefetch_related("attachments")
        .filter(visible_to(user.pk), pk=message_id, conversation__memberships__user=user)
        .first()
    )
    if message is None:
        raise NotFound("Message not found.")
    return message


def other_last_read_message_id(*, membership: Membership) -> int | None:
    """How far the other participant has read: what "Seen" is computed from."""
    return (
        Membership.objects.filter(
            conversation_id=membership.conversation_id, user_id=membership.other_user_id
        )
        .values_list("last_read_message_id", flat=True)
        .first()
    )


def visible_to(user_id) -> Q:
    """Messages a participant sees: every visible one, and their own held or refused ones."""
    return Q(status=Message.Status.VISIBLE) | Q(sender_id=user_id)


def thread_page(
    *,
    membership: Membership,
    cursor: str | None = None,
    after: int | None = None,
    around: int | None = None,
    limit: int | None = None,
) -> Page:
    """Messages of a conversation, newest first; `next_cursor` goes further back. With `after`,
    only messages newer than that id, oldest first (what a live page appends). With `around`
    (a search result opened), the page that holds that message, at most `limit // 2` newer
    messages after it, or NotFound when it is not in this conversation."""
    limit = _clamp_limit(limit, default=50, maximum=MESSAGES_PAGE_MAX)
    messages = (
        Message.objects.filter(conversation_id=membership.conversation_id)
        .filter(visible_to(membership.user_id))
        .select_related("sender", "reply_to__sender", "order")
        .prefetch_related("attachments")
    )
    if after is not None:
        rows = list(messages.filter(id__gt=after).order_by("id")[:limit])
        return Page(items=rows, next_cursor=None)
    if around is not None:
        return _thread_page_around(messages, around=around, limit=limit)
    if cursor:
        if not re.fullmatch(
            THREAD_CURSOR_PATTERN, cursor
        ):  # int() would take " 7", "-7" or Arabic-Indic digits
            raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor")
        messages = messages.filter(id__lt=int(cursor))
    rows = list(messages.order_by("-id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = str(rows[-1].pk)
    return Page(items=rows, next_cursor=next_cursor)


def _thread_page_around(messages, *, around, limit: int) -> Page:
    """Two queries: the newer side (up to half a page), then the message and older ones."""
    try:
        around = int(around)
    except (TypeError, ValueError):
        raise NotFound("Message not found.") from None
    if not 0 < around <= MAX_ROW_ID:
        raise NotFound("Message not found.")
    newer_side = limit // 2
    newer = list(messages.filter(id__gt=around).order_by("id")[: newer_side + 1])
    newer_cursor = None
    if len(newer) > newer_side:
        newer = newer[:newer_side]
        newer_cursor = newer[-1].pk if newer else around
    older_side = limit - len(newer)
    older = list(messages.filter(id__lte=around).order_by("-id")[: older_side + 1])
    if not older or older[0].pk != around:
        raise NotFound("Message not found.")
    next_cursor = None
    if len(older) > older_side:
        older = older[:older_side]
        next_cursor = str(older[-1].pk)
    return Page(items=[*reversed(newer), *older], next_cursor=next_cursor, newer_cursor=newer_cursor)


def head_cursor(*, user_id: int) -> int:
    """The last cursor handed out to a user (0 before their first event)."""
    return EventLogHead.objects.filter(user_id=user_id).values_list("last_cursor", flat=True).first() or 0


def events_since(*, user, since: int, limit: int | None = None) -> Page:
    """Events after `since`, oldest first. Gone when some of them were already pruned."""
    limit = _clamp_limit(limit, default=settings.EVENTS_PAGE_MAX, maximum=settings.EVENTS_PAGE_MAX)
    if since < 0:
        raise InvalidInput("since must be 0 or a cursor you received.", code="invalid_cursor")
    head = EventLogHead.objects.filter(user_id=user.pk).values_list("pruned_through", "last_cursor").first()
    pruned_through, last_cursor = head or (0, 0)
    if since < pruned_through:
        raise Gone(
            f"Events up to cursor {pruned_through} were pruned: reload your conversations, then follow "
            f"events from cursor {last_cursor}.",
            code="resync_required",
            cursor=last_cursor,
        )
    rows = list(Event.objects.filter(user=user, cursor__gt=since).order_by("cursor")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = rows[-1].cursor
    return Page(items=rows, next_cursor=next_cursor)


RESPONSE_WINDOW = timedelta(days=60)
ANSWER_WITHIN = timedelta(hours=24)


@dataclass(frozen=True)
class ResponseFigures:
    inbox_rate: int | None  # percent of first messages answered within 24 hours; None: none decided yet
    inbox_counted: int
    order_rate: int | None  # the same for messages tied to an open order
    order_counted: int
    average_response: timedelta | None  # mean time to answer, over the answered ones


def _obligations_not_reported(seller):
    """The seller's obligations, without the conversations they reported as spam or
    inappropriate, or filed as spam: those owe no answer."""
    from moderation.models import Report

    reported = Report.objects.filter(
        conversation_id=OuterRef("conversation_id"),
        reporter_id=OuterRef("seller_id"),
        reason__in=(Report.Reason.SPAM, Report.Reason.INAPPROPRIATE),
    )
    filed_as_spam = Membership.objects.filter(
        conversation_id=OuterRef("conversation_id"), user_id=OuterRef("seller_id"), spam_at__isnull=False
    )
    return (
        ResponseObligation.objects.filter(seller=seller)
        .exclude(Exists(reported))
        .exclude(Exists(filed_as_spam))
    )


def response_figures(*, seller, now=None) -> ResponseFigures:
    """A seller's figures over the last 60 days (docs/ARCHITECTURE.md, "Response figures").
    An obligation counts once it is decided: answered, or 24 hours old unanswered. Left out:
    conversations the seller reported as spam or inappropriate (or filed as spam), and first
    messages that arrived while the seller was away. One query whatever the history."""
    now = now or timezone.now()
    counted = _obligations_not_reported(seller).filter(
        arrived_at__gt=now - RESPONSE_WINDOW, arrived_at__lte=now, excluded_reason=""
    )
    decided = Q(answered_at__isnull=False) | Q(arrived_at__lte=now - ANSWER_WITHIN)
    on_time = Q(answered_at__isnull=False, answered_at__lte=F("arrived_at") + ANSWER_WITHIN)
    totals = counted.aggregate(
        average=Avg(F("answered_at") - F("arrived_at"), filter=Q(answered_at__isnull=False)),
        **{
            f"{kind}_{what}": Count("pk", filter=Q(kind=kind) & condition)
            for kind in ResponseObligation.Kind.values
            for what, condition in (("decided", decided), ("on_time", on_time))
        },
    )

    def rate(kind: str) -> int | None:
        # Rounded down: 99.6% answered on time shows as 99, never as a perfect 100.
        decided_count = totals[f"{kind}_decided"]
        return 100 * totals[f"{kind}_on_time"] // decided_count if decided_count else None

    return ResponseFigures(
        inbox_rate=rate("inbox"),
        inbox_counted=totals["inbox_decided"],
        order_rate=rate("order"),
        order_counted=totals["order_decided"],
        average_response=totals["average"],
    )


TREND_DAYS = 60


@dataclass(frozen=True)
class TrendPoint:
    day: date  # a day of the seller's calendar
    inbox_rate: int | None  # the figures as they stood at the end of that day (None: nothing decided)
    order_rate: int | None


def response_trend(*, seller, now=None, days: int = TREND_DAYS) -> list[TrendPoint]:
    """The seller's two response rates as they stood at the end of each of their last `days`
    calendar days (today: now), by the same rules as response_figures, whose figures the last
    point equals. One query: the obligations of the last days + 60."""
    now = now or timezone.now()
    zone = ZoneInfo(seller.profile.timezone or "UTC")
    today = timezone.localtime(now, timezone=zone).date()
    first_day = today - timedelta(days=days - 1)
    earliest = _end_of_day(first_day, zone) - RESPONSE_WINDOW
    rows = list(
        _obligations_not_reported(seller)
        .filter(arrived_at__gt=earliest, arrived_at__lte=now, excluded_reason="")
        .values_list("kind", "arrived_at", "answered_at")
    )
    points = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        as_of = min(_end_of_day(day, zone), now)
        decided = {kind: 0 for kind in ResponseObligation.Kind.values}
        on_time = dict(decided)
        for kind, arrived_at, answered_at in rows:
            if not as_of - RESPONSE_WINDOW < arrived_at <= as_of:
                continue
            answered = answered_at is not None and answered_at <= as_of
            if answered or arrived_at <= as_of - ANSWER_WITHIN:
                decided[kind] += 1
                on_time[kind] += answered and answered_at <= arrived_at + ANSWER_WITHIN
        rate = {kind: 100 * on_time[kind] // decided[kind] if decided[kind] else None for kind in decided}
        points.append(TrendPoint(day, inbox_rate=rate["inbox"], order_rate=rate["order"]))
    return points


def _end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


@dataclass(frozen=True)
class AwaitingAnswer:
    conversation_id: int
    buyer: object
    arrived_at: datetime
    deadline: datetime  # arrived_at + 24 hours
    time_left: timedelta  # negative once past the deadline
    counted: bool  # False: it arrived while the seller was away, and does not count


def awaiting_first_answer(*, seller, now=None, limit: int = 50) -> list[AwaitingAnswer]:
    """First messages of the last 60 days the seller has not answered yet, most urgent first:
    those still inside their 24 hours by time left, then the late ones, oldest last. Reported
    and spam conversations owe no answer and are not listed."""
    now = now or timezone.now()
    open_obligations = (
        _obligations_not_reported(seller)
        .filter(
            kind=ResponseObligation.Kind.INBOX,
            answered_at__isnull=True,
            arrived_at__gt=now - RESPONSE_WINDOW,
            arrived_at__lte=now,
        )
        .select_related("message__sender__profile")
    )
    in_time = open_obligations.filter(arrived_at__gt=now - ANSWER_WITHIN).order_by("arrived_at")[:limit]
    late = open_obligations.filter(arrived_at__lte=now - ANSWER_WITHIN).order_by("-arrived_at")
    listed = list(in_time)
    listed += list(late[: max(limit - len(listed), 0)])
    return [
        AwaitingAnswer(
            conversation_id=o.conversation_id,
            buyer=o.message.sender,
            arrived_at=o.arrived_at,
            deadline=o.arrived_at + ANSWER_WITHIN,
            time_left=o.arrived_at + ANSWER_WITHIN - now,
            counted=not o.excluded_reason,
        )
        for o in listed
    ]


@dataclass(frozen=True)
class SellerDashboard:
    figures: ResponseFigures
    trend: list[TrendPoint]
    awaiting: list[AwaitingAnswer]


def seller_dashboard(*, seller, now=None) -> SellerDashboard:
    now = now or timezone.now()
    return SellerDashboard(
        figures=response_figures(seller=seller, now=now),
        trend=response_trend(seller=seller, now=now),
        awaiting=awaiting_first_answer(seller=seller, now=now),
    )


@dataclass(frozen=True)
class OtherPersonPanel:
    """What the side panel shows about the other person of a conversation."""

    other: object
    online: bool
    orders: list  # the order history between the two, newest first
    standing: object | None  # a buyer's Top buyer standing (orders.selectors.BuyerStanding)
    figures: ResponseFigures | None  # a seller's response figures
    away: object | None  # the seller's current away period (accounts.AwayPeriod): "Set availability"


def other_person_panel(*, user, other) -> OtherPersonPanel:
    """The panel, in a fixed number of queries whatever the history."""
    from orders import selectors as orders_selectors

    from .presence import online_user_ids

    return OtherPersonPanel(
        other=other,
        online=other.pk in online_user_ids([other.pk]),
        orders=orders_selectors.orders_between(user=user, other_user=other),
        standing=None if other.profile.is_seller else orders_selectors.buyer_standing(buyer=other),
        figures=response_figures(seller=other) if other.profile.is_seller else None,
        away=current_away(user=other) if other.profile.is_seller else None,
    )


def auto_reply_due(*, conversation_id: int, seller_id: int) -> bool:
    """The seller has an auto-reply switched on and has not written in this conversation yet
    (by hand or automatically): a message arriving now is a first contact to answer."""
    seller_wrote = Message.objects.filter(conversation_id=conversation_id, sender_id=seller_id)
    return AutoReply.objects.filter(user_id=seller_id, enabled=True).exclude(Exists(seller_wrote)).exists()


def auto_reply_of(*, user) -> AutoReply | None:
    return AutoReply.objects.filter(user=user).first()


def quick_responses_of(*, user) -> list[QuickResponse]:
    return list(QuickResponse.objects.filter(user=user).order_by(Lower("title"), "pk"))


def quick_response_for_user(*, user, quick_response_id) -> QuickResponse:
    quick_response = QuickResponse.objects.filter(pk=quick_response_id, user=user).first()
    if quick_response is None:
        raise NotFound("Quick response not found.")
    return quick_response


@dataclass(frozen=True)
class FilledQuickResponse:
    id: int
    title: str
    body: str  # as saved, with its placeholders
    text: str  # the body with its placeholders filled for one conversation


def quick_responses_for_conversation(*, user, membership: Membership) -> list[FilledQuickResponse]:
    """The user's quick responses as they would read in this conversation ({buyer_name} is the
    other person, {order_number} its open order)."""
    from orders.models import Order

    saved = quick_responses_of(user=user)
    if not saved:
        return []
    open_order_id = membership.conversation.active_order_id
    order_number = None
    if open_order_id:
        order_number = Order.objects.filter(pk=open_order_id).values_list("number", flat=True).first()
    values = placeholder_values(seller=user, buyer=membership.other_user, order_number=order_number)
    return [FilledQuickResponse(q.pk, q.title, q.body, fill_placeholders(q.body, values)) for q in saved]
