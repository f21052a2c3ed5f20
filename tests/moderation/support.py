"""Small scanners for the moderation page and admin tests (the built-in ones are tested on
their own): a phone number is held for review, "wire me the money" is refused outright."""

import re

from moderation.scanning import Finding

PHONE = re.compile(r"\+?\d[\d ]{6,}\d")
SCAM = re.compile(r"wire me the money", re.IGNORECASE)

TEST_SCANNERS = ["tests.moderation.support.phone_numbers", "tests.moderation.support.scams"]
PHONE_DETAIL = "Phone numbers cannot be shared in messages."
SCAM_DETAIL = "Payments outside the platform are not allowed."
HELD_TEXT = "Sure! Call me on +1 415 555 0123 and we sort it out."  # held by phone_numbers


def phone_numbers(text, *, sender, recipient):
    return [Finding("phone", m.start(), m.end(), 0.8, PHONE_DETAIL) for m in PHONE.finditer(text)]


def scams(text, *, sender, recipient):
    return [Finding("off_platform", m.start(), m.end(), 1.0, SCAM_DETAIL) for m in SCAM.finditer(text)]
