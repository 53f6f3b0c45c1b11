"""Showing a visitor's tracking number wherever a page shows the business's number.

A pool names the numbers to swap: the ``numbers_to_replace`` it lists, or, with
``replace_all_numbers``, every valid number of its country.
:func:`compile_rewriter` turns a pool once into a :class:`Rewriter`; its
``rewrite_html`` / ``rewrite_text`` then swap each such number on a page for the
tracking number, keeping the way the page wrote it::

    rewriter = compile_rewriter(pool)               # cached per pool object
    html = rewriter.rewrite_html(html, "+441174090163")

How numbers are found
    Listed numbers are compiled ahead of time into a few regular expressions (a
    trie of every written form: ``+CC``, ``00CC``, ``+CC (0)``, national trunk
    prefix, and for countries that write it so, no prefix at all), one per
    possible first character. A literal first character lets the regex engine
    skip through the page at ``str.find`` speed. Between any two digits up to
    three separators may stand (spaces, dots, dashes, slashes, parentheses,
    non-breaking spaces, and in HTML ``&nbsp;``); from the fourth national digit
    on, a keypad letter may stand for its digit (``1-800-444-CARS``). A number
    touching another digit (or, when it ends in a letter, another letter) is
    part of something longer and is left alone.

    With ``replace_all_numbers`` a cheap scan finds runs of digits and separators;
    each run is cut into candidate windows and a window counts only when
    ``phonenumbers`` confirms it is a valid number of the pool's country, with
    the same guards ``phonenumbers.PhoneNumberMatcher`` applies (no Latin letter,
    currency sign or ``%`` against it, no date, time stamp or page range, national
    prefix present where the country writes one).

How HTML is read
    The page is never parsed into a tree and written back: it is scanned, and
    only the characters of each swapped number change. A number is swapped in
    text and in the target of a ``tel:``/``callto:`` link (``href``), and nowhere
    else: not in other attributes, comments, ``<script>``, ``<style>`` or other
    raw-text elements, and not inside an element carrying ``data-dni-noswap``
    (nor its descendants). Tags, comments and raw-text elements are recognised
    by the rules of the HTML tokenizer, so quoted attribute values holding ``>``
    or a script holding ``"<div>"`` do not mislead the scan. The scan runs only as
    far as the last candidate number, and mostly inside one regular expression.

How the replacement is written
    A ``tel:``/``callto:`` target gets the tracking number in E.164. Elsewhere,
    when the tracking number has as many national digits as the number found,
    its digits are poured into the found number's digit (and vanity letter)
    positions, so spacing, punctuation and prefix stay as they were; otherwise it
    is written in the national format, or the international one when the page
    wrote the number with its country code. A number that already is the
    tracking number is left exactly as written.

Rewriting never raises: on any unexpected input the page comes back unchanged.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers
from phonenumbers import CountryCodeSource, PhoneMetadata, PhoneNumberFormat

from dni_engine.phone import FORMATTING_CHARS, keypad_letters, letters_to_digits, parse_number
from dni_engine.schema import AnyPool

__all__ = [
    "NumberOnPage",
    "Rewriter",
    "compile_rewriter",
    "parse_tracking_number",
    "rewrite_html",
    "rewrite_text",
]

_log = logging.getLogger(__name__)

# ---- separators ------------------------------------------------------------

_SEP_CLASS = "[" + "".join(re.escape(ch) for ch in sorted(FORMATTING_CHARS)) + "]"
# In HTML a line break inside text renders as a space, and a non-breaking space
# is often written as an entity.
_SEP_CLASS_HTML = (
    "[" + "".join(re.escape(ch) for ch in sorted(FORMATTING_CHARS | {"\n", "\r"})) + "]"
)
_NBSP_ENTITY = r"&(?:nbsp|#0*160|#[xX]0*[aA]0);"
_MAX_SEPARATORS = 3
_SEP_TEXT = f"{_SEP_CLASS}{{0,{_MAX_SEPARATORS}}}"
_SEP_HTML = f"(?:{_SEP_CLASS_HTML}|{_NBSP_ENTITY}){{0,{_MAX_SEPARATORS}}}"

# One character (or character reference) of a matched number: digits and
# letters are the number's positions, references are kept as written.
_NUMBER_CHAR = re.compile(r"&#?[0-9A-Za-z]+;|([0-9A-Za-z])")
_NBSP_IN_NUMBER = re.compile(_NBSP_ENTITY + "|\u00a0")

# The end of a number: a digit may not touch another digit, a vanity letter
# may not touch a letter or digit.
_END = r"(?:(?<=[0-9])(?![0-9])|(?<=[A-Za-z])(?![0-9A-Za-z]))"

# ---- reading HTML ------------------------------------------------------------

# The tokenizer's view of a tag: a name, then attributes whose quoted values may
# hold '>' (a quote left open runs to the end of the text), closed by '>'.
_ATTR_VALUE = r"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >"'][^\t\n\f\r >]*+)"""
_ATTR = r"[^\t\n\f\r />][^\t\n\f\r />=]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+" + _ATTR_VALUE + ")?"
_NOSWAP = "data-dni-noswap"
_NOSWAP_NAME = r"(?i:data-dni-noswap)(?=[\t\n\f\r />=]|\Z)"
_ATTRS = r"(?:[\t\n\f\r /]++|" + _ATTR + r")*+"
_ATTRS_SWAPPABLE = r"(?:[\t\n\f\r /]++|(?!" + _NOSWAP_NAME + ")" + _ATTR + r")*+"
_TAG_NAME = r"[A-Za-z][^\t\n\f\r />]*+"
_RAW_TEXT = ("script", "style", "xmp", "iframe", "noembed", "noframes")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)

