"""Finding every phone number of one country (``replace_all_numbers``), and only those.

Candidates first: one regular expression finds runs of digits and separators
with enough digits for a number of the country; :func:`~dni_engine.rewrite.markup.placed`
keeps those in text and ``tel:`` targets. Each run is then read as a whole:

- parts of it that are dates, times, year or page ranges or amounts written
  with thousands separators are *explained* and never swapped;
- the rest is cut into windows (longest first, left to right) at the places
  where one number may end and another begin, and a window counts only when
  ``phonenumbers`` finds it a valid number of the pool's country and it passes
  the checks ``phonenumbers.PhoneNumberMatcher`` makes at leniency ``VALID``
  (no Latin letter, currency sign or ``%`` against it, at most one slash in the
  national number, the national prefix present where the country writes one)
  and stricter ones of its own: no ``_``, ``#``, ``=`` or path around it, no
  time after it, no currency before it or price tail after it, no identifier
  word (ISBN, DOI, Bug, ...) before it, digit groups where the country's own
  grouping has them (countries written without a trunk prefix, and the NANP),
  and a bare run of digits with no ``+``, trunk prefix or separator only after
  a phone word (Tel, Phone, Fax, ...) or in a link;
- a run split by inline tags (``0117 <b>496</b> 0123``) is read as the text a
  browser shows, its tags left out (see :mod:`~dni_engine.rewrite.inline`);
- a number may not be the part of a longer run: whatever the run holds beside
  it must be explained, or another number. ``+49 (0) 160-8472068`` holds no
  British number, ``0 93 82 / 84 73 99`` no Belgian one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from phonenumbers import CountryCodeSource, PhoneMetadata, PhoneNumberFormat

from dni_engine.rewrite.inline import INLINE_TAG, sibling_joins, visible
from dni_engine.rewrite.markup import Placer, placed
from dni_engine.rewrite.numbers import Found, national_prefix
from dni_engine.rewrite.separators import (
    MAX_SEPARATORS,
    NBSP_ENTITY,
    PLUS_HTML,
    PLUS_PERCENT,
    SEP_CLASS_HTML,
    SEP_HTML,
    SEP_PERCENT,
    SEP_TEXT,
)

__all__ = ["AllFinder"]

# Rules phonenumbers.PhoneNumberMatcher uses to tell numbers from dates, time
# stamps and page ranges; applied alike so both agree on what is a number.
_SLASH_DATE = re.compile(r"(?:(?:[0-3]?\d/[01]?\d)|(?:[01]?\d/[0-3]?\d))/(?:[12]\d)?\d{2}")
_TIME_STAMP = re.compile(r"[12]\d{3}[-/]?[01]\d[-/]?[0-3]\d +[0-2]\d$")
_TIME_STAMP_SUFFIX = re.compile(r":[0-5]\d")
_PAGE_RANGE = re.compile(r"\d{1,5}-+\d{1,5}\s{0,4}\(\d{1,4}")
# A "+" written as a character reference (in a link also %2B) right before a run.
_ENCODED_PLUS = re.compile(f"{PLUS_HTML}\\Z")
_ENCODED_PLUS_LINK = re.compile(f"(?:{PLUS_HTML}|{PLUS_PERCENT})\\Z")
_DIGIT_RUN = re.compile(r"&#[0-9]+;|%[0-9A-Fa-f]{2}|([0-9]+)")
_BREAK = re.compile(
    r"[\s/()\u2012-\u2015]|%(?:20|09|2[fF]|28|29|[cC]2%[aA]0|[eE]2%80%9[2-5])|" + NBSP_ENTITY
)
# In HTML a run may hold percent-encoded separators (tel:0117%20496%200123, as
# WordPress writes targets); only a link target keeps them, text shows them.
_SEP_HTML_PERCENT = f"(?:{SEP_CLASS_HTML}|{NBSP_ENTITY}|{SEP_PERCENT}){{0,{MAX_SEPARATORS}}}"
# In HTML text, inline tags may stand between a number's digits too, but for a
# tag holding a link target (<a href="tel:...">): its number is read on its own.
_JOINING_TAG = (
    r"(?!<[^<>]*?(?i:href)[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[\t\n\f\r ]*(?:(?i:tel|callto)|&|%))"
    + INLINE_TAG
)
_SEP_INLINE_PERCENT = f"{_SEP_HTML_PERCENT}(?:{_JOINING_TAG}{_SEP_HTML_PERCENT}){{0,4}}"
_PERCENT_BEFORE = re.compile(r"%[0-9A-Fa-f]{2}\Z")
# A cap on phonenumbers.parse calls per page, so a page of digit tables stays cheap.
_MAX_ATTEMPTS = 2000

# What a run may hold that is not a phone number. Each is searched in the run's
# text; the digit groups it covers are explained.
_D = r"(?:0?[1-9]|[12]\d|3[01])"  # day
_M = r"(?:0?[1-9]|1[0-2])"  # month
_Y = r"(?:1[5-9]\d\d|20\d\d)"  # year
_EXPLAINED = re.compile(
    "|".join(
        # Not a piece of a longer dotted number: 404.555.3434 holds no 404.555.
        f"(?<![0-9])(?<![0-9][.,/-]){body}(?![0-9])(?![.,/-][0-9])"
        for body in (
            rf"{_D}([./-])\s?{_M}\1\s?(?:{_Y}|\d\d)",  # 22.05.2019, 17/01/24
            rf"{_M}([./-]){_D}\2(?:{_Y}|\d\d)",  # 01/17/2024
            rf"{_Y}([./-]){_M}\3{_D}",  # 2019-05-22
            rf"{_M}[./]{_Y}",  # 05/2019
            rf"{_Y}[/-]{_M}",  # 2019-05, 2019/05
            rf"{_Y}\s?[-\u2010-\u2015/]\s?(?:{_Y}|\d\d)",  # 2004-2018, 2011-12, 1989/90
            r"[1-9]\d{0,2}(?:\.\d{3})+",  # 400.000, 23.777: thousands
            r"[1-9]\d{0,2}(?:,\d{3})+",  # 1,234,567
            # 339–344, 2579 – 2605: ranges are written with a long dash
            r"\d{1,6}\s?[\u2012-\u2015]\s?\d{1,6}",
        )
    )
)
_RANGE = re.compile(r"(\d+)\s?[\u2012-\u2015]\s?(\d+)\Z")

# Before a number: what makes it part of something else (an identifier, a path,
# a query string, a hash tag) or an amount.
_BAD_BEFORE = re.compile(
    r"(?:[_#=@]|[0-9A-Za-z][/\-]|[0-9][.,]|[0-9]:"
    r"|(?i:\b(?:EUR|USD|GBP|CHF|HUF|Fr|sFr|CAD|AUD)\.?)(?:\s|&nbsp;)?"
    r"|[\u00a3\u20ac$\u00a5](?:\s|&nbsp;)?)\Z"
)
# A letter and a dot right before digits: pnas.1907828116, but also Tel.0711 ...
_LETTER_DOT_BEFORE = re.compile(r"[A-Za-z]\.\Z")
_ID_WORDS = re.compile(
    r"(?i:\b(?:ISBN(?:-1[03])?|ISSN|DOI|PMID|PMC|arXiv|Bug|Issue|Ticket|Order|Invoice|SKU|"
    r"Art(?:ikel)?\.?-?Nr|Best\.?-?Nr|Kd\.?-?Nr|Rechnungs-?Nr|Az|Aktenzeichen|Drucks|"
    r"Serial|Version|rev|Kundennummer|Bestellnummer|Auftragsnummer))"
    r"\.?(?:\s|&nbsp;)*[:#]?(?:\s|&nbsp;)*\Z"
)
_BAD_AFTER = re.compile(
    r"[_@]|[/.\-][0-9A-Za-z]|:[0-9]|,-|,[0-9]{1,2}(?![0-9])|\s?(?i:EUR|USD|CHF|Euro|Dollar)\b"
)
_PHONE_WORDS = re.compile(
    r"(?i:\b(?:tel|telefon|telephone|phone|ph|fon|fone|fax|telefax|mobil|mobile|mob|cell|handy|"
    r"hotline|call|ruf|rufnummer|anrufen|t\u00e9l\u00e9phone|t\u00e9l|tél|whatsapp|sms)\b"
    r"|\u260e|\u2706|\U0001f4de|\U0001f4f1|\u96fb\u8a71|\u7535\u8bdd)"
)
_PHONE_WORDS_REACH = 40
_FREE_GROUPING = frozenset({"DE", "AT"})
# In HTML, inline tags may stand between a number's digits too.
_SEP_INLINE = f"{SEP_HTML}(?:{_JOINING_TAG}{SEP_HTML}){{0,4}}"
# How much of the page around a split run its checks read (phone words, context).
_AROUND = 64
_FIRST_GROUP_ONLY = re.compile(r"\(?\\1\)?")


def _breaks_of(formatted: str, nsn_length: int | None = None) -> set[int]:
    """Where ``formatted`` (a number as phonenumbers writes it) breaks its last
    ``nsn_length`` digits (all of them when ``None``): counts of digits before
    each break."""
    digits = sum(c.isdigit() for c in formatted)
    skip = 0 if nsn_length is None else digits - nsn_length
    breaks = set()
    seen = 0
    gap = False
    for char in formatted:
        if char.isdigit():
            if gap and seen > skip:
                breaks.add(seen - skip)
            gap = False
            seen += 1
        else:
            gap = True
    return breaks


def _breaks_number(char: str) -> bool:
    """A Latin letter, currency sign or ``%`` next to digits makes them not a phone number."""
    if char == "%":
        return True
    category = unicodedata.category(char)
    if category.startswith("L"):
        return char < "\u0250" or "\u1e00" <= char <= "\u1eff"  # the Latin blocks
    return category == "Sc" or (category == "Mn" and "\u0300" <= char <= "\u036f")


class _Run:
    """One run of digits and separators: its digit groups and what explains them."""

    __slots__ = ("breaks", "end", "explained", "groups", "lead", "plus", "start")

    def __init__(self, text: str, start: int, end: int, plus_at: int | None = None) -> None:
        # plus_at: where a "+" written as a reference (or %2B in a link) starts.
        self.start = start if plus_at is None else plus_at
        self.end = end
        self.groups = [m.span(1) for m in _DIGIT_RUN.finditer(text, start, end) if m.group(1)]
        groups = self.groups
        # breaks[i]: whether a number may end before group i and another begin.
        # Hyphens and dots alone bind digits together (978-0-303-92919-0 is one
        # thing, no phone number inside it); a space, slash, bracket or long dash
        # may stand between two numbers.
        self.breaks = (
            [True]
            + [
                _BREAK.search(text, groups[i - 1][1], groups[i][0]) is not None
                for i in range(1, len(groups))
            ]
            + [True]
        )
        self.plus = plus_at is not None or text[start] == "+"
        start = self.start
        lead = start if self.plus else groups[0][0]
        if lead > 0 and text[lead - 1] == "(":
            lead -= 1
        self.lead = lead
        self.explained = [False] * len(groups)
        for match in _EXPLAINED.finditer(text, start, end):
            range_ = _RANGE.search(match.group())
            if range_ is not None and int(range_.group(1)) >= int(range_.group(2)):
                continue  # 59 – 0: not a range (an extension, as Germans write it)
            self._explain(match.start(), match.end())
        # A time after the run (22.05.2019 - 21:05) or before it (10:43 26.06.2012).
        if groups and text.startswith(":", end) and text[end + 1 : end + 2].isdigit():
            self.explained[-1] = True
        if groups and start > 1 and text[start - 1] == ":" and text[start - 2].isdigit():
            self.explained[0] = True

    def _explain(self, start: int, end: int) -> None:
        for i, (a, b) in enumerate(self.groups):
            if a < end and start < b:
                self.explained[i] = True


class AllFinder:
    """Finds every phone number of one country written on a page (``replace_all_numbers``).

    Valid numbers of the country only, and only where they are written as a phone
    number: not dates, times, prices, years, ids, parts of longer numbers or another
    country's numbers.
    """

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
        # How far the written digit groups may stray from the country's own
        # grouping (phonenumbers' formatting pattern for the number): written
        # boundaries that are none of the pattern's. Where numbers are always
        # written in full in fixed groups (no trunk prefix; the NANP's 3-3-4) none
        # may; where area codes vary in length and people write pairs or blocks
        # of their own (Germany, Austria: 0 93 82 / 84 73 99) any may; elsewhere
        # one may (the area code split elsewhere: 0207 839 5555).
        self._stray_groups = (
            0 if not self.trunk or self.cc == 1 else 99 if country in _FREE_GROUPING else 1
        )
        # The formats phonenumbers writes the country's numbers in: its own, or
        # (Antigua, Jersey, ...) those of the main country of its calling code.
        # A rule of just the first group, ``(\1)``, writes no prefix: Brazil's
        # ``(11) 2345-6789``.
        main = PhoneMetadata.metadata_for_region(
            phonenumbers.region_code_for_country_code(self.cc), None
        )
        formats = metadata.number_format or (main.number_format if main is not None else ())
        self._formats = [
            (
                re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
                re.compile(f.pattern or "$^"),
                bool(f.national_prefix_formatting_rule)
                and not f.national_prefix_optional_when_formatting
                and _FIRST_GROUP_ONLY.fullmatch(f.national_prefix_formatting_rule or "") is None,
            )
            for f in formats
        ]
        self._min_digits = max(min(lengths), 4)
        self._max_digits = max(lengths) + len(self._cc_digits) + 2 + len(self.trunk)
        more = self._min_digits - 1
        self._patterns = {
            # The first digit of a run (the look-behind keeps scans from
            # restarting inside one, and in HTML from starting inside a percent
            # escape but for right after one), then enough digits for a number.
            False: re.compile(r"[0-9](?<![0-9][0-9])" + f"(?:{SEP_TEXT}[0-9]){{{more},}}"),
            True: re.compile(
                r"[0-9](?:(?<![0-9][0-9])(?<!%[0-9])|(?<=%[0-9A-Fa-f]{2}[0-9]))"
                + f"(?:{_SEP_INLINE_PERCENT}[0-9]){{{more},}}"
            ),
        }
        self._text_in_html = re.compile(
            r"[0-9](?<![0-9][0-9])" + f"(?:{_SEP_INLINE}[0-9]){{{more},}}"
        )

    def find(
        self,
        text: str,
        html: bool,
        place: Placer | None = None,
        budget: list[int] | None = None,
    ) -> list[Found]:
        """The numbers of the country in ``text`` (HTML when ``html``), in order.

        ``place`` (default :func:`.markup.placed` in HTML, everything in text) tells
        where runs stand; ``budget`` (one count, decremented) caps the
        ``phonenumbers`` parses, ``_MAX_ATTEMPTS`` per call by default: the
        streaming rewriter carries it from one piece of a page to the next.
        """
        spans = []
        for match in self._patterns[html].finditer(text):
            start = match.start()
            if text[start - 1 : start] == "+":
                start -= 1
            spans.append((start, match.end()))
        if place is not None:
            places = place(text, spans)
        else:
            places = placed(text, spans) if html else [(s, e, False) for s, e in spans]
        found: list[Found] = []
        if budget is None:
            budget = [_MAX_ATTEMPTS]
        if html and any(not link and "%" in text[s:e] for s, e, link in places):
            places = self._percent_split(text, places)
        for start, end, link in places:
            plus_at = None
            if html and text[start - 1 : start] in (";", "B", "b"):
                encoded = (_ENCODED_PLUS_LINK if link else _ENCODED_PLUS).search(
                    text, max(0, start - 16), start
                )
                plus_at = encoded.start() if encoded is not None else None
            if html and text.find("<", start, end) >= 0:
                # Digits touching through tags alone (1</a><a>2, 5<b>0117) are separate runs.
                joins = sibling_joins(text, start, end, any_tags=True)
                bounds = [start] + [i for gap in joins for i in gap]
                for a, b in zip(bounds[::2], [*bounds[1::2], end], strict=True):
                    if text.find("<", a, b) >= 0:
                        found.extend(self._numbers_split(text, a, b, link, budget))
                    else:
                        run = _Run(text, a, b, plus_at if a == start else None)
                        found.extend(self._numbers_in(text, run, link, budget))
            else:
                run = _Run(text, start, end, plus_at)
                found.extend(self._numbers_in(text, run, link, budget))
            if budget[0] <= 0:
                break
        return found

    def _numbers_split(
        self, text: str, start: int, end: int, link: bool, budget: list[int]
    ) -> Iterable[Found]:
        """The numbers in a run split by inline tags, read as the text a browser
        shows (the page around it as written), with spans on the page."""
        shown, runs = visible(text, start, end)
        offsets = [a + i for a, b in runs for i in range(b - a)]
        before = text[max(0, start - _AROUND) : start]
        local = before + shown + text[end : end + _AROUND]
        lead = len(before)
        numbers = []
        for hit in self._numbers_in(local, _Run(local, lead, lead + len(shown)), link, budget):
            if hit.start >= lead:
                hit_start = offsets[hit.start - lead]
            else:
                hit_start = start - (lead - hit.start)
            numbers.append(hit._replace(start=hit_start, end=offsets[hit.end - 1 - lead] + 1))
        return numbers

    def _percent_split(
        self, text: str, places: list[tuple[int, int, bool]]
    ) -> list[tuple[int, int, bool]]:
        """Runs in text read again without percent escapes: text shows them as
        written, so they part digits instead of standing between them."""
        split = []
        for start, end, link in places:
            if link or "%" not in text[start:end]:
                split.append((start, end, link))
                continue
            for match in self._text_in_html.finditer(text, start, end):
                at = match.start()
                if text[at - 1 : at] == "+":
                    at -= 1
                split.append((at, match.end(), False))
        return split

    def _numbers_in(self, text: str, run: _Run, link: bool, budget: list[int]) -> Iterable[Found]:
        """The numbers in one run: longest first, left to right, each beside explained
        parts or other numbers only."""
        groups, breaks, explained = run.groups, run.breaks, run.explained
        hits: list[tuple[int, int, Found]] = []
        first = 0
        while first < len(groups) and budget[0] > 0:
            lasts = []
            count = 0
            for last in range(first, len(groups) if breaks[first] else first):
                if explained[last]:
                    break
                count += groups[last][1] - groups[last][0]
                if count > self._max_digits:
                    break
                if count >= self._min_digits and breaks[last + 1]:
                    lasts.append(last)
            for last in reversed(lasts):
                window_start = run.lead if first == 0 else groups[first][0]
                hit = self._verify(
                    text, window_start, groups, first, last, run.plus and first == 0, link, budget
                )
                if hit is not None:
                    hits.append((first, last, hit))
                    first = last
                    break
            first += 1
        if not hits and any(explained) and budget[0] > 0:
            whole = self._written_as_formatted(text, run, link, budget)
            if whole is not None:
                return [whole]
        # A number beside digits that are neither explained nor another number is
        # part of something longer; dropping one may leave its neighbour alone too.
        changed = True
        while changed and hits:
            changed = False
            taken = {i for a, b, _ in hits for i in range(a, b + 1)}
            for entry in hits:
                a, b, _ = entry
                alone_before = a == 0 or explained[a - 1] or (a - 1) in taken
                alone_after = (
                    b == len(groups) - 1
                    or explained[b + 1]
                    or (b + 1) in taken
                    or self._foreign_from(text, run, b + 1)
                )
                if not (alone_before and alone_after):
                    hits.remove(entry)
                    changed = True
                    break
        return [found for _, _, found in hits]

    def _written_as_formatted(
        self, text: str, run: _Run, link: bool, budget: list[int]
    ) -> Found | None:
        """The whole run as one number, though parts of it look like a date, when it
        is written exactly as phonenumbers writes the number and something says it
        is one (``+``, a link, a phone word): New Caledonia's ``20.12.34``."""
        if not (run.plus or link or self._phone_word_before(text, run.lead)):
            return None
        hit = self._verify(
            text, run.lead, run.groups, 0, len(run.groups) - 1, run.plus, link, budget
        )
        if hit is None:
            return None
        number = phonenumbers.parse(f"+{hit.cc}{hit.nsn}", None)
        written = text[hit.start : hit.end]
        if written in (
            phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        ):
            return hit
        return None

    def _foreign_from(self, text: str, run: _Run, first: int) -> bool:
        """Whether the run's groups from ``first`` on are a number written with ``+``/``00``."""
        at = run.groups[first][0]
        before = text[run.groups[first - 1][1] : at]
        digits = "".join(text[a:b] for a, b in run.groups[first:])
        if not before.endswith("+") and not digits.startswith("00"):
            return False
        try:
            number = phonenumbers.parse("+" + digits.removeprefix("00"), None)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.is_valid_number(number)

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
        return self._could_be(digits) and not self._prefix_needed(digits)

    def _could_be(self, nsn: str) -> bool:
        return len(nsn) in self._lengths and self._national_number.fullmatch(nsn) is not None

    def _prefix_needed(self, nsn: str) -> bool:
        """Whether ``nsn`` is written nationally with the trunk prefix. Numbers no
        formatting rule covers are, in countries that have a trunk prefix: a German
        number cut after its ``0`` is no number. Where phonenumbers has no rule at
        all (Kiribati), it writes every number without the prefix."""
        if not self.trunk or not self._formats:
            return False
        for leading, pattern, needed in self._formats:
            if (leading is None or leading.match(nsn)) and pattern.fullmatch(nsn):
                return needed
        return True

    def _context_rejects(self, text: str, start: int, end: int, link: bool) -> bool:
        """What is around a window makes it something other than a phone number."""
        if link:
            return False
        before = text[max(0, start - 24) : start]
        if _BAD_BEFORE.search(before) or _ID_WORDS.search(before):
            return True
        if _LETTER_DOT_BEFORE.search(before) and not self._phone_word_before(text, start):
            return True
        return _BAD_AFTER.match(text, end) is not None

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
        if (
            text[start] not in "+("
            and start > 0
            and _breaks_number(text[start - 1])
            and not (link and _PERCENT_BEFORE.search(text, max(0, start - 3), start))
        ):
            return None
        if end < len(text) and _breaks_number(text[end]) and not (link and text[end] == "%"):
            return None
        window = text[start:end]
        if _SLASH_DATE.search(window) or _PAGE_RANGE.search(window):
            return None
        if _TIME_STAMP.search(window) and _TIME_STAMP_SUFFIX.match(text, end):
            return None
        if self._context_rejects(text, start, end, link):
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
        if not international and digits == nsn and self._prefix_needed(nsn):
            return None  # the national prefix is missing: 1174090162 is not written so
        bounds = [b - groups[first][0] for _, b in groups[first:last]]
        if not link:
            if self._slashes(text, groups, first, last, len(digits) - len(nsn)) > 1:
                return None  # 17/130/1713057: a path or a file number
            if (
                self._stray_groups < len(groups)
                and self._strays(number, nsn, groups, first, last) > self._stray_groups
            ):
                return None
            bare = not bounds and not plus and not (self.trunk and digits.startswith(self.trunk))
            if bare and not digits.startswith("00") and not self._phone_word_before(text, start):
                return None  # 2288518709 alone is an id as often as a number
        number_start = start + 1 if text[start] == "(" else start
        return Found(number_start, end, number.country_code or 0, nsn, international, link)

    @staticmethod
    def _slashes(
        text: str, groups: list[tuple[int, int]], first: int, last: int, prefix_digits: int
    ) -> int:
        """Slashes between the digits of the national number (after ``prefix_digits``)."""
        slashes = 0
        seen = 0
        for i in range(first, last):
            seen += groups[i][1] - groups[i][0]
            if seen > prefix_digits:
                slashes += text.count("/", groups[i][1], groups[i + 1][0])
        return slashes

    @staticmethod
    def _strays(
        number: phonenumbers.PhoneNumber,
        nsn: str,
        groups: list[tuple[int, int]],
        first: int,
        last: int,
    ) -> int:
        """How many places between written digit groups of the national number are
        not where the country's grouping has a break (PhoneNumberMatcher's
        STRICT_GROUPING asks for none). The grouping is the international one
        (RFC 3966), or the national one where that fits better: some ranges are
        grouped only in national form (Honduras's ``800 2123 4567``)."""
        if first == last:
            return 0
        total = sum(b - a for a, b in groups[first : last + 1])
        skip = total - len(nsn)  # country code and trunk prefix digits
        written = []
        seen = 0
        for i in range(first, last):
            seen += groups[i][1] - groups[i][0]
            if seen > skip:
                written.append(seen - skip)
        if not written:
            return 0
        rfc3966 = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)
        strays = len(set(written) - _breaks_of(rfc3966.split(";", 1)[0].split("-", 1)[-1]))
        if strays:
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            if "".join(c for c in national if c.isdigit()).endswith(nsn):
                strays = min(strays, len(set(written) - _breaks_of(national, len(nsn))))
        return strays

    @staticmethod
    def _phone_word_before(text: str, start: int) -> bool:
        return _PHONE_WORDS.search(text, max(0, start - _PHONE_WORDS_REACH), start) is not None
