"""Who may do what: every HTTP route and websocket action, for every role.

The roles: the buyer and the seller of one conversation (with its messages, files, offer,
orders, call), a non-participant (a verified seller with no part in any of it, so seller-only
checks do not hide the object lookup), staff (a superuser), and anonymous.

ROWS is the matrix: (method, route, which roles may succeed, body, setup). A route is the
OpenAPI path of an API operation ("/api/v1/…/{conversation_id}") or the Django URL pattern of a
page ("inbox/<int:conversation_id>/send/"); parameters are filled from the world below.
For each role the test asserts what that role observes:
- a role in `ok` succeeds (2xx, or a redirect that is not to the login page);
- anonymous gets 401 from the API and a redirect to the login page from pages;
- a non-participant gets 404 for an object they have no part in, so ids are not confirmed; a
  refusal that comes before any lookup (seller tools answer non-sellers 403 not_a_seller) is
  accepted only if it is exactly the answer for an id that names nothing;
- staff are members like any other in the member API and the pages (they moderate in the
  admin: docs/ARCHITECTURE.md "Moderation"), so they get the non-participant's 404; the one
  exception by design is a sent file, which admins may download ("Attachments: Access");
- anyone else is refused with a 4xx, never a 2xx or a 5xx;
- no response carries text that only other people may read (SHARED, BUYER_ONLY, SELLER_ONLY).

test_every_route_is_in_the_matrix fails when a route or an API operation has no row; the
websocket's frames are WS_FRAMES, checked against the consumer's own list.
Each role's rows run in one test: the world is built once, and each request runs in a savepoint
that is rolled back, so every row starts from the same state.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from attachments import services as attachment_services
from inbox import services as inbox_services
from inbox.consumers import CLOSE_UNAUTHENTICATED
from inbox.models import Message
from inbox.routing import websocket_urlpatterns
from marketplace.accounts.services import issue_api_token
from marketplace.api import api
from marketplace.asgi import application
from notifications.models import Kind
from notifications.services import notify
from orders import services as orders
from tests.factories import buyer_opens_conversation, make_completed_order
from tests.moderation.support import HELD_TEXT, TEST_SCANNERS

# Text only some roles may read; a response to anyone else must not contain it.
SHARED = "zq-shared-7c1e"  # the conversation, its messages, offer, orders: buyer and seller
BUYER_ONLY = "zq-buyer-4b9d"  # the buyer's label, draft and notification
SELLER_ONLY = "zq-seller-2a6f"  # the seller's quick response
MAY_READ = {
    "buyer": {SHARED, BUYER_ONLY},
    "seller": {SHARED, SELLER_ONLY},
    "stranger": set(),
    "staff": set(),
    "anon": set(),
}
ROLES = ("buyer", "seller", "stranger", "staff", "anon")
MEMBERS = frozenset({"buyer", "seller", "stranger", "staff"})  # every logged-in role
SELLERS = frozenset({"seller", "stranger"})  # the seller profiles
ALL = frozenset(ROLES)


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    ok: frozenset  # the roles that may succeed
    body: object = None  # a dict, or world -> dict
    setup: object = None  # world -> None, run as the seller/buyer would before the request
    params: dict = field(default_factory=dict)  # route parameter -> world key (beyond PARAMS)
    query: str = ""
    probe_ok: bool = True  # False: the allowed roles are not requested (see the row's comment)
    staff_reads: bool = False  # the admin: staff read everything

    @property
    def is_api(self) -> bool:
        return self.route.startswith("/api/")

    @property
    def key(self):
        return (self.method, self.route) if self.is_api else self.route


def R(method, route, ok, **kwargs) -> Row:
    return Row(method, route, frozenset(ok), **kwargs)


BUYER, SELLER, BOTH = {"buyer"}, {"seller"}, {"buyer", "seller"}

# The world's objects, by attribute (what the Ghost replaces with ids that name nothing).
OBJECTS = {
    "conversation",
    "buyer_message",
    "seller_message",
    "others_message",
    "attachment",
    "upload",
    "fresh_upload",
    "multipart",
    "offer",
    "call",
    "notification",
    "label",
    "quick_response",
    "gig",
    "held_message",
}

# Route parameter -> the world's object it names (rows override with `params`).
PARAMS = {
    "conversation_id": "conversation",
    "message_id": "buyer_message",
    "attachment_id": "attachment",
    "offer_id": "offer",
    "number": "order",
    "call_id": "call",
    "notification_id": "notification",
    "label_id": "label",
    "quick_response_id": "quick_response",
    "gig_id": "gig",
    "username": "other",
    "object_id": "held_message",
}


def _upload_part(w):
    """The buyer's multipart upload gets its one part, as the browser would send it."""
    urls = attachment_services.sign_parts(user=w.users["buyer"], attachment_id=w.multipart, part_numbers=[1])
    token = urls[1].rstrip("/").rsplit("/", 1)[-1]
    w.etag = attachment_services.receive_part(token=token, size=len(PART), chunks=iter([PART]))