_TAG = re.compile(r"<(/?)(" + _TAG_NAME + ")(" + _ATTRS + ")(>?)")
_ATTR_PARTS = re.compile(
    r"([^\t\n\f\r />][^\t\n\f\r />=]*+)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(" + _ATTR_VALUE + "))?"
)
_COMMENT_END = re.compile(r"--!?>")
_LINK_SCHEME = re.compile(r"[\t\n\f\r ]*+(?i:tel|callto):")


def _raw_name(name: str) -> str:
    return f"(?i:{name})(?=[\t\n\f\r />])"


def _raw_element(name: str) -> str:
    """A whole raw-text element: its content runs to its own end tag, whatever it holds."""
    n = _raw_name(name)
    return f"<{n}{_ATTRS}>[^<]*+(?:<(?!/{n})[^<]*+)*+</{n}{_ATTRS}>"


_RAW_CLOSE = {name: re.compile("</" + _raw_name(name)) for name in _RAW_TEXT}

# Everything a number may sit in without being touched, or in which it is text:
# text, complete comments, doctypes and the like, end tags, whole raw-text
# elements, and start tags without data-dni-noswap. Matched from a position
# known to be in text, with the end of the text set to a candidate number's
# start, it stops either exactly there (the number is in text) or at the start
# of whatever encloses the number (a tag, comment or script), or at a
# data-dni-noswap tag. Possessive everywhere: it never backtracks.
_PLAIN_MARKUP = re.compile(
    r"(?:[^<]++"
    r"|<(?![A-Za-z/!?])"
    r"|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|<!(?!--)[^>]*+>"
    r"|<\?[^>]*+>"
    r"|</(?![A-Za-z])[^>]*+>"
    r"|</"
    + _TAG_NAME
    + _ATTRS
    + ">"
    + "".join("|" + _raw_element(name) for name in _RAW_TEXT)
    + r"|<(?!(?i:"
    + "|".join(_RAW_TEXT)
    + r")(?=[\t\n\f\r />]|\Z))"
    + _TAG_NAME
    + _ATTRS_SWAPPABLE
    + r">)*+"
)


class _Unit(NamedTuple):
    """One piece of markup starting at a ``<``."""

    end: int  # where it ends (len(text) when it never closes)
    resume: int  # where scanning goes on: past a raw-text element's content
    hidden: bool  # nothing in it (or, for raw text, in its content) is swapped
    tag: re.Match[str] | None  # a complete start or end tag
    name: str  # lower-case tag name
    closing: bool
    noswap: bool
    empty: bool  # a void element or a self-closed tag: it has no content


