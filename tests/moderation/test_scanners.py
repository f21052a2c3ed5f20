"""The built-in scanners judged as a user would judge them: a contact detail or an invitation to
another app is caught however it is written, and the span the reviewer sees is the leak itself;
prices, dates, reference numbers, versions and code go through untouched.

Each case asks one scanner (or scan() with the configured scanners) for a verdict."""

import uuid

import pytest
import redis
from django.conf import settings as django_settings

from inbox.services import send_message, start_conversation
from moderation.scanners import (
    BLAST_DETAIL,
    BURST_DETAIL,
    EMAIL_DETAIL,
    INVITE_DETAIL,
    LINK_DETAIL,
    LINKS_DETAIL,
    PHONE_DETAIL,
    contact_details,
    off_platform,
    spam,
)
from moderation.scanning import ALLOW, HOLD, REJECT, combine, scan
from tests.moderation.test_rules import age

HOLD_SUFFIX = " A moderator will check it before it is delivered."
BUILT_IN_SCANNERS = [
    "moderation.scanners.contact_details",
    "moderation.scanners.off_platform",
    "moderation.scanners.spam",
]


def judged(scanner, text: str) -> str:
    """The verdict the message would get from this scanner alone."""
    return combine(scanner(text, sender=None, recipient=None)).action


def spans(findings, text: str, *, kind: str | None = None, min_score: float = 0.0) -> list[str]:
    """What each finding points at in the text as written."""
    return [
        text[f.start : f.end] for f in findings if (kind is None or f.kind == kind) and f.score >= min_score
    ]


# --- contact_details: email addresses -----------------------------------------------------------

EMAILS = [
    ("Write to me at john.smith@gmail.com please", "john.smith@gmail.com"),
    ("Grüße aus İzmir! Write to JOHN.SMITH@GMAIL.COM", "JOHN.SMITH@GMAIL.COM"),
    ("Write to me at john dot smith at gmail dot com please", "john dot smith at gmail dot com"),
    ("email me at jenny.designs at gmail dot com", "jenny.designs at gmail dot com"),
    ("Reach me: john(at)gmail(dot)com", "john(at)gmail(dot)com"),
    ("contact: jenny[at]studio[dot]fr", "jenny[at]studio[dot]fr"),
    ("jenny . designs @ gmail . com is best", "jenny . designs @ gmail . com"),
    ("my email: j o h n @ g m a i l . c o m thanks", "j o h n @ g m a i l . c o m"),
    ("🙂 a b c d, then j e n n y @ s t u d i o . f r", "j e n n y @ s t u d i o . f r"),
    ("my address is john_smith at hotmail", "john_smith at hotmail"),
    ("my gmail is john.smith99, write there", "john.smith99"),
]


@pytest.mark.parametrize(("text", "leak"), EMAILS)
def test_an_email_address_is_refused_however_it_is_written(text, leak):
    findings = contact_details(text, sender=None, recipient=None)

    assert spans(findings, text, kind="email") == [leak]
    verdict = combine(findings)
    assert (verdict.action, verdict.reason) == (REJECT, EMAIL_DETAIL)


# --- contact_details: phone numbers -------------------------------------------------------------

PHONES = [
    ("call me on +44 7911 123456", "+44 7911 123456"),  # United Kingdom, international
    ("my number is 07911 123456", "07911 123456"),  # United Kingdom, national
    ("phone (415) 555-2671 anytime", "(415) 555-2671"),  # United States
    ("my number: 415.555.2671", "415.555.2671"),  # United States, dotted
    ("appelle-moi au 06 12 34 56 78", "06 12 34 56 78"),  # France
    ("Paris 0033 6 12 34 56 78", "0033 6 12 34 56 78"),  # France, 00 prefix
    ("Ruf mich an: 0151 23456789", "0151 23456789"),  # Germany
    ("Chiamami al 347 123 4567", "347 123 4567"),  # Italy
    ("India: +91 98765 43210", "+91 98765 43210"),  # India
    ("Lagos office: +234 803 123 4567", "+234 803 123 4567"),  # Nigeria
    ("São Paulo: +55 11 91234-5678", "+55 11 91234-5678"),  # Brazil
    ("my mobile is 0412 345 678", "0412 345 678"),  # Australia
    ("İstanbul ofisi: +90 532 123 45 67", "+90 532 123 45 67"),  # Turkey: any country with its code
    ("call 0 6 1 2 3 4 5 6 7 8 tonight", "0 6 1 2 3 4 5 6 7 8"),  # spaced-out digits
    ("mon numéro est 06.12.34.56.78", "06.12.34.56.78"),  # dotted digits
    (
        "my number is zero six one two three four five six seven eight",
        "zero six one two three four five six seven eight",
    ),
    (
        "call oh seven nine one one double one two three four five six",
        "oh seven nine one one double one two three four five six",
    ),
    (
        "it's zero seven nine one one, one two three, four five six",
        "zero seven nine one one, one two three, four five six",
    ),
    (
        "mi número es seis uno dos, tres cuatro cinco, seis siete ocho",  # Spanish
        "seis uno dos, tres cuatro cinco, seis siete ocho",
    ),
    (
        "mon numéro c'est zéro six un deux trois quatre cinq six sept huit",  # French
        "zéro six un deux trois quatre cinq six sept huit",
    ),
    # Words that end like "id" or "no" are not a reference number's label.
    ("Ask for David: 06 12 34 56 78", "06 12 34 56 78"),
    ("Sono a Milano, 347 123 4567", "347 123 4567"),
]


