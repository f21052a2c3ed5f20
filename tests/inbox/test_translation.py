"""Translate: language detection (lingua), the Apertium and LibreTranslate backends run for real,
the service's rules and cache, the API and the page fragment.

Tests that translate need Debian's `apertium` with `apertium-eng-spa` (and `apertium-fr-es`,
`apertium-es-pt` for the pivot through Spanish): they skip without them, and fail under
INBOX_REQUIRE_SERVICES=1 (.ci/run installs them).
"""

import json
import shutil
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.utils import timezone

from inbox.models import Message, MessageTranslation
from inbox.services import (
    delete_message,
    edit_message,
    send_message,
    start_conversation,
    translate_message,
)
from inbox.translation import (
    ApertiumBackend,
    EngineError,
    LibreTranslateBackend,
    TranslationBackend,
    TranslationUnavailable,
    detect_language,
    translate_text,
)
from marketplace.accounts.services import update_inbox_preferences
from marketplace.errors import Conflict, InvalidInput
from tests.conftest import service_unavailable
from tests.factories import bearer_headers

SPANISH = "Hola, ¿puedes entregar el logotipo mañana? Muchas gracias."
FRENCH = "Bonjour, pouvez-vous livrer le logo demain ? Merci beaucoup."
ENGLISH = "Hello, can you deliver the logo tomorrow? Thanks a lot."
JAPANESE = "こんにちは、明日ロゴを納品できますか。"


def words(text: str) -> set[str]:
    return {word.strip(".,;:!?¿¡\"'").lower() for word in text.split()}


@pytest.fixture(scope="session")
def apertium():
    """The real Apertium with the pairs these tests use."""
    if shutil.which("apertium") is None:
        service_unavailable("Apertium is not installed (apt-get install -y apertium apertium-eng-spa)")
    backend = ApertiumBackend(binary="apertium", timeout=30)
    missing = {"spa-eng", "eng-spa", "fr-es", "pt-es"} - backend.installed_modes()
    if missing:
        service_unavailable(
            f"Apertium modes {sorted(missing)} are missing "
            "(apt-get install -y apertium-eng-spa apertium-fr-es apertium-es-pt)"
        )
    return backend


@pytest.fixture
def apertium_only(settings, apertium):
    settings.TRANSLATION_BACKENDS = ["inbox.translation.ApertiumBackend"]
    settings.LIBRETRANSLATE_URL = ""
    return apertium


class CountingApertium(ApertiumBackend):
    """The real Apertium backend, counting how often it is asked to translate."""

    calls = 0

    def translate(self, text, source, target):
        type(self).calls += 1
        return super().translate(text, source, target)


@pytest.fixture
def counting_apertium(settings, apertium):
    CountingApertium.calls = 0
    settings.TRANSLATION_BACKENDS = [f"{__name__}.CountingApertium"]
    return CountingApertium


@pytest.fixture
def received_spanish(buyer, seller):
    """A Spanish message the buyer received from the seller (buyer reads English by default)."""
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(sender=seller, conversation=conversation, body=SPANISH)
    return message


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SPANISH, "es"),
        ("Perfecto, lo reviso esta noche y te digo.", "es"),
        (FRENCH, "fr"),
        ("Parfait, je regarde ce soir et je vous dis.", "fr"),
        (ENGLISH, "en"),
        ("Perfect, I will check tonight and let you know.", "en"),
        (JAPANESE, "ja"),
    ],
)
def test_detects_the_language_of_a_message(text, expected):
    assert detect_language(text) == expected


def test_a_text_without_words_has_no_language():
    assert detect_language("12345 !!! :-)") is None


# --- Apertium ------------------------------------------------------------------------------------


def test_apertium_translates_spanish_into_english(apertium):
    english = apertium.translate(SPANISH, "es", "en")
    assert {"hello", "tomorrow"} <= words(english)
    assert "mañana" not in english


def test_apertium_translates_english_into_spanish(apertium):
    spanish = apertium.translate(ENGLISH, "en", "es")
    assert {"hola", "logotipo", "mañana"} <= words(spanish)


