"""A seller's response figures, edge by edge, as the seller and buyers would check them: the
24-hour boundary, the 60-day window, what is left out (spam and inappropriate reports, held
messages, away days in the seller's own time zone, automatic replies), and that the figures
kept up message by message equal a full recompute."""

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from inbox import selectors, services
from inbox.models import Message, ResponseObligation
from marketplace.accounts.models import AwayPeriod
from moderation import services as moderation
from moderation.scanning import Finding
from orders import services as orders

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def holding_scanner(text, *, sender, recipient):
    """HOLDME is held for review (for the tests of held messages)."""
    start = text.find("HOLDME")
    return [Finding("test", start, start + 6, 0.7, "Held.")] if start >= 0 else []


@pytest.fixture(autouse=True)
def scanners(settings):
    settings.MODERATION_SCANNERS = ["tests.inbox.test_response_figures.holding_scanner"]


def delivered(message: Message, at: datetime) -> Message:
    """The message as sent at `at`, then what the Celery task does after delivery."""
    Message.objects.filter(pk=message.pk).update(created_at=at)
    services.record_delivered_message(message_id=message.pk)
    message.refresh_from_db()
    return message


def first_message(buyer, seller, at, body="Hi, is the logo gig open?"):
    conversation, message, _ = services.start_conversation(
        sender=buyer, recipient_username=seller.username, body=body
    )
    return conversation, delivered(message, at)


def say(sender, conversation, at, body="Sure!"):
    message, _ = services.send_message(sender=sender, conversation=conversation, body=body)
    return delivered(message, at)


def figures(seller, now=NOW):
    return selectors.response_figures(seller=seller, now=now)


# --- the inbox response rate -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_after", "rate"),
    [
        (timedelta(hours=3), 100),
        (timedelta(hours=24), 100),  # exactly 24 hours is still within
        (timedelta(hours=24, seconds=1), 0),
    ],
)
def test_a_first_message_counts_as_answered_within_24_hours_up_to_the_second(
    buyer, seller, answer_after, rate
):
    arrived = NOW - timedelta(days=5)
    conversation, _ = first_message(buyer, seller, arrived)
    say(seller, conversation, arrived + answer_after)

    result = figures(seller)

    assert (result.inbox_rate, result.inbox_counted) == (rate, 1)
    assert result.average_response == answer_after


def test_an_unanswered_first_message_counts_only_once_its_24_hours_are_over(buyer, seller):
    first_message(buyer, seller, NOW - timedelta(hours=23))
    assert figures(seller).inbox_rate is None  # still time to answer: neither good nor bad

    assert figures(seller, now=NOW + timedelta(hours=1, seconds=1)).inbox_rate == 0


def test_only_the_first_message_of_a_buyer_is_an_inbox_obligation(buyer, seller, user_factory):
    conversation, _ = first_message(buyer, seller, NOW - timedelta(days=3))
    say(buyer, conversation, NOW - timedelta(days=3) + timedelta(minutes=1), "Also, one more thing")
    say(seller, conversation, NOW - timedelta(days=2, hours=12))
    say(buyer, conversation, NOW - timedelta(days=2), "Thanks! Ordering soon")  # not owed an answer
    other_buyer = user_factory("olga")
    first_message(other_buyer, seller, NOW - timedelta(days=2))  # never answered

    result = figures(seller)

    assert (result.inbox_rate, result.inbox_counted) == (50, 2)
    assert ResponseObligation.objects.filter(seller=seller).count() == 2


def test_the_window_is_exactly_60_days(buyer, seller, user_factory):
    old_conversation, _ = first_message(buyer, seller, NOW - timedelta(days=60, seconds=1))
    say(seller, old_conversation, NOW - timedelta(days=59, hours=23))  # answered, but out of the window
    newer_buyer = user_factory("newer")
    first_message(newer_buyer, seller, NOW - timedelta(days=59))  # unanswered, inside

    result = figures(seller)

    assert (result.inbox_rate, result.inbox_counted) == (0, 1)


def test_the_rate_is_rounded_down(seller, user_factory):
    for index in range(3):
        conversation, message = first_message(user_factory(f"b{index}"), seller, NOW - timedelta(days=4))
        if index < 2:
            say(seller, conversation, message.created_at + timedelta(hours=1))
    assert figures(seller).inbox_rate == 66  # 2 of 3: 66.7% shows as 66


# --- the order response rate -----------------------------------------------------------------