@pytest.mark.parametrize(("text", "leak"), PHONES)
def test_a_phone_number_is_refused_in_any_common_format(text, leak):
    findings = contact_details(text, sender=None, recipient=None)

    assert spans(findings, text, kind="phone") == [leak]
    verdict = combine(findings)
    assert (verdict.action, verdict.reason) == (REJECT, PHONE_DETAIL)


def test_each_leak_in_a_message_gets_its_own_span():
    text = "number: 0 6 1 2 3 4 5 6 7 8, email j o h n @ g m a i l . c o m"

    findings = contact_details(text, sender=None, recipient=None)

    assert sorted((f.kind, text[f.start : f.end]) for f in findings) == [
        ("email", "j o h n @ g m a i l . c o m"),
        ("phone", "0 6 1 2 3 4 5 6 7 8"),
    ]


NOT_CONTACT_DETAILS = [
    "Use the code 4471 2093 at checkout",
    "The price is $1,250.00 for the full package",
    "Total: €2.499,00 incl. VAT",
    "Total 2 499,00 € incl. VAT",
    "The budget is 1,250,000 INR",
    "I'll deliver in 3 days, 2 revisions, for $150",
    "Delivery on 2024-03-15 or 15/03/2024",
    "Meeting at 10:30 on 12.05.2024",
    "I'll send it on 03/04/2025 at 14:30",
    "Your order #FO7K2Q9XB1 is ready",
    "order no. 123456789",
    "Order 12345678 delivered",
    "Invoice INV-2024-000123 is attached",
    "Invoice 2024-0001234 attached",
    "Tracking number 1Z999AA10123456784",
    "Please use version 10.2.3.4567 of the library",
    "Upgrade from v3.11.4 to v3.12.1",
    "Upgrade Node 18.19.0 to 20.11.1",
    "Add @Override above the method",
    "Use @media (max-width: 600px) in the CSS",
    'Decorate it with @app.route("/login") and return the form',
    "The ISBN 978-0-306-40615-7 is on the back cover",
    "ISBN 9780306406157",
    "ISBN-13 9783161484100",
    "The logo is 500 x 500 px, the banner 1920x1080",
    "I have 25 years of experience and 1200 reviews",
    "Your order number is 123456789",
    "Chrome 119.0.6045.159 shows the bug",
]


@pytest.mark.parametrize("text", NOT_CONTACT_DETAILS)
def test_numbers_and_at_signs_that_are_not_contact_details_are_left_alone(text):
    assert contact_details(text, sender=None, recipient=None) == []


def test_eight_bare_digits_pass_unless_something_says_phone():
    assert judged(contact_details, "lat 29 862774") == ALLOW
    assert judged(contact_details, "call me: 29 862774") == REJECT


# --- off_platform -------------------------------------------------------------------------------

OFF_PLATFORM_LEAKS = [
    ("Quicker here: wa.me/447911123456", "wa.me/447911123456"),
    ("Join https://t.me/jennydesigns for the files", "https://t.me/jennydesigns"),
    ("join discord.gg/abc123 for updates", "discord.gg/abc123"),
    ("I'm on telegram @jenny_designs", "telegram @jenny_designs"),
    ("skype: jenny.designs", "skype: jenny.designs"),
    ("add me, discord jenny#1234", "discord jenny#1234"),
    ("follow me on insta @jenny.designs", "@jenny.designs"),
]