@pytest.mark.parametrize(
    ("source", "text", "route"),
    [
        ("fr", FRENCH, ["fr-es", "spa-eng"]),
        ("pt", "Olá, você pode entregar o logotipo amanhã? Muito obrigado.", ["pt-es", "spa-eng"]),
    ],
)
def test_apertium_goes_through_spanish_when_a_pair_has_no_package(apertium, source, text, route):
    assert apertium.route(source, "en") == route
    english = apertium.translate(text, source, "en")
    assert "tomorrow" in words(english)


def test_apertium_keeps_markup_and_lines_as_text(apertium):
    english = apertium.translate("<b>hola</b> amigo\nHasta mañana", "es", "en")
    assert "<b>hello</b>" in english
    assert english.count("\n") == 1


def test_apertium_supports_only_installed_pairs(apertium):
    assert apertium.supports("es", "en")
    assert not apertium.supports("ja", "en")
    assert not apertium.supports("es", "xx")
    assert isinstance(apertium, TranslationBackend)


def test_without_apertium_the_backend_supports_nothing():
    backend = ApertiumBackend(binary="/nonexistent/apertium")
    assert backend.installed_modes() == frozenset()
    assert not backend.supports("es", "en")


def test_an_apertium_that_fails_is_an_engine_error(tmp_path):
    broken = tmp_path / "apertium"
    broken.write_text(
        '#!/bin/sh\nif [ "$1" = "-l" ]; then echo spa-eng; exit 0; fi\necho broken >&2\nexit 3\n'
    )
    broken.chmod(0o755)
    with pytest.raises(EngineError, match="exited with 3"):
        ApertiumBackend(binary=str(broken)).translate("hola", "es", "en")


def test_an_apertium_that_hangs_is_stopped_at_the_timeout(tmp_path):
    slow = tmp_path / "apertium"
    slow.write_text('#!/bin/sh\nif [ "$1" = "-l" ]; then echo spa-eng; exit 0; fi\nsleep 30\n')
    slow.chmod(0o755)
    started = timezone.now()
    with pytest.raises(EngineError, match="longer than"):
        ApertiumBackend(binary=str(slow), timeout=0.5).translate("hola", "es", "en")
    assert timezone.now() - started < timedelta(seconds=5)


# --- LibreTranslate over real HTTP ---------------------------------------------------------------


class LibreTranslateCompatibleServer:
    """A tiny LibreTranslate-compatible HTTP server in a thread: GET /languages and POST /translate,
    translating with the real Apertium backend. Requests it receives are kept in `requests`."""

    def __init__(self, *, api_key: str = "", fail: bool = False):
        engine = ApertiumBackend(binary="apertium", timeout=30)
        requests = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != "/languages":
                    return self.answer(404, {"error": "Not Found"})
                self.answer(
                    200,
                    [
                        {"code": "en", "name": "English", "targets": ["es"]},
                        {"code": "es", "name": "Spanish", "targets": ["en"]},
                    ],
                )

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                requests.append({"path": self.path, **body})
                if self.path != "/translate":
                    return self.answer(404, {"error": "Not Found"})
                if api_key and body.get("api_key") != api_key:
                    return self.answer(403, {"error": "Invalid API key"})
                if fail:
                    return self.answer(500, {"error": "model crashed"})
                text = engine.translate(body["q"], body["source"], body["target"])
                self.answer(200, {"translatedText": text})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_libretranslate_backend_translates_over_http(apertium):
    """A real HTTP round trip (httpx to a real server on a local port), not a mock: the server
    speaks LibreTranslate's API and translates with Apertium."""
    with LibreTranslateCompatibleServer(api_key="sekret") as server:
        backend = LibreTranslateBackend(url=server.url + "/", api_key="sekret", timeout=30)
        assert backend.supports("es", "en")
        assert not backend.supports("fr", "en")
        english = backend.translate(SPANISH, "es", "en")
    assert {"hello", "tomorrow"} <= words(english)
    assert server.requests == [
        {
            "path": "/translate",
            "q": SPANISH,
            "source": "es",
            "target": "en",
            "format": "text",
            "api_key": "sekret",
        }
    ]


