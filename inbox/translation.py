"""Machine translation of message text: which language a text is in (lingua), and the engines
that put it into another (backends, tried in the order of settings.TRANSLATION_BACKENDS).

Both engines run on machines we control: Apertium as a subprocess on this one, or a
LibreTranslate-compatible HTTP service at LIBRETRANSLATE_URL. Nothing here touches the
database: inbox.services.translation checks who may translate what, and caches the results.
"""

import logging
import os
import signal
import subprocess
import threading
import time
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx
from django.conf import settings
from django.utils.module_loading import import_string
from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from marketplace.accounts.services import READING_LANGUAGES
from marketplace.errors import Conflict, DomainError

logger = logging.getLogger(__name__)

# Beside the reading languages, a few widespread ones written in their own scripts: a message in
# Russian is then named as Russian (which we may not translate) instead of being guessed as the
# closest reading language. Their models are loaded only when a text is in their script.
EXTRA_DETECTED_LANGUAGES = {"ru": "Russian", "zh": "Chinese", "ar": "Arabic"}
LANGUAGE_NAMES = {**READING_LANGUAGES, **EXTRA_DETECTED_LANGUAGES}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


class TranslationUnavailable(Conflict):
    """No configured engine translates this pair of languages (the message's language and the
    target): 409 like the other refusals about the message itself."""

    code = "translation_unavailable"


class TranslationFailed(DomainError):
    """Every engine that should translate this pair failed (crashed, timed out, answered an error):
    a fault on our side, worth retrying later."""

    status = 503
    code = "translation_failed"


class EngineError(Exception):
    """A backend could not translate; the caller tries the next backend."""


# --- Detection -------------------------------------------------------------------------------

_detector: LanguageDetector | None = None
_detector_lock = threading.Lock()


def _build_detector() -> LanguageDetector:
    languages = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
        for code in LANGUAGE_NAMES
        if hasattr(IsoCode639_1, code.upper())  # lingua has no Galician
    ]
    builder = LanguageDetectorBuilder.from_languages(*languages)
    if settings.TRANSLATION_DETECTION_LOW_ACCURACY:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


def language_detector() -> LanguageDetector:
    """One detector per process, built on first use and restricted to LANGUAGE_NAMES. Measured
    (lingua 2.1, Python 3.11): the first detection loads the models, ~2 s and ~210 MB resident
    (~20 MB and 0.1 s in low-accuracy mode); every later one takes well under a millisecond.
    All 75 languages would cost ~9 s and ~910 MB."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                _detector = _build_detector()
    return _detector


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is written in, or None when unsure."""
    language = language_detector().detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language is not None else None


# --- Backends --------------------------------------------------------------------------------


@runtime_checkable
class TranslationBackend(Protocol):
    """An engine that translates text between languages named by ISO 639-1 codes."""

    name: str

    def supports(self, source: str, target: str) -> bool:
        """Whether this engine, as configured and installed here, translates source → target."""
        ...

    def translate(self, text: str, source: str, target: str) -> str:
        """The translated text; raises EngineError when the engine fails."""
        ...


# Apertium names its modes with ISO 639-3 or 639-1 codes, depending on the pair ("spa-eng",
# "fr-es"); a pair installs one mode per direction.
APERTIUM_CODES = {
    "en": ("eng", "en"),
    "es": ("spa", "es"),
    "fr": ("fra", "fr"),
    "ca": ("cat", "ca"),
    "pt": ("por", "pt"),
    "it": ("ita", "it"),
    "gl": ("glg", "gl"),
    "de": ("deu", "de"),
    "nl": ("nld", "nl"),
    "ja": ("jpn", "ja"),
    "ru": ("rus", "ru"),
    "zh": ("zho", "zh"),
    "ar": ("ara", "ar"),
}
APERTIUM_MODES_DIR = Path("/usr/share/apertium/modes")


