"""The dashboard's 60-day trend: each point is the figures as they stood at the end of one of
the seller's days, by the very rules of response_figures (today's point equals them)."""

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from inbox import selectors
from tests.inbox.test_response_figures import first_message, say

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def point(trend, day: date):
    return next(p for p in trend if p.day == day)


def test_each_point_is_the_rate_as_it_stood_that_evening(seller, user_factory):
    # Tokyo (UTC+9): the seller's days end at 15:00 UTC.
    conversation, _ = first_message(user_factory("ann"), seller, datetime(2026, 11, 10, 1, tzinfo=UTC))
    say(seller, conversation, datetime(2026, 11, 10, 3, tzinfo=UTC))  # answered in 2 h
    first_message(user_factory("bob"), seller, datetime(2026, 11, 12, 1, tzinfo=UTC))  # never answered

    trend = selectors.response_trend(seller=seller, now=NOW)

    assert len(trend) == 60 and trend[-1].day == date(2026, 11, 23) and trend[0].day == date(2026, 9, 25)
    assert point(trend, date(2026, 11, 9)).inbox_rate is None  # nothing had arrived
    assert point(trend, date(2026, 11, 10)).inbox_rate == 100
    assert point(trend, date(2026, 11, 12)).inbox_rate == 100  # Bob's 24 hours still running
    assert point(trend, date(2026, 11, 13)).inbox_rate == 50  # Bob's day is over: late
    assert trend[-1].inbox_rate == selectors.response_figures(seller=seller, now=NOW).inbox_rate == 50


def test_old_first_messages_leave_the_trend_after_sixty_days(seller, user_factory):
    first_message(user_factory("ann"), seller, datetime(2026, 9, 1, 1, tzinfo=UTC))  # never answered

    trend = selectors.response_trend(seller=seller, now=NOW)

    assert trend[0].inbox_rate == 0  # Sep 25: still inside its window
    assert point(trend, date(2026, 10, 31)).inbox_rate is None  # 60 days later it no longer counts
    assert trend[-1].inbox_rate is None


def test_todays_point_equals_the_figures_on_random_history(seller, user_factory):
    rng = random.Random(7)
    for index in range(25):
        arrived = NOW - timedelta(hours=rng.uniform(1, 24 * 80))
        conversation, _ = first_message(user_factory(f"b{index}"), seller, arrived)
        if rng.random() < 0.7:
            say(seller, conversation, min(arrived + timedelta(hours=rng.uniform(0.1, 40)), NOW))

    trend = selectors.response_trend(seller=seller, now=NOW)
    figures = selectors.response_figures(seller=seller, now=NOW)

    assert (trend[-1].inbox_rate, trend[-1].order_rate) == (figures.inbox_rate, figures.order_rate)


def test_the_trend_costs_one_query_whatever_the_history(seller, user_factory, django_assert_num_queries):
    for index in range(5):
        first_message(user_factory(f"b{index}"), seller, NOW - timedelta(days=index * 7 + 1))
    assert seller.profile.timezone == "Asia/Tokyo"  # loaded with the seller, as pages do

    with django_assert_num_queries(1):
        selectors.response_trend(seller=seller, now=NOW)