@pytest.mark.parametrize(("text", "leak"), OFF_PLATFORM_LEAKS)
def test_links_and_handles_for_other_apps_are_refused(text, leak):
    findings = off_platform(text, sender=None, recipient=None)

    assert leak in spans(findings, text, min_score=django_settings.MODERATION_REJECT_SCORE)
    verdict = combine(findings)
    assert (verdict.action, verdict.reason) == (REJECT, LINK_DETAIL)


INVITATIONS = [
    ("whatsapp me", "whatsapp me"),
    ("Whatsapp me when you're free", "Whatsapp me"),
    ("let's move this to telegram", "let's move this to telegram"),
    ("can we continue on whatsapp?", "can we continue on whatsapp"),
    ("Just send me an email", "send me an email"),
]


@pytest.mark.parametrize(("text", "leak"), INVITATIONS)
def test_an_invitation_to_move_elsewhere_is_held_not_refused(text, leak):
    findings = off_platform(text, sender=None, recipient=None)

    assert spans(findings, text) == [leak]
    verdict = combine(findings)
    assert (verdict.action, verdict.reason) == (HOLD, INVITE_DETAIL + HOLD_SUFFIX)


ORDINARY_MENTIONS = [
    "I use Telegram a lot",
    "Skype is down today",
    "I need a WhatsApp clone for my shop",
    "I can build a Discord bot for you",
    "Send me the files here please",
    "Follow the brief, and message me here if anything is unclear",
]


@pytest.mark.parametrize("text", ORDINARY_MENTIONS)
def test_naming_an_app_in_passing_is_allowed(text):
    assert judged(off_platform, text) == ALLOW


def test_an_at_handle_is_refused_with_social_context_and_allowed_bare():
    assert judged(off_platform, "follow me on insta @jenny_designs") == REJECT
    assert judged(off_platform, "@Override") == ALLOW


CODE_WITH_AT_SIGNS = [
    "@Override",
    "You forgot the @Override annotation on toString()",
    "Use @media (max-width: 600px) in the CSS",
    'Decorate it with @app.route("/login") and return the form',
    "Add @Override above the method",
    "The fix was adding @Transactional on the service method.",
]


@pytest.mark.parametrize("text", CODE_WITH_AT_SIGNS)
def test_code_with_at_signs_goes_through(text):
    findings = contact_details(text, sender=None, recipient=None) + off_platform(
        text, sender=None, recipient=None
    )
    assert combine(findings).action == ALLOW


# --- spam ---------------------------------------------------------------------------------------


@pytest.fixture
def counters(settings):
    """The spam scanner's counters in the configured cache (the real Redis when REDIS_URL is
    set), under a key prefix of this test's own, deleted afterwards: ids repeat across runs."""
    configured = dict(settings.CACHES["default"])
    prefix = f"test{uuid.uuid4().hex[:10]}"
    settings.CACHES = {"default": {**configured, "KEY_PREFIX": prefix}}
    yield
    if configured["BACKEND"].endswith("RedisCache"):
        client = redis.Redis.from_url(configured["LOCATION"])
        touched = list(client.scan_iter(f"{prefix}:*"))
        if touched:
            client.delete(*touched)


@pytest.fixture
def clients(user_factory):
    """Five buyers, each with their own name."""
    names = ["Anna Berg", "Bruno Costa", "Chloe Dubois", "Dmitri Ivanov", "Emeka Obi"]
    return [user_factory(name.split()[0].lower(), display_name=name) for name in names]


@pytest.fixture
def old_seller(user_factory):
    """An account of a month: the new-account burst rule does not apply to it."""
    return age(user_factory("oldhand", seller=True), days=30)


def spam_kinds(text, *, sender, recipient) -> list[str]:
    return [f.kind for f in spam(text, sender=sender, recipient=recipient)]


BLAST = "Hi {name}, I design professional logos in 24 hours. Reply today to get a 50% discount!"


@pytest.mark.parametrize(
    "greeting",
    [
        pytest.param(lambda user: user.username.title(), id="username"),
        pytest.param(lambda user: user.profile.display_name, id="display-name"),
    ],
)
@pytest.mark.django_db
def test_the_same_text_to_more_people_than_allowed_is_held_at_the_next_one(
    settings, counters, old_seller, clients, greeting
):
    settings.MODERATION_BLAST_RECIPIENTS = 3

    first_three = [
        spam_kinds(BLAST.format(name=greeting(client)), sender=old_seller, recipient=client)
        for client in clients[:3]
    ]
    fourth = spam(BLAST.format(name=greeting(clients[3])), sender=old_seller, recipient=clients[3])

    assert first_three == [[], [], []]
    assert [f.kind for f in fourth] == ["duplicate_blast"]
    verdict = combine(fourth)
    assert (verdict.action, verdict.reason) == (HOLD, BLAST_DETAIL + HOLD_SUFFIX)
    # Another text to someone new is not part of the blast.
    other = "Thanks for the order, Emeka! The first drafts of your logo will be ready on Friday."
    assert spam_kinds(other, sender=old_seller, recipient=clients[4]) == []


