"""The scanning hook every message and edit goes through before it is stored.

A scanner is any callable `scanner(text, *, sender, recipient) -> list[Finding]`, listed by
dotted path in settings.MODERATION_SCANNERS (operators add their own). The findings combine
into one verdict: allow, hold for review, or reject. A scanner that raises does not lose the
message: it is held, and the error logged.
"""

import logging
from dataclasses import asdict, dataclass, field
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from marketplace.errors import Forbidden

logger = logging.getLogger(__name__)

ALLOW, HOLD, REJECT = "allow", "hold", "reject"


@dataclass(frozen=True)
class Finding:
    kind: str  # e.g. "email", "phone", "off_platform", "duplicate_blast"
    start: int  # span in the scanned text (start == end when it concerns the whole message)
    end: int
    score: float  # 0..1: how sure, and how serious
    detail: str = ""  # a short human sentence for the sender and the reviewer

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    action: str = ALLOW
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""  # what the sender is told

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW

    @property
    def rule(self) -> str:
        """The rule the text breaks, in one sentence (the strongest finding's), without what
        happens next: for refusals that keep nothing, such as an edit."""
        if self.findings and self.findings[0].detail:
            return self.findings[0].detail
        if self.findings:
            return "This text may break the messaging rules."
        return "This text could not be checked automatically; try again in a moment."


@cache
def _scanner(path: str):
    return import_string(path)


def scan(text: str, *, sender, recipient) -> Verdict:
    """Run every configured scanner and combine their findings. A scanner that cannot be
    imported (a typo in the settings) counts as one that failed."""
    findings: list[Finding] = []
    failed = False
    for path in settings.MODERATION_SCANNERS:
        try:
            findings.extend(_scanner(path)(text, sender=sender, recipient=recipient))
        except Exception:
            logger.exception("moderation scanner %s failed; holding the message for review", path)
            failed = True
    return combine(findings, scanner_failed=failed)


def combine(findings: list[Finding], *, scanner_failed: bool = False) -> Verdict:
    """The strongest finding decides: at MODERATION_REJECT_SCORE and above the message is
    refused, at MODERATION_HOLD_SCORE and above it waits for a reviewer."""
    findings = sorted(findings, key=lambda f: (-f.score, f.start))
    top = findings[0].score if findings else 0.0
    if top >= settings.MODERATION_REJECT_SCORE:
        return Verdict(REJECT, findings, findings[0].detail or "This message breaks the messaging rules.")
    if top >= settings.MODERATION_HOLD_SCORE:
        return Verdict(
            HOLD,
            findings,
            (findings[0].detail or "This message may break the messaging rules.")
            + " A moderator will check it before it is delivered.",
        )
    if scanner_failed:
        return Verdict(HOLD, findings, "We could not check this message automatically; a moderator will.")
    return Verdict(ALLOW, findings)


def screen(text: str, *, sender, recipient, what: str) -> None:
    """For texts that cannot wait for a reviewer, because an action hangs on them (an order
    request, an offer, a delivery, a cancellation): anything but allow refuses, nothing is
    stored, and the user is told which rule applied so they can rewrite it."""
    verdict = scan(text, sender=sender, recipient=recipient)
    if not verdict.allowed:
        raise Forbidden(f"{what} was not sent. {verdict.rule}", code="text_refused")
