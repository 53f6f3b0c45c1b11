"""Finding every valid phone number of one country (``replace_all_numbers``)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from phonenumbers import CountryCodeSource, PhoneMetadata

from dni_engine.rewrite.markup import placed
from dni_engine.rewrite.numbers import Found, national_prefix
from dni_engine.rewrite.separators import NBSP_ENTITY, SEP_HTML, SEP_TEXT

__all__ = ["AllFinder"]

# Rules phonenumbers.PhoneNumberMatcher uses to tell numbers from dates, time
# stamps and page ranges; applied alike so both agree on what is a number.
_SLASH_DATE = re.compile(r"(?:(?:[0-3]?\d/[01]?\d)|(?:[01]?\d/[0-3]?\d))/(?:[12]\d)?\d{2}")
_TIME_STAMP = re.compile(r"[12]\d{3}[-/]?[01]\d[-/]?[0-3]\d +[0-2]\d$")
_TIME_STAMP_SUFFIX = re.compile(r":[0-5]\d")
_PAGE_RANGE = re.compile(r"\d{1,5}-+\d{1,5}\s{0,4}\(\d{1,4}")
_DIGIT_RUN = re.compile(r"&#[0-9]+;|([0-9]+)")
_BREAK = re.compile(r"[\s/()\u2012-\u2015]|" + NBSP_ENTITY)
# A cap on phonenumbers.parse calls per page, so a page of digit tables stays cheap.
_MAX_ATTEMPTS = 2000


def _breaks_number(char: str) -> bool:
    """A Latin letter, currency sign or ``%`` next to digits makes them not a phone number."""
    if char == "%":
        return True
    category = unicodedata.category(char)
    if category.startswith("L"):
        return char < "\u0250" or "\u1e00" <= char <= "\u1eff"  # the Latin blocks
    return category == "Sc" or (category == "Mn" and "\u0300" <= char <= "\u036f")


class AllFinder:
    """Finds every valid phone number of one country (``replace_all_numbers``)."""

    def __init__(self, country: str) -> None:
        metadata = PhoneMetadata.metadata_for_region(country, None)
        if metadata is None:
            raise ValueError(f"no phone numbering known for country {country!r}")
        self.country = country
        self.cc = metadata.country_code or 0
        self._cc_digits = str(self.cc)
        self._prefix = national_prefix(self.cc)
        self.trunk = self._prefix.digits
        general = metadata.general_desc
        lengths = (general.possible_length if general else None) or tuple(range(6, 16))
        self._lengths = frozenset(lengths)
        self._national_number = re.compile(
            (general.national_number_pattern if general else None) or r"\d+"
        )
        self._min_digits = max(min(lengths), 4)
        self._max_digits = max(lengths) + len(self._cc_digits) + 2 + len(self.trunk)
        self._patterns = {
            html: re.compile(
                # The first digit of a run (the look-behind keeps scans from
                # restarting inside one), then enough digits for a number.
                r"[0-9](?<![0-9][0-9])"
                + f"(?:{SEP_HTML if html else SEP_TEXT}[0-9]){{{self._min_digits - 1},}}"
            )
            for html in (False, True)
        }

    def find(self, text: str, html: bool) -> list[Found]:
        spans = []
        for match in self._patterns[html].finditer(text):
            start = match.start()
            if text[start - 1 : start] == "+":
                start -= 1
            spans.append((start, match.end()))
        places = placed(text, spans) if html else [(s, e, False) for s, e in spans]
        found: list[Found] = []
        budget = [_MAX_ATTEMPTS]
        for start, end, link in places:
            found.extend(self._numbers_in(text, start, end, link, budget))
            if budget[0] <= 0:
                break
        return found

    def _numbers_in(
        self, text: str, start: int, end: int, link: bool, budget: list[int]
    ) -> Iterable[Found]:
        """The numbers in one run of digits: longest first, left to right."""
        groups = [m.span(1) for m in _DIGIT_RUN.finditer(text, start, end) if m.group(1)]
        # breaks[i]: whether a number may end before group i and another begin.
        # Hyphens and dots alone bind digits together (978-0-303-92919-0 is one
        # thing, no phone number inside it); a space, slash, bracket or long dash
        # may stand between two numbers.
        breaks = (
            [True]
            + [
                _BREAK.search(text, groups[i - 1][1], groups[i][0]) is not None
                for i in range(1, len(groups))
            ]
            + [True]
        )
        plus = text[start] == "+"
        lead = start if plus else groups[0][0]
        if lead > 0 and text[lead - 1] == "(":
            lead -= 1
        first = 0
        while first < len(groups) and budget[0] > 0:
            lasts = []
            count = 0
            for last in range(first, len(groups) if breaks[first] else first):
                count += groups[last][1] - groups[last][0]
                if count > self._max_digits:
                    break
                if count >= self._min_digits and breaks[last + 1]:
                    lasts.append(last)
            for last in reversed(lasts):
                window_start = lead if first == 0 else groups[first][0]
                hit = self._verify(
                    text, window_start, groups, first, last, plus and first == 0, link, budget
                )
                if hit is not None:
                    yield hit
                    first = last
                    break
            first += 1

    def _worth_parsing(self, digits: str, plus: bool) -> bool:
        """A cheap look at a window's digits: could they be a number of the country?"""
        cc = self._cc_digits
        if plus or digits.startswith("00"):
            rest = digits if plus else digits[2:]
            if not rest.startswith(cc):
                return False  # another country's number
            nsn = rest[len(cc) :]
            trunk = self.trunk
            return self._could_be(nsn) or (
                bool(trunk) and nsn.startswith(trunk) and self._could_be(nsn[len(trunk) :])
            )
        if (self.trunk and digits.startswith(self.trunk)) or digits.startswith(cc):
            return True  # national, or the country code written without "+"
        return self._could_be(digits) and not self._prefix.needed(digits)

    def _could_be(self, nsn: str) -> bool:
        return len(nsn) in self._lengths and self._national_number.fullmatch(nsn) is not None

    def _verify(
        self,
        text: str,
        start: int,
        groups: list[tuple[int, int]],
        first: int,
        last: int,
        plus: bool,
        link: bool,
        budget: list[int],
    ) -> Found | None:
        end = groups[last][1]
        digits = "".join(text[a:b] for a, b in groups[first : last + 1])
        if not self._worth_parsing(digits, plus):
            return None
        if text[start] not in "+(" and start > 0 and _breaks_number(text[start - 1]):
            return None
        if end < len(text) and _breaks_number(text[end]):
            return None
        window = text[start:end]
        if _SLASH_DATE.search(window) or _PAGE_RANGE.search(window):
            return None
        if _TIME_STAMP.search(window) and _TIME_STAMP_SUFFIX.match(text, end):
            return None
        budget[0] -= 1
        if not plus and digits.startswith("00" + self._cc_digits):
            # 00 is not every country's international prefix (Australia dials
            # 0011), but it is how most of the world writes one.
            plus, digits = True, digits[2:]
        try:
            number = phonenumbers.parse(
                ("+" if plus else "") + digits, self.country, keep_raw_input=True
            )
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        if phonenumbers.region_code_for_number(number) != self.country:
            return None
        international = number.country_code_source != CountryCodeSource.FROM_DEFAULT_COUNTRY
        nsn = phonenumbers.national_significant_number(number)
        if not international and digits == nsn and self._prefix.needed(nsn):
            return None  # the national prefix is missing: 1174090162 is not written so
        number_start = start + 1 if text[start] == "(" else start
        return Found(number_start, end, number.country_code or 0, nsn, international, link)
