"""Stored XSS: every string of the Big List of Naughty Strings (tests/fixtures/blns.json) is
stored through the services as message bodies, file names, labels, display names and offers,
then the pages that show them are rendered in Chromium. No script may run and no page may fail.

Detection (with the CSP bypassed, so that the escaping itself is what is tested): an init
script replaces alert/confirm/prompt with recorders before any page script
runs (the list's payloads call alert(...)), page dialogs are recorded too, and the strings must
show as literal text.
"""

import contextlib
import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from marketplace.errors import DomainError
from tests.e2e.conftest import launch_browser  # noqa: F401 (the browser fixture of tests/e2e)
from tests.e2e.support import log_in, open_page
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.needs_browser, pytest.mark.needs_redis, pytest.mark.django_db(transaction=True)]

BLNS = json.loads((Path(__file__).parent.parent / "fixtures" / "blns.json").read_text(encoding="utf-8"))

CANARY = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (...args) => { window.__xss.push(name + ":" + args.map(String).join(",")); };
}
"""

# Strings that try to inject markup or script: the ones that go where space is short.
MARKUP = [s for s in BLNS if re.search(r"<|javascript:|on\w+\s*=|\balert\b", s, re.IGNORECASE)]
# Shown literally somewhere on the pages (spot checks of escaping).
LITERALS = ["<script>alert(123)</script>", "<img src=x onerror=alert(123) />", "&lt;script&gt;"]


def _display_name(text: str) -> str:
    return text.strip()[:80] or "blank"


# Sending through the services costs ~0.25 s a message here (moderation scans every text), so
# a sample goes through them and the rest of the list is stored as the same rows directly.
THROUGH_SERVICES = 12
LABELS = 25


def _bulk_store_bodies(conversation, sender, other, texts) -> int:
    """The rows send_message would leave for visible text messages, written in one go."""
    from django.utils import timezone

    from inbox.models import Membership, Message

    rows = Message.objects.bulk_create(
        [
            Message(
                conversation=conversation,
                sender=sender if index % 2 else other,
                body=text,
                client_id=uuid.uuid4(),
            )
            for index, text in enumerate(texts)
        ]
    )
    conversation.last_message, conversation.last_message_at = rows[-1], timezone.now()
    conversation.save(update_fields=["last_message", "last_message_at"])
    Membership.objects.filter(conversation=conversation).update(last_message_at=conversation.last_message_at)
    return len(rows)


def _bulk_store_files(conversation, uploader, texts, *, per_message: int) -> int:
    """Attachment rows for every name the upload service accepts, carried by messages."""
    from attachments.models import Attachment
    from attachments.services import clean_name, storage_key
    from inbox.models import Message

    names = []
    for text in texts:
        with contextlib.suppress(DomainError):  # control characters, paths: refused as uploads are
            names.append(clean_name(text))
    for start in range(0, len(names), per_message):
        message = Message.objects.create(
            conversation=conversation, sender=uploader, body="", client_id=uuid.uuid4()
        )
        Attachment.objects.bulk_create(
            [
                Attachment(
                    uploader=uploader,
                    conversation=conversation,
                    message=message,
                    name=name,
                    key=storage_key(name),
                    size=5,
                    content_type="text/plain",
                    status=Attachment.Status.READY,
                )
                for name in names[start : start + per_message]
            ]
        )
    return len(names)


@pytest.fixture
def naughty_world(user_factory, settings, tmp_path, redis_channel_layer):
    """The buyer and seller's conversation carries every BLNS string as a message body and as a
    file name; labels, offers and display names carry the ones that inject markup."""
    from attachments.services import upload_stream
    from inbox import services as inbox
    from marketplace.accounts.models import Profile
    from marketplace.accounts.services import grant_staff, update_profile
    from orders.services import create_offer
    from tests.factories import buyer_opens_conversation, make_conversations

    settings.MEDIA_ROOT = str(tmp_path)
    buyer = user_factory("xbuyer", display_name=_display_name(MARKUP[0]))
    seller = user_factory("xseller", seller=True, display_name=_display_name(MARKUP[1]))
    staff = user_factory("xstaff", display_name=_display_name(MARKUP[2]))
    grant_staff(user=staff)
    conversation = buyer_opens_conversation(buyer, seller, body=LITERALS[0])
    stored = {"bodies": 0, "files": 0, "labels": 0, "names": 0, "offers": 0}

    sample = MARKUP[:THROUGH_SERVICES]
    for index, text in enumerate(sample):
        try:
            inbox.send_message(sender=buyer if index % 2 else seller, conversation=conversation, body=text)
            stored["bodies"] += 1
        except DomainError:
            pass  # refused by moderation
    stored["bodies"] += _bulk_store_bodies(
        conversation, buyer, seller, [text for text in BLNS if text.strip() and text not in sample]
    )

    uploaded = []
    for text in sample:
        data = b"naughty"
        with contextlib.suppress(DomainError):
            uploaded.append(
                upload_stream(user=buyer, conversation=conversation, name=text, size=len(data), chunks=[data])
            )
    inbox.send_message(
        sender=buyer, conversation=conversation, body="", attachment_ids=[f.pk for f in uploaded[:10]]
    )
    stored["files"] = len(uploaded) + _bulk_store_files(
        conversation,
        buyer,
        [text for text in BLNS if text not in sample],
        per_message=settings.ATTACHMENTS_PER_MESSAGE,
    )

    labels = []
    for text in [*MARKUP, *BLNS]:
        if len(labels) == LABELS:
            break
        with contextlib.suppress(DomainError):  # blank, or the same name twice
            labels.append(inbox.create_label(user=buyer, name=" ".join(text.split())[:40]))
    for label in labels:
        inbox.file_conversations(
            user=buyer, conversation_ids=[conversation.pk], action="add_label", label=label
        )
    stored["labels"] = len(labels)

    # Other people with naughty names, in both inboxes' lists.
    make_conversations(buyer, 20)
    make_conversations(seller, 20, start=20)
    others = Profile.objects.filter(user__username__startswith="bulk").select_related("user")
    for profile, text in zip(others.order_by("user_id"), MARKUP[3:43], strict=True):
        update_profile(
            user=profile.user,
            display_name=_display_name(text),
            timezone_name="UTC",
            languages=["English"],
            role=Profile.Role.SELLER,
        )
        stored["names"] += 1

    for text in MARKUP[:6]:
        try:
            create_offer(
                seller=seller,
                conversation=conversation,
                title=text[:120],
                description=text,
                price=25,
                delivery_days=2,
            )
            stored["offers"] += 1
        except DomainError:
            pass
    message = conversation.messages.filter(body=LITERALS[0]).first()
    return {
        "buyer": buyer,
        "seller": seller,
        "staff": staff,
        "conversation": conversation,
        "message": message,
        "stored": stored,
    }


def _open(browser, base_url, failures: list):
    """A person's page that records script executions (the canary, dialogs) and server errors of
    everything it loads. The Content-Security-Policy is bypassed: it would block inline
    payloads, and this test is about the escaping under it (CSP: tests/security/test_csp.py)."""
    page = open_page(browser, base_url, bypass_csp=True)
    page.context.add_init_script(CANARY)
    page.on("dialog", lambda dialog: (failures.append(f"dialog {dialog.message}"), dialog.dismiss()))
    page.on(
        "response",
        lambda response: (
            failures.append(f"{response.status} {response.url}") if response.status >= 500 else None
        ),
    )
    return page


def _visit(page, path: str, failures: list, *, timeout: int | None = None) -> None:
    response = page.goto(path, timeout=timeout)
    assert response is not None and response.status == 200, f"{path}: {response and response.status}"
    page.wait_for_load_state("load")
    fired = page.evaluate("window.__xss")
    failures.extend(f"{path}: {call}" for call in fired)


def test_naughty_strings_render_as_text_everywhere(
    naughty_world,
    daphne_servers,
    redis_url,
    redis_channel_layer,
    launch_browser,  # noqa: F811
):
    world = naughty_world
    stored = world["stored"]
    # Enough of the list went in for the pages to mean something.
    assert stored["bodies"] >= 470, stored
    assert stored["files"] >= 200, stored  # names with control characters or paths are refused
    assert stored["labels"] == LABELS, stored
    assert stored["names"] == 40 and stored["offers"] >= 3, stored
    conversation = world["conversation"].pk

    base_url = daphne_servers.start(redis_url=redis_url, redis_prefix=redis_channel_layer)
    browser = launch_browser()
    failures: list[str] = []

    buyer = _open(browser, base_url, failures)
    log_in(buyer, world["buyer"].username)
    _visit(buyer, "/inbox/", failures)
    expect(buyer.locator("body")).to_contain_text(MARKUP[4].strip()[:30])
    _visit(buyer, f"/inbox/{conversation}/", failures)
    # Every earlier page of the thread, through the page's own "Load earlier" (htmx swaps it in).
    earlier = buyer.locator("#thread li.load-earlier button")
    for _ in range(20):
        if not earlier.count():
            break
        with buyer.expect_response(lambda response: "?before=" in response.url) as loaded:
            earlier.first.click()
        assert loaded.value.status == 200
        expect(buyer.locator("#thread .htmx-request")).to_have_count(0)
    thread = buyer.locator("#thread").inner_text()
    files_shown = buyer.locator("#thread .attachment-name").count()
    failures.extend(f"thread: {call}" for call in buyer.evaluate("window.__xss"))
    _visit(buyer, "/inbox/labels/", failures)
    _visit(buyer, "/notifications/", failures)

    seller = _open(browser, base_url, failures)
    log_in(seller, world["seller"].username)
    _visit(seller, "/inbox/", failures)
    _visit(seller, f"/inbox/{conversation}/", failures)
    _visit(seller, "/notifications/", failures)

    staff = _open(browser, base_url, failures)
    staff.goto("/admin/login/")
    staff.get_by_label("Username").fill(world["staff"].username)
    staff.get_by_label("Password").fill(TEST_PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    _visit(staff, "/admin/inbox/message/", failures)
    _visit(staff, f"/admin/inbox/message/{world['message'].pk}/change/", failures)
    expect(staff.locator("body")).to_contain_text(LITERALS[0])
    _visit(staff, "/admin/inbox/conversation/", failures)
    # Every body of the thread, in the messages inline (unpaginated: several seconds for ~700).
    _visit(staff, f"/admin/inbox/conversation/{conversation}/change/", failures, timeout=30_000)
    _visit(staff, "/admin/accounts/user/", failures)
    _visit(staff, f"/admin/accounts/user/{world['buyer'].pk}/change/", failures)
    _visit(staff, "/admin/inbox/label/", failures)

    assert failures == [], failures
    for literal in LITERALS:
        assert literal in thread, literal
    assert files_shown >= stored["files"]
    for page in (buyer, seller, staff):
        assert page.js_errors == [], page.js_errors
