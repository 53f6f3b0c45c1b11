"""Finding a pool's ``numbers_to_replace``, each in any of its written forms."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dni_engine.phone import keypad_letters, letters_to_digits
from dni_engine.rewrite.inline import LOOSE_TAG, other_tag, sibling_joins, strict_tags, visible
from dni_engine.rewrite.markup import Placer, placed
from dni_engine.rewrite.numbers import (
    INTERNATIONAL_KINDS,
    Form,
    Found,
    phone_context,
    written_forms,
)
from dni_engine.rewrite.separators import (
    END,
    NBSP_ENTITY,
    PLUS_HTML,
    PLUS_PERCENT,
    REFERENCE,
    SEP_CLASS,
    SEP_CLASS_HTML,
    SEP_LISTED_HTML,
    SEP_TEXT,
    SEPARATOR_REFERENCE,
)

__all__ = ["Listed", "ListedFinder"]

# In HTML the tags of inline elements may split a number too (0117 <b>496</b> 0123):
# matched loosely here, checked in _confirm.
_SEP_HTML = f"{SEP_LISTED_HTML}(?:{LOOSE_TAG}{SEP_LISTED_HTML}){{0,4}}"


@dataclass(frozen=True, slots=True)
class Listed:
    """A ``numbers_to_replace`` entry, read as a number of the pool's country."""

    cc: int
    nsn: str
    trunk: str
    trunk_needed: bool  # written nationally only with the trunk prefix

    def forms(self) -> tuple[Form, ...]:
        """Every form the number is written in (see :func:`.numbers.written_forms`)."""
        return written_forms(self.cc, self.nsn)

    def written_forms(self) -> list[list[tuple[str, bool]]]:
        """Every way the number is written, as units ``(digit or '+', letters allowed)``."""
        # Area codes and prefixes are digits; vanity letters come later (1-800-FLOWERS):
        # from the fourth national digit on.
        lettered = max(len(self.nsn) - 3, 0)
        units = []
        for form in self.forms():
            digits = form.digits.lstrip("+")
            first_letter = len(digits) - lettered
            written = [(d, i >= first_letter) for i, d in enumerate(digits)]
            units.append([("+", False), *written] if form.digits.startswith("+") else written)
        return units


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
            options.append(END)
        return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"


def _unit_pattern(unit: tuple[str, bool]) -> str:
    char, letters_allowed = unit
    letters = keypad_letters(char) if letters_allowed else ""
    if not letters:
        return re.escape(char)
    return f"[{char}{letters}{letters.lower()}]"


def _first(literal: str, html: bool, rest: str = "") -> str:
    """A pattern's start: a literal first character (the regex engine skips ahead to
    it fast), then a look-behind checking the character before it."""
    char = re.escape(literal)
    if not html or not literal.isdigit():
        return f"{char}(?<![0-9A-Za-z+]{char}){rest}"
    # After a percent-encoded byte (tel:%280117%29...) a digit may stand: the
    # escape is one character. Only link targets keep such hits.
    return f"{char}(?:(?<![0-9A-Za-z+]{char})|(?<=%[0-9A-Fa-f]{{2}}{char})){rest}"


_FOREIGN_LEAD_TEXT = re.compile(r"(?:\+|(?<![0-9])00)[0-9]{1,3}" + SEP_CLASS + r"{1,3}\Z")
_FOREIGN_LEAD_HTML = re.compile(
    r"(?:\+|(?<![0-9])00)[0-9]{1,3}(?:" + SEP_CLASS_HTML + "|" + NBSP_ENTITY + r"){1,3}\Z"
)
_PLUS_WRITTEN = re.compile(r"\+|" + PLUS_HTML + "|" + PLUS_PERCENT)
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_PERCENT_BEFORE = re.compile(r"%[0-9A-Fa-f]{2}\Z")


# A "+" (also written as a character reference or percent-encoded) and the
# separators after it, right before a country code's digits.
_PLUS_BEFORE = re.compile(f"(?:\\+|{PLUS_HTML}|{PLUS_PERCENT}){SEP_LISTED_HTML}\\Z")
_NOT_BEFORE_NUMBER = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+")
_PLUS_REACH = 40

