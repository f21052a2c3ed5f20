from datetime import datetime
from typing import Annotated

from ninja import Field, Router, Schema, Status
from pydantic import StrictBool

from marketplace.api_inputs import BodyIn, declared
from marketplace.errors import DomainError

from .services import READING_LANGUAGES, issue_api_token, revoke_api_token, update_inbox_preferences
from .throttle import authenticate_limited

router = Router(tags=["accounts"])


class TokenIn(BodyIn):
    username: str = Field(max_length=150, pattern=r"^[^\x00]*$")
    password: str = Field(max_length=4096)


class TokenOut(Schema):
    token: str
    expires_at: datetime


class ProfileOut(Schema):
    display_name: str
    avatar_initials: str
    role: str
    timezone: str
    languages: list[str]
    enter_sends: bool
    reading_language: str
    accepts_new_sellers: bool


class PreferencesIn(BodyIn):
    enter_sends: StrictBool | None = Field(
        None, description="true: Enter sends, Shift+Enter new line; false: reverse"
    )
    reading_language: Annotated[str, declared(enum=sorted(READING_LANGUAGES))] | None = Field(
        None,
        max_length=8,
        description="ISO 639-1, e.g. en, es, fr",  # invalid_language
    )
    accepts_new_sellers: StrictBool | None = Field(
        None, description="Buyers: false refuses messages from sellers you have not contacted"
    )


class MeOut(Schema):
    id: int
    username: str
    email: str
    email_verified: bool
    profile: ProfileOut


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"


@router.post("/auth/token", auth=None, response={201: TokenOut})
def create_token(request, payload: TokenIn):
    """Exchange a username and password for a bearer token (valid API_TOKEN_TTL_DAYS days).
    429 rate_limited (with Retry-After) after too many failed attempts for the username or IP."""
    user = authenticate_limited(request, username=payload.username, password=payload.password)
    if user is None:
        raise InvalidCredentials("Wrong username or password.")
    token, raw = issue_api_token(user=user)
    return Status(201, {"token": raw, "expires_at": token.expires_at})


@router.delete("/auth/token", response={204: None})
def delete_token(request):
    """Revoke the bearer token this request was made with."""
    token = getattr(request.user, "api_token", None)
    if token is not None:
        revoke_api_token(token=token)
    return Status(204, None)


def _me(user) -> dict:
    profile = user.profile
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "email_verified": user.is_email_verified,
        "profile": {
            "display_name": profile.display_name,
            "avatar_initials": profile.avatar_initials,
            "role": profile.role,
            "timezone": profile.timezone,
            "languages": profile.languages,
            "enter_sends": profile.enter_sends,
            "reading_language": profile.reading_language,
            "accepts_new_sellers": profile.accepts_new_sellers,
        },
    }


@router.get("/me", response=MeOut)
def me(request):
    return _me(request.user)


@router.patch("/me", response=MeOut)
def update_preferences(request, payload: PreferencesIn):
    """Inbox preferences: the Enter key, the reading language for translations, and (buyers)
    whether sellers you have not contacted may write to you."""
    update_inbox_preferences(
        user=request.user,
        enter_sends=payload.enter_sends,
        reading_language=payload.reading_language,
        accepts_new_sellers=payload.accepts_new_sellers,
    )
    request.user.profile.refresh_from_db()
    return _me(request.user)
