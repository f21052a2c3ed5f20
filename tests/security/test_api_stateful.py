"""Schemathesis, stateful, against a running daphne: sequences of API calls chained by the links
the schema declares (marketplace.api.LINKS: a conversation's id from the list or a new one fed to
the operations that take one, a sent message's id to its edit, delete and translation, an
upload's id to its parts ...). No answer may be a 5xx or stray from the schema, a request the
schema allows must not be refused as invalid (422), one it forbids must be refused: schemathesis's
default checks, with one exception.

The exception: `positive_data_acceptance` is replaced by `accepts_schema_valid_data`
(tests/security/schemathesis_hooks.py), which calls it and forgives exactly one answer: a 422
whose `error` is `invalid_cursor` to a request that carried a `cursor`. A cursor is base64url of
JSON the server issued; the schema declares its alphabet and length, not which strings were
issued, so a well-formed cursor the server never issued is answered that way. Nothing else is
forgiven.

The buyer's bearer token must stay valid for every step: `DELETE /auth/token` (revoking it) is
not run here; tests/security/test_api_fuzz.py covers it in process.

CI runs a bounded number of sequences; `make fuzz` runs more (FUZZ_STATEFUL_EXAMPLES,
FUZZ_STATEFUL_STEPS).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import positive_data_acceptance

from marketplace.api import LINKS
from tests.factories import buyer_opens_conversation, make_completed_order, make_user
from tests.security.schemathesis_hooks import accepts_schema_valid_data

EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "8"))
# Revoking the token would answer 401 to every later step of the sequence.
NOT_RUN = ("marketplace_accounts_api_delete_token",)
# The server keeps what earlier sequences did, so a sequence Hypothesis starts again from a prefix
# of an earlier one may find other links usable and draw differently (FlakyStrategyDefinition):
# not a finding about the API. Schemathesis's own runner ends its stateful phase there; this test
# runs the sequences in batches and goes on with a new batch until EXAMPLES sequences have run.
BATCH = 10


@pytest.mark.django_db(transaction=True)
def test_api_stateful(daphne_servers, password_hash, settings, tmp_path):
    from inbox.services import create_label
    from marketplace.accounts.services import issue_api_token
    from orders import services as orders

    settings.MEDIA_ROOT = str(tmp_path)  # where the daphne stores uploads
    buyer = make_user("statebuyer", password_hash=password_hash)
    seller = make_user("stateseller", password_hash=password_hash, seller=True)
    conversation = buyer_opens_conversation(buyer, seller)
    make_completed_order(buyer, seller)
    # An order still open, and an offer waiting for the buyer: the order and offer steps get past 409.
    offer = orders.create_offer(
        seller=seller, conversation=conversation, description="A banner", price=40, delivery_days=2
    )
    orders.accept_offer(buyer=buyer, offer=offer)
    orders.create_offer(
        seller=seller, conversation=conversation, description="A flyer", price=30, delivery_days=2
    )
    create_label(user=buyer, name="Clients")
    _token, raw = issue_api_token(user=buyer)
    headers = {"Authorization": f"Bearer {raw}"}

    base_url = daphne_servers.start()
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    schema.config.update(base_url=base_url)
    # The served schema declares the links the sequences follow.
    operations = {
        operation["operationId"]: operation
        for methods in schema.raw_schema["paths"].values()
        for operation in methods.values()
    }
    for producer in LINKS:
        assert any(response.get("links") for response in operations[producer]["responses"].values()), producer
    for operation_id in NOT_RUN:
        schema = schema.exclude(operation_id=operation_id)
    assert accepts_schema_valid_data in CHECKS.get_all()  # registered on import: run by default

    finished = []  # one entry per sequence run to its end

    class Sequences(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def teardown(self):
            finished.append(True)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                additional_checks=additional_checks,  # accepts_schema_valid_data is a default
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs or None,
                recorder=getattr(self, "recorder", None),
            )

    for _batch in range(2 * (EXAMPLES // BATCH) + 3):
        if len(finished) >= EXAMPLES:
            break
        try:
            Sequences.run(
                settings=hypothesis_settings(
                    max_examples=min(BATCH, EXAMPLES - len(finished)),
                    stateful_step_count=STEPS,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    # No replay from the example database nor shrinking: the server's state moved on.
                    phases=[Phase.generate],
                    database=None,
                )
            )
        except FlakyStrategyDefinition:
            continue  # see BATCH
    assert len(finished) >= EXAMPLES, f"only {len(finished)} of {EXAMPLES} sequences ran"
