"""A large synthetic inbox for benchmarks and load tests (`seed_demo --messages N`).

N messages in about N/100 conversations between generated buyers and sellers, loaded with
PostgreSQL COPY in one transaction. The data is what the services would have produced:
messages are visible text from one of the two participants, ids grow with created_at, each
conversation's last message and each membership's unread count and last read message agree
with the messages (writing means having read: inbox.services.messaging._deliver), and most
people read their conversations afterwards. Bodies are sentences of common words; a few
messages carry RARE_TOKENS, for search.

Who is who, so that a benchmark can find them (every generated user is `seed_...`):
- seed_seller0 has BUSY_SELLER_SHARE of the conversations (at least 50 when N >= 10,000);
- seed_buyer0 has exactly 10 conversations (needs N >= 1,000);
- their conversation is the deep one: DEEP_SHARE of all messages.

Loading again replaces the previous generated dataset (clear_bulk_dataset).
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from marketplace.accounts.models import Profile, User

from .models import Conversation, Membership, Message

USERNAME_PREFIX = "seed_"
EMAIL_DOMAIN = "seed.invalid"
BUSY_SELLER = "seed_seller0"
LIGHT_BUYER = "seed_buyer0"
LIGHT_BUYER_CONVERSATIONS = 10
DEEP_SHARE = 0.12  # of all messages, in the conversation of BUSY_SELLER and LIGHT_BUYER
MESSAGES_PER_CONVERSATION = 100
RARE_TOKENS = ("zephyrquartz", "marzipanorbit", "quokkaledger")
# Every generated message's client_id starts with this: how clearing tells them from messages
# sent later into the generated conversations (through the services, with their own effects).
CLIENT_ID_PREFIX = "5eed5eed-"
HISTORY_SPAN = timedelta(days=365)
READ_EVERYTHING = 0.6  # share of memberships whose user read the conversation to its end

_WORDS_TEXT = """
    hi hello thanks thank you the a an and or but so if when then because for with about of
    to in on at from by your my our their this that these those it is are was were be been
    will would can could should may might must have has had do does did not no yes please
    sure great perfect lovely fine okay ok logo design brand colour color palette font
    typography draft concept version revision revisions file files vector png pdf source
    order offer price budget deadline delivery deliver delivered days week weeks tomorrow
    today tonight morning evening monday friday weekend website site page app code bug fix
    fixed test tests deploy server database api django react python javascript translation
    translate english japanese french spanish german subtitle subtitles episode podcast cover
    art illustration photo photos image images video edit editing audio voice mix master
    requirements brief example examples reference references idea ideas feedback changes
    change small big quick simple modern minimal rustic playful warm bold clean elegant
    classic bakery shop store restaurant coffee menu card cards flyer poster banner social
    media post posts instagram facebook linkedin newsletter email emails copy text words
    article blog story script slides presentation deck report data chart spreadsheet excel
    invoice payment paid refund extra gig package basic standard premium include included
    available busy start started starting finish finished ready review check look looks
    send sent share shared upload uploaded download link attached attachment question
    questions answer call meeting schedule time timezone hour hours minutes soon later
    first second third last next final new old current great amazing beautiful happy
    love like need want help work working project projects client customer team company
    business launch launching update updated """
_WORDS = _WORDS_TEXT.split()
_FIRST_NAMES_TEXT = """Ana Ben Carla Dev Emma Femi Gina Hugo Ines Jon Kai Lena Mai Nico Omar Pia Ravi
    Sara Tom Uma Vik Wen Yara Zoe Ada Bo Cy Dora Eli Fay"""
_FIRST_NAMES = _FIRST_NAMES_TEXT.split()
_LAST_NAMES_TEXT = """Silva Cohen Mendes Okafor Tanaka Martin Rossi Novak Kim Ivanova Haddad Berg
    Costa Dubois Meyer Singh Ali Lopez Moreau Sato"""
_LAST_NAMES = _LAST_NAMES_TEXT.split()
_TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Africa/Lagos", "America/Sao_Paulo")
BODY_POOL = 50_000  # distinct bodies; messages draw from them
COPY_CHUNK = 20_000  # rows per write to the COPY stream


@dataclass
class SeedReport:
    messages: int
    conversations: int
    users: int
    deep_messages: int
    seconds: float
    phases: dict = field(default_factory=dict)  # seconds per phase


def _vocabulary_weights(rng: random.Random) -> list[float]:
    """Zipf-like word frequencies: a few words are everywhere, most are rare."""
    ranks = list(range(1, len(_WORDS) + 1))
    rng.shuffle(ranks)
    return [1 / rank for rank in ranks]


def _bodies(rng: random.Random, count: int) -> list[str]:
    weights = _vocabulary_weights(rng)
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    bodies = []
    for _ in range(count):
        length = min(60, max(2, int(rng.lognormvariate(2.3, 0.6))))
        words = rng.choices(_WORDS, cum_weights=cumulative, k=length)
        text = " ".join(words)
        bodies.append(text[0].upper() + text[1:] + rng.choice(".?!."))
    return bodies


def plan_sizes(messages: int) -> dict:
    conversations = max(2, messages // MESSAGES_PER_CONVERSATION)
    deep = max(1, int(messages * DEEP_SHARE))
    deep = min(deep, messages - (conversations - 1))
    sellers = max(LIGHT_BUYER_CONVERSATIONS, conversations // 50)
    buyers = max(LIGHT_BUYER_CONVERSATIONS, conversations // 2)
    busy = min(conversations - LIGHT_BUYER_CONVERSATIONS + 1, max(60, conversations // 40), buyers)
    return {
        "messages": messages,
        "conversations": conversations,
        "deep_messages": deep,
        "sellers": sellers,
        "buyers": buyers,
        "busy_seller_conversations": max(1, busy),
    }


def _pairs(rng: random.Random, sizes: dict) -> list[tuple[int, int]]:
    """(seller index, buyer index) per conversation; conversation 0 is the deep one."""
    sellers, buyers, wanted = sizes["sellers"], sizes["buyers"], sizes["conversations"]
    pairs = [(0, 0)]
    pairs += [(0, b) for b in range(1, sizes["busy_seller_conversations"])]
    pairs += [(s, 0) for s in range(1, min(LIGHT_BUYER_CONVERSATIONS, wanted - len(pairs) + 1))]
    taken = set(pairs)
    if wanted - len(pairs) > (sellers - 1) * (buyers - 1):
        raise ValueError("not enough generated users for that many conversations")
    while len(pairs) < wanted:
        pair = (rng.randrange(1, sellers), rng.randrange(1, buyers))
        if pair not in taken:
            taken.add(pair)
            pairs.append(pair)
    return pairs


def _reserve_ids(cursor, table: str, count: int) -> int:
    """The first of `count` consecutive ids taken from the table's identity sequence (the
    table is locked against other writers for the rest of the transaction)."""
    cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    # Table names here come from model metadata, never from input.
    cursor.execute(
        f"SELECT GREATEST(nextval(%s), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}))",  # noqa: S608
        [sequence],
    )
    first = cursor.fetchone()[0]
    cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return first


def _skip_row_triggers(cursor) -> bool:
    """Turn off per-row triggers, foreign-key checks included, for this transaction, as
    pg_restore --disable-triggers does: the loader writes only rows whose references it made
    itself, and a million deferred checks would cost more than the load. Needs a superuser;
    otherwise the checks run (slower, same result)."""
    cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    if not cursor.fetchone()[0]:
        return False
    cursor.execute("SET LOCAL session_replication_role = replica")
    return True


def _drop_secondary_indexes(cursor, table: str) -> list[str]:
    """Drop the table's indexes other than its primary key and unique constraints, returning
    their definitions: building an index once over a table is several times cheaper than
    updating it row by row (the GIN search index most of all)."""
    cursor.execute(
        """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
        FROM pg_index
        WHERE indrelid = %s::regclass AND NOT indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
        """,
        [table],
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _name, definition in indexes]


def _estimated_rows(cursor, table: str) -> int:
    cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [table])
    return cursor.fetchone()[0]


def _copy(cursor, table: str, columns: tuple[str, ...], lines) -> None:
    """COPY text lines (already escaped) into `table`, in chunks."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        pending = 0
        for line in lines:
            buffer.write(line)
            pending += 1
            if pending == COPY_CHUNK:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
                pending = 0
        if pending:
            copy.write(buffer.getvalue())


