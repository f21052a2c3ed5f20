"""Demo buyers, sellers, gigs, conversations, offers and orders, so a newcomer's first page is
alive.

Idempotent: users and gigs are created only when missing, and every demo message has a fixed
client_id, so a second run sends nothing twice.
"""

import json
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inbox import bulk_seed
from inbox.selectors import quick_responses_of
from inbox.services import create_quick_response, get_or_create_conversation, save_auto_reply, send_message
from marketplace.accounts.models import Profile, User
from marketplace.accounts.selectors import local_today, planned_away
from marketplace.accounts.services import create_user, grant_staff, set_away, update_profile
from orders.selectors import gigs_of_seller, has_offer_from, has_request_from, seller_has_gig
from orders.services import (
    accept_offer,
    complete_order,
    create_gig,
    create_offer,
    deliver_order,
    leave_review,
    send_request,
    submit_requirements,
)

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 -- demo accounts, printed for the newcomer
SEED_NAMESPACE = uuid.UUID("8c1c5a52-52f4-4c43-9f0e-5b0c6c1f9a11")

PEOPLE = [
    (
        "carla",
        "Carla Mendes",
        Profile.Role.SELLER,
        "America/Sao_Paulo",
        ["Portuguese", "English"],
        "Brand identities and logos that last",
    ),
    (
        "devon",
        "Devon Okafor",
        Profile.Role.SELLER,
        "Africa/Lagos",
        ["English", "Yoruba"],
        "Full-stack web developer, Django and React",
    ),
    (
        "mai",
        "Mai Tanaka",
        Profile.Role.SELLER,
        "Asia/Tokyo",
        ["Japanese", "English"],
        "Japanese ⇄ English translation and localisation",
    ),
    (
        "alice",
        "Alice Martin",
        Profile.Role.BUYER,
        "Europe/Paris",
        ["French", "English"],
        "Runs a small bakery",
    ),
    ("ben", "Ben Cohen", Profile.Role.BUYER, "America/New_York", ["English"], "Founder of a podcast network"),
]

GIGS = [
    (
        "carla",
        "I will design a modern minimalist logo",
        120,
        4,
        3,
        "Three initial concepts, unlimited colour tweaks, vector files and a one-page brand sheet.",
    ),
    (
        "carla",
        "I will create your full brand identity kit",
        450,
        10,
        2,
        "Logo, palette, typography, business card and social media templates.",
    ),
    (
        "devon",
        "I will build your Django web application",
        800,
        14,
        2,
        "From data model to deployment: a clean Django app with tests and documentation.",
    ),
    (
        "devon",
        "I will fix bugs in your Python or JavaScript code",
        60,
        2,
        1,
        "Send me the error and the repository; I find the cause and fix it with a test.",
    ),
    (
        "mai",
        "I will translate English to Japanese, natively",
        40,
        3,
        1,
        "Natural Japanese for websites, apps and marketing, up to 1,000 words.",
    ),
]

CONVERSATIONS = [
    (
        "alice",
        "carla",
        [
            (
                "alice",
                "Hi Carla! I'm opening a bakery in Lyon and need a logo. Do you work with food brands?",
            ),
            (
                "carla",
                "Hi Alice, yes, I love food brands. What should the logo feel like: rustic, modern, playful?",
            ),
            ("alice", "Warm and a little rustic. We bake sourdough with a wood-fired oven."),
            ("carla", "Lovely. I can send three concepts in four days. Do you have colours in mind?"),
            ("carla", "Here is what I'd suggest: terracotta, cream and a deep green."),
        ],
    ),
    (
        "alice",
        "devon",
        [
            ("alice", "Hello Devon, could you add online pre-orders to my bakery's website?"),
            ("devon", "Hi Alice! Sure. Which platform is the site built on?"),
        ],
    ),
    (
        "ben",
        "carla",
        [
            ("ben", "Hey Carla, I need cover art for a new podcast series. Is that something you do?"),
            # Held by the off-platform scanner: it waits in the admin's review queue.
            ("ben", "It would be quicker to talk it through: can you WhatsApp me tonight?"),
        ],
    ),
    (
        "ben",
        "mai",
        [
            ("ben", "Hi Mai, we want Japanese subtitles for three episodes (about 9,000 words in total)."),
            ("mai", "Hello Ben, happy to help. Could you share one transcript so I can estimate the time?"),
            ("ben", "Sent! Thanks."),
        ],
    ),
]


QUICK_RESPONSES = [
    ("Thanks, starting now", "Thanks {buyer_first_name}! I have everything I need and I am starting now."),
    ("Need the brief", "Hi {buyer_first_name}, could you send me the brief: colours, examples, deadline?"),
    ("Delivery on its way", "Order {order_number} is almost ready: you will have it by tomorrow."),
]