@cache
def _apertium_modes(binary: str) -> frozenset[str]:
    """The translation directions installed here (asked once per process: installing a pair
    package needs a restart to be seen)."""
    try:
        listed = subprocess.run(  # noqa: S603 - a fixed command, no user input
            [binary, "-l"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.info("Apertium is not usable here (%s): it translates nothing", exc)
        return frozenset()
    modes = frozenset(line.strip() for line in listed.stdout.splitlines() if line.strip())
    if not modes and APERTIUM_MODES_DIR.is_dir():
        modes = frozenset(path.stem for path in APERTIUM_MODES_DIR.glob("*.mode"))
    return modes


class ApertiumBackend:
    """Debian's `apertium` with its language-pair packages (apt-get install apertium
    apertium-eng-spa …), one subprocess per translation. A pair with no package of its own goes
    through Spanish or English when both halves are installed (French → Spanish → English)."""

    name = "apertium"
    pivot_languages = ("es", "en")

    def __init__(self, *, binary: str | None = None, timeout: float | None = None):
        self.binary = binary or settings.APERTIUM_BINARY
        self.timeout = timeout or settings.TRANSLATION_TIMEOUT_SECONDS

    def installed_modes(self) -> frozenset[str]:
        return _apertium_modes(self.binary)

    def _mode(self, source: str, target: str) -> str | None:
        modes = self.installed_modes()
        for source_code in APERTIUM_CODES.get(source, ()):
            for target_code in APERTIUM_CODES.get(target, ()):
                if f"{source_code}-{target_code}" in modes:
                    return f"{source_code}-{target_code}"
        return None

    def route(self, source: str, target: str) -> list[str] | None:
        """The modes to run one after the other, or None when this pair cannot be done here."""
        if direct := self._mode(source, target):
            return [direct]
        for pivot in self.pivot_languages:
            if pivot in (source, target):
                continue
            first, second = self._mode(source, pivot), self._mode(pivot, target)
            if first and second:
                return [first, second]
        return None

    def supports(self, source: str, target: str) -> bool:
        return self.route(source, target) is not None

    def translate(self, text: str, source: str, target: str) -> str:
        route = self.route(source, target)
        if route is None:
            raise EngineError(f"Apertium has no mode for {source}-{target} here")
        for mode in route:
            text = self._run(mode, text)
        return text

    def _run(self, mode: str, text: str) -> str:
        # `apertium` is a shell script running a pipeline: start it in its own process group so
        # that a timeout ends the whole pipeline, not only the shell.
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed arguments; the text goes to stdin
                [self.binary, "-u", mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise EngineError(f"cannot start {self.binary}: {exc}") from exc
        try:
            stdout, stderr = process.communicate(text.encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise EngineError(f"apertium {mode} took longer than {self.timeout} s") from None
        if process.returncode != 0:
            raise EngineError(
                f"apertium {mode} exited with {process.returncode}: {stderr.decode(errors='replace')[:300]}"
            )
        return stdout.decode(errors="replace")


_LANGUAGES_TTL_SECONDS = 600
_LANGUAGES_RETRY_SECONDS = 30
_libretranslate_languages: dict[str, tuple[float, dict[str, frozenset[str]]]] = {}


class LibreTranslateBackend:
    """Any LibreTranslate-compatible HTTP service at LIBRETRANSLATE_URL (off when unset):
    GET /languages says which pairs it has, POST /translate translates."""

    name = "libretranslate"

    def __init__(self, *, url: str | None = None, api_key: str | None = None, timeout: float | None = None):
        self.url = (settings.LIBRETRANSLATE_URL if url is None else url).rstrip("/")
        self.api_key = settings.LIBRETRANSLATE_API_KEY if api_key is None else api_key
        self.timeout = timeout or settings.TRANSLATION_TIMEOUT_SECONDS

    def languages(self) -> dict[str, frozenset[str]]:
        """Source code -> target codes, asked at most every ten minutes per process. A service
        that does not answer translates nothing for the next 30 seconds (it is not asked, so a
        request does not wait for it each time)."""
        if not self.url:
            return {}
        cached = _libretranslate_languages.get(self.url)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = httpx.get(f"{self.url}/languages", timeout=min(self.timeout, 5.0))
            response.raise_for_status()
            entries = response.json()
            all_codes = frozenset(entry["code"] for entry in entries)
            languages = {
                entry["code"]: frozenset(entry.get("targets", all_codes)) - {entry["code"]}
                for entry in entries
            }
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning("LibreTranslate at %s did not list its languages: %s", self.url, exc)
            _libretranslate_languages[self.url] = (time.monotonic() + _LANGUAGES_RETRY_SECONDS, {})
            return {}
        _libretranslate_languages[self.url] = (time.monotonic() + _LANGUAGES_TTL_SECONDS, languages)
        return languages

    def supports(self, source: str, target: str) -> bool:
        return bool(self.url) and target in self.languages().get(source, ())

    def translate(self, text: str, source: str, target: str) -> str:
        payload = {"q": text, "source": source, "target": target, "format": "text"}
        if self.api_key:
            payload["api_key"] = self.api_key
        try:
            response = httpx.post(f"{self.url}/translate", json=payload, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise EngineError(f"LibreTranslate at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200 or not isinstance(body.get("translatedText"), str):
            error = body.get("error") or response.text[:300]
            raise EngineError(f"LibreTranslate answered {response.status_code}: {error}")
        return body["translatedText"]


def translation_backends() -> list[TranslationBackend]:
    return [import_string(path)() for path in settings.TRANSLATION_BACKENDS]


def translate_text(text: str, *, source: str, target: str) -> tuple[str, str]:
    """`text` in `target`, and the name of the backend that translated it. Tries, in order, each
    backend that supports the pair, until one succeeds."""
    tried = False
    for backend in translation_backends():
        if not backend.supports(source, target):
            continue
        tried = True
        try:
            return backend.translate(text, source, target), backend.name
        except EngineError as exc:
            logger.warning("Translation %s->%s by %s failed: %s", source, target, backend.name, exc)
    if tried:
        raise TranslationFailed("The translation engine did not answer; try again in a moment.")
    raise TranslationUnavailable(
        f"Translation from {language_name(source)} into {language_name(target)} is not available here."
    )