def test_libretranslate_errors_are_engine_errors(apertium):
    """Real HTTP round trips: a wrong key (403) and a failing model (500)."""
    with LibreTranslateCompatibleServer(api_key="right") as server:
        wrong_key = LibreTranslateBackend(url=server.url, api_key="wrong")
        with pytest.raises(EngineError, match="403: Invalid API key"):
            wrong_key.translate("hola", "es", "en")
    with LibreTranslateCompatibleServer(fail=True) as server:
        failing = LibreTranslateBackend(url=server.url, api_key="")
        with pytest.raises(EngineError, match="model crashed"):
            failing.translate("hola", "es", "en")


def test_libretranslate_is_off_without_a_url_and_translates_nothing_when_unreachable(settings):
    settings.LIBRETRANSLATE_URL = ""
    assert not LibreTranslateBackend().supports("es", "en")
    nobody_listens = LibreTranslateBackend(url="http://127.0.0.1:9", timeout=1)
    assert not nobody_listens.supports("es", "en")


def test_the_next_backend_translates_when_the_first_cannot(settings, apertium):
    """Real HTTP round trip: with no Apertium, the LibreTranslate-compatible server translates."""
    with LibreTranslateCompatibleServer() as server:
        settings.APERTIUM_BINARY = "/nonexistent/apertium"
        settings.LIBRETRANSLATE_URL = server.url
        settings.LIBRETRANSLATE_API_KEY = ""
        text, backend = translate_text(SPANISH, source="es", target="en")
    assert backend == "libretranslate"
    assert "hello" in words(text)


def test_a_pair_no_backend_supports_is_named_in_the_error(apertium_only):
    with pytest.raises(TranslationUnavailable) as raised:
        translate_text(JAPANESE, source="ja", target="en")
    assert raised.value.status == 409
    assert raised.value.code == "translation_unavailable"
    assert raised.value.detail == "Translation from Japanese into English is not available here."


# --- the service -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_received_message_is_translated_into_the_readers_language(
    counting_apertium, buyer, received_spanish
):
    result = translate_message(user=buyer, message=received_spanish)

    assert (result.source_language, result.target_language, result.backend) == ("es", "en", "apertium")
    assert {"hello", "tomorrow"} <= words(result.text)
    assert result.original == SPANISH
    assert result.note == ""
    stored = MessageTranslation.objects.get(message=received_spanish)
    assert (stored.target_language, stored.text) == ("en", result.text)


@pytest.mark.django_db
def test_a_second_translation_comes_from_the_cache(counting_apertium, buyer, received_spanish):
    first = translate_message(user=buyer, message=received_spanish)
    second = translate_message(user=buyer, message=Message.objects.get(pk=received_spanish.pk))

    assert counting_apertium.calls == 1
    assert second == first
    assert MessageTranslation.objects.count() == 1


@pytest.mark.django_db
def test_an_edited_message_is_translated_again(counting_apertium, buyer, seller, received_spanish):
    translate_message(user=buyer, message=received_spanish)
    edit_message(user=seller, message=received_spanish, body="Hola, ¿puedes entregar el logotipo hoy?")

    result = translate_message(user=buyer, message=Message.objects.get(pk=received_spanish.pk))

    assert counting_apertium.calls == 2
    assert "today" in words(result.text)
    assert "tomorrow" not in words(result.text)
    assert MessageTranslation.objects.get(message=received_spanish).text == result.text


class EditedWhileTranslating(CountingApertium):
    """The real Apertium backend; the sender edits the message while it translates."""

    edit = None

    def translate(self, text, source, target):
        translated = super().translate(text, source, target)
        type(self).edit()
        return translated


@pytest.mark.django_db
def test_an_edit_during_translation_is_not_cached(settings, apertium, buyer, seller, received_spanish):
    settings.TRANSLATION_BACKENDS = [f"{__name__}.EditedWhileTranslating"]
    EditedWhileTranslating.edit = lambda: edit_message(
        user=seller, message=received_spanish, body="Hola otra vez"
    )

    result = translate_message(user=buyer, message=received_spanish)

    assert result.original == SPANISH  # the answer matches the text that was translated
    assert not MessageTranslation.objects.exists()  # but the old text's translation is not kept