# A scan: a pattern finding numbers (``plain``), or a country code's digits and
# the rest of a number after a "+" (``after_plus``), or both (the NANP's
# 1 212 555 0143 is a national form and the digits after +1).
_Scan = tuple[re.Pattern[str], bool, bool]


def _after_plus(digit: str) -> str:
    """A scan's start at a country code's first digit: after a "+", %2B or &#43;
    (checked after the match), or anything a plain form may follow."""
    return f"{digit}(?:(?<![0-9A-Za-z]{digit})|(?<=%[0-9A-Fa-f]{{2}}{digit}))"


class ListedFinder:
    """Finds a pool's ``numbers_to_replace``, each in any of its written forms."""

    def __init__(self, listed: Sequence[Listed]) -> None:
        self._by_digits: dict[str, tuple[Listed, Form]] = {}
        self._trie = _Trie()
        for entry in listed:
            for form in entry.forms():
                self._by_digits.setdefault(form.digits, (entry, form))
            for units in entry.written_forms():
                self._trie.add(units)
        # Compiled on first use, for text or HTML: most users need only one.
        self._compiled: dict[bool, tuple[_Scan, ...]] = {}

    def _scans(self, html: bool) -> tuple[_Scan, ...]:
        scans = self._compiled.get(html)
        if scans is not None:
            return scans
        sep = _SEP_HTML if html else SEP_TEXT
        plus = self._trie.children.get(("+", False)) if html else None
        # In HTML a "+" may also be written %2B (tel:%2B44...), &#43;, &#x2B; or
        # &plus;. So the digits after it are scanned for, from the country code on,
        # and what stands before them is checked after: one pass over the page
        # for the country code's first digit instead of one for "+", "%" and "&"
        # each, shared with a national form that starts alike (the NANP's 1).
        after_plus = {
            unit[0]: child.pattern_after(sep)
            for unit, child in (plus.children.items() if plus is not None else ())
        }
        plain = {
            unit[0]: child.pattern_after(sep)
            for unit, child in self._trie.children.items()
            if plus is None or unit[0] != "+"
        }
        found: list[_Scan] = []
        for first, rest in plain.items():
            if after_plus.get(first) == rest:
                found.append((re.compile(_after_plus(first) + rest), True, True))
                del after_plus[first]
            else:
                found.append((re.compile(_first(first, html) + rest), True, False))
        for first, rest in after_plus.items():
            found.append((re.compile(_after_plus(first) + rest), False, True))
        self._compiled[html] = tuple(found)
        return self._compiled[html]

    @staticmethod
    def _matches(
        pattern: re.Pattern[str], text: str, match: re.Match[str] | None
    ) -> Iterator[re.Match[str]]:
        """``pattern``'s matches in ``text`` (``match`` its first search, ``None`` when
        it found nothing), in order, not overlapping; but a match across a tag no
        number spans (not an inline element's, see
        :func:`.inline.other_tag`) is no number: in its place stands the match
        from the same start that ends before that tag, if any, else nothing
        (the scan goes on from the character after its start). So what is found
        at a place depends only on what comes before the first such tag after
        it, and what is found right of the tag not on what stands left of it
        (the streaming rewriter cuts a page there)."""
        search = pattern.search
        while match is not None:
            start, end = match.span()
            other = other_tag(text, start, end) if text.find("<", start, end) >= 0 else -1
            if other >= 0:
                match = pattern.match(text, start, other)
                if match is None:
                    match = search(text, start + 1)
                    continue
                end = match.end()
            yield match
            match = search(text, end)

    @classmethod
    def _candidates(
        cls, scans: list[tuple[_Scan, re.Match[str]]], text: str
    ) -> Iterator[tuple[int, int]]:
        """The spans the scans match, each scan given with its first match."""
        for (pattern, plain, after_plus), first in scans:
            if not after_plus:
                yield from (match.span() for match in cls._matches(pattern, text, first))
                continue
            for match in cls._matches(pattern, text, first):
                start = match.start()
                lead = _PLUS_BEFORE.search(text, max(0, start - _PLUS_REACH), start)
                if lead is not None and text[lead.start() - 1 : lead.start()] not in (
                    _NOT_BEFORE_NUMBER
                ):
                    yield lead.start(), match.end()
                elif plain and text[start - 1 : start] != "+":
                    yield match.span()

    def scan(self, text: str, html: bool) -> list[tuple[_Scan, re.Match[str]]]:
        """The first match of each of the scans :meth:`find` reads ``text`` with
        (HTML when ``html``), for the scans that match: when none does (most
        often), ``find`` finds nothing in ``text``. Given to ``find`` as
        ``matched``, it spares ``find`` the same searches."""
        scans = self._compiled.get(html) or self._scans(html)
        return [(scan, first) for scan in scans if (first := scan[0].search(text)) is not None]

    def find(
        self,
        text: str,
        html: bool,
        place: Placer | None = None,
        matched: list[tuple[_Scan, re.Match[str]]] | None = None,
    ) -> list[Found]:
        """The listed numbers in ``text`` (HTML when ``html``) that may be swapped, in
        order; ``place`` (default :func:`.markup.placed` in HTML, everything in text)
        tells where found spans stand; ``matched`` is :meth:`scan` of the same
        ``text`` and ``html``, when already known."""
        scans = self._compiled.get(html) or self._scans(html)
        # Most often no scan matches at all: nothing is found, nothing placed.
        if matched is None:
            matched = [
                (scan, first) for scan in scans if (first := scan[0].search(text)) is not None
            ]
        if not matched:
            return []
        found = [
            hit
            for start, end in self._candidates(matched, text)
            if (hit := self._confirm(text, start, end, html)) is not None
        ]
        if len(scans) > 1:
            found.sort(key=lambda hit: (hit.start, -hit.end))
            kept: list[Found] = []
            for hit in found:
                if not kept or hit.start >= kept[-1].end:
                    kept.append(hit)
            found = kept
        if not html:
            if place is None:
                return found
            kept_spans = {(start, end) for start, end, _ in place(text, [h[:2] for h in found])}
            return [hit for hit in found if (hit.start, hit.end) in kept_spans]
        spans = {(hit.start, hit.end): hit for hit in found}
        return [
            hit
            for start, end, link in (place or placed)(text, spans)
            if self._in_place(text, hit := spans[start, end]._replace(link=link))
        ]

    def _in_place(self, text: str, hit: Found) -> bool:
        """Whether a number placed in text or a link target stands for itself there."""
        if not hit.link:
            # Percent-encoding means something only in a URL.
            written = text[hit.start : hit.end]
            if "<" in written:
                written = visible(text, hit.start, hit.end)[0]
            return "%" not in written and not _PERCENT_BEFORE.match(
                text, max(hit.start - 3, 0), hit.start
            )
        context = phone_context(text, hit.end)
        if context is None or hit.international:
            return True
        value = context.group(3)
        if not _PLUS_WRITTEN.match(value):
            return True  # a domain name: a number of the pool's country
        # A local number in the context of a country code: ours only in our country.
        return _NOT_ALNUM.sub("", REFERENCE.sub("", value)).startswith(str(hit.cc))

    def _confirm(self, text: str, start: int, end: int, html: bool) -> Found | None:
        written = text[start:end]
        if html and "<" in written:  # split by inline tags: read what a browser shows
            if not strict_tags(text, start, end) or sibling_joins(text, start, end):
                return None
            written = visible(text, start, end)[0]
        plus = _PLUS_WRITTEN.match(written) is not None if html else written.startswith("+")
        if html:
            if plus:  # the "+" checked, only separators may be written as references
                written = _PLUS_WRITTEN.sub("", written, count=1)
            unchecked = SEPARATOR_REFERENCE.sub("", written)
            if REFERENCE.search(unchecked):
                return None  # a reference to something else (&amp;, &#49;)
            written = REFERENCE.sub("", written)
        digits = letters_to_digits(_NOT_ALNUM.sub("", written))
        known = self._by_digits.get(("+" if plus else "") + digits)
        if known is None:
            return None
        entry, form = known
        international = form.kind in INTERNATIONAL_KINDS
        foreign = _FOREIGN_LEAD_HTML if html else _FOREIGN_LEAD_TEXT
        if not international and foreign.search(text, max(0, start - 24), start):
            return None  # the end of another country's number: +33 0117 ...
        return Found(start, end, entry.cc, entry.nsn, international, False)