class Command(BaseCommand):
    help = (
        "Load demo users, gigs and conversations (safe to run again). With --messages N: instead, "
        "a large generated dataset of N messages for benchmarks (replacing the previous one)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--messages",
            type=int,
            help="Bulk-load this many generated messages (inbox.bulk_seed) instead of the demo data",
        )
        parser.add_argument(
            "--clear-generated", action="store_true", help="Remove the generated dataset and stop"
        )

    def handle(self, *args, **options):
        if options["clear_generated"]:
            removed = bulk_seed.clear_bulk_dataset()
            self.stdout.write(f"Removed {removed} generated users and everything theirs.")
            return
        if options["messages"] is not None:
            self._bulk(options["messages"])
            return
        users = {username: self._person(username, *rest) for username, *rest in PEOPLE}
        self._admin()
        for seller, title, price, days, revisions, description in GIGS:
            if not seller_has_gig(seller=users[seller], title=title):
                create_gig(
                    seller=users[seller],
                    title=title,
                    description=description,
                    price=price,
                    delivery_days=days,
                    revisions=revisions,
                )
        for first, second, lines in CONVERSATIONS:
            conversation = get_or_create_conversation(user=users[first], other_user=users[second])
            for index, (sender, body) in enumerate(lines):
                client_id = uuid.uuid5(SEED_NAMESPACE, f"{first}-{second}-{index}")
                send_message(sender=users[sender], conversation=conversation, body=body, client_id=client_id)
        self._deals(users)
        self._seller_tools(users)

        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in at /accounts/login/ with:"))
        for username, display_name, role, *_rest in PEOPLE:
            self.stdout.write(f"  {username:<8} / {DEMO_PASSWORD}   ({role}, {display_name})")
        self.stdout.write(f"  {'admin':<8} / {DEMO_PASSWORD}   (staff: /admin/; a message awaits review)")

    def _bulk(self, messages):
        try:
            report = bulk_seed.seed_messages(messages)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {report.messages} messages in {report.conversations} conversations between "
                f"{report.users} generated users in {report.seconds} s (deep conversation: "
                f"{report.deep_messages} messages between {bulk_seed.BUSY_SELLER} and "
                f"{bulk_seed.LIGHT_BUYER})."
            )
        )
        self.stdout.write(f"phases: {json.dumps(report.phases)}")

    def _deals(self, users):
        """An order in progress, a pending offer, a completed and reviewed order, a request."""
        alice, ben, carla, devon, mai = (users[name] for name in ("alice", "ben", "carla", "devon", "mai"))
        if not has_offer_from(seller=carla, buyer=alice):
            logo = gigs_of_seller(seller=carla)[-1]
            offer = create_offer(
                seller=carla,
                conversation=get_or_create_conversation(user=carla, other_user=alice),
                gig=logo,
                description="Three logo concepts for the bakery (terracotta, cream, green), vector files.",
                expires_in_days=5,
            )
            order = accept_offer(buyer=alice, offer=offer)
            submit_requirements(
                buyer=alice,
                order=order,
                requirements="Name: Le Fournil de Lyon. Rustic, warm, wood-fired oven.",
            )
        if not has_offer_from(seller=devon, buyer=alice):
            create_offer(
                seller=devon,
                conversation=get_or_create_conversation(user=devon, other_user=alice),
                title="Online pre-orders for your bakery site",
                description="A pre-order page with pick-up times and email confirmations.",
                price=380,
                delivery_days=10,
                revisions=2,
            )
        if not has_offer_from(seller=mai, buyer=ben):
            offer = create_offer(
                seller=mai,
                conversation=get_or_create_conversation(user=mai, other_user=ben),
                title="Japanese subtitles, episode 1",
                description="Subtitles for the first episode (about 3,000 words).",
                price=120,
                delivery_days=4,
                revisions=1,
            )
            order = accept_offer(buyer=ben, offer=offer)
            deliver_order(
                seller=mai, order=order, message="Here are the subtitles (SRT), timed to the final cut."
            )
            complete_order(buyer=ben, order=order)
            leave_review(author=ben, order=order, rating=5, text="Fast, natural and perfectly timed.")
            leave_review(author=mai, order=order, rating=5, text="Clear brief, quick answers. A pleasure.")
        if not has_request_from(buyer=ben, seller=carla):
            send_request(
                buyer=ben,
                seller=carla,
                description="Cover art for a 6-episode podcast series, one style, six variations.",
                budget=300,
                deadline=timezone.localdate() + timedelta(days=14),
            )

    def _seller_tools(self, users):
        """Carla greets first messages and keeps quick responses; Devon is away this week."""
        carla, devon = users["carla"], users["devon"]
        save_auto_reply(
            user=carla,
            body="Hi {buyer_first_name}, thanks for your message! I usually answer within a few hours.",
            enabled=True,
        )
        saved_titles = {q.title for q in quick_responses_of(user=carla)}
        for title, body in QUICK_RESPONSES:
            if title not in saved_titles:
                create_quick_response(user=carla, title=title, body=body)
        if not planned_away(user=devon):
            today = local_today(devon)
            set_away(
                user=devon,
                starts_on=today,
                ends_on=today + timedelta(days=4),
                message="At a conference this week. Leave a message and I will answer when I am back.",
            )

    def _person(self, username, display_name, role, timezone_name, languages, headline):
        user = User.objects.filter(username=username).first()
        if user is None:
            user = create_user(
                username=username,
                password=DEMO_PASSWORD,
                email=f"{username}@example.com",
                display_name=display_name,
                role=role,
                verified=True,
                check_password_strength=False,
            )
            update_profile(
                user=user,
                display_name=display_name,
                timezone_name=timezone_name,
                languages=languages,
                role=role,
                headline=headline,
            )
        return user

    def _admin(self):
        if not User.objects.filter(username="admin").exists():
            admin = create_user(
                username="admin",
                password=DEMO_PASSWORD,
                email="admin@example.com",
                display_name="Site admin",
                verified=True,
                check_password_strength=False,
            )
            grant_staff(user=admin)