def _fresh_upload(w):
    w.fresh_upload = attachment_services.upload_stream(
        user=w.users["buyer"],
        conversation=w.conversation_row,
        name="spare.txt",
        size=len(PART),
        chunks=iter([PART]),
    ).pk


def _deliver(w):
    orders.deliver_order(seller=w.users["seller"], order=w.order_row, message="Done")


def _consultation_body(w):
    starts = timezone.now() + timedelta(days=2)
    return {"kind": "consultation", "starts_at": starts.isoformat(), "duration_minutes": 30}


PART = b"plain words for a text file\n"
API = "/api/v1"

ROWS = [
    # --- accounts and tokens (the token itself: POST /auth/token is public, see PUBLIC) -------
    R("DELETE", f"{API}/auth/token", MEMBERS),
    R("GET", f"{API}/me", MEMBERS),
    R("PATCH", f"{API}/me", MEMBERS, body={"enter_sends": False}),
    R("POST", "accounts/verify/resend/", MEMBERS),
    R("GET", "accounts/profile/", MEMBERS),
    # --- conversations: the list and filing are each user's own --------------------------------
    R("GET", f"{API}/conversations", MEMBERS),
    R(
        "POST",
        f"{API}/conversations",
        MEMBERS,  # anyone verified may write to someone else (moderation.rules decides the rest)
        body=lambda w: {"recipient": w.someone_else, "body": "Hello there"},
    ),
    R("GET", f"{API}/conversations/counts", MEMBERS),
    R(
        "POST",
        f"{API}/conversations/actions",
        BOTH,
        body=lambda w: {"action": "archive", "conversation_ids": [w.conversation]},
    ),
    R(
        "POST",
        f"{API}/conversations/actions",
        BUYER,
        body=lambda w: {"action": "add_label", "conversation_ids": [w.conversation], "label_id": w.label},
    ),
    R("GET", f"{API}/conversations/{{conversation_id}}", BOTH),
    R("GET", f"{API}/conversations/{{conversation_id}}/panel", BOTH),
    R("GET", f"{API}/conversations/{{conversation_id}}/messages", BOTH),
    R("POST", f"{API}/conversations/{{conversation_id}}/messages", BOTH, body={"body": "More words"}),
    R("PUT", f"{API}/conversations/{{conversation_id}}/draft", BOTH, body={"text": "half a thought"}),
    R("POST", f"{API}/conversations/{{conversation_id}}/read", BOTH),
    R("POST", f"{API}/conversations/{{conversation_id}}/typing", BOTH),
    R("POST", f"{API}/conversations/{{conversation_id}}/reports", BOTH, body={"reason": "spam"}),
    R(
        "POST",
        f"{API}/conversations/{{conversation_id}}/reports",
        BOTH,
        body=lambda w: {"reason": "inappropriate", "message_id": w.others_message},
    ),
    # --- messages: the sender edits and deletes, the recipient translates ----------------------
    R("PATCH", f"{API}/messages/{{message_id}}", BUYER, body={"body": "Edited words"}),
    R("DELETE", f"{API}/messages/{{message_id}}", BUYER),
    # Translating loads a language model (~2 s) and needs a backend: the recipient's success is
    # tested in tests/inbox/test_translation.py; here only the refusals.
    R(
        "POST",
        f"{API}/messages/{{message_id}}/translation",
        BUYER,
        params={"message_id": "seller_message"},
        probe_ok=False,
    ),
    R("GET", f"{API}/events", MEMBERS),
    R("GET", f"{API}/search", MEMBERS, query="q=Brief"),
    # --- labels and blocks ---------------------------------------------------------------------
    R("GET", f"{API}/labels", MEMBERS),
    R("POST", f"{API}/labels", MEMBERS, body={"name": "Later"}),
    R("PATCH", f"{API}/labels/{{label_id}}", BUYER, body={"name": "Renamed"}),
    R("DELETE", f"{API}/labels/{{label_id}}", BUYER),
    R("POST", f"{API}/blocks", BOTH, body=lambda w: {"username": w.other}),
    R("DELETE", f"{API}/blocks/{{username}}", BOTH),
    # --- attachments ---------------------------------------------------------------------------
    R("PUT", f"{API}/conversations/{{conversation_id}}/attachments", BOTH, query="name=notes.txt"),
    R(
        "POST",
        f"{API}/conversations/{{conversation_id}}/uploads",
        BOTH,
        body={"name": "big.txt", "size": 10, "content_type": "text/plain"},
    ),
    R(
        "POST",
        f"{API}/uploads/{{attachment_id}}/parts",
        BUYER,
        params={"attachment_id": "multipart"},
        body={"part_numbers": [1]},
    ),
    R(
        "POST",
        f"{API}/uploads/{{attachment_id}}/complete",
        BUYER,
        params={"attachment_id": "multipart"},
        setup=_upload_part,
        body=lambda w: {"parts": [{"part_number": 1, "etag": w.etag}]},
    ),
    # Aborting deletes the file at once (not rolled back with the row): a fresh upload of its own.
    R(
        "DELETE",
        f"{API}/uploads/{{attachment_id}}",
        BUYER,
        params={"attachment_id": "fresh_upload"},
        setup=_fresh_upload,
    ),
    # An upload not sent yet is its uploader's alone.
    R("GET", f"{API}/attachments/{{attachment_id}}", BUYER, params={"attachment_id": "upload"}),
    # A sent file: both participants, and admins (docs/ARCHITECTURE.md, "Attachments: Access").
    R("GET", f"{API}/attachments/{{attachment_id}}", {"buyer", "seller", "staff"}),
    R("GET", f"{API}/attachments/{{attachment_id}}/download", {"buyer", "seller", "staff"}),
    # No thumbnail for a text file: the participants' 404 says so; the others' must be 404 too.
    R("GET", f"{API}/attachments/{{attachment_id}}/thumbnail", set()),
    R("GET", "files/<int:attachment_id>/", {"buyer", "seller", "staff"}),
    R("GET", "files/<int:attachment_id>/", BUYER, params={"attachment_id": "upload"}),
    # --- gigs, requests, offers, orders, calls -------------------------------------------------
    R("GET", f"{API}/gigs", MEMBERS),
    R(
        "POST",
        f"{API}/gigs",
        SELLERS,
        body={"title": "Logos", "description": "I draw logos", "price": "40", "delivery_days": 3},
    ),
    R("GET", f"{API}/gigs/{{gig_id}}", MEMBERS),
    R("PATCH", f"{API}/gigs/{{gig_id}}", SELLER, body={"title": "Better logos"}),
    R(
        "POST",
        f"{API}/requests",
        {"buyer", "stranger", "staff"},  # anyone but that seller (sellers buy too)
        body=lambda w: {
            "seller": w.users["seller"].username,
            "description": "A banner",
            "budget": "60",
            "deadline": (timezone.localdate() + timedelta(days=20)).isoformat(),
        },
    ),
    R(
        "POST",
        f"{API}/conversations/{{conversation_id}}/offers",
        SELLER,
        body={"description": "Two logos", "price": "80", "delivery_days": 4},
    ),
    R("POST", f"{API}/offers/{{offer_id}}/accept", BUYER),
    R("POST", f"{API}/offers/{{offer_id}}/decline", BUYER),
    R("POST", f"{API}/offers/{{offer_id}}/withdraw", SELLER),
    R("GET", f"{API}/orders", MEMBERS),
    R("GET", f"{API}/orders/{{number}}", BOTH),
    R("POST", f"{API}/orders/{{number}}/requirements", BUYER, body={"requirements": "Blue, please"}),
    R("POST", f"{API}/orders/{{number}}/deliver", SELLER, body={"message": "Here it is"}),
    R("POST", f"{API}/orders/{{number}}/revision", BUYER, setup=_deliver, body={"reason": "Bigger"}),
    R("POST", f"{API}/orders/{{number}}/complete", BUYER, setup=_deliver),
    R("POST", f"{API}/orders/{{number}}/cancel", BOTH, body={"reason": "Plans changed"}),
    R(
        "POST",
        f"{API}/orders/{{number}}/reviews",
        BOTH,
        params={"number": "completed_order"},
        body={"rating": 5, "text": "Great"},
    ),
    R("POST", f"{API}/conversations/{{conversation_id}}/calls", SELLER, body={"kind": "call"}),
    R("POST", f"{API}/conversations/{{conversation_id}}/calls", SELLER, body=_consultation_body),
    R("POST", f"{API}/calls/{{call_id}}/book", BUYER),
    # --- notifications: the recipient's own ----------------------------------------------------
    R("GET", f"{API}/notifications", MEMBERS),
    R("POST", f"{API}/notifications/read-all", MEMBERS),
    R("POST", f"{API}/notifications/{{notification_id}}/read", BUYER),
    R("GET", f"{API}/notifications/preferences", MEMBERS),
    R("PATCH", f"{API}/notifications/preferences", MEMBERS, body={"new_message": {"email": False}}),
    R(
        "POST",
        f"{API}/push-subscriptions",
        MEMBERS,
        body={"endpoint": "https://push.example.com/x", "keys": {"p256dh": "k", "auth": "a"}},
    ),
    R("DELETE", f"{API}/push-subscriptions", MEMBERS, query="endpoint=https://push.example.com/x"),
    # --- seller tools: sellers only (buyers and staff: 403 not_a_seller) -----------------------
    R("GET", f"{API}/seller/dashboard", SELLERS),
    R("GET", f"{API}/seller/availability", SELLERS),
    R(
        "PUT",
        f"{API}/seller/availability",
        SELLERS,
        body=lambda w: {
            "starts_on": (timezone.localdate() + timedelta(days=30)).isoformat(),
            "ends_on": (timezone.localdate() + timedelta(days=31)).isoformat(),
        },
    ),
    R("DELETE", f"{API}/seller/availability", SELLERS),
    R("GET", f"{API}/seller/auto-reply", SELLERS),
    R("PUT", f"{API}/seller/auto-reply", SELLERS, body={"body": "Back soon", "enabled": True}),
    R("GET", f"{API}/seller/quick-responses", SELLERS),
    # Filled for a conversation: only for one of the seller's own.
    R("GET", f"{API}/seller/quick-responses", SELLER, query="conversation_id={conversation}"),
    R("POST", f"{API}/seller/quick-responses", SELLERS, body={"title": "Thanks", "body": "Thank you!"}),
    R("PATCH", f"{API}/seller/quick-responses/{{quick_response_id}}", SELLER, body={"title": "Ta"}),
    R("DELETE", f"{API}/seller/quick-responses/{{quick_response_id}}", SELLER),
    # === pages ==================================================================================
    R("GET", "inbox/", MEMBERS),
    R("GET", "inbox/new/", MEMBERS, query="to={someone_else}"),
    R(
        "POST",
        "inbox/new/",
        MEMBERS,
        body=lambda w: {"to": w.someone_else, "body": "Hello from the page"},
    ),
    R("GET", "inbox/conversations/", MEMBERS),
    R("GET", "inbox/search/", MEMBERS, query="q=Brief"),
    R("GET", "inbox/<int:conversation_id>/", BOTH),
    R("GET", "inbox/<int:conversation_id>/messages/", BOTH),
    R("POST", "inbox/<int:conversation_id>/send/", BOTH, body={"body": "From the composer"}),
    R("POST", "inbox/<int:conversation_id>/read/", BOTH),
    R("POST", "inbox/<int:conversation_id>/typing/", BOTH),
    R(
        "POST",
        "inbox/actions/",
        BOTH,
        body=lambda w: {"action": "star", "conversation_ids": [w.conversation]},
    ),
    R("POST", "inbox/<int:conversation_id>/block/", BOTH),
    R("POST", "inbox/<int:conversation_id>/unblock/", BOTH),
    R("GET", "inbox/<int:conversation_id>/report/", BOTH),
    R("POST", "inbox/<int:conversation_id>/report/", BOTH, body={"reason": "spam", "note": "junk"}),
    R("POST", "inbox/<int:conversation_id>/draft/", BOTH, body={"text": "unsent"}),
    R("GET", "inbox/<int:conversation_id>/orders/", BOTH),
    R("POST", "inbox/preferences/", MEMBERS, body={"enter_sends": "0"}),
    R("GET", "inbox/labels/", MEMBERS),
    R("POST", "inbox/labels/", MEMBERS, body={"name": "Soon"}),
    R("POST", "inbox/labels/<int:label_id>/", BUYER, body={"name": "Renamed"}),
    R("POST", "inbox/labels/<int:label_id>/delete/", BUYER),
    R("GET", "inbox/messages/<int:message_id>/", BOTH),
    R("POST", "inbox/messages/<int:message_id>/edit/", BUYER, body={"body": "Edited on the page"}),
    R("POST", "inbox/messages/<int:message_id>/delete/", BUYER),
    R(
        "POST",
        "inbox/messages/<int:message_id>/translate/",
        BUYER,
        params={"message_id": "seller_message"},
        probe_ok=False,
    ),  # see the API row
    R("GET", "notifications/", MEMBERS),
    R("GET", "notifications/bell/", MEMBERS),
    R("POST", "notifications/<int:notification_id>/open/", BUYER),
    R("POST", "notifications/<int:notification_id>/read/", BUYER),
    R("POST", "notifications/read-all/", MEMBERS),
    R("GET", "notifications/settings/", MEMBERS),
    R("POST", "notifications/settings/", MEMBERS, body={}),
    R(
        "POST",
        "notifications/push/subscribe/",
        MEMBERS,
        body={"endpoint": "https://push.example.com/y", "p256dh": "k", "auth": "a"},
    ),
    R("POST", "notifications/push/unsubscribe/", MEMBERS, body={"endpoint": "https://push.example.com/y"}),
    R("GET", "seller/", SELLERS),
    R("GET", "seller/availability/", SELLERS),
    R(
        "POST",
        "seller/availability/",
        SELLERS,
        body=lambda w: {
            "starts_on": (timezone.localdate() + timedelta(days=30)).isoformat(),
            "ends_on": (timezone.localdate() + timedelta(days=31)).isoformat(),
            "message": "",
        },
    ),
    R("POST", "seller/availability/end/", SELLERS),
    R("GET", "seller/auto-reply/", SELLERS),
    R("POST", "seller/auto-reply/", SELLERS, body={"body": "Back soon", "enabled": "on"}),
    R("GET", "seller/quick-responses/", SELLERS),
    R("POST", "seller/quick-responses/", SELLERS, body={"title": "Hi", "body": "Hello!"}),
    R("GET", "seller/quick-responses/<int:quick_response_id>/", SELLER),
    R("POST", "seller/quick-responses/<int:quick_response_id>/", SELLER, body={"title": "Yo", "body": "Hey"}),
    R("POST", "seller/quick-responses/<int:quick_response_id>/delete/", SELLER),
    R("GET", "", ALL),
    R("GET", "gigs/<int:gig_id>/", ALL),
    R(
        "POST",
        "gigs/<int:gig_id>/",
        {"buyer", "stranger", "staff"},
        body=lambda w: {
            "description": "A poster",
            "budget": "60",
            "deadline": (timezone.localdate() + timedelta(days=20)).isoformat(),
        },
    ),
    R("GET", "u/<str:username>/", ALL, params={"username": "seller_name"}),
    R(
        "POST",
        "u/<str:username>/",
        {"buyer", "stranger", "staff"},
        params={"username": "seller_name"},
        body=lambda w: {
            "description": "A flyer",
            "budget": "60",
            "deadline": (timezone.localdate() + timedelta(days=20)).isoformat(),
        },
    ),
    R("GET", "gigs/mine/", MEMBERS),
    R("GET", "gigs/new/", MEMBERS),  # a buyer is told how to become a seller; POST is refused
    R(
        "POST",
        "gigs/new/",
        SELLERS,
        body={
            "title": "Icons",
            "description": "I draw icons",
            "price": "30",
            "delivery_days": "2",
            "revisions": "1",
        },
    ),
    R("GET", "gigs/<int:gig_id>/edit/", SELLER),
    R(
        "POST",
        "gigs/<int:gig_id>/edit/",
        SELLER,
        body={
            "title": "Logos+",
            "description": "I draw logos",
            "price": "45",
            "delivery_days": "3",
            "revisions": "1",
        },
    ),
    R("POST", "gigs/<int:gig_id>/active/", SELLER, body={"is_active": "0"}),
    R(
        "POST",
        "conversations/<int:conversation_id>/offers/",
        SELLER,
        body={"description": "Three logos", "price": "90", "delivery_days": "5", "expires_in_days": "7"},
    ),
    R("POST", "conversations/<int:conversation_id>/calls/", SELLER),
    R(
        "POST",
        "conversations/<int:conversation_id>/consultations/",
        SELLER,
        body=lambda w: {
            "starts_at": (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "duration_minutes": "30",
        },
    ),
    R("POST", "offers/<int:offer_id>/accept/", BUYER),
    R("POST", "offers/<int:offer_id>/decline/", BUYER),
    R("POST", "offers/<int:offer_id>/withdraw/", SELLER),
    R("POST", "calls/<int:call_id>/book/", BUYER),
    R("GET", "orders/", MEMBERS),
    R("GET", "orders/<str:number>/", BOTH),
    R("GET", "orders/<str:number>/panel/", BOTH),
    R("GET", "orders/<str:number>/messages/", BOTH),
    R("POST", "orders/<str:number>/send/", BOTH, body={"body": "About the order"}),
    R("POST", "orders/<str:number>/requirements/", BUYER, body={"requirements": "Red"}),
    R("POST", "orders/<str:number>/deliver/", SELLER, body={"message": "Delivered"}),
    R("POST", "orders/<str:number>/revision/", BUYER, setup=_deliver, body={"reason": "Smaller"}),
    R("POST", "orders/<str:number>/complete/", BUYER, setup=_deliver),
    R("POST", "orders/<str:number>/cancel/", BOTH, body={"reason": "No longer needed"}),
    R(
        "POST",
        "orders/<str:number>/review/",
        BOTH,
        params={"number": "completed_order"},
        body={"rating": "4", "text": "Fine"},
    ),
    # --- moderation: the admin's review queue (staff only; anyone else goes to the admin login) -
    R("GET", "admin/moderation/heldmessage/", {"staff"}, staff_reads=True),
    R("GET", "admin/moderation/heldmessage/<path:object_id>/change/", {"staff"}, staff_reads=True),
    R("POST", "admin/moderation/heldmessage/<path:object_id>/approve/", {"staff"}, staff_reads=True),
    R(
        "POST",
        "admin/moderation/heldmessage/<path:object_id>/reject/",
        {"staff"},
        staff_reads=True,
        body={"reason": "Not here"},
    ),
    R("GET", "admin/moderation/report/", {"staff"}, staff_reads=True),
    R("GET", "admin/moderation/restriction/add/", {"staff"}, staff_reads=True),
]

# Routes anyone may call, and why they need no row.
PUBLIC = {
    ("POST", f"{API}/auth/token"),  # log in: exchanges a password for a token
    "api/v1/openapi.json",  # the API's description
    "api/v1/docs",
    "api/v1/",  # ninja's root
    "healthz",  # the load balancer's probe: no data
    "accounts/login/",
    "accounts/logout/",  # logging out only ends one's own session
    "accounts/signup/",
    "accounts/verify/<str:token>/",  # the signed token is the credential
    "notifications/sw.js",  # the service worker script
    "notifications/unsubscribe/<str:token>/",  # the signed token names the user and the kind
    "files/parts/<str:token>/",  # a signed, expiring part URL (like a bucket's presigned one)
}
# The Django admin: every view is wrapped by admin_site.admin_view (is_staff), and its own tests
# (tests/test_admin.py, tests/moderation/test_admin.py) cover it; the moderation views are rows.
ADMIN_PREFIX = "admin/"


# --- the world -----------------------------------------------------------------------------


class World:
    """One conversation between the buyer and the seller with one of everything in it."""

    def __init__(self, users):
        self.users = users
        buyer, seller = users["buyer"], users["seller"]
        conversation = buyer_opens_conversation(buyer, seller, body=f"Hello {SHARED}")
        self.conversation_row, self.conversation = conversation, conversation.pk
        self.completed_order = make_completed_order(buyer, seller).number
        offer = orders.create_offer(
            seller=seller,
            conversation=conversation,
            description=f"Logo {SHARED}",
            price=50,
            delivery_days=3,
            revisions=2,
        )
        self.order_row = orders.accept_offer(buyer=buyer, offer=offer)
        self.order = self.order_row.number
        self.offer = orders.create_offer(
            seller=seller, conversation=conversation, description=f"Site {SHARED}", price=90, delivery_days=5
        ).pk
        self.seller_message = inbox_services.send_message(
            sender=seller, conversation=conversation, body=f"Sure {SHARED}"
        )[0].pk
        attachment = attachment_services.upload_stream(
            user=buyer, conversation=conversation, name="brief.txt", size=len(PART), chunks=iter([PART])
        )
        message, _ = inbox_services.send_message(
            sender=buyer, conversation=conversation, body=f"Brief {SHARED}", attachment_ids=[attachment.pk]
        )
        self.buyer_message, self.attachment = message.pk, attachment.pk
        self.upload = attachment_services.upload_stream(
            user=buyer, conversation=conversation, name="draft.txt", size=len(PART), chunks=iter([PART])
        ).pk
        self.multipart = attachment_services.start_upload(
            user=buyer, conversation=conversation, name="big.txt", size=len(PART)
        ).attachment.pk
        self.call = orders.offer_consultation(
            seller=seller,
            conversation=conversation,
            starts_at=timezone.now() + timedelta(days=3),
            duration_minutes=30,
        ).pk
        self.notification = notify(
            recipient=buyer,
            kind=Kind.ORDER_UPDATED,
            title=f"Update {BUYER_ONLY}",
            url="/orders/",
            dedupe_key=f"matrix:{uuid.uuid4()}",
        ).pk
        self.label = inbox_services.create_label(user=buyer, name=f"L {BUYER_ONLY}"[:30]).pk
        inbox_services.save_draft(user=buyer, conversation=conversation, text=f"Draft {BUYER_ONLY}")
        self.quick_response = inbox_services.create_quick_response(
            user=seller, title="Welcome", body=f"Welcome {SELLER_ONLY}"
        ).pk
        self.gig = orders.create_gig(
            seller=seller, title="Logos", description="I draw logos", price=40, delivery_days=3
        ).pk
        held, _ = inbox_services.send_message(sender=buyer, conversation=conversation, body=HELD_TEXT)
        assert held.status == Message.Status.HELD, held.status
        self.held_message = held.pk
        self.seller_name = seller.username
        self.etag = ""
        self.role = ""

    @property
    def someone_else(self) -> str:
        """Whom the acting role writes to: the seller, or (for the seller) the buyer."""
        return self.users["buyer" if self.role == "seller" else "seller"].username

    @property
    def others_message(self) -> int:
        return self.buyer_message if self.role == "seller" else self.seller_message

    @property
    def other(self) -> str:
        """The other person of the conversation for the role acting now (for the blocks)."""
        return self.users["seller" if self.role == "buyer" else "buyer"].username


def fill(route: str, row: Row, world) -> str:
    names = {**PARAMS, **row.params}
    if row.is_api:
        path = re.sub(r"\{(\w+)\}", lambda m: str(getattr(world, names[m.group(1)])), route)
    else:
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(getattr(world, names[m.group(1)])), route)
    return path