def _unit_at(text: str, at: int) -> _Unit:
    """The piece of markup at ``text[at] == '<'``, by the HTML tokenizer's rules."""
    size = len(text)
    if text.startswith("<!--", at):
        if text.startswith(">", at + 4):
            end = at + 5
        elif text.startswith("->", at + 4):
            end = at + 6
        else:
            close = _COMMENT_END.search(text, at + 4)
            end = close.end() if close else size
        return _Unit(end, end, True, None, "", False, False, True)
    tag = _TAG.match(text, at)
    if tag is None:
        if text.startswith(("<!", "<?", "</"), at):  # bogus comment: up to the next '>'
            gt = text.find(">", at + 2)
            end = gt + 1 if gt >= 0 else size
            return _Unit(end, end, True, None, "", False, False, True)
        return _Unit(at + 1, at + 1, False, None, "", False, False, True)  # a lone '<'
    if not tag.group(4):  # the tag never closes: the rest of the text is inside it
        return _Unit(size, size, True, None, "", False, False, True)
    name = tag.group(2).lower()
    closing = bool(tag.group(1))
    end = tag.end()
    if closing:
        return _Unit(end, end, False, tag, name, True, False, True)
    noswap = any(
        attr.group(1).lower() == _NOSWAP
        for attr in _ATTR_PARTS.finditer(text, tag.start(3), tag.end(3))
    )
    empty = name in _VOID or tag.group(3).endswith("/")
    if name in _RAW_TEXT:
        close = _RAW_CLOSE[name].search(text, end)
        resume = close.start() if close else size
        return _Unit(end, resume, True, tag, name, False, noswap, empty)
    return _Unit(end, end, False, tag, name, False, noswap, empty)


def _element_end(text: str, name: str, at: int) -> int:
    """Where the element ``name`` whose start tag ends at ``at`` ends (its end tag counted).

    Same-named elements nested inside are counted; when the end tag is missing
    the element runs to the end of the text.
    """
    depth = 1
    while (lt := text.find("<", at)) >= 0:
        unit = _unit_at(text, lt)
        if unit.tag is not None and unit.name == name:
            if unit.closing:
                depth -= 1
                if depth == 0:
                    return unit.end
            elif not unit.empty:
                depth += 1
        at = unit.resume
    return len(text)


def _link_targets(text: str, tag: re.Match[str]) -> list[tuple[int, int]]:
    """Where numbers may be swapped in ``tag``: its ``href`` values after ``tel:``/``callto:``."""
    targets = []
    for attr in _ATTR_PARTS.finditer(text, tag.start(3), tag.end(3)):
        value_start, value_end = attr.span(2)
        if value_start < 0 or attr.group(1).lower() != "href":
            continue
        body = value_start + 1 if text[value_start] in "\"'" else value_start
        scheme = _LINK_SCHEME.match(text, body, value_end)
        if scheme is not None:
            targets.append((scheme.end(), value_end))
    return targets


def _placed(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """The spans (sorted, not overlapping) that may be swapped in HTML ``text``.

    Each comes back as ``(start, end, in_link)``: in text, or (``in_link``) in
    a ``tel:``/``callto:`` link target. Spans anywhere else are dropped.
    """
    placed: list[tuple[int, int, bool]] = []
    safe = 0  # a position in text, up to which the markup has been read
    hidden_to = 0  # nothing before this may be swapped
    links: list[tuple[int, int]] = []  # link targets of the tag read last (safe is its end)
    for start, end in spans:
        if start < hidden_to:
            continue
        if start < safe:  # inside the tag read last
            if any(a <= start and end <= b for a, b in links):
                placed.append((start, end, True))
            continue
        while True:
            plain = _PLAIN_MARKUP.match(text, safe, start)  # always matches, maybe empty
            stop = plain.end() if plain else safe
            if stop >= start:
                placed.append((start, end, False))
                safe = end
                break
            unit = _unit_at(text, stop)
            if unit.hidden:  # a comment, a raw-text element, or markup that never closes
                hidden_to = safe = unit.resume
            elif unit.noswap:
                hidden_to = safe = (
                    unit.end if unit.empty else _element_end(text, unit.name, unit.end)
                )
            elif unit.end <= start:
                safe = unit.end
                continue
            else:
                safe = unit.end
                links = _link_targets(text, unit.tag) if unit.tag is not None else []
                if any(a <= start and end <= b for a, b in links):
                    placed.append((start, end, True))
                break
            if start < hidden_to:
                break
    return placed


# ---- numbers -----------------------------------------------------------------


class _Found(NamedTuple):
    """A number found in a text: where, which (country code and national digits), and
    whether the page wrote it with its country code."""

    start: int
    end: int
    cc: int
    nsn: str
    international: bool
    link: bool


@dataclass(frozen=True, slots=True)
class _Target:
    """A tracking number, parsed once: what every replacement is written from."""

    cc: int
    nsn: str
    e164: str
    national: str
    international: str


@functools.lru_cache(maxsize=4096)
def _target(number: str, country: str | None) -> _Target | None:
    parsed = _tracking_number(number, country)
    if parsed is None:
        return None
    return _Target(
        cc=parsed.country_code or 0,
        nsn=phonenumbers.national_significant_number(parsed),
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
        international=phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL),
    )


