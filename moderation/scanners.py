"""Built-in scanners: contact details, off-platform channels, spam. See moderation.scanning.

Each is `scanner(text, *, sender, recipient) -> list[Finding]`. Spans index the original text,
so the review queue can highlight them. Scores: 1.0 refuses the message (a plain leak),
0.5-0.9 holds it for a moderator (likely but not certain), below 0.5 is only noted.

The quality of the contact scanners is measured by bench/moderation_quality.py over the
corpora in moderation/corpora/.
"""

import hashlib
import logging
import re
from datetime import timedelta
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from phonenumbers.re_util import enable_pattern_cache

from .counters import count_up
from .scanning import Finding

logger = logging.getLogger(__name__)

# phonenumbers compiles its metadata patterns on every call unless told to keep them; across
# several regions they overflow the re module's own cache, which costs more than the match.
enable_pattern_cache()

EMAIL_DETAIL = "Email addresses cannot be shared in messages: keep the conversation here."
PHONE_DETAIL = "Phone numbers cannot be shared in messages: keep the conversation here."
LINK_DETAIL = "Links and handles for other messaging apps or social profiles cannot be shared."
INVITE_DETAIL = "Moving the conversation to another app, email or phone is not allowed."
BLAST_DETAIL = "The same message went to many people in a short time."
LINKS_DETAIL = "Messages with many links are checked before they are delivered."
SPAM_KINDS = ("duplicate_blast", "links", "new_account_burst")
BURST_DETAIL = "New accounts sending many messages quickly are checked before they are delivered."


# --- Normalisation ------------------------------------------------------------------------------

# "j o h n @ g m a i l . c o m", "0 6 1 2 3 4 5 6 7 8": four or more single characters in a row.
SPACED_OUT = re.compile(r"(?<!\S)(?:\S[ \t]){3,}\S(?!\S)")
WORD = re.compile(r"[^\W\d_]+")


class Normalised:
    """The lower-cased text with spaced-out characters joined, the way back to the original
    offsets, and the set of its words (which decides cheaply which patterns are worth running)."""

    __slots__ = ("_index", "text", "words")

    def __init__(self, original: str):
        lowered = original.lower()
        if len(lowered) != len(original):  # a few characters lower-case to two
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
        self._index = None
        self.text = lowered
        if " " in lowered and SPACED_OUT.search(lowered):
            self._join_spaced_out(lowered)
        self.words = frozenset(WORD.findall(self.text))

    def _join_spaced_out(self, lowered: str) -> None:
        chars: list[str] = []
        index: list[int] = []
        last = 0
        for match in SPACED_OUT.finditer(lowered):
            chars.extend(lowered[last : match.start()])
            index.extend(range(last, match.start()))
            for position in range(match.start(), match.end()):
                if not lowered[position].isspace():
                    chars.append(lowered[position])
                    index.append(position)
            last = match.end()
        chars.extend(lowered[last:])
        index.extend(range(last, len(lowered)))
        self.text, self._index = "".join(chars), index

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self._index is None:
            return start, end
        return self._index[start], self._index[end - 1] + 1 if end > start else self._index[start]


@lru_cache(maxsize=512)
def _normalised(text: str) -> Normalised:
    return Normalised(text)


def normalise(text: str) -> Normalised:
    # The contact and off-platform scanners both read the same text once per message.
    if len(text) > 2000:
        return Normalised(text)
    return _normalised(text)


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- Email addresses ----------------------------------------------------------------------------

