"""Numbers as the rewriter reads them: found on a page, tracking numbers, trunk prefixes."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from dni_engine.phone import parse_number

__all__ = [
    "Found",
    "NationalPrefix",
    "Target",
    "national_prefix",
    "parse_tracking_number",
    "target_of",
    "tracking_number",
]


class Found(NamedTuple):
    """A number found in a text: where, which (country code and national digits), and
    whether the page wrote it with its country code."""

    start: int
    end: int
    cc: int
    nsn: str
    international: bool
    link: bool


@dataclass(frozen=True, slots=True)
class Target:
    """A tracking number, parsed once: what every replacement is written from."""

    cc: int
    nsn: str
    e164: str
    national: str
    international: str


@functools.lru_cache(maxsize=4096)
def target_of(number: str, country: str | None) -> Target | None:
    """The tracking number ``number`` parsed once for writing (cached); ``None`` if unusable."""
    parsed = tracking_number(number, country)
    if parsed is None:
        return None
    return Target(
        cc=parsed.country_code or 0,
        nsn=phonenumbers.national_significant_number(parsed),
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
        international=phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL),
    )


def tracking_number(number: str, country: str | None) -> phonenumbers.PhoneNumber | None:
    """``number`` parsed as a tracking number (digits, possible), or ``None``."""
    # Digits only: a tracking number with letters in it is a mistake, not a vanity number.
    if not isinstance(number, str) or any(ch.isalpha() for ch in number):
        return None
    try:
        parsed = parse_number(number, country)
    except ValueError:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def parse_tracking_number(number: str, country: str | None = None) -> str | None:
    """``number`` in E.164 if it can be shown as a tracking number, else ``None``.

    E.164 is expected; a national form is read in ``country``. Letters are not
    accepted, and the number must be a possible one for its country.
    """
    parsed = tracking_number(number, country)
    return None if parsed is None else phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


class NationalPrefix:
    """A country code's national (trunk) prefix, and which numbers are written with it.

    Follows the formatting rules ``phonenumbers`` keeps per number range, the way
    ``PhoneNumberMatcher`` decides whether a national number lacks its prefix:
    ``0117 409 0162`` is how a Bristol number is written, ``117 409 0162`` is
    not; ``(800) 444-2277`` needs no ``1``.
    """

    _FIRST_GROUP_ONLY = re.compile(r"\(?\\1\)?")

    def __init__(self, cc: int) -> None:
        region = phonenumbers.region_code_for_country_code(cc)
        metadata = PhoneMetadata.metadata_for_region(region, None)
        self.digits: str = (metadata.national_prefix or "") if metadata is not None else ""
        self._formats = tuple(
            (
                re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
                re.compile(f.pattern or "$^"),
                bool(f.national_prefix_formatting_rule)
                and not f.national_prefix_optional_when_formatting
                and not self._FIRST_GROUP_ONLY.fullmatch(f.national_prefix_formatting_rule or ""),
            )
            for f in (metadata.number_format if metadata is not None else ())
        )

    def needed(self, nsn: str) -> bool:
        """Whether the national number ``nsn`` is written with the prefix in national form."""
        for leading, pattern, needed in self._formats:
            if (leading is None or leading.match(nsn)) and pattern.fullmatch(nsn):
                return needed and bool(self.digits)
        return False


@functools.lru_cache(maxsize=64)
def national_prefix(cc: int) -> NationalPrefix:
    """The :class:`NationalPrefix` of country code ``cc`` (cached)."""
    return NationalPrefix(cc)
