"""Phone number helpers on top of ``phonenumbers``.

Vanity letters map to keypad digits, written formatting is stripped, and numbers
are parsed in the context of a pool's country.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

__all__ = [
    "FORMATTING_CHARS",
    "SUPPORTED_COUNTRIES",
    "VANITY_TABLE",
    "country_of",
    "e164",
    "keypad_letters",
    "letters_to_digits",
    "number_kind",
    "parse_number",
    "strip_formatting",
]

# Characters people use to lay out a phone number; stripped before counting digits.
FORMATTING_CHARS = frozenset(" \t-.()/\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2212")

_KEYPAD = {
    **dict.fromkeys("ABC", "2"),
    **dict.fromkeys("DEF", "3"),
    **dict.fromkeys("GHI", "4"),
    **dict.fromkeys("JKL", "5"),
    **dict.fromkeys("MNO", "6"),
    **dict.fromkeys("PQRS", "7"),
    **dict.fromkeys("TUV", "8"),
    **dict.fromkeys("WXYZ", "9"),
}
VANITY_TABLE = str.maketrans({**_KEYPAD, **{k.lower(): v for k, v in _KEYPAD.items()}})

SUPPORTED_COUNTRIES: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)


def letters_to_digits(text: str) -> str:
    """Map vanity letters to their keypad digits (``'800444CARS'`` -> ``'8004442277'``).

    Every other character is left as it is.
    """
    return text.translate(VANITY_TABLE)


def keypad_letters(digit: str) -> str:
    """The upper-case letters on a phone keypad's ``digit`` key (``'2'`` -> ``'ABC'``).

    Digits without letters (``0``, ``1``) and anything else give ``''``.
    """
    return "".join(letter for letter, key in _KEYPAD.items() if key == digit)


def strip_formatting(text: str) -> str:
    """Drop layout characters (spaces, dots, dashes, slashes, parentheses, NBSP).

    A leading ``+`` is kept; nothing else is changed.
    """
    return "".join(ch for ch in text if ch not in FORMATTING_CHARS)


def parse_number(text: str, country: str | None) -> PhoneNumber:
    """Parse a written phone number, vanity letters allowed, in ``country``'s context.

    ``country`` (ISO 3166 alpha-2) is used for numbers written without ``+``.
    Raises ``ValueError`` with a plain reason when the text is not a phone number.
    """
    digits = letters_to_digits(strip_formatting(text.strip()))
    if not digits:
        raise ValueError("empty phone number")
    if not digits.startswith("+") and country is None:
        raise ValueError("written without +country code and the pool's country is unknown")
    try:
        return phonenumbers.parse(digits, country)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({_parse_reason(exc)})") from None


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "unparseable")


def e164(number: PhoneNumber) -> str:
    """Format a parsed number as E.164 (``+441174090162``)."""
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def country_of(number: PhoneNumber) -> str | None:
    """The ISO country of a parsed number, or ``None`` for non-geographic codes."""
    region = phonenumbers.region_code_for_number(number)
    if region is None or region == phonenumbers.UNKNOWN_REGION or region == "001":
        return None
    return str(region)


def number_kind(number: PhoneNumber) -> str:
    """Describe a number the way pools are ordered: geographic, tollfree, national or mobile."""
    kind = phonenumbers.number_type(number)
    if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "geographic"
    if kind == PhoneNumberType.TOLL_FREE:
        return "tollfree"
    if kind == PhoneNumberType.MOBILE:
        return "mobile"
    if kind in (
        PhoneNumberType.UAN,
        PhoneNumberType.VOIP,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PERSONAL_NUMBER,
    ):
        return "national"
    return "other"