class TranslatesInStep(ApertiumBackend):
    """The real Apertium backend; two readers' requests wait for each other inside it, so both
    missed the cache before either stores its translation."""

    barrier = None

    def translate(self, text, source, target):
        translated = super().translate(text, source, target)
        type(self).barrier.wait(timeout=20)
        return translated


@pytest.mark.django_db(transaction=True)
def test_two_readers_translating_at_once_store_one_translation(settings, apertium, buyer, received_spanish):
    settings.TRANSLATION_BACKENDS = [f"{__name__}.TranslatesInStep"]
    TranslatesInStep.barrier = threading.Barrier(2)
    results, errors = [], []

    def read():
        try:
            results.append(translate_message(user=buyer, message=Message.objects.get(pk=received_spanish.pk)))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=30)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert MessageTranslation.objects.filter(message=received_spanish).count() == 1


@pytest.mark.django_db
def test_each_language_has_its_own_translation(counting_apertium, buyer, seller):
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(sender=seller, conversation=conversation, body=ENGLISH)

    update_inbox_preferences(user=buyer, reading_language="es")
    buyer.profile.refresh_from_db()
    spanish = translate_message(user=buyer, message=message)
    english = translate_message(user=buyer, message=message, target_language="en")

    assert spanish.target_language == "es"
    assert "logotipo" in words(spanish.text)
    assert english.note == "Already in English."
    assert english.text == ENGLISH
    assert english.backend is None
    assert counting_apertium.calls == 1


@pytest.mark.django_db
def test_a_message_in_the_readers_language_comes_back_with_a_note(counting_apertium, buyer, seller):
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(sender=seller, conversation=conversation, body=ENGLISH)

    result = translate_message(user=buyer, message=message)

    assert (result.source_language, result.target_language) == ("en", "en")
    assert result.text == result.original == ENGLISH
    assert result.note == "Already in English."
    assert counting_apertium.calls == 0
    assert not MessageTranslation.objects.exists()


@pytest.mark.django_db
def test_your_own_message_is_not_translated(apertium_only, seller, received_spanish):
    with pytest.raises(Conflict) as raised:
        translate_message(user=seller, message=received_spanish)
    assert raised.value.code == "own_message"


@pytest.mark.django_db
def test_a_deleted_message_is_not_translated(apertium_only, buyer, seller, received_spanish):
    delete_message(user=seller, message=received_spanish)
    with pytest.raises(Conflict) as raised:
        translate_message(user=buyer, message=Message.objects.get(pk=received_spanish.pk))
    assert raised.value.code == "message_deleted"


@pytest.mark.django_db
def test_a_held_message_is_not_translated(apertium_only, buyer, received_spanish):
    Message.objects.filter(pk=received_spanish.pk).update(status=Message.Status.HELD)
    with pytest.raises(Conflict) as raised:
        translate_message(user=buyer, message=Message.objects.get(pk=received_spanish.pk))
    assert raised.value.code == "message_held"


@pytest.mark.django_db
def test_an_unsupported_pair_is_a_clear_error(apertium_only, buyer, seller):
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(sender=seller, conversation=conversation, body=JAPANESE)

    with pytest.raises(TranslationUnavailable, match="from Japanese into English"):
        translate_message(user=buyer, message=message)


@pytest.mark.django_db
def test_an_unknown_target_language_is_refused(apertium_only, buyer, received_spanish):
    with pytest.raises(InvalidInput) as raised:
        translate_message(user=buyer, message=received_spanish, target_language="xx")
    assert raised.value.code == "invalid_language"


# --- the API -------------------------------------------------------------------------------------


def api_post(user, path, body=None):
    return Client().post(path, body or {}, content_type="application/json", **bearer_headers(user))


@pytest.mark.django_db
def test_api_translates_a_received_message(apertium_only, buyer, received_spanish):
    response = api_post(buyer, f"/api/v1/messages/{received_spanish.pk}/translation")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "message_id",
        "source_language",
        "target_language",
        "text",
        "backend",
        "original",
        "note",
    }
    assert body["message_id"] == received_spanish.pk
    assert (body["source_language"], body["target_language"], body["backend"]) == ("es", "en", "apertium")
    assert body["original"] == SPANISH
    assert "hello" in words(body["text"])


