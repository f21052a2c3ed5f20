"""A schemathesis check of ours, registered on import: for tests/security/test_api_stateful.py,
and for a CLI run against a live server, which loads it as a hooks module:

    SCHEMATHESIS_HOOKS=tests.security.schemathesis_hooks .venv/bin/schemathesis run \\
        http://127.0.0.1:8000/api/v1/openapi.json -H "Authorization: Bearer $TOKEN" \\
        --checks all --exclude-checks positive_data_acceptance \\
        --exclude-method DELETE --exclude-path /api/v1/auth/token --max-examples 50

A cursor is base64url of JSON that the server issued. The schema declares its alphabet and
length, not which strings the server issued, so a well-formed cursor it never issued is answered
422 `invalid_cursor`. `accepts_schema_valid_data` is schemathesis's `positive_data_acceptance`
(ST202: a request the schema allows must not be refused as invalid) forgiving exactly that
answer: a 422 whose `error` is `invalid_cursor` to a request that carried a `cursor`.
"""

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance


@schemathesis.check
def accepts_schema_valid_data(ctx, response, case):
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422 and (case.query or {}).get("cursor"):
            try:
                error = response.json().get("error")
            except (ValueError, AttributeError):
                error = None
            if error == "invalid_cursor":
                return None
        raise
