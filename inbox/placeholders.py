"""Placeholders a seller writes in saved texts (auto-reply, quick responses), filled for the
conversation they are used in: "Hi {buyer_first_name}, thanks for writing!".

A word in braces that is not a known placeholder is refused when the text is saved, so a typo
never reaches a buyer as "{buyer_nmae}". Other braces (code, JSON) are left alone.
"""

import re
from dataclasses import dataclass

from marketplace.errors import InvalidInput

PLACEHOLDER_PATTERN = re.compile(r"\{([a-z][a-z_]*)\}")


@dataclass(frozen=True)
class Placeholder:
    name: str
    meaning: str


BUYER_NAME = Placeholder("buyer_name", "the buyer's display name")
BUYER_FIRST_NAME = Placeholder("buyer_first_name", "the first word of the buyer's display name")
SELLER_NAME = Placeholder("seller_name", "your display name")
ORDER_NUMBER = Placeholder("order_number", "the number of the conversation's open order")

QUICK_RESPONSE_PLACEHOLDERS = (BUYER_NAME, BUYER_FIRST_NAME, SELLER_NAME, ORDER_NUMBER)
# An auto-reply answers a first contact: there is no order yet.
AUTO_REPLY_PLACEHOLDERS = (BUYER_NAME, BUYER_FIRST_NAME, SELLER_NAME)


def known_placeholders_pattern(allowed: tuple[Placeholder, ...]) -> str:
    """A JSON Schema pattern for what ensure_known_placeholders accepts: no "{word}" but these."""
    names = "|".join(placeholder.name for placeholder in allowed)
    return rf"^(?![\s\S]*\{{(?!(?:{names})\}})[a-z][a-z_]*\}})"


def ensure_known_placeholders(text: str, allowed: tuple[Placeholder, ...]) -> None:
    names = {placeholder.name for placeholder in allowed}
    unknown = sorted({match for match in PLACEHOLDER_PATTERN.findall(text) if match not in names})
    if unknown:
        choices = ", ".join("{" + name + "}" for name in sorted(names))
        raise InvalidInput(
            f"Unknown placeholder {', '.join('{' + name + '}' for name in unknown)}; use {choices}.",
            code="unknown_placeholder",
        )


def placeholder_values(*, seller, buyer, order_number: str | None = None) -> dict[str, str]:
    """What each placeholder becomes between these two people. Without an open order
    {order_number} stays as written, for the seller to fill in."""
    buyer_name = buyer.profile.display_name
    values = {
        BUYER_NAME.name: buyer_name,
        BUYER_FIRST_NAME.name: buyer_name.split()[0] if buyer_name.split() else buyer_name,
        SELLER_NAME.name: seller.profile.display_name,
    }
    if order_number:
        values[ORDER_NUMBER.name] = order_number
    return values


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER_PATTERN.sub(lambda match: values.get(match.group(1), match.group(0)), text)