_AT = (
    r"(?:\s?@\s?|\s?[(\[{<]\s?(?:at|@|arroba|arobase)\s?[)\]}>]\s?|\s(?:at|arroba|arobase|chez)\s"
    r"|[-_]at[-_])"
)
_DOT = (
    r"(?:\s?\.\s?|\s?[(\[{<]\s?(?:dot|\.|punto|point|punkt)\s?[)\]}>]\s?|\s(?:dot|punto|point|punkt)\s"
    r"|[-_]dot[-_])"
)
_WORD = r"[a-z0-9][a-z0-9_%+\-]*"
KNOWN_TLDS = _word_set(
    "com net org io co me info biz fr de es it uk us ca au in ng ru br nl be ch pl pt mx ar dev app ai "
    "xyz edu gov online site email mail eu at se no dk fi ie nz za jp cn tv pro cz sk hu ro gr tr ua"
)
PROVIDER_WORDS = _word_set(
    "gmail googlemail yahoo hotmail outlook icloud protonmail proton gmx aol live yandex zoho orange "
    "wanadoo free laposte sfr web mailbox hey tutanota qq rediffmail uol bol terra libero"
)
PROVIDERS = "(?:" + "|".join(sorted(PROVIDER_WORDS, key=len, reverse=True)) + ")"
AT_WORDS = _word_set("at arroba arobase chez")
DOT_WORDS = _word_set("dot punto point punkt")
# Standard form; any top-level domain.
EMAIL = re.compile(rf"(?<![\w.@]){_WORD}(?:\.{_WORD}){{0,4}}@{_WORD}(?:\.{_WORD}){{0,3}}\.[a-z]{{2,12}}\b")
# Disguised forms: "john dot smith at gmail dot com", "john(at)mail(dot)fr", "tom-at-site-dot-se".
DISGUISED_EMAIL = re.compile(
    rf"(?<![\w.@]){_WORD}(?:{_DOT}{_WORD}){{0,3}}(?P<at>{_AT})(?P<domain>{_WORD})(?:{_DOT}{_WORD}){{0,2}}"
    rf"(?P<dot>{_DOT})(?P<tld>[a-z]{{2,12}})\b"
)
# Spoken with spaces inside the names: "noah brennan 84 at bt internet dot com".
SPOKEN_EMAIL = re.compile(
    rf"(?<![\w.@])(?:{_WORD} ){{0,2}}{_WORD} (?:at|arroba|arobase) (?:{_WORD} ){{0,2}}{_WORD} ?"
    r"(?:dot|punto|point|punkt) ?(?P<tld>[a-z]{2,6})\b"
)
# "john at gmail", "john_smith@hotmail".
PROVIDER_EMAIL = re.compile(rf"(?<![\w.@])(?P<local>{_WORD}(?:{_DOT}{_WORD}){{0,3}}){_AT}{PROVIDERS}\b")
# "my gmail is john.smith99", "mon adresse mail : jean.dupont", "gmail → rosa.mendes".
MAILBOX_NAMED = re.compile(
    r"(?:\b(?:my|mon|ma|mi|mein|meine)\s+(?P<what>gmail|hotmail|yahoo|outlook|icloud|proton(?:mail)?|"
    r"e-?mail(?:\s+address)?|mail|courriel|adresse(?:\s+e?-?mail)?|correo(?:\s+electr[oó]nico)?)"
    r"\s*(?:is|est|es|ist|=|:|-|→|->|starts\s+with|begins\s+with)\s*:?\s*"
    rf"|\b(?P<provider>{PROVIDERS})\s*(?:→|->|=>|:)\s*)"
    r"(?P<handle>[a-z0-9][a-z0-9._\-]{2,40})"
)
MAILBOX_OWNERS = _word_set("my mon ma mi mein meine")
HAS_DIGIT_OR_DOT = re.compile(r"[\d._]")
NOT_A_LOCAL_PART = _word_set(
    "i im am is are me us we you he she it they them here there be was were not only just look "
    "meet available back home work office be online"
)


def _emails(normalised: Normalised) -> list[Finding]:
    text, words = normalised.text, normalised.words
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(start, end):
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        findings.append(Finding("email", *normalised.span(start, end), 1.0, EMAIL_DETAIL))

    has_at = "@" in text or not AT_WORDS.isdisjoint(words)
    if "@" in text:
        for match in EMAIL.finditer(text):
            add(match.start(), match.end())
    if has_at and ("." in text or not DOT_WORDS.isdisjoint(words)):
        for match in _accepted(DISGUISED_EMAIL, text, _disguises_an_address):
            add(match.start(), match.end())
        if not DOT_WORDS.isdisjoint(words):
            for match in _accepted(SPOKEN_EMAIL, text, lambda m: m.group("tld") in KNOWN_TLDS):
                add(match.start(), match.end())
    if has_at and not PROVIDER_WORDS.isdisjoint(words):
        for match in _accepted(PROVIDER_EMAIL, text, _names_a_mailbox):
            add(match.start(), match.end())
    if not MAILBOX_OWNERS.isdisjoint(words) or not PROVIDER_WORDS.isdisjoint(words):
        for match in _accepted(MAILBOX_NAMED, text, _gives_a_mailbox):
            add(match.start("handle"), match.end("handle"))
    return findings


