"""Numbers as the rewriter reads them: found on a page, tracking numbers, trunk prefixes."""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from itertools import product
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from dni_engine.phone import parse_number

__all__ = [
    "INTERNATIONAL_KINDS",
    "Form",
    "Found",
    "NationalPrefix",
    "Target",
    "canonical_text",
    "national_prefix",
    "parse_tracking_number",
    "phone_context",
    "target_of",
    "tracking_number",
    "written_forms",
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


#: The kinds of :class:`Form` written with the country code.
INTERNATIONAL_KINDS = frozenset({"+", "00", "+(0)", "00(0)"})

# A tel: target's parameters after the number, up to its phone-context (RFC 3966).
_PHONE_CONTEXT = re.compile(
    r"((?:;(?!(?i:phone-context)=)[^;\"'\t\n\f\r >]*)*)(;(?i:phone-context)=([^;\"'\t\n\f\r >]*))"
)


def phone_context(text: str, end: int) -> re.Match[str] | None:
    """The ``;phone-context=`` parameter of the ``tel:`` target whose number ends at ``end``.

    Group 1 is the parameters before it (``;ext=12``, kept), group 2 the
    parameter itself, group 3 its value; ``None`` without one.
    """
    return _PHONE_CONTEXT.match(text, end)


class Form(NamedTuple):
    """One way a number is written, as its digits (``+`` first for a ``+CC`` form).

    ``kind`` names the way (``+``, ``00``, ``+(0)``, ``00(0)``, ``national``,
    ``bare`` or ``prefix:P`` for another national prefix ``P``); the first
    ``prefix`` digits are the prefix (international access, country code,
    trunk), the rest is what is grouped like the number's own digits.
    """

    digits: str
    kind: str
    prefix: int


_PREFIX_CANDIDATES = tuple(
    "".join(digits) for size in (1, 2, 3) for digits in product("0123456789", repeat=size)
)


def _region_of(cc: int, nsn: str) -> str | None:
    number = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn or "0"))
    if nsn.startswith("0"):
        number.italian_leading_zero = True
        number.number_of_leading_zeros = len(nsn) - len(nsn.lstrip("0")) or None
    region = phonenumbers.region_code_for_number(number)
    if not region or region == phonenumbers.UNKNOWN_REGION:
        region = phonenumbers.region_code_for_country_code(cc)
    return None if region == phonenumbers.UNKNOWN_REGION else str(region)


def _number(cc: int, nsn: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(f"+{cc}{nsn}", None)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _other_national_prefixes(region: str, nsn: str) -> list[str]:
    """National prefixes besides the trunk prefix that ``phonenumbers`` strips before
    ``nsn`` (Belarus's ``80``, Colombia's carrier prefixes ``03``..., Brazil's
    ``0`` + carrier code), each checked by parsing it back."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or not metadata.national_prefix_for_parsing:
        return []
    pattern = re.compile(metadata.national_prefix_for_parsing)
    rule = metadata.national_prefix_transform_rule
    found = []
    for prefix in _PREFIX_CANDIDATES:
        match = pattern.match(prefix + nsn)
        if match is None:
            continue
        if rule:
            if match.lastindex is None or match.lastindex < 2:
                continue  # a transform of the number itself (Argentina's 15, local dialling)
            try:
                rest = match.expand(rule.replace("$", "\\"))
            except (re.error, IndexError):
                continue
            if rest != nsn:
                continue
        elif match.end() != len(prefix):
            continue
        try:
            parsed = phonenumbers.parse(prefix + nsn, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.national_significant_number(parsed) == nsn:
            found.append(prefix)
    return found


@functools.lru_cache(maxsize=4096)
def written_forms(cc: int, nsn: str) -> tuple[Form, ...]:
    """Every form the number ``+{cc}{nsn}`` is written in, as digits, most usual first.

    The international ones (``+CC``, ``00CC``, and ``+CC (0)`` where the country
    writes its trunk prefix), the national format ``phonenumbers`` writes
    (Argentina's ``011 15-2345-6789``, Belarus's ``8 0152 45-09-11``), the trunk
    prefix and any other national prefix ``phonenumbers`` reads before the
    number, and the bare national number where no prefix is needed.
    """
    prefix = national_prefix(cc)
    trunk = prefix.digits
    needed = prefix.needed(nsn)
    code = str(cc)
    forms = [Form(f"+{code}{nsn}", "+", len(code)), Form(f"00{code}{nsn}", "00", 2 + len(code))]
    if needed and trunk:
        forms.append(Form(f"+{code}{trunk}{nsn}", "+(0)", len(code) + len(trunk)))
        forms.append(Form(f"00{code}{trunk}{nsn}", "00(0)", 2 + len(code) + len(trunk)))
    region = _region_of(cc, nsn)
    national = ""
    with contextlib.suppress(phonenumbers.NumberParseException):
        national = _digits(phonenumbers.format_number(_number(cc, nsn), PhoneNumberFormat.NATIONAL))
    if national:
        forms.append(Form(national, "national", 0))
    prefixes = [trunk] if trunk else []
    if region is not None:
        prefixes += [p for p in _other_national_prefixes(region, nsn) if p != trunk]
    for other in prefixes:
        forms.append(Form(other + nsn, f"prefix:{other}", len(other)))
    if not needed:
        forms.append(Form(nsn, "bare", 0))
    unique: dict[str, Form] = {}
    for form in forms:
        unique.setdefault(form.digits, form)
    return tuple(unique.values())


@functools.lru_cache(maxsize=4096)
def canonical_text(cc: int, nsn: str, kind: str) -> str | None:
    """The number written by ``phonenumbers`` in the form ``kind`` (see :class:`Form`),
    its own grouping: ``+44 117 409 0162``, ``0117 409 0162``, ``+44 (0)117 409 0162``;
    ``None`` when the number has no such form."""
    forms = {form.kind: form for form in written_forms(cc, nsn)}
    form = forms.get(kind)
    if form is None:
        return None
    number = _number(cc, nsn)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    code = str(cc)
    rest = international[len(code) + 1 :].lstrip()
    trunk = national_prefix(cc).digits
    if kind == "+":
        return international
    if kind == "00":
        return "00" + international[1:]
    if kind == "+(0)":
        return f"+{code} ({trunk}){rest}"
    if kind == "00(0)":
        return f"00{code} ({trunk}){rest}"
    if kind == "national":
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    if kind == "bare":
        return rest
    other = kind.removeprefix("prefix:")
    if trunk and other.startswith(trunk) and other != trunk:
        carrier = phonenumbers.format_national_number_with_carrier_code(number, other[len(trunk) :])
        if _digits(carrier) == form.digits:
            return carrier
    # A trunk 0 is written against the area code (011 2345-6789), others apart
    # (1 800-444-2277, 8 152 45-09-11).
    return f"{other}{rest}" if other == "0" else f"{other} {rest}"
