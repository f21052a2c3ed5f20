"""Schemathesis against /api/v1, in process: every operation of the app's own OpenAPI schema gets
generated input (valid and invalid) as a signed-in buyer, half the time aimed at objects that
exist. No answer may be a 5xx or stray from the schema (status, content type, body, headers).

CI runs a few examples per operation; `make fuzz` runs many more (FUZZ_EXAMPLES, FUZZ_COVERAGE).
Sequences of calls chained by the schema's links run against a real daphne in
tests/security/test_api_stateful.py.
"""

import itertools
import os

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import buyer_opens_conversation, make_completed_order, make_user

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Loaded from the app itself at collection (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
# The coverage phase (every boundary of every parameter) is the slow one: `make fuzz` turns it on.
schema.config.phases.coverage.enabled = os.environ.get("FUZZ_COVERAGE") == "1"
_turn = itertools.count()


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker, password_hash):
    """A buyer with a conversation, messages, a label and a completed order, committed once for
    the module (each test's own writes roll back); the database is flushed afterwards, as
    transactional tests leave it."""
    from inbox.services import create_label
    from marketplace.accounts.services import issue_api_token

    # The roomy limits of tests/conftest.py (its fixture is per test; this world is per module).
    roomy = override_settings(
        MODERATION_NEW_CONTACTS_PER_HOUR=10_000,
        MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR=10_000,
        MODERATION_NEW_ACCOUNT_BURST=10_000,
        MODERATION_BLAST_RECIPIENTS=10_000,
    )
    with django_db_blocker.unblock(), roomy:
        buyer = make_user("fuzzbuyer", password_hash=password_hash)
        seller = make_user("fuzzseller", password_hash=password_hash, seller=True)
        conversation = buyer_opens_conversation(buyer, seller)
        order = make_completed_order(buyer, seller)
        label = create_label(user=buyer, name="Fuzzed")
        _token, raw = issue_api_token(user=buyer)
        ids = {
            "conversation_id": conversation.pk,
            "message_id": conversation.messages.filter(sender=buyer).first().pk,
            "number": order.number,
            "username": seller.username,
            "label_id": label.pk,
        }
    yield {"headers": {"Authorization": f"Bearer {raw}"}, "ids": ids}
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def in_test_transaction(db):
    """As Django's test client does: a request must not close the test's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case, fuzz_world, in_test_transaction, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    if next(_turn) % 2:  # every other case aims at objects that exist, past the 404s
        for name in case.path_parameters or {}:
            if name in fuzz_world["ids"]:
                case.path_parameters[name] = fuzz_world["ids"][name]
    case.call_and_validate(headers=fuzz_world["headers"], checks=CHECKS)