def _create_users(rng: random.Random, sizes: dict) -> tuple[list[int], list[int]]:
    password = make_password(None)  # unusable: these accounts are for load, not for logging in
    now = datetime.now(UTC)
    people = [("seller", i) for i in range(sizes["sellers"])] + [("buyer", i) for i in range(sizes["buyers"])]
    users = User.objects.bulk_create(
        [
            User(
                username=f"{USERNAME_PREFIX}{role}{i}",
                email=f"{role}{i}@{EMAIL_DOMAIN}",
                password=password,
                email_verified_at=now,
            )
            for role, i in people
        ],
        batch_size=2000,
    )
    Profile.objects.bulk_create(
        [
            Profile(
                user=user,
                display_name=f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}",
                role=Profile.Role.SELLER if role == "seller" else Profile.Role.BUYER,
                timezone=rng.choice(_TIMEZONES),
                languages=["English"],
            )
            for user, (role, _i) in zip(users, people, strict=True)
        ],
        batch_size=2000,
    )
    ids = [user.pk for user in users]
    return ids[: sizes["sellers"]], ids[sizes["sellers"] :]


def _ts(value: datetime) -> str:
    return value.isoformat()


def seed_messages(messages: int, *, seed: int = 1) -> SeedReport:
    """Replace the generated dataset with one of `messages` messages (see the module doc)."""
    if messages < 100:
        raise ValueError("seed at least 100 messages")
    if connection.vendor != "postgresql":
        raise RuntimeError("bulk seeding uses PostgreSQL COPY")
    started = time.monotonic()
    phases = {}
    rng = random.Random(seed)  # noqa: S311 -- synthetic data, reproducible on purpose
    sizes = plan_sizes(messages)
    conversations = sizes["conversations"]

    with transaction.atomic():
        mark = time.monotonic()
        clear_bulk_dataset()
        phases["clear_previous"] = round(time.monotonic() - mark, 2)

        mark = time.monotonic()
        seller_ids, buyer_ids = _create_users(rng, sizes)
        pairs = _pairs(rng, sizes)
        participants = [
            (seller_ids[s], buyer_ids[b]) for s, b in pairs
        ]  # (seller, buyer): the buyer writes first
        phases["users"] = round(time.monotonic() - mark, 2)

        mark = time.monotonic()
        # Which conversation each message (in time order) belongs to: the deep one holds its
        # share, every other at least one, the rest spread unevenly (a few busy threads).
        weights = [rng.paretovariate(1.2) for _ in range(conversations - 1)]
        order = [0] * sizes["deep_messages"] + list(range(1, conversations))
        order += rng.choices(range(1, conversations), weights=weights, k=messages - len(order))
        rng.shuffle(order)
        bodies = _bodies(rng, BODY_POOL)
        rare_positions = {}
        busy_conversations = set(range(sizes["busy_seller_conversations"]))
        for token in RARE_TOKENS:
            for _ in range(5):
                rare_positions[rng.randrange(messages)] = token
            found = 0
            while found < 3:  # and some where the busy seller searches
                position = rng.randrange(messages)
                if order[position] in busy_conversations and position not in rare_positions:
                    rare_positions[position] = token
                    found += 1
        phases["plan"] = round(time.monotonic() - mark, 2)

        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor  # psycopg's own cursor, for COPY
            mark = time.monotonic()
            triggers_skipped = _skip_row_triggers(cursor)
            # Rebuilding the indexes pays off when the load is about the size of the table or more.
            rebuilt_indexes = []
            if 2 * messages >= _estimated_rows(cursor, Message._meta.db_table):
                connection.check_constraints()  # no index is built with foreign-key checks pending
                rebuilt_indexes = _drop_secondary_indexes(cursor, Message._meta.db_table)
            first_message = _reserve_ids(cursor, Message._meta.db_table, messages)
            first_conversation = _reserve_ids(cursor, Conversation._meta.db_table, conversations)

            end = datetime.now(UTC) - timedelta(minutes=1)
            begin = end - HISTORY_SPAN
            step = HISTORY_SPAN / messages
            # Per conversation: first and last message, and per side (0 seller, 1 buyer) the
            # last own message id and how many of the other's messages came after it.
            first_at = [None] * conversations
            last_id = [0] * conversations
            last_at = [None] * conversations
            last_side = [1] * conversations
            own_last = [[None, None] for _ in range(conversations)]
            unread = [[0, 0] for _ in range(conversations)]
            client_prefix = (
                f"{CLIENT_ID_PREFIX}{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
                f"8{rng.getrandbits(12):03x}-"
            )
            body_count = len(bodies)

            def message_lines():
                for k in range(messages):
                    c = order[k]
                    message_id = first_message + k
                    at = begin + step * k
                    if first_at[c] is None:
                        first_at[c] = at
                        side = 1  # the buyer opens the conversation
                    else:
                        # Often a run of messages from the same person, then the other answers.
                        side = last_side[c] if rng.random() < 0.4 else 1 - last_side[c]
                    sender = participants[c][side]
                    body = bodies[rng.randrange(body_count)]
                    token = rare_positions.get(k)
                    if token:
                        body = f"{body} {token}"
                    last_id[c], last_at[c], last_side[c] = message_id, at, side
                    own_last[c][side] = message_id
                    unread[c][side] = 0
                    unread[c][1 - side] += 1
                    yield (
                        f"{message_id}\t{body}\tvisible\t{client_prefix}{k:012x}\t{_ts(at)}\t"
                        f"{first_conversation + c}\t{sender}\t{{}}\ttext\t[]\t\tf\n"
                    )

            # The conversations first (without their last message, which does not exist yet),
            # then the messages, then the conversations' last message and the memberships.
            # Conversation rows need first_at, known only after the messages are generated:
            # generate into the COPY of messages, then COPY the conversations; the foreign keys
            # are checked at commit (deferred).
            phases["reserve_ids"] = round(time.monotonic() - mark, 2)
            mark = time.monotonic()
            _copy(
                cursor,
                Message._meta.db_table,
                ("id", "body", "status", "client_id", "created_at", "conversation_id", "sender_id", "card",
                 "kind", "moderation_findings", "moderation_reason", "is_automatic"),
                message_lines(),
            )  # fmt: skip
            phases["copy_messages"] = round(time.monotonic() - mark, 2)

            mark = time.monotonic()
            _copy(
                cursor,
                Conversation._meta.db_table,
                ("id", "user_low_id", "user_high_id", "created_at", "last_message_id", "last_message_at"),
                (
                    f"{first_conversation + c}\t{min(pair)}\t{max(pair)}\t{_ts(first_at[c])}\t"
                    f"{last_id[c]}\t{_ts(last_at[c])}\n"
                    for c, pair in enumerate(participants)
                ),
            )

            def membership_lines():
                for c, pair in enumerate(participants):
                    for side in (0, 1):
                        if rng.random() < READ_EVERYTHING:
                            read_up_to, unread_count = last_id[c], 0
                        else:  # read when they last wrote (sending reads the thread)
                            read_up_to, unread_count = own_last[c][side], unread[c][side]
                        yield (
                            f"{first_conversation + c}\t{pair[side]}\t{pair[1 - side]}\t{unread_count}\t"
                            f"{read_up_to if read_up_to is not None else chr(92) + 'N'}\t{_ts(last_at[c])}\t"
                            f"{_ts(first_at[c])}\t\tf\tf\n"
                        )

            _copy(
                cursor,
                Membership._meta.db_table,
                ("conversation_id", "user_id", "other_user_id", "unread_count", "last_read_message_id",
                 "last_message_at", "created_at", "draft", "has_custom_offer", "has_request"),
                membership_lines(),
            )  # fmt: skip
            phases["copy_conversations_memberships"] = round(time.monotonic() - mark, 2)
            mark = time.monotonic()
            if rebuilt_indexes:
                cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
                for definition in rebuilt_indexes:
                    cursor.execute(definition)
            phases["build_indexes"] = round(time.monotonic() - mark, 2)
            if not triggers_skipped:
                mark = time.monotonic()
                connection.check_constraints()  # the deferred foreign keys, now rather than at commit
                phases["check_constraints"] = round(time.monotonic() - mark, 2)
        mark = time.monotonic()
    phases["commit"] = round(time.monotonic() - mark, 2)
    mark = time.monotonic()
    with connection.cursor() as cursor:
        for model in (Message, Conversation, Membership):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    phases["analyze"] = round(time.monotonic() - mark, 2)
    return SeedReport(
        messages=messages,
        conversations=conversations,
        users=sizes["sellers"] + sizes["buyers"],
        deep_messages=sizes["deep_messages"],
        seconds=round(time.monotonic() - started, 2),
        phases=phases,
    )