def _tracking_number(number: str, country: str | None) -> phonenumbers.PhoneNumber | None:
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
    parsed = _tracking_number(number, country)
    return None if parsed is None else phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


class _NationalPrefix:
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
def _national_prefix(cc: int) -> _NationalPrefix:
    return _NationalPrefix(cc)


@dataclass(frozen=True, slots=True)
class _Listed:
    """A ``numbers_to_replace`` entry, read as a number of the pool's country."""

    cc: int
    nsn: str
    trunk: str
    trunk_needed: bool  # written nationally only with the trunk prefix

    def written_forms(self) -> list[list[tuple[str, bool]]]:
        """Every way the number is written, as units ``(digit or '+', letters allowed)``."""
        cc = [(d, False) for d in str(self.cc)]
        trunk = [(d, False) for d in self.trunk]
        # Area codes and prefixes are digits; vanity letters come later (1-800-FLOWERS).
        nsn = [(d, i >= 3) for i, d in enumerate(self.nsn)]
        plus, idd = [("+", False)], [("0", False), ("0", False)]
        forms = [plus + cc + nsn, idd + cc + nsn]
        if self.trunk_needed:  # +44 (0)117 ..., 0044 (0)117 ...
            forms += [plus + cc + trunk + nsn, idd + cc + trunk + nsn]
        if self.trunk:
            forms.append(trunk + nsn)
        if not self.trunk_needed:
            forms.append(nsn)
        return forms

    def international(self, prefix: str, plus: bool) -> bool | None:
        """Whether digits ``prefix`` before the national number make an international form.

        ``None`` when they make no form of this number at all.
        """
        cc = str(self.cc)
        with_cc = (cc, cc + self.trunk) if self.trunk_needed else (cc,)
        if plus:
            return True if prefix in with_cc else None
        if prefix.startswith("00") and prefix[2:] in with_cc:
            return True
        if (self.trunk and prefix == self.trunk) or (not prefix and not self.trunk_needed):
            return False
        return None


class _Trie:
    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[tuple[str, bool], _Trie] = {}
        self.terminal = False

    def add(self, units: Sequence[tuple[str, bool]]) -> None:
        node = self
        for unit in units:
            node = node.children.setdefault(unit, _Trie())
        node.terminal = True

    def pattern_after(self, sep: str) -> str:
        """The regex for what may follow this node: a separator and a child, or the end."""
        options = []
        if self.children:
            branches = [
                _unit_pattern(unit) + child.pattern_after(sep)
                for unit, child in self.children.items()
            ]
            options.append(
                sep + (branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})")
            )
        if self.terminal:
            options.append(_END)
        return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"


def _unit_pattern(unit: tuple[str, bool]) -> str:
    char, letters_allowed = unit
    letters = keypad_letters(char) if letters_allowed else ""
    if not letters:
        return re.escape(char)
    return f"[{char}{letters}{letters.lower()}]"


_FOREIGN_LEAD_TEXT = re.compile(r"(?:\+|(?<![0-9])00)[0-9]{1,3}" + _SEP_CLASS + r"{1,3}\Z")
_FOREIGN_LEAD_HTML = re.compile(
    r"(?:\+|(?<![0-9])00)[0-9]{1,3}(?:" + _SEP_CLASS_HTML + "|" + _NBSP_ENTITY + r"){1,3}\Z"
)
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


