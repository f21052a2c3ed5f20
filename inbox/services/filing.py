"""Writes about how a user files their conversations: star, archive, delete, spam, labels,
unread by hand, and blocking people. Each change is the user's own; the other person's inbox
does not move. Every change is told to the user's other tabs as `conversation.updated` or
`labels.updated`."""

import re

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.errors import Conflict, Forbidden, InvalidInput, NotFound

from ..events import append_events
from ..models import FOLLOW_UP_LABEL, MAX_ROW_ID, Block, Conversation, Label, Membership, MembershipLabel
from ..payloads import label_payload, membership_state

MAX_LABELS_PER_USER = 50
MAX_LABEL_NAME = 40
MAX_CONVERSATIONS_PER_ACTION = 100
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")  # fullmatch: "$" would let "#rrggbb\n" through

FILING_ACTIONS = {
    "star": "Star",
    "unstar": "Unstar",
    "mark_read": "Mark as read",
    "mark_unread": "Mark as unread",
    "archive": "Archive",
    "unarchive": "Move back to the inbox",
    "delete": "Delete from my inbox",
    "report_spam": "Report as spam",
    "not_spam": "Not spam",
    "add_label": "Apply a label",
    "remove_label": "Remove a label",
}

# Conditions a user must meet before blocking someone; other apps add theirs in ready()
# (the orders app: an order with them was completed). Each takes (blocker, blocked) and
# returns None when satisfied or the sentence explaining what is missing.
block_requirements: list = []


def follow_up_label() -> Label:
    """The Follow-up label everyone has."""
    label, _created = Label.objects.get_or_create(
        user=None, name=FOLLOW_UP_LABEL, defaults={"color": "#d97706"}
    )
    return label


def file_conversations(
    *, user, conversation_ids, action: str, label: Label | None = None
) -> list[Membership]:
    """Apply one action to some of the user's conversations, all of them or none (an id that is
    not the user's makes the whole request a 404)."""
    if action not in FILING_ACTIONS:
        raise InvalidInput(
            f"Unknown action {action!r}; known: {', '.join(FILING_ACTIONS)}.", code="invalid_action"
        )
    ids = list(dict.fromkeys(conversation_ids))
    if not all(isinstance(i, int) and 0 < i <= MAX_ROW_ID for i in ids):
        raise NotFound("Conversation not found.")
    if not ids:
        raise InvalidInput("Choose at least one conversation.", code="no_conversations")
    if len(conversation_ids) > MAX_CONVERSATIONS_PER_ACTION:  # as sent, repeats included
        raise InvalidInput(
            f"Act on at most {MAX_CONVERSATIONS_PER_ACTION} conversations at once.",
            code="too_many_conversations",
        )
    if action in ("add_label", "remove_label") and label is None:
        raise InvalidInput("Say which label.", code="label_required")
    if action in ("mark_read", "mark_unread"):
        return _mark_each(user=user, ids=ids, action=action)

    with transaction.atomic():
        memberships = list(
            Membership.objects.select_for_update()
            .filter(user=user, conversation_id__in=ids)
            .order_by("conversation_id")
        )
        if len(memberships) != len(ids):
            raise NotFound("Conversation not found.")
        now = timezone.now()
        if action == "add_label":
            MembershipLabel.objects.bulk_create(
                [MembershipLabel(membership=m, label=label) for m in memberships], ignore_conflicts=True
            )
        elif action == "remove_label":
            MembershipLabel.objects.filter(membership__in=memberships, label=label).delete()
        else:
            field, value = {
                "star": ("starred_at", now),
                "unstar": ("starred_at", None),
                "archive": ("archived_at", now),
                "unarchive": ("archived_at", None),
                "delete": ("deleted_at", now),
                "report_spam": ("spam_at", now),
                "not_spam": ("spam_at", None),
            }[action]
            for membership in memberships:
                setattr(membership, field, value)
            Membership.objects.bulk_update(memberships, [field])
        announce_states(user=user, memberships=memberships)
    return memberships


def _mark_each(*, user, ids, action):
    from .messaging import mark_read, mark_unread

    conversations = {c.pk: c for c in Conversation.objects.filter(memberships__user=user, pk__in=ids)}
    if len(conversations) != len(ids):
        raise NotFound("Conversation not found.")
    with transaction.atomic():
        mark = mark_read if action == "mark_read" else mark_unread
        return [mark(user=user, conversation=conversations[conversation_id]) for conversation_id in ids]