@pytest.mark.django_db
def test_api_translates_into_the_language_asked(apertium_only, buyer, seller):
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(sender=seller, conversation=conversation, body=ENGLISH)

    response = api_post(buyer, f"/api/v1/messages/{message.pk}/translation", {"target_language": "es"})

    assert response.status_code == 200, response.content
    assert response.json()["target_language"] == "es"
    assert "logotipo" in words(response.json()["text"])


@pytest.mark.django_db
def test_api_answers_404_for_a_strangers_message(apertium_only, stranger, received_spanish):
    response = api_post(stranger, f"/api/v1/messages/{received_spanish.pk}/translation")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Message not found."}
    assert api_post(stranger, "/api/v1/messages/99999999/translation").status_code == 404


@pytest.mark.django_db
def test_api_refusals_are_clear(apertium_only, buyer, seller, received_spanish):
    own = api_post(seller, f"/api/v1/messages/{received_spanish.pk}/translation")
    assert (own.status_code, own.json()["error"]) == (409, "own_message")

    unknown = api_post(
        buyer, f"/api/v1/messages/{received_spanish.pk}/translation", {"target_language": "xx"}
    )
    assert (unknown.status_code, unknown.json()["error"]) == (422, "invalid_language")

    conversation = received_spanish.conversation
    japanese, _ = send_message(sender=seller, conversation=conversation, body=JAPANESE)
    unavailable = api_post(buyer, f"/api/v1/messages/{japanese.pk}/translation")
    assert unavailable.status_code == 409
    assert unavailable.json() == {
        "error": "translation_unavailable",
        "detail": "Translation from Japanese into English is not available here.",
    }

    delete_message(user=seller, message=received_spanish)
    deleted = api_post(buyer, f"/api/v1/messages/{received_spanish.pk}/translation")
    assert (deleted.status_code, deleted.json()["error"]) == (409, "message_deleted")


# --- the page fragment -----------------------------------------------------------------------------


def fragment_url(message) -> str:
    return f"/inbox/messages/{message.pk}/translate/"


@pytest.mark.django_db
def test_the_page_fragment_shows_the_translation_escaped(apertium_only, buyer, seller):
    conversation, _first, _ = start_conversation(sender=buyer, recipient_username="seller", body="Hi!")
    message, _ = send_message(
        sender=seller,
        conversation=conversation,
        body="<b>hola</b> amigo, ¿cómo estás? Mira https://example.com",
    )
    browser = Client()
    browser.force_login(buyer)

    response = browser.post(fragment_url(message))

    assert response.status_code == 200, response.content
    html = response.content.decode()
    assert f'data-message-id="{message.pk}"' in html
    assert 'data-source-language="es"' in html
    assert "Translated from Spanish into English · Apertium" in html
    assert "&lt;b&gt;hello&lt;/b&gt;" in html
    assert "<b>" not in html
    assert '<a href="https://example.com" rel="nofollow">https://example.com</a>' in html


@pytest.mark.django_db
def test_the_page_fragment_carries_refusals_and_hides_strangers_messages(
    apertium_only, seller, stranger, received_spanish
):
    own = Client()
    own.force_login(seller)
    refused = own.post(fragment_url(received_spanish))
    assert refused.status_code == 409
    assert 'data-error="own_message"' in refused.content.decode()
    assert "Translate is for messages you receive" in refused.content.decode()

    outsider = Client()
    outsider.force_login(stranger)
    assert outsider.post(fragment_url(received_spanish)).status_code == 404
    assert outsider.get(fragment_url(received_spanish)).status_code == 405


@pytest.mark.django_db
def test_the_page_fragment_needs_the_csrf_token(settings, apertium_only, buyer, received_spanish):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(buyer)
    assert browser.post(fragment_url(received_spanish)).status_code == 403

    # What the inbox page gives its script: the csrftoken cookie, and the token for X-CSRFToken.
    page_request = RequestFactory().get("/inbox/")
    token = get_token(page_request)
    browser.cookies[settings.CSRF_COOKIE_NAME] = page_request.META["CSRF_COOKIE"]
    response = browser.post(fragment_url(received_spanish), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
