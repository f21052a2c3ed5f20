"""The Django admin for gigs and orders as staff use it: every list and page renders, search and
filters find what staff look for, an order's history cannot be rewritten (only a gig can be taken
down), and "Buyers" shows the Top buyer rule in one query however many buyers there are."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.services import get_or_create_conversation
from orders import selectors, services
from orders.models import Buyer, BuyerRequest, Call, CustomOffer, Gig, Order, OrderEvent, Review

pytestmark = pytest.mark.django_db

HISTORY_MODELS = [BuyerRequest, CustomOffer, Order, Review, Call, Buyer]


def make_offer(seller, conversation, **terms) -> CustomOffer:
    terms = {"description": "A logo", "price": 100, "delivery_days": 3, **terms}
    return services.create_offer(seller=seller, conversation=conversation, **terms)


def complete(buyer, seller, order) -> Order:
    order = services.deliver_order(seller=seller, order=order, message="Here are the files")
    return services.complete_order(buyer=buyer, order=order)


@pytest.fixture
def history(buyer, seller):
    """One of everything: a gig, a request, offers in each state, a completed order with both
    reviews, an open order, a call and a consultation."""
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    gig = services.create_gig(
        seller=seller, title="Sourdough logo", description="Rustic", price=120, delivery_days=5
    )
    request = services.send_request(
        buyer=buyer,
        seller=seller,
        description="A logo for my bakery",
        budget=150,
        deadline=timezone.localdate() + timedelta(days=10),
    )
    done = services.accept_offer(
        buyer=buyer,
        offer=services.create_offer(seller=seller, conversation=conversation, gig=gig, description="Hi"),
    )
    done = complete(buyer, seller, done)
    services.leave_review(author=buyer, order=done, rating=5, text="Crusty and lovely")
    services.leave_review(author=seller, order=done, rating=4)
    open_order = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, title="Menu card"))
    declined = make_offer(seller, conversation, title="Poster")
    services.decline_offer(buyer=buyer, offer=declined)
    pending = make_offer(seller, conversation, title="Business cards")
    call = services.start_call(seller=seller, conversation=conversation)
    consultation = services.offer_consultation(
        seller=seller,
        conversation=conversation,
        starts_at=timezone.now() + timedelta(days=1),
        duration_minutes=30,
    )
    return {
        "gig": gig,
        "request": request,
        "done": done,
        "open": open_order,
        "declined": declined,
        "pending": pending,
        "call": call,
        "consultation": consultation,
    }


def changelist_url(model) -> str:
    return f"/admin/orders/{model._meta.model_name}/"


def results(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def filter_link(response, title: str, choice: str) -> str:
    """The query string of a sidebar filter choice, as a staff member would click it."""
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:
        if str(spec.title).lower() == title.lower():
            for option in spec.choices(changelist):
                if str(option["display"]) == choice:
                    return option["query_string"]
    raise AssertionError(f"no {choice!r} choice in the {title!r} filter")


def model_admin(model):
    return admin.site._registry[model]


def staff_request(staff):
    request = RequestFactory().get("/admin/")
    request.user = staff
    return request


# --- access and rendering ------------------------------------------------------------------


def test_a_non_staff_user_is_sent_to_the_admin_login(client, buyer):
    client.force_login(buyer)

    response = client.get("/admin/orders/order/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_index_lists_gigs_and_orders(staff_client):
    page = staff_client.get("/admin/").content.decode()

    for model in [Gig, *HISTORY_MODELS]:
        assert changelist_url(model) in page


@pytest.mark.parametrize("model", [Gig, *HISTORY_MODELS], ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders(staff_client, history, model):
    rows = results(staff_client.get(changelist_url(model)))

    assert rows
    for row in rows:
        response = staff_client.get(f"{changelist_url(model)}{row.pk}/change/")
        assert response.status_code == 200, (model, row.pk)


def test_each_list_shows_what_staff_look_for(staff_client, history):
    offers = staff_client.get(changelist_url(CustomOffer)).content.decode()
    assert f"#{history['done'].number}" in offers
    assert "Declined" in offers
    orders = staff_client.get(changelist_url(Order)).content.decode()
    assert history["done"].number in orders
    assert "In progress" in orders
    calls = staff_client.get(changelist_url(Call)).content.decode()
    assert history["call"].url in calls


# --- search and filters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "term",
    ["{number}", "#{number}", " {lower} ", "Sourdough", "buyer", "seller"],
)
def test_orders_are_found_by_number_title_and_usernames(staff_client, history, term):
    done = history["done"]
    term = term.format(number=done.number, lower=done.number.lower())

    found = results(staff_client.get(changelist_url(Order), {"q": term}))

    assert done in found
    if term != "buyer" and term != "seller":
        assert found == [done]


def test_an_order_search_for_nothing_finds_nothing(staff_client, history):
    assert results(staff_client.get(changelist_url(Order), {"q": "FOZZZZZZZZ"})) == []


def test_orders_are_filtered_by_status(staff_client, history):
    response = staff_client.get(changelist_url(Order))

    completed = staff_client.get(changelist_url(Order) + filter_link(response, "status", "Completed"))
    in_progress = staff_client.get(changelist_url(Order) + filter_link(response, "status", "In progress"))

    assert results(completed) == [history["done"]]
    assert results(in_progress) == [history["open"]]


def test_orders_are_filtered_by_date(staff_client, history):
    Order.objects.filter(pk=history["done"].pk).update(created_at=timezone.now() - timedelta(days=40))
    response = staff_client.get(changelist_url(Order))

    recent = staff_client.get(changelist_url(Order) + filter_link(response, "created at", "Past 7 days"))

    assert results(recent) == [history["open"]]
    assert set(results(response)) == {history["done"], history["open"]}


def test_offers_are_found_by_their_order_number_and_filtered_by_status(staff_client, history):
    done = history["done"]
    assert results(staff_client.get(changelist_url(CustomOffer), {"q": done.number})) == [done.offer]

    response = staff_client.get(changelist_url(CustomOffer))
    pending = staff_client.get(changelist_url(CustomOffer) + filter_link(response, "status", "Pending"))
    declined = staff_client.get(changelist_url(CustomOffer) + filter_link(response, "status", "Declined"))

    assert results(pending) == [history["pending"]]
    assert results(declined) == [history["declined"]]


def test_gigs_reviews_calls_and_requests_are_searchable(staff_client, history):
    done = history["done"]
    assert results(staff_client.get(changelist_url(Gig), {"q": "sourdough"})) == [history["gig"]]
    assert set(results(staff_client.get(changelist_url(Review), {"q": f"#{done.number}"}))) == set(
        done.reviews.all()
    )
    assert results(staff_client.get(changelist_url(BuyerRequest), {"q": "bakery"})) == [history["request"]]
    calls = staff_client.get(changelist_url(Call))
    consultations = staff_client.get(changelist_url(Call) + filter_link(calls, "kind", "Consultation"))
    assert results(consultations) == [history["consultation"]]


# --- an order's history is read-only -------------------------------------------------------


def test_the_order_page_shows_its_timeline_and_reviews_read_only(staff_client, history):
    done = history["done"]

    response = staff_client.get(f"/admin/orders/order/{done.pk}/change/")

    page = response.content.decode()
    for label in ["Order created", "Payment recorded", "Delivered", "Completed", "Review left"]:
        assert label in page
    assert f"Order #{done.number} is complete." in page  # the system message of that event
    assert "Crusty and lovely" in page
    assert 'name="_save"' not in page
    assert 'name="events-0-kind"' not in page
    assert 'name="reviews-0-rating"' not in page
    assert 'name="status"' not in page


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_history_admins_grant_no_add_change_or_delete(staff, model):
    request = staff_request(staff)
    model_admin_ = model_admin(model)

    assert model_admin_.has_view_permission(request)
    assert not model_admin_.has_add_permission(request)
    assert not model_admin_.has_change_permission(request)
    assert not model_admin_.has_delete_permission(request)
    assert "delete_selected" not in model_admin_.get_actions(request)


def test_the_timeline_inline_grants_nothing_either(staff):
    inlines = model_admin(Order).get_inline_instances(staff_request(staff))

    assert {type(inline).__name__ for inline in inlines} == {"OrderEventInline", "ReviewInline"}
    for inline in inlines:
        assert not inline.has_add_permission(staff_request(staff), None)
        assert not inline.has_change_permission(staff_request(staff))
        assert not inline.has_delete_permission(staff_request(staff))


def test_an_order_cannot_be_changed_added_or_deleted_by_a_post(staff_client, history):
    done = history["done"]
    url = f"/admin/orders/order/{done.pk}/"
    events = list(OrderEvent.objects.values_list("pk", "kind"))

    changed = staff_client.post(url + "change/", {"status": "cancelled", "price": "1", "title": "Hacked"})
    added = staff_client.post("/admin/orders/order/add/", {"number": "FOAAAAAAAA"})
    deleted = staff_client.post(url + "delete/", {"post": "yes"})
    bulk = staff_client.post(
        "/admin/orders/order/", {"action": "delete_selected", "_selected_action": [done.pk], "post": "yes"}
    )

    assert (changed.status_code, added.status_code, deleted.status_code) == (403, 403, 403)
    assert bulk.status_code in (200, 302)
    done.refresh_from_db()
    assert (done.status, done.price, done.title) == ("completed", Decimal("120.00"), "Sourdough logo")
    assert Order.objects.count() == 2
    assert list(OrderEvent.objects.values_list("pk", "kind")) == events


@pytest.mark.parametrize("name", ["customoffer", "buyerrequest", "review", "call"])
def test_other_history_cannot_be_changed_or_deleted_by_a_post(staff_client, history, name):
    model = {"customoffer": CustomOffer, "buyerrequest": BuyerRequest, "review": Review, "call": Call}[name]
    row = model.objects.order_by("pk").first()

    assert staff_client.post(f"/admin/orders/{name}/{row.pk}/change/", {"status": "x"}).status_code == 403
    assert staff_client.post(f"/admin/orders/{name}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff_client.post(f"/admin/orders/{name}/add/", {}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


# --- gigs: an admin takes one down ---------------------------------------------------------


def test_an_admin_deactivates_a_gig_from_its_page_and_nothing_else_changes(staff_client, history):
    gig = history["gig"]
    url = f"/admin/orders/gig/{gig.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert 'name="is_active"' in page
    assert 'name="title"' not in page
    assert 'name="price"' not in page

    response = staff_client.post(url, {"title": "Renamed", "price": "1"})  # is_active unticked

    assert response.status_code == 302
    gig.refresh_from_db()
    assert (gig.is_active, gig.title, gig.price) == (False, "Sourdough logo", Decimal("120.00"))
    assert 'name="is_active"' not in staff_client.get(url).content.decode()  # back up: the seller's call


def test_an_admin_deactivates_gigs_in_bulk(staff_client, history, seller):
    other = services.create_gig(seller=seller, title="Menu", description="d", price=50, delivery_days=2)

    response = staff_client.post(
        "/admin/orders/gig/", {"action": "deactivate", "_selected_action": [history["gig"].pk, other.pk]}
    )

    assert response.status_code == 302
    assert not Gig.objects.filter(is_active=True).exists()
    assert Order.objects.filter(gig=history["gig"]).exists()  # orders keep their gig


def test_gigs_are_not_added_or_deleted_in_the_admin(staff_client, history):
    gig = history["gig"]

    assert staff_client.post("/admin/orders/gig/add/", {"title": "x"}).status_code == 403
    assert staff_client.post(f"/admin/orders/gig/{gig.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Gig.objects.filter(pk=gig.pk).exists()


def test_gigs_are_filtered_by_whether_they_are_active(staff_client, history, seller):
    hidden = services.create_gig(seller=seller, title="Old", description="d", price=50, delivery_days=2)
    services.update_gig(seller=seller, gig=hidden, is_active=False)
    response = staff_client.get(changelist_url(Gig))

    inactive = staff_client.get(changelist_url(Gig) + filter_link(response, "is active", "No"))

    assert results(inactive) == [hidden]


# --- buyers and the Top buyer rule ---------------------------------------------------------


def buy(buyer, seller, price) -> Order:
    conversation = get_or_create_conversation(user=buyer, other_user=seller)
    order = services.accept_offer(buyer=buyer, offer=make_offer(seller, conversation, price=price))
    return complete(buyer, seller, order)


@pytest.fixture
def top_buyer_rule(settings):
    settings.TOP_BUYER_MIN_COMPLETED_ORDERS = 2
    settings.TOP_BUYER_MIN_SPEND = 300


@pytest.fixture
def buyers(top_buyer_rule, user_factory, buyer, seller):
    """By username. buyer (Bella): a Top buyer; carl: enough spend, too few orders; dora: one of
    her two orders is too old; seller (Sam) also bought once; ed bought nothing."""
    carl = user_factory("carl", display_name="Carl Cash")
    dora = user_factory("dora", display_name="Dora Old")
    ed = user_factory("ed", display_name="Ed Empty")
    other_seller = user_factory("rival", seller=True, display_name="Rita Rival")
    buy(buyer, seller, 200)
    buy(buyer, seller, 100)
    buy(carl, seller, 5000)
    old = buy(dora, seller, 400)
    buy(dora, seller, 400)
    Order.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=400))
    buy(seller, other_seller, 50)
    return {user.username: user for user in (buyer, carl, dora, ed, seller, other_seller)}


def rows_by_username(response) -> dict:
    return {row.username: (row.completed_orders, row.spent, row.is_top_buyer) for row in results(response)}


def test_buyers_list_completed_orders_spend_and_the_top_buyer_column(staff_client, buyers):
    response = staff_client.get("/admin/orders/buyer/")

    rows = rows_by_username(response)
    assert rows == {
        "buyer": (2, Decimal("300"), True),
        "carl": (1, Decimal("5000"), False),
        "dora": (1, Decimal("400"), False),
        "ed": (0, Decimal("0"), False),
        "seller": (1, Decimal("50"), False),  # a seller who bought something is a buyer too
        "boss": (0, Decimal("0"), False),  # every account with the buyer role is listed
    }
    assert "rival" not in rows  # a seller who never bought
    assert [row.username for row in results(response)][:3] == ["carl", "dora", "buyer"]  # biggest spend first
    page = response.content.decode()
    assert "$5,000.00" in page
    assert page.count('alt="True"') == 1
    for username, (completed, spent, is_top) in rows.items():
        standing = selectors.buyer_standing(
            buyer=buyers.get(username) or Buyer.objects.get(username=username)
        )
        assert (standing.completed_orders, standing.spent, standing.is_top_buyer) == (
            completed,
            spent,
            is_top,
        )


def test_buyers_are_filtered_to_top_buyers_and_searched(staff_client, buyers):
    response = staff_client.get("/admin/orders/buyer/")

    top = staff_client.get("/admin/orders/buyer/" + filter_link(response, "Top buyer", "Top buyers"))
    others = staff_client.get("/admin/orders/buyer/" + filter_link(response, "Top buyer", "Other buyers"))

    assert list(rows_by_username(top)) == ["buyer"]
    assert "buyer" not in rows_by_username(others)
    assert len(rows_by_username(others)) == 5
    assert list(rows_by_username(staff_client.get("/admin/orders/buyer/", {"q": "Cash"}))) == ["carl"]


def test_a_buyer_page_shows_their_standing(staff_client, buyers):
    response = staff_client.get(f"/admin/orders/buyer/{buyers['buyer'].pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "$300.00" in page
    assert 'alt="True"' in page
    assert 'name="username"' not in page


def test_the_buyers_list_costs_the_same_queries_for_3_or_12_buyers(
    staff_client, top_buyer_rule, user_factory, seller
):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as context:
            assert staff_client.get("/admin/orders/buyer/").status_code == 200
        return len(context.captured_queries)

    for n in range(3):
        buy(user_factory(f"few{n}"), seller, 100)
    few = queries_for_list()
    for n in range(9):
        buy(user_factory(f"many{n}"), seller, 100)
    many = queries_for_list()

    assert few == many