class _ListedFinder:
    """Finds a pool's ``numbers_to_replace``, each in any of its written forms."""

    def __init__(self, listed: Sequence[_Listed]) -> None:
        self._by_nsn = {entry.nsn: entry for entry in listed}
        self._lengths = sorted({len(nsn) for nsn in self._by_nsn}, reverse=True)
        trie = _Trie()
        for entry in listed:
            for form in entry.written_forms():
                trie.add(form)
        self._patterns = {
            html: tuple(
                # The literal first character lets the regex engine skip ahead fast;
                # the look-behind then checks the character before it.
                re.compile(
                    f"{re.escape(unit[0])}(?<![0-9A-Za-z+]{re.escape(unit[0])})"
                    + child.pattern_after(_SEP_HTML if html else _SEP_TEXT)
                )
                for unit, child in trie.children.items()
            )
            for html in (False, True)
        }

    def find(self, text: str, html: bool) -> list[_Found]:
        found = [
            hit
            for pattern in self._patterns[html]
            for match in pattern.finditer(text)
            if (hit := self._confirm(text, match.start(), match.end(), html)) is not None
        ]
        if len(self._patterns[html]) > 1:
            found.sort(key=lambda hit: (hit.start, -hit.end))
            kept: list[_Found] = []
            for hit in found:
                if not kept or hit.start >= kept[-1].end:
                    kept.append(hit)
            found = kept
        if not html:
            return found
        spans = {(hit.start, hit.end): hit for hit in found}
        return [spans[start, end]._replace(link=link) for start, end, link in _placed(text, spans)]

    def _confirm(self, text: str, start: int, end: int, html: bool) -> _Found | None:
        written = text[start:end]
        if html:
            written = _NBSP_IN_NUMBER.sub(" ", written)
        digits = letters_to_digits(_NOT_ALNUM.sub("", written))
        for length in self._lengths:
            entry = self._by_nsn.get(digits[-length:])
            if entry is None:
                continue
            international = entry.international(digits[:-length], written.startswith("+"))
            if international is None:
                continue
            foreign = _FOREIGN_LEAD_HTML if html else _FOREIGN_LEAD_TEXT
            if not international and foreign.search(text, max(0, start - 24), start):
                return None  # the end of another country's number: +33 0117 ...
            return _Found(start, end, entry.cc, entry.nsn, international, False)
        return None


# Rules phonenumbers.PhoneNumberMatcher uses to tell numbers from dates, time
# stamps and page ranges; applied alike so both agree on what is a number.
_SLASH_DATE = re.compile(r"(?:(?:[0-3]?\d/[01]?\d)|(?:[01]?\d/[0-3]?\d))/(?:[12]\d)?\d{2}")
_TIME_STAMP = re.compile(r"[12]\d{3}[-/]?[01]\d[-/]?[0-3]\d +[0-2]\d$")
_TIME_STAMP_SUFFIX = re.compile(r":[0-5]\d")
_PAGE_RANGE = re.compile(r"\d{1,5}-+\d{1,5}\s{0,4}\(\d{1,4}")
_DIGIT_RUN = re.compile(r"&#[0-9]+;|([0-9]+)")
_BREAK = re.compile(r"[\s/()\u2012-\u2015]|" + _NBSP_ENTITY)
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


class _AllFinder:
    """Finds every valid phone number of one country (``replace_all_numbers``)."""

    def __init__(self, country: str) -> None:
        metadata = PhoneMetadata.metadata_for_region(country, None)
        if metadata is None:
            raise ValueError(f"no phone numbering known for country {country!r}")
        self.country = country
        self.cc = metadata.country_code or 0
        self._cc_digits = str(self.cc)
        self._prefix = _national_prefix(self.cc)
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
                + f"(?:{_SEP_HTML if html else _SEP_TEXT}[0-9]){{{self._min_digits - 1},}}"
            )
            for html in (False, True)
        }

    def find(self, text: str, html: bool) -> list[_Found]:
        spans = []
        for match in self._patterns[html].finditer(text):
            start = match.start()
            if text[start - 1 : start] == "+":
                start -= 1
            spans.append((start, match.end()))
        places = _placed(text, spans) if html else [(s, e, False) for s, e in spans]
        found: list[_Found] = []
        budget = [_MAX_ATTEMPTS]
        for start, end, link in places:
            found.extend(self._numbers_in(text, start, end, link, budget))
            if budget[0] <= 0:
                break
        return found

    def _numbers_in(
        self, text: str, start: int, end: int, link: bool, budget: list[int]
    ) -> Iterable[_Found]:
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
    ) -> _Found | None:
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
        return _Found(number_start, end, number.country_code or 0, nsn, international, link)