def test_buyer_messages_during_an_open_order_are_each_owed_an_answer(buyer, seller):
    conversation, first = first_message(buyer, seller, NOW - timedelta(days=10))
    say(seller, conversation, first.created_at + timedelta(hours=1))
    offer = orders.create_offer(
        seller=seller, conversation=conversation, description="A logo", price=80, delivery_days=3
    )
    orders.accept_offer(buyer=buyer, offer=offer)
    Message.objects.filter(conversation=conversation).exclude(pk__in=[first.pk]).update(
        created_at=NOW - timedelta(days=9)
    )
    question = say(buyer, conversation, NOW - timedelta(days=8), "Can you use green?")
    follow_up = say(buyer, conversation, NOW - timedelta(days=8) + timedelta(hours=1), "And a serif font?")
    say(seller, conversation, NOW - timedelta(days=8) + timedelta(hours=30), "Yes to both")
    late_night = say(buyer, conversation, NOW - timedelta(days=6), "Any news?")
    say(seller, conversation, NOW - timedelta(days=6) + timedelta(hours=2), "Tomorrow!")

    owed = ResponseObligation.objects.filter(seller=seller, kind="order").order_by("arrived_at")
    assert {question.pk, follow_up.pk, late_night.pk} <= {o.message_id for o in owed}
    result = figures(seller)
    # The order start (accepting) and "Any news?" were answered in time; the two questions of
    # day 8 waited 30 and 29 hours.
    assert result.order_counted == owed.count()
    answered_late = owed.filter(message_id__in=[question.pk, follow_up.pk]).count()
    assert result.order_rate == 100 * (owed.count() - answered_late) // owed.count()
    assert result.inbox_rate == 100


# --- what is left out ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["spam", "inappropriate"])
def test_a_conversation_the_seller_reported_does_not_count(buyer, seller, user_factory, reason):
    spammy, _ = first_message(buyer, seller, NOW - timedelta(days=3), "Cheap followers, click here")
    honest_buyer = user_factory("honest")
    conversation, first = first_message(honest_buyer, seller, NOW - timedelta(days=3))
    say(seller, conversation, first.created_at + timedelta(hours=2))
    assert figures(seller).inbox_rate == 50

    moderation.report(reporter=seller, conversation=spammy, reason=reason)

    assert (figures(seller).inbox_rate, figures(seller).inbox_counted) == (100, 1)


def test_held_messages_are_neither_owed_nor_answers(buyer, seller):
    conversation, first = first_message(buyer, seller, NOW - timedelta(days=3))
    held, _ = services.send_message(sender=seller, conversation=conversation, body="HOLDME call me")
    assert held.status == "held"
    Message.objects.filter(pk=held.pk).update(created_at=first.created_at + timedelta(hours=1))
    moderation.approve_message(message=held, moderator=seller)
    services.record_delivered_message(message_id=held.pk)  # even if a task ran for it

    assert figures(seller).inbox_rate == 0  # the only reply was held: the buyer waited
    assert services.rebuild_obligations(seller=seller, dry_run=True).changed == 0


def test_automatic_replies_are_not_answers(buyer, seller):
    conversation, first = first_message(buyer, seller, NOW - timedelta(days=3))
    auto = say(seller, conversation, first.created_at + timedelta(seconds=5), "Thanks! I reply within a day.")
    Message.objects.filter(pk=auto.pk).update(is_automatic=True)
    ResponseObligation.objects.all().delete()
    services.record_delivered_message(message_id=first.pk)
    services.record_delivered_message(message_id=auto.pk)

    assert figures(seller).inbox_rate == 0


def test_first_messages_on_the_sellers_away_days_do_not_count_in_their_time_zone(user_factory):
    # New York: DST starts on 2026-03-08 at 2:00 (clocks go from 1:59 EST to 3:00 EDT).
    seller = user_factory("nyseller", seller=True, timezone_name="America/New_York")
    now = datetime(2026, 3, 20, tzinfo=UTC)
    # Set ahead of time (set_away refuses days already past, hence the model here).
    AwayPeriod.objects.create(user=seller, starts_on=date(2026, 3, 8), ends_on=date(2026, 3, 8))
    arrivals = {
        "before, Mar 7 23:30 EST": datetime(2026, 3, 8, 4, 30, tzinfo=UTC),
        "away, Mar 8 01:30 EST": datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
        "away, Mar 8 23:30 EDT": datetime(2026, 3, 9, 3, 30, tzinfo=UTC),
        "after, Mar 9 00:30 EDT": datetime(2026, 3, 9, 4, 30, tzinfo=UTC),
    }
    for index, at in enumerate(arrivals.values()):
        first_message(user_factory(f"buyer{index}"), seller, at)

    excluded = {
        label
        for label, at in arrivals.items()
        if ResponseObligation.objects.get(seller=seller, arrived_at=at).excluded_reason == "away"
    }

    assert excluded == {"away, Mar 8 01:30 EST", "away, Mar 8 23:30 EDT"}
    assert figures(seller, now=now).inbox_counted == 2


# --- incremental and full agree -------------------------------------------------------------------