def announce_states(*, user, memberships) -> None:
    """Tell the user's tabs how these conversations are now filed."""
    label_ids: dict[int, list[int]] = {m.pk: [] for m in memberships}
    for membership_id, label_id in MembershipLabel.objects.filter(membership__in=memberships).values_list(
        "membership_id", "label_id"
    ):
        label_ids[membership_id].append(label_id)
    append_events(
        [
            (user.pk, "conversation.updated", membership_state(m, label_ids=sorted(label_ids[m.pk])))
            for m in memberships
        ]
    )


# --- labels ---------------------------------------------------------------------------------


def _clean_label(*, user, name, color, exclude_id=None) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A label needs a name.", code="invalid_label")
    if len(name) > MAX_LABEL_NAME:  # as sent: the limit a client sees
        raise InvalidInput(f"A label name is at most {MAX_LABEL_NAME} characters.", code="invalid_label")
    if "\x00" in name:
        raise InvalidInput("The label name contains a NUL character.", code="invalid_label")
    name = " ".join(name.split())
    if color is not None and (not isinstance(color, str) or not COLOR_PATTERN.fullmatch(color)):
        raise InvalidInput("A colour is written #rrggbb, e.g. #1a7f5a.", code="invalid_color")
    taken = Label.objects.filter(Q(user__isnull=True) | Q(user=user), name__iexact=name).exclude(
        pk=exclude_id
    )
    if taken.exists():
        raise Conflict(f"You already have a label called {name!r}.", code="label_exists")
    return name, color


def _announce_labels(user) -> None:
    labels = Label.objects.filter(Q(user=user) | Q(user__isnull=True))
    append_events([(user.pk, "labels.updated", {"labels": [label_payload(label) for label in labels]})])


def create_label(*, user, name: str, color: str | None = None) -> Label:
    name, color = _clean_label(user=user, name=name, color=color)
    with transaction.atomic():
        if Label.objects.filter(user=user).count() >= MAX_LABELS_PER_USER:
            # 409 as for quick responses: the request is fine, the user already has enough.
            raise Conflict(f"You can have at most {MAX_LABELS_PER_USER} labels.", code="too_many_labels")
        try:
            with transaction.atomic():
                label = Label.objects.create(user=user, name=name, color=color or "#6b7280")
        except IntegrityError as exc:
            raise Conflict(f"You already have a label called {name!r}.", code="label_exists") from exc
        _announce_labels(user)
    return label


def _own_label(*, user, label: Label) -> None:
    if label.user_id is None:
        raise Forbidden(f"{label.name} is a label everyone has; it cannot be changed.", code="shared_label")
    if label.user_id != user.pk:
        raise NotFound("Label not found.")


def update_label(*, user, label: Label, name: str | None = None, color: str | None = None) -> Label:
    """Rename or recolour one of your labels."""
    _own_label(user=user, label=label)
    if name is not None:
        name, _ = _clean_label(user=user, name=name, color=None, exclude_id=label.pk)
        label.name = name
    if color is not None:
        _clean_label(user=user, name=label.name, color=color, exclude_id=label.pk)
        label.color = color
    with transaction.atomic():
        try:
            with transaction.atomic():
                label.save(update_fields=["name", "color"])
        except IntegrityError as exc:
            raise Conflict(f"You already have a label called {label.name!r}.", code="label_exists") from exc
        _announce_labels(user)
    return label


def delete_label(*, user, label: Label) -> None:
    """Delete one of your labels; conversations keep everything else."""
    _own_label(user=user, label=label)
    with transaction.atomic():
        memberships = list(Membership.objects.filter(membershiplabel__label=label))
        label.delete()
        _announce_labels(user)
        if memberships:
            announce_states(user=user, memberships=memberships)


# --- blocking -------------------------------------------------------------------------------


def block_user(*, blocker, blocked) -> Block:
    """Stop receiving messages from someone you have a conversation with. Their messages are
    refused with a clear reason; yours to them are refused too until you unblock."""
    if blocker.pk == blocked.pk:
        raise InvalidInput("You cannot block yourself.", code="invalid_block")
    if not Membership.objects.filter(user=blocker, other_user=blocked).exists():
        raise NotFound("You have no conversation with this user.")
    for requirement in block_requirements:
        missing = requirement(blocker, blocked)
        if missing:
            raise Forbidden(missing, code="block_not_allowed")
    block, _created = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    return block


def unblock_user(*, blocker, blocked) -> None:
    Block.objects.filter(blocker=blocker, blocked=blocked).delete()