@pytest.fixture
def world(user_factory, staff, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MODERATION_SCANNERS = TEST_SCANNERS  # a phone number is held: the review queue has one
    settings.MESSAGE_RATE_PER_MINUTE = 10_000
    users = {
        "buyer": user_factory("mbuyer", display_name="Mia Buyer"),
        "seller": user_factory("mseller", seller=True, display_name="Max Seller"),
        "stranger": user_factory("mstranger", seller=True, display_name="Nina Nobody"),
        "staff": staff,
    }
    return World(users)


def credentials(world: World, role: str) -> dict:
    """What each role's requests carry: a bearer token for the API, a session for pages."""
    if role == "anon":
        return {"api": {}, "cookies": ""}
    user = world.users[role]
    _token, raw = issue_api_token(user=user)
    browser = Client()
    browser.force_login(user)
    return {
        "api": {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
        "cookies": browser.cookies.output(header="", sep=";"),
    }


def request(row: Row, world: World, role: str, creds: dict):
    world.role = role
    path = fill(row.route, row, world)
    if not row.is_api and not path.startswith("/admin/"):
        # The page's route really is the row's (a typo would test another page).
        assert resolve(path).route == row.route, (path, resolve(path).route)
    query = row.query.format_map(_Attributes(world)) if row.query else ""
    url = f"{path}?{query}" if query else path
    body = row.body(world) if callable(row.body) else row.body
    client = Client(raise_request_exception=False)
    if creds["cookies"]:
        client.cookies = SimpleCookie(creds["cookies"])
    if row.is_api:
        headers = creds["api"]
        if row.route.endswith("/attachments") and row.method == "PUT":
            return client.put(url, PART, content_type="text/plain", **headers)
        if row.method == "GET":
            return client.get(url, **headers)
        payload = body if body is not None else {}
        return client.generic(
            row.method,
            url,
            data=json.dumps(payload) if row.method != "DELETE" or body else "",
            content_type="application/json",
            **headers,
        )
    # Pages: the page's script asks for JSON, so a refusal is a 4xx, not a redirect and a message.
    if row.method == "GET":
        return client.get(url)
    return client.post(url, body or {}, HTTP_ACCEPT="application/json")


def check(row: Row, role: str, response, ghost=None) -> str | None:
    """What is wrong with `response` for `role`, or None."""
    status = response.status_code
    location = response.get("Location", "")
    if status >= 500:
        return f"{status} (a 5xx is a bug)"
    text = _text(response)
    if not (row.staff_reads and role == "staff"):
        leaked = [m for m in (SHARED, BUYER_ONLY, SELLER_ONLY) if m not in MAY_READ[role] and m in text]
        if leaked:
            return f"{status} and the answer carries {leaked}"
    admin = row.route.startswith(ADMIN_PREFIX)
    if role in row.ok:
        if 200 <= status < 300 or (status == 302 and "/login/" not in location):
            return None
        return f"{status}, expected success: {text[:300]}"
    if role == "anon":
        if row.is_api:
            return None if status == 401 else f"{status}, expected 401"
        login = "/admin/login/" if admin else settings.LOGIN_URL
        return (
            None if status == 302 and location.startswith(login) else f"{status} {location}, expected login"
        )
    if admin:  # logged in without is_staff: the admin's own login page
        return None if status == 302 and "/admin/login/" in location else f"{status} {location}"
    if 200 <= status < 400:
        return f"{status}: an unauthorised success"
    hidden = role in ("stranger", "staff") and _names_an_object(row)
    if hidden and status != 404:
        if ghost is not None and (ghost.status_code, _sameish(_text(ghost))) == (status, _sameish(text)):
            # Refused before the object is looked up (seller tools answer buyers 403
            # not_a_seller, whatever the id): the same answer as for an id that does not exist.
            return None
        return f"{status}, expected 404 for an object this user has no part in: {text[:200]}"
    return None


def _text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace")


def _sameish(text: str) -> str:
    """The page without what differs on every request (CSRF tokens, script nonces)."""
    return re.sub(r"[A-Za-z0-9_+/=-]{20,}", "", text)


class _Attributes(dict):
    def __init__(self, obj):
        self.obj = obj

    def __missing__(self, key):
        return getattr(self.obj, key)


class Ghost:
    """The world with every object's id replaced by one that names nothing."""

    MISSING = {"order": "ZZZZZZZZZZ", "completed_order": "ZZZZZZZZZZ", "other": "nobody-at-all"}

    def __init__(self, world: World):
        self.world = world

    def __getattr__(self, name):
        if name in self.MISSING:
            return self.MISSING[name]
        if name in OBJECTS:
            return 2**62
        return getattr(self.world, name)


def _names_an_object(row: Row) -> bool:
    """The route (or its query) names another user's object (not the caller's own things)."""
    names = {**PARAMS, **row.params}
    params = re.findall(r"\{(\w+)\}|<(?:\w+:)?(\w+)>", row.route)
    named = [a or b for a, b in params]
    objects = [n for n in named if names[n] not in ("seller_name",)]
    return bool(objects) or "conversation_id=" in row.query


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_says(world, role):
    creds = credentials(world, role)
    failures = []
    for row in ROWS:
        if role in row.ok and not row.probe_ok:
            continue
        with transaction.atomic():
            if row.setup:
                row.setup(world)
            response = request(row, world, role, creds)
            problem = check(row, role, response)
            if problem and role in ("stranger", "staff") and response.status_code not in (404, 401):
                # Was it refused whatever the id? Ask again about objects that do not exist.
                problem = check(row, role, response, ghost=request(row, Ghost(world), role, creds))
            transaction.set_rollback(True)
        if problem:
            failures.append(f"{row.method} {row.route} {row.query}: {problem}")
    assert not failures, f"{role}:\n" + "\n".join(failures)


# --- every route has a row ---------------------------------------------------------------------


def _page_routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _page_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _api_operations():
    paths = api.get_openapi_schema()["paths"]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


def test_every_route_is_in_the_matrix():
    covered = {row.key for row in ROWS} | PUBLIC
    operations = _api_operations()
    api_routes = {route for route in _page_routes() if route.startswith(API.lstrip("/"))}
    pages = {
        route for route in _page_routes() if route not in api_routes and not route.startswith(ADMIN_PREFIX)
    }
    # Every URL the API mounts is an operation (or public); every operation has a row.
    operation_paths = {path for _method, path in operations}
    unlisted = {r for r in api_routes if "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r) not in operation_paths}
    missing = sorted((pages | unlisted) - covered) + sorted(f"{m} {p}" for m, p in operations - covered)
    assert not missing, "routes without a row in ROWS (or an entry in PUBLIC):\n" + "\n".join(missing)
    # And no row names a route that is gone.
    known = pages | operations | {r for r in _page_routes() if r.startswith(ADMIN_PREFIX)}
    stale = [row.key for row in ROWS if row.key not in known]
    assert not stale, stale
    # The one websocket route is test_websocket_actions_and_frames_per_role's.
    assert [str(p.pattern) for p in websocket_urlpatterns] == ["ws/events/"]


# --- the websocket: /ws/events/ and its frames -----------------------------------------------

# Each frame a client may send, and what every logged-in role gets back. Presence is public by
# design (profile and gig pages show who is online to anyone), so any user may watch anyone.
WS_FRAMES = {
    "ping": ({"type": "ping"}, "pong"),
    "presence.watch": ({"type": "presence.watch", "user_ids": None}, "presence"),  # ids filled in
}
WS_ORIGIN = (b"origin", b"http://testserver")


def _session_cookie(user) -> tuple[bytes, bytes]:
    browser = Client()
    browser.force_login(user)
    return (
        b"cookie",
        f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}".encode(),
    )


def _notify(user, title: str):
    with transaction.atomic():  # as the services do: inside the writing transaction
        return notify(
            recipient=user,
            kind=Kind.ORDER_UPDATED,
            title=title,
            url="/orders/",
            dedupe_key=f"t:{uuid.uuid4()}",
        )


async def _frames_until_quiet(ws, quiet: float = 0.5) -> list[dict]:
    frames = []
    while not await ws.receive_nothing(timeout=quiet):
        frames.append(await ws.receive_json_from(timeout=5))
    return frames


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_channel_layer", "close_sync_thread_connections")
async def test_websocket_actions_and_frames_per_role(buyer, seller, stranger, staff):
    """Anonymous is closed with 4401; everyone else gets their own hello and answers to their
    frames; and the participants' activity reaches the participants' sockets only."""
    anonymous = WebsocketCommunicator(application, "/ws/events/", headers=[WS_ORIGIN])
    accepted, _ = await anonymous.connect(timeout=5)
    assert accepted
    assert await anonymous.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
        "reason": "authentication required",
    }

    users = {"buyer": buyer, "seller": seller, "stranger": stranger, "staff": staff}
    sockets = {}
    try:
        for role, user in users.items():
            ws = WebsocketCommunicator(
                application, "/ws/events/", headers=[WS_ORIGIN, await sync_to_async(_session_cookie)(user)]
            )
            accepted, _ = await ws.connect(timeout=5)
            assert accepted, role
            hello = await ws.receive_json_from(timeout=5)
            assert (hello["type"], hello["user"]) == ("hello", user.username), role
            sockets[role] = ws
        # Every frame type the consumer knows is in WS_FRAMES (its error names them).
        await sockets["stranger"].send_json_to({"type": "no.such.frame"})
        error = await sockets["stranger"].receive_json_from(timeout=5)
        known = error["detail"].removeprefix("Known frame types: ").rstrip(".").split(", ")
        assert sorted(known) == sorted(WS_FRAMES), error
        for role, ws in sockets.items():
            for frame_type, (frame, answer) in WS_FRAMES.items():
                if frame_type == "presence.watch":
                    frame = {**frame, "user_ids": [buyer.pk]}
                await ws.send_json_to(frame)
                reply = await ws.receive_json_from(timeout=5)
                assert reply["type"] == answer, (role, reply)

        # The participants talk, file and get notified.
        conversation = await sync_to_async(buyer_opens_conversation)(buyer, seller, body=f"Hi {SHARED}")
        await sync_to_async(inbox_services.announce_typing)(user=seller, conversation=conversation)
        await sync_to_async(inbox_services.send_message)(
            sender=seller, conversation=conversation, body=f"Yes {SHARED}"
        )
        await sync_to_async(inbox_services.mark_read)(user=buyer, conversation=conversation)
        await sync_to_async(inbox_services.create_label)(user=buyer, name=f"L {BUYER_ONLY}"[:30])
        await sync_to_async(_notify)(buyer, f"Update {BUYER_ONLY}")

        received = {role: await _frames_until_quiet(ws) for role, ws in sockets.items()}
        types = {role: {frame["type"] for frame in frames} for role, frames in received.items()}
        # The pushes work (so the silence below means something) ...
        assert {"message.created", "typing", "labels.updated", "notification.created"} <= types["buyer"]
        assert {"message.created", "conversation.read"} <= types["seller"]
        # ... and carry nothing to anyone else: at most who is online.
        for role, frames in received.items():
            text = json.dumps(frames)
            leaked = [m for m in (SHARED, BUYER_ONLY, SELLER_ONLY) if m not in MAY_READ[role] and m in text]
            assert not leaked, (role, leaked, frames)
            if role in ("stranger", "staff"):
                assert types[role] <= {"presence"}, (role, frames)
                assert all(f.get("conversation_id") is None for f in frames), (role, frames)
    finally:
        for ws in sockets.values():
            await ws.disconnect(timeout=5)