def _accepted(pattern: re.Pattern, text: str, accept):
    """The matches of `pattern` that `accept` keeps. A refused match does not hide a leak that
    starts inside it ("write to me at john dot smith at gmail dot com"): the search goes on
    from the next character."""
    position = 0
    while (match := pattern.search(text, position)) is not None:
        if accept(match):
            yield match
            position = max(match.end(), match.start() + 1)
        else:
            position = match.start() + 1


def _disguises_an_address(match: re.Match) -> bool:
    at_raw, dot_raw = match.group("at"), match.group("dot")
    at, dot = at_raw.strip(" -_"), dot_raw.strip(" -_")
    if at == "at" and dot == "." and match.group("domain") not in PROVIDER_WORDS:
        return False  # "look at example.com" names a website; "at ... dot com" disguises an address
    if match.group("tld") in KNOWN_TLDS:
        return True
    return any(bracket in dot_raw for bracket in "([{<")  # "priya (at) raman (dot) design"


def _names_a_mailbox(match: re.Match) -> bool:
    local = match.group("local")
    return len(local) >= 3 and local not in NOT_A_LOCAL_PART


def _gives_a_mailbox(match: re.Match) -> bool:
    what, provider = match.group("what"), match.group("provider")
    if provider == "live":
        return False  # "live:" starts a Skype id, which off_platform reports
    generic = what is not None and what not in PROVIDER_WORDS and not what.startswith("proton")
    # "my email is below", "mon adresse est fausse": a generic word needs a handle-like answer.
    return not generic or bool(HAS_DIGIT_OR_DOT.search(match.group("handle").strip("._-")))


# --- Phone numbers ------------------------------------------------------------------------------

PHONE_CANDIDATE = re.compile(
    r"(?<![\w#@/$€£¥.,:+\-])(?:\+|00)?\s?\(?\d[\d \t.\-()/]{5,25}\d(?![\w%€$£¥]|[.,:/]\d)"
)
DATE_LIKE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|(?:19|20)\d\d\s?[-/\s]\s?(?:19|20)\d\d"
)
# Numbers that are something else when one of these words comes shortly before them.
NOT_A_PHONE_WORDS = re.compile(
    r"\b(?:orders?|invoices?|tickets?|ref|reference|isbn|issn|sku|id|ids|tracking|n°|commande|"
    r"facture|pedido|factura|bestell\w*|rechnung\w*|ean|upc|gtin|serial|iban|account|case|build|"
    r"version|release|v|size|sizes|resolution|postcode|zip|code|pin|batch|lot|item|article|pages?|vat|"
    r"tax|siret|siren|ein|transaction|payment|receipt|dispute|firmware|chrome|firefox|safari|edge|ios|"
    r"android|node|python|usd|eur|gbp|chf|inr|ngn)\b(?:\s+(?:number|num|no\.?|nr\.?|#))?|\bno\.|\bnr\.?|#|\$|€|£|¥"
)
CURRENCY_AFTER = re.compile(r"\s?(?:€|\$|£|usd|eur|gbp|euros?|dollars?|words|px|dpi|mb|gb|kb|k|%)")
PHONE_CONTEXT = re.compile(
    r"(?:call|phone|tel|telephone|mobile|cell|whats\s?app|number|num|my digits|text|sms|reach|contact|ring|"
    r"dial|numéro|numero|portable|appelle|téléphone|teléfono|telefono|móvil|movil|llama|llámame|"
    r"handy|ruf|nummer|wa|viber|signal|telegram)"
)
SPELLED_DIGITS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "zéro": "0", "un": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "sept": "7",
    "huit": "8", "neuf": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9",
    "null": "0", "eins": "1", "zwei": "2", "drei": "3", "vier": "4", "fünf": "5", "sechs": "6",
    "sieben": "7", "acht": "8", "neun": "9",
}  # fmt: skip
SPELLED_WORDS = frozenset(SPELLED_DIGITS) | {"double", "triple"}
_DIGIT_TOKEN = r"(?:\d+|double|triple|" + "|".join(sorted(SPELLED_DIGITS, key=len, reverse=True)) + ")"
SPELLED_NUMBER = re.compile(rf"\b{_DIGIT_TOKEN}(?:[\s,.\-/]+{_DIGIT_TOKEN}){{2,}}\b")
_TOKEN = re.compile(_DIGIT_TOKEN)
NON_DIGITS = re.compile(r"\D")
OTHER_SEPARATORS = re.compile(r"[\s\-()/]")