def order_started(seller, buyer, conversation, at):
    """An offer accepted at `at`: its card and the order start are delivered then."""
    last = Message.objects.order_by("-pk").values_list("pk", flat=True).first()
    offer = orders.create_offer(
        seller=seller, conversation=conversation, description="Logo", price=60, delivery_days=3
    )
    orders.accept_offer(buyer=buyer, offer=offer)
    for message in Message.objects.filter(pk__gt=last).order_by("pk"):
        delivered(message, at)


def test_the_figures_kept_message_by_message_equal_a_full_recompute(user_factory):
    rng = random.Random(20261123)
    sellers = [user_factory(f"s{i}", seller=True) for i in range(3)]
    buyers = [user_factory(f"b{i}") for i in range(6)]
    clock = NOW - timedelta(days=70)
    conversations = {}
    for _step in range(160):
        clock += timedelta(minutes=rng.randint(1, 900))
        seller, buyer = rng.choice(sellers), rng.choice(buyers)
        pair = (seller.pk, buyer.pk)
        if pair not in conversations:
            conversations[pair], _ = first_message(buyer, seller, clock)
            continue
        conversation = conversations[pair]
        roll = rng.random()
        if roll < 0.4:
            say(seller, conversation, clock, "Noted")
        elif roll < 0.8:
            say(buyer, conversation, clock, "Question")
        elif roll < 0.9 and conversation.active_order_id is None:
            order_started(seller, buyer, conversation, clock)  # from here on every buyer message is owed
        else:
            say(buyer, conversation, clock, "HOLDME see my other profile")  # held: never counts
        conversation.refresh_from_db()
    for (seller_id, _buyer_id), conversation in conversations.items():
        buyer = conversation.user_low if conversation.user_low_id != seller_id else conversation.user_high
        clock += timedelta(minutes=7)
        say(buyer, conversation, clock, "Still there?")  # the last word: open, or not owed at all
    for seller in sellers[:2]:
        first_message(user_factory(), seller, clock - timedelta(days=3))  # never answered
    # The tasks may run late, twice and in any order: replay every one of them, shuffled.
    replay = list(Message.objects.values_list("pk", flat=True))
    rng.shuffle(replay)
    for message_id in replay:
        services.record_delivered_message(message_id=message_id)

    before = {s.pk: figures(s) for s in sellers}
    kinds = {(o.kind, o.answered_at is None) for o in ResponseObligation.objects.all()}
    assert kinds == {("inbox", False), ("inbox", True), ("order", False), ("order", True)}
    for seller in sellers:
        result = services.rebuild_obligations(seller=seller, dry_run=True)
        assert result.changed == 0, seller.username
    for seller in sellers:
        services.rebuild_obligations(seller=seller)
    assert {s.pk: figures(s) for s in sellers} == before


def test_a_send_queues_the_update_after_commit(buyer, seller, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        conversation, message, _ = services.start_conversation(
            sender=buyer, recipient_username="seller", body="Hello there"
        )
    assert ResponseObligation.objects.filter(message=message, answered_at__isnull=True).exists()
    with django_capture_on_commit_callbacks(execute=True):
        reply, _ = services.send_message(sender=seller, conversation=conversation, body="Hi!")
    assert ResponseObligation.objects.get(message=message).answer_id == reply.pk


# --- the command ---------------------------------------------------------------------------------


def test_the_command_repairs_what_the_incremental_path_missed(buyer, seller, capsys):
    conversation, first = first_message(buyer, seller, NOW - timedelta(days=2))
    say(seller, conversation, first.created_at + timedelta(hours=1))
    ResponseObligation.objects.all().delete()  # a worker was down

    call_command("recompute_response_rates", "--dry-run")
    assert "1 sellers, 1 obligations, 1 would change" in capsys.readouterr().out
    assert not ResponseObligation.objects.exists()

    call_command("recompute_response_rates", "--seller", "seller")
    out = capsys.readouterr()
    assert "1 sellers, 1 obligations, 1 changed" in out.out
    assert "1/1 sellers" in out.err  # the progress bar
    assert figures(seller).inbox_rate == 100


def test_the_command_names_an_unknown_seller(seller):
    with pytest.raises(CommandError, match="No seller called nobody"):
        call_command("recompute_response_rates", "--seller", "nobody")


# --- where buyers see it ---------------------------------------------------------------------------


def test_buyers_see_the_average_response_time_in_the_panel_and_on_the_profile(buyer, seller):
    conversation, first = first_message(buyer, seller, NOW - timedelta(days=2))
    say(seller, conversation, first.created_at + timedelta(hours=3))
    browser = Client()
    browser.force_login(buyer)

    panel = browser.get(f"/inbox/{conversation.pk}/").content.decode()
    profile = browser.get("/u/seller/").content.decode()

    assert 'id="other-response-time">3 hours</dd>' in panel
    assert 'id="response-time">3 hours</dd>' in profile
    assert "100% of first messages answered within 24 hours" in profile