# ---- writing the replacement -------------------------------------------------


def _replacement(
    text: str, found: _Found, target: _Target, pool_cc: int | None
) -> tuple[int, str] | None:
    """``(start, new text)`` replacing ``text[start:found.end]``; ``None`` to keep it."""
    if found.cc == target.cc and found.nsn == target.nsn:
        return None
    if found.link:
        return found.start, target.e164
    written = text[found.start : found.end]
    if found.cc == target.cc and len(found.nsn) == len(target.nsn):
        positions = [m.start(1) for m in _NUMBER_CHAR.finditer(written) if m.group(1)]
        chars = list(written)
        for position, digit in zip(positions[-len(target.nsn) :], target.nsn, strict=True):
            chars[position] = digit
        return found.start, "".join(chars)
    international = found.international or target.cc != pool_cc
    new = target.international if international else target.national
    nbsp = _NBSP_IN_NUMBER.search(written)
    if nbsp is not None:  # keep the number on one line, as the page did
        new = new.replace(" ", nbsp.group())
    start = found.start
    if written.count(")") > written.count("(") and text[start - 1 : start] == "(":
        start -= 1  # "(0117) ..." matched without its "(": replace the pair
    return start, new


# ---- the rewriter ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberOnPage:
    """A number :class:`Rewriter` would swap: ``text[start:end]`` is the number as the page
    wrote it, ``number`` the same in E.164; ``link`` is true in a ``tel:``/``callto:`` target."""

    start: int
    end: int
    text: str
    number: str
    link: bool


