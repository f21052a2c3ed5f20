"""Errors that services raise and every entry point (API, pages, consumers) translates.

Each carries a stable machine-readable `code` and a human `detail`; the API turns them into
`{"error": code, "detail": detail}` with `status`.
"""


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra  # more fields for the error body, e.g. the cursor to resume from
        if code:
            self.code = code


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"