def generated_users():
    return User.objects.filter(username__startswith=USERNAME_PREFIX, email__endswith=f"@{EMAIL_DOMAIN}")


def clear_bulk_dataset() -> int:
    """Remove the generated users and everything theirs. Generated messages go by plain SQL
    (there can be a million); whatever was added to their conversations later (messages sent
    through the services, notifications, reports...) goes through the ORM, with its cascades.
    Returns the number of generated users removed."""
    user_ids = list(generated_users().values_list("pk", flat=True))
    if not user_ids:
        return 0
    with transaction.atomic():
        conversation_ids = list(
            Conversation.objects.filter(user_low_id__in=user_ids)
            .union(Conversation.objects.filter(user_high_id__in=user_ids))
            .values_list("pk", flat=True)
        )
        generated = (
            Message.objects.filter(conversation_id__in=conversation_ids)
            .annotate(client_text=Cast("client_id", output_field=TextField()))
            .filter(client_text__startswith=CLIENT_ID_PREFIX)
        )
        Message.objects.filter(conversation_id__in=conversation_ids).exclude(
            pk__in=generated.values("pk")
        ).delete()
        # What still points at a generated message (a reply, a report, a translation...).
        Conversation.objects.filter(pk__in=conversation_ids).update(last_message=None)
        for relation in Message._meta.related_objects:
            if relation.related_model is Conversation:
                continue
            pointing = relation.related_model._base_manager.filter(
                **{f"{relation.field.name}__conversation_id__in": conversation_ids}
            )
            if relation.on_delete.__name__ == "SET_NULL":
                pointing.update(**{relation.field.name: None})
            else:
                pointing.delete()
        with connection.cursor() as cursor:
            # Nothing points at these rows any more (above): no need to check it per row.
            _skip_row_triggers(cursor.cursor)
            cursor.execute(
                f"DELETE FROM {Message._meta.db_table} WHERE conversation_id = ANY(%s)",  # noqa: S608
                [conversation_ids],
            )
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        Membership.objects.filter(conversation_id__in=conversation_ids).delete()
        Conversation.objects.filter(pk__in=conversation_ids).delete()
        generated_users().delete()
        # Run the deferred foreign-key checks now: an index cannot be built in a transaction
        # with pending ones (seed_messages rebuilds indexes next).
        connection.check_constraints()
    return len(user_ids)