class Rewriter:
    """Swaps one pool's numbers on pages for a tracking number. Build it once per pool
    (:func:`compile_rewriter` caches it) and call it for every page; it is immutable
    and safe to share between threads.

    ``country`` is the pool's country (ISO 3166 alpha-2, or ``None`` when unknown:
    then only entries written with ``+`` are found and ``replace_all`` finds
    nothing). ``numbers_to_replace`` entries are read as numbers of that country,
    vanity letters allowed; entries that are no phone number there are listed in
    :attr:`ignored` and otherwise skipped. ``replace_all`` swaps every valid number
    of the country instead.
    """

    __slots__ = ("_cc", "_finder", "country", "ignored", "numbers", "replace_all")

    def __init__(
        self,
        country: str | None,
        numbers_to_replace: Sequence[str] = (),
        *,
        replace_all: bool = False,
    ) -> None:
        country = country.strip().upper() if country else None
        self.country = country
        self.replace_all = replace_all
        metadata = PhoneMetadata.metadata_for_region(country, None) if country else None
        self._cc: int | None = metadata.country_code if metadata is not None else None
        self._finder: _ListedFinder | _AllFinder | None = None
        listed: list[_Listed] = []
        ignored: list[str] = []
        numbers: list[str] = []
        if replace_all:
            if metadata is not None and country is not None:
                self._finder = _AllFinder(country)
        else:
            for entry in numbers_to_replace:
                try:
                    parsed = parse_number(entry, country)
                except ValueError:
                    parsed = None
                if parsed is None or not phonenumbers.is_possible_number(parsed):
                    ignored.append(entry)
                    continue
                cc = parsed.country_code or 0
                nsn = phonenumbers.national_significant_number(parsed)
                prefix = _national_prefix(cc)
                listed.append(_Listed(cc, nsn, prefix.digits, prefix.needed(nsn)))
                numbers.append(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))
            if listed:
                self._finder = _ListedFinder(listed)
        #: The ``numbers_to_replace`` entries in E.164, in the pool's order.
        self.numbers: tuple[str, ...] = tuple(numbers)
        #: ``numbers_to_replace`` entries that are not phone numbers of the pool's country.
        self.ignored: tuple[str, ...] = tuple(ignored)

    @classmethod
    def for_pool(cls, pool: AnyPool) -> Rewriter:
        """The rewriter of ``pool`` (a request or a response); see :func:`compile_rewriter`."""
        config = pool.replacement_configuration
        return cls(
            pool.country,
            config.numbers_to_replace or (),
            replace_all=config.replace_all_numbers,
        )

    def __repr__(self) -> str:
        what = "all numbers" if self.replace_all else ", ".join(self.numbers) or "nothing"
        return f"Rewriter({self.country or 'unknown country'}: {what})"

    def rewrite_html(self, html: str, tracking_number: str | None) -> str:
        """``html`` with this pool's numbers swapped for ``tracking_number``.

        Numbers in text keep their written form; ``tel:``/``callto:`` link targets
        get E.164. Nothing else changes, byte for byte. Without a tracking number,
        or when nothing is swapped, ``html`` itself is returned. Never raises: on
        unexpected input the page comes back unchanged.
        """
        return self._rewrite(html, tracking_number, html=True)

    def rewrite_text(self, text: str, tracking_number: str | None) -> str:
        """``text`` (plain text, not HTML) with this pool's numbers swapped for
        ``tracking_number``, each keeping its written form. Same guarantees as
        :meth:`rewrite_html`."""
        return self._rewrite(text, tracking_number, html=False)

    def find_html(self, html: str) -> list[NumberOnPage]:
        """The numbers :meth:`rewrite_html` would swap in ``html``, in page order."""
        return self._find(html, html=True)

    def find_text(self, text: str) -> list[NumberOnPage]:
        """The numbers :meth:`rewrite_text` would swap in ``text``, in order."""
        return self._find(text, html=False)

    def _find(self, text: str, *, html: bool) -> list[NumberOnPage]:
        if self._finder is None or not isinstance(text, str):
            return []
        return [
            NumberOnPage(
                start=f.start,
                end=f.end,
                text=text[f.start : f.end],
                number=f"+{f.cc}{f.nsn}",
                link=f.link,
            )
            for f in self._finder.find(text, html)
        ]

    def _rewrite(self, text: str, tracking_number: str | None, *, html: bool) -> str:
        if not tracking_number or self._finder is None or not isinstance(text, str) or not text:
            return text
        try:
            target = _target(tracking_number, self.country)
            if target is None:
                return text
            pieces: list[str] = []
            done = 0
            for found in self._finder.find(text, html):
                replacement = _replacement(text, found, target, self._cc)
                if replacement is None:
                    continue
                start, new = replacement
                pieces += (text[done:start], new)
                done = found.end
            if not pieces:
                return text
            pieces.append(text[done:])
            return "".join(pieces)
        except Exception:  # the page must be served whatever it holds
            _log.warning("page left unchanged: rewriting it failed", exc_info=True)
            return text


# ---- one rewriter per pool -----------------------------------------------------

_rewriters: dict[int, tuple[weakref.ref[AnyPool], Rewriter]] = {}
_rewriters_lock = threading.Lock()


def compile_rewriter(pool: AnyPool) -> Rewriter:
    """The :class:`Rewriter` of ``pool``, built on first use and cached while the pool
    object lives (pools are immutable, so the cache never goes stale)."""
    key = id(pool)
    cached = _rewriters.get(key)
    if cached is not None and cached[0]() is pool:
        return cached[1]
    rewriter = Rewriter.for_pool(pool)

    def forget(_: object, key: int = key) -> None:
        with _rewriters_lock:
            entry = _rewriters.get(key)
            if entry is not None and entry[0]() is None:
                del _rewriters[key]

    with _rewriters_lock:
        _rewriters[key] = (weakref.ref(pool, forget), rewriter)
    return rewriter


def rewrite_html(pool: AnyPool, html: str, tracking_number: str | None) -> str:
    """``compile_rewriter(pool).rewrite_html(html, tracking_number)``."""
    return compile_rewriter(pool).rewrite_html(html, tracking_number)


def rewrite_text(pool: AnyPool, text: str, tracking_number: str | None) -> str:
    """``compile_rewriter(pool).rewrite_text(text, tracking_number)``."""
    return compile_rewriter(pool).rewrite_text(text, tracking_number)