@pytest.mark.django_db
def test_the_same_text_to_the_same_person_again_and_again_is_not_a_blast(
    settings, counters, old_seller, clients
):
    settings.MODERATION_BLAST_RECIPIENTS = 2
    reminder = "Hi Anna, just a reminder that your order needs the brief before I can start on it."

    kinds = [spam_kinds(reminder, sender=old_seller, recipient=clients[0]) for _ in range(6)]

    assert kinds == [[]] * 6


@pytest.mark.django_db
def test_a_message_with_many_links_is_held(settings, counters, old_seller, clients):
    settings.MODERATION_MAX_LINKS = 3
    two = "Drafts: https://example.com/logo-a and www.example.org/logo-b"
    three = two + ", older ones at portfolio.io/logos"

    assert spam_kinds(two, sender=old_seller, recipient=clients[0]) == []
    verdict = combine(spam(three, sender=old_seller, recipient=clients[0]))
    assert [f.kind for f in verdict.findings] == ["links"]
    assert (verdict.action, verdict.reason) == (HOLD, LINKS_DETAIL + HOLD_SUFFIX)


@pytest.mark.django_db
def test_a_new_accounts_burst_is_held_while_an_old_accounts_is_not(
    settings, counters, user_factory, old_seller, clients
):
    settings.MODERATION_NEW_ACCOUNT_BURST = 3
    settings.MODERATION_NEW_ACCOUNT_DAYS = 3
    newcomer = user_factory("newcomer", seller=True)
    burst = ["Hello!", "Are you there?", "I can help", "Cheap logos", "Reply please"]

    new_kinds = [
        spam_kinds(text, sender=newcomer, recipient=c) for text, c in zip(burst, clients, strict=True)
    ]
    old_kinds = [
        spam_kinds(text, sender=old_seller, recipient=c) for text, c in zip(burst, clients, strict=True)
    ]

    assert new_kinds == [[], [], [], ["new_account_burst"], ["new_account_burst"]]
    assert old_kinds == [[]] * 5
    verdict = combine(spam(burst[0], sender=newcomer, recipient=clients[0]))
    assert (verdict.action, verdict.reason) == (HOLD, BURST_DETAIL + HOLD_SUFFIX)


@pytest.mark.django_db
def test_a_new_account_chatting_with_someone_who_answers_is_not_a_burst(settings, counters, user_factory):
    settings.MODERATION_NEW_ACCOUNT_BURST = 3
    newcomer = user_factory("newcomer")
    seller = user_factory("quickseller", seller=True)
    conversation, _message, _created = start_conversation(
        sender=newcomer, recipient_username="quickseller", body="Hi, is the logo gig open?"
    )
    send_message(sender=seller, conversation=conversation, body="Yes! Tell me about your brand.")

    kinds = [spam_kinds(f"Detail number {i}", sender=newcomer, recipient=seller) for i in range(6)]

    assert kinds == [[]] * 6


# --- scan(): the configured scanners together ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action", "reason", "leak"),
    [
        (
            "Sure! Email me at sam.seller@gmail.com and I'll send the files",
            REJECT,
            EMAIL_DETAIL,
            "sam.seller@gmail.com",
        ),
        ("Call me on +44 7911 123456 tonight", REJECT, PHONE_DETAIL, "+44 7911 123456"),
        ("Whatsapp me when you're free, it's quicker", HOLD, INVITE_DETAIL + HOLD_SUFFIX, "Whatsapp me"),
        ("Thanks! I'll deliver the logo by Friday, 3 revisions included for $150.", ALLOW, "", None),
    ],
    ids=["email", "phone", "invitation", "ordinary"],
)
@pytest.mark.django_db
def test_scan_with_the_configured_scanners(settings, counters, buyer, seller, text, action, reason, leak):
    assert settings.MODERATION_SCANNERS == BUILT_IN_SCANNERS  # the default configuration

    verdict = scan(text, sender=seller, recipient=buyer)

    assert (verdict.action, verdict.reason) == (action, reason)
    if leak is None:
        assert verdict.findings == []
    else:
        top = verdict.findings[0]
        assert text[top.start : top.end] == leak