def phone_regions() -> tuple[str, ...]:
    return tuple(settings.MODERATION_PHONE_REGIONS)


@lru_cache(maxsize=4096)
def _valid_somewhere(digits: str, regions: tuple[str, ...]) -> bool:
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _international(digits: str) -> tuple[bool, bool]:
    """(valid, possible) for a number written with its country code."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False, False
    if phonenumbers.is_valid_number(number):
        return True, True
    return False, phonenumbers.is_possible_number(number)


def _something_else(candidate: str, before: str) -> bool:
    """A date, a version, or a number named as an order, invoice, ISBN... just before it."""
    if DATE_LIKE.fullmatch(candidate):
        return True
    dotted = "." in candidate and not OTHER_SEPARATORS.search(candidate)
    if dotted and any(len(group) == 1 for group in candidate.split(".")):
        return True  # 119.0.6045.159, 4.18.2.117
    named = [match.end() for match in NOT_A_PHONE_WORDS.finditer(before)]
    return bool(named) and not PHONE_CONTEXT.search(before, named[-1])


def _phone_score(candidate: str, before: str, after: str) -> float:
    digits = NON_DIGITS.sub("", candidate)
    if not 7 <= len(digits) <= 15:
        return 0.0
    stripped = candidate.strip()
    context = bool(PHONE_CONTEXT.search(before))
    if stripped.startswith("+"):
        valid, possible = _international(digits)
        return 1.0 if valid else (0.8 if possible else (0.6 if context else 0.0))
    if _something_else(stripped, before) or CURRENCY_AFTER.match(after):
        return 0.0
    if stripped.startswith("00"):
        valid, possible = _international(digits[2:])
        if valid or possible:
            return 1.0 if valid else 0.8
    if _valid_somewhere(digits, phone_regions()):
        if context or len(digits) >= 10:
            return 1.0
        # Seven or eight digits with nothing saying "phone" are as often a code or an amount.
        return 0.8 if len(digits) >= 9 else 0.4
    return 0.7 if context and len(digits) >= 8 else 0.0


def _phones(normalised: Normalised) -> list[Finding]:
    text = normalised.text
    findings: list[Finding] = []
    if sum(map(str.isdigit, text)) >= 7:
        for match in PHONE_CANDIDATE.finditer(text):
            start = match.start()
            score = _phone_score(match.group(), text[max(0, start - 40) : start], text[match.end() :][:12])
            if score:
                findings.append(Finding("phone", *normalised.span(start, match.end()), score, PHONE_DETAIL))
    if SPELLED_WORDS.isdisjoint(normalised.words):
        return findings
    for match in SPELLED_NUMBER.finditer(text):
        tokens = _TOKEN.findall(match.group())
        spelled = sum(not token.isdigit() for token in tokens)
        if not spelled or (spelled == 1 and len(tokens) < 4):
            continue  # plain digits were judged above; "one 1920 1080" is not a number
        digits = _spell(tokens)
        if 7 <= len(digits) <= 15 and not any(f.start <= match.start() < f.end for f in findings):
            findings.append(Finding("phone", *normalised.span(match.start(), match.end()), 1.0, PHONE_DETAIL))
    return findings


def _spell(tokens: list[str]) -> str:
    digits, repeat = [], 1
    for word in tokens:
        if word == "double":
            repeat = 2
        elif word == "triple":
            repeat = 3
        else:
            digits.append((word if word.isdigit() else SPELLED_DIGITS[word]) * repeat)
            repeat = 1
    return "".join(digits)


def contact_details(text: str, *, sender=None, recipient=None) -> list[Finding]:
    """Email addresses and phone numbers, plain or disguised."""
    normalised = normalise(text)
    return _emails(normalised) + _phones(normalised)


# --- Off-platform channels ----------------------------------------------------------------------

OFF_PLATFORM_LINK = re.compile(
    r"(?:https?://)?(?:www\.)?(?:wa\.me|api\.whatsapp\.com|chat\.whatsapp\.com|t\.me|telegram\.(?:me|dog)|"
    r"discord\.gg|discord(?:app)?\.com/(?:invite|users)|join\.skype\.com|m\.me|fb\.com|facebook\.com|"
    r"instagram\.com|instagr\.am|twitter\.com|x\.com|tiktok\.com|linkedin\.com/in|signal\.me|"
    r"snapchat\.com/add|u\.wechat\.com|vb\.me|line\.me|zalo\.me|open\.kakao\.com|reddit\.com/u(?:ser)?|"
    r"calendly\.com|zoom\.us/j|meet\.google\.com|behance\.net)/\S*"
    r"|\b(?:skype|viber|whatsapp|tg|sgnl)://\S+|\blive:[a-z0-9._\-]{3,}|(?<![\w/])/in/[a-z0-9\-]{3,}"
    r"|\b(?:wa|t|whatsapp|telegram|discord|instagram|facebook|fb|twitter|tiktok|linkedin|snapchat)"
    r" ?(?:dot|\.) ?(?:me|gg|com) ?(?:slash|/)"
)
LINK_WORDS = _word_set(
    "wa whatsapp t telegram discord discordapp skype m fb facebook instagram instagr twitter x tiktok "
    "linkedin signal snapchat wechat vb line zalo kakao reddit calendly zoom meet behance live viber "
    "tg sgnl in"
)
_CHANNEL = (
    r"whats\s?app|telegram|skype|discord|wechat|weixin|viber|snapchat|instagram|insta|twitter|"
    r"tiktok|facebook|messenger|linkedin|kik|kakaotalk|kakao|zalo|reddit|signal|line|threads|snap|"
    r"disc|dc|ig|tg|wa|x|fb"
)
CHANNEL_WORDS = _word_set(
    "whatsapp whats telegram skype discord wechat weixin viber snapchat instagram insta twitter tiktok "
    "facebook messenger linkedin kik kakaotalk kakao zalo reddit signal line threads snap disc dc ig "
    "tg wa x fb"
)
# Words that also mean something ordinary need an explicit handle after them.
AMBIGUOUS_CHANNELS = frozenset({"signal", "line", "threads", "snap", "x", "wa", "fb", "disc", "dc"})
CHANNEL_HANDLE = re.compile(
    rf"\b(?P<channel>{_CHANNEL})\b(?:\s+(?:me|id|handle|username|user\s?name|name|number|account|pseudo))?"
    r"\s*(?P<sep>:|=|[-\u2013](?=\s)|\bis\b|\best\b|\bes\b|\bist\b|\bat\b|\bas\b)?\s*[\"'“]?"
    r"(?P<handle>@?[a-z0-9][\w.\-]{1,31}(?:#\d{4})?)"
)
HANDLE_WORDS_AFTER_CHANNEL = _word_set(
    "me us you it is and or the a an to for in on with chat app group call calls video message messages "
    "style clone bot bots api integration feature features account accounts business ads marketing "
    "campaign campaigns page pages post posts story stories reel reels profile profiles link links "
    "template templates icon icons logo logos share sharing login button buttons feed widget widgets "
    "server servers channel channels community theme notifications support web desktop well usual "
    "before always soon planned discussed agreed mentioned requested needed backup"
)
WEAK_SEPARATORS = frozenset({"is", "est", "es", "ist", "at", "as"})
DISCORD_TAG = re.compile(r"(?<![\w#])[a-z0-9_.]{2,32}#\d{4}\b")
INVITATION = re.compile(
    r"\b(?:(?:whats\s?app|telegram|skype|discord|signal|viber|wechat|text|sms|email|e-mail|mail|"
    r"call|ring|dm|ping|message|contact|reach|add|find|hit)\s+me\s+(?:up\s+)?(?:on|at|via|over|through|"
    r"directly|privately|outside)\b"
    r"|(?:whats\s?app|email|e-mail|text|dm)\s+me\b(?!\s+(?:here|through|via the|on the platform|in the))"
    r"|send\s+me\s+an?\s+(?:e-?mail|text|sms)\b|give\s+me\s+a\s+(?:call|ring)\b"
    r"|my\s+(?:personal\s+)?(?:number|phone|cell|mobile|whats\s?app|telegram|skype|discord)\s+(?:is|number)\b"
    r"|my\s+personal\s+(?:number|phone|e-?mail|mail|cell|mobile|contact)"
    r"|(?:let'?s|we\s+can|could\s+we|can\s+we)\s+(?:move|continue|talk|chat|switch|go|hop)\s+(?:this\s+)?"
    r"(?:on|to|over|via)\s+"
    r"(?:whats\s?app|telegram|skype|discord|signal|viber|wechat|email|e-mail|phone|instagram|facebook|messenger)\b"
    r"|\bon\s+(?:whats\s?app|telegram|skype|discord|signal|viber|wechat|facebook|instagram|insta|snapchat|"
    r"linkedin|kakaotalk|line)\b[^.?!]{0,30}?\b(?:message|dm|add|contact|text|call|write)\s+me\b"
    r"|(?:écris|ecris|écrivez|appelle|appelez|contacte|contactez)[- ]moi\b"
    r"|\bmon\s+(?:numéro|numero|portable|whatsapp)\b"
    r"|(?:escr[ií]beme|ll[aá]mame|cont[aá]ctame)\b|\bmi\s+(?:n[uú]mero|whatsapp|tel[eé]fono|m[oó]vil)\b"
    r"|\bruf\s+mich\b|\bschreib(?:en\s+sie)?\s+mir\s+(?:auf|per|über|an)\b|\bmeine\s+(?:nummer|handynummer)\b)"
)
INVITATION_WORDS = _word_set(
    "me my let lets we can could send give on moi mon écris ecris écrivez appelle appelez contacte "
    "contactez escríbeme escribeme llámame llamame contáctame contactame mi ruf schreib schreiben meine"
)
SOCIAL_HANDLE = re.compile(r"(?<![\w@./:])@(?P<handle>[a-z0-9_][a-z0-9_.]{2,29})(?![\w@(/]|\.[a-z])")
SOCIAL_CONTEXT = re.compile(
    r"\b(?:follow(?:\s+me)?|find\s+me|dm(?:\s+me)?|add\s+me|insta(?:gram)?|ig|twitter|tiktok|threads|"
    r"snap(?:chat)?|handle|telegram|tg|x|twitch|youtube|телеграм\w*|инст\w*)\b[^@]{0,20}$"
)


def off_platform(text: str, *, sender=None, recipient=None) -> list[Finding]:
    """Links and handles for other messaging apps and social networks, and invitations to
    move there ("whatsapp me", "call me on ...")."""
    normalised = normalise(text)
    lowered, words = normalised.text, normalised.words
    findings: list[Finding] = []

    def add(start, end, score, detail):
        findings.append(Finding("off_platform", *normalised.span(start, end), score, detail))

    if not LINK_WORDS.isdisjoint(words):
        for match in OFF_PLATFORM_LINK.finditer(lowered):
            add(match.start(), match.end(), 1.0, LINK_DETAIL)
    if not CHANNEL_WORDS.isdisjoint(words):
        for match in CHANNEL_HANDLE.finditer(lowered):
            if _names_a_handle(match, lowered):
                add(match.start(), match.end(), 1.0, LINK_DETAIL)
        if "#" in lowered and not words.isdisjoint({"discord", "dc", "disc"}):
            for match in DISCORD_TAG.finditer(lowered):
                add(match.start(), match.end(), 1.0, LINK_DETAIL)
    if not INVITATION_WORDS.isdisjoint(words):
        for match in INVITATION.finditer(lowered):
            add(match.start(), match.end(), 0.7, INVITE_DETAIL)
    if "@" in lowered:
        for match in SOCIAL_HANDLE.finditer(lowered):
            with_context = SOCIAL_CONTEXT.search(lowered[max(0, match.start() - 40) : match.start()])
            add(match.start(), match.end(), 1.0 if with_context else 0.3, LINK_DETAIL)
    return findings


def _names_a_handle(match: re.Match, lowered: str) -> bool:
    """Whether "<channel> <separator> <word>" gives a handle ("tg: johnsmith", "discord is
    nik3d", "on telegram as sofia") rather than talking about the app ("telegram is down")."""
    channel, separator, handle = match.group("channel"), match.group("sep"), match.group("handle")
    bare = handle.lstrip("@")
    if bare in HANDLE_WORDS_AFTER_CHANNEL or (bare.isdigit() and len(bare) < 5) or not WORD.search(bare):
        return False
    before = lowered[max(0, match.start() - 3) : match.start()]
    handle_like = bool(HAS_DIGIT_OR_DOT.search(bare))
    explicit = (
        handle.startswith("@")
        or bool(re.search(r"#\d{4}$", handle))
        or before == "my "
        or (separator == "as" and before == "on ")
    )
    if channel in AMBIGUOUS_CHANNELS:
        return explicit or (separator in {":", "="} and handle_like)
    if separator in WEAK_SEPARATORS:
        return explicit or handle_like  # "telegram is popular", "skype is down"
    return explicit or bool(separator) or handle_like


# --- Spam ---------------------------------------------------------------------------------------

URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+|\b[a-z0-9\-]+\.(?:com|net|org|io|co|ru|xyz|info|biz|top)/\S*")
FINGERPRINT_NOISE = re.compile(r"[\W\d_]+")


def fingerprint(text: str, recipient=None) -> str:
    """What stays of a text once greetings' names, digits, punctuation and spacing are gone:
    templated blasts ("Hi Anna, ..." / "Hi Bob, ...") share it."""
    lowered = text.lower()
    for name in sorted(_names(recipient), key=len, reverse=True):
        lowered = lowered.replace(name, " ")
    return hashlib.blake2b(FINGERPRINT_NOISE.sub("", lowered).encode(), digest_size=12).hexdigest()


def _names(user) -> set[str]:
    """How a greeting may name `user`: username, names, display name and its words."""
    if user is None:
        return set()
    names = {getattr(user, field, "") for field in ("username", "first_name", "last_name")}
    try:
        display_name = user.profile.display_name
    except ObjectDoesNotExist:
        display_name = ""
    names.add(display_name)
    names.update(display_name.split())
    return {name.lower() for name in names if len(name) >= 2}


def _duplicate_blast(text: str, sender, recipient) -> list[Finding]:
    if sender is None or recipient is None or len(text) < settings.MODERATION_BLAST_MIN_LENGTH:
        return []
    key = f"moderation:blast:{sender.pk}:{fingerprint(text, recipient)}"
    window = settings.MODERATION_BLAST_WINDOW_SECONDS
    try:
        recipients = set(cache.get(key) or ())
        recipients.add(recipient.pk)
        cache.set(key, sorted(recipients), timeout=window)
    except Exception:  # the cache is unreachable: not counted (fails open, like the other counters)
        logger.warning("duplicate-blast check skipped: the cache is unavailable")
        return []
    if len(recipients) > settings.MODERATION_BLAST_RECIPIENTS:
        return [Finding("duplicate_blast", 0, 0, 0.8, BLAST_DETAIL)]
    return []


def _link_heavy(text: str) -> list[Finding]:
    links = URL.findall(text.lower())
    if len(links) >= settings.MODERATION_MAX_LINKS:
        return [Finding("links", 0, 0, 0.6, LINKS_DETAIL)]
    return []


def _new_account_burst(sender, recipient) -> list[Finding]:
    """A new account's messages to people who have not answered it, counted over a short
    window: a lively chat with someone who writes back is not a burst."""
    if sender is None or sender.pk is None:
        return []
    joined = getattr(sender, "date_joined", None)
    if joined is None or joined < timezone.now() - timedelta(days=settings.MODERATION_NEW_ACCOUNT_DAYS):
        return []
    if recipient is not None and _has_written_to(recipient, sender):
        return []
    count = count_up(f"moderation:burst:{sender.pk}", window_seconds=settings.MODERATION_BURST_WINDOW_SECONDS)
    if count > settings.MODERATION_NEW_ACCOUNT_BURST:
        return [Finding("new_account_burst", 0, 0, 0.6, BURST_DETAIL)]
    return []


def _has_written_to(author, reader) -> bool:
    from inbox.models import Message

    low, high = sorted((author.pk, reader.pk))
    return Message.objects.filter(
        sender=author,
        conversation__user_low_id=low,
        conversation__user_high_id=high,
        status=Message.Status.VISIBLE,
    ).exists()


def spam(text: str, *, sender=None, recipient=None) -> list[Finding]:
    """The same or near-same text sent to many people in a short window, link-heavy messages,
    and bursts from new accounts. Counters live in the cache (Redis in production)."""
    return (
        _duplicate_blast(text, sender, recipient) + _link_heavy(text) + _new_account_burst(sender, recipient)
    )
