"""Finding a pool's ``numbers_to_replace``, each in any of its written forms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dni_engine.phone import keypad_letters, letters_to_digits
from dni_engine.rewrite.markup import placed
from dni_engine.rewrite.numbers import Found
from dni_engine.rewrite.separators import (
    END,
    NBSP_ENTITY,
    NBSP_IN_NUMBER,
    SEP_CLASS,
    SEP_CLASS_HTML,
    SEP_HTML,
    SEP_TEXT,
)

__all__ = ["Listed", "ListedFinder"]


@dataclass(frozen=True, slots=True)
class Listed:
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
            options.append(END)
        return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"


def _unit_pattern(unit: tuple[str, bool]) -> str:
    char, letters_allowed = unit
    letters = keypad_letters(char) if letters_allowed else ""
    if not letters:
        return re.escape(char)
    return f"[{char}{letters}{letters.lower()}]"


_FOREIGN_LEAD_TEXT = re.compile(r"(?:\+|(?<![0-9])00)[0-9]{1,3}" + SEP_CLASS + r"{1,3}\Z")
_FOREIGN_LEAD_HTML = re.compile(
    r"(?:\+|(?<![0-9])00)[0-9]{1,3}(?:" + SEP_CLASS_HTML + "|" + NBSP_ENTITY + r"){1,3}\Z"
)
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


class ListedFinder:
    """Finds a pool's ``numbers_to_replace``, each in any of its written forms."""

    def __init__(self, listed: Sequence[Listed]) -> None:
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
                    + child.pattern_after(SEP_HTML if html else SEP_TEXT)
                )
                for unit, child in trie.children.items()
            )
            for html in (False, True)
        }

    def find(self, text: str, html: bool) -> list[Found]:
        found = [
            hit
            for pattern in self._patterns[html]
            for match in pattern.finditer(text)
            if (hit := self._confirm(text, match.start(), match.end(), html)) is not None
        ]
        if len(self._patterns[html]) > 1:
            found.sort(key=lambda hit: (hit.start, -hit.end))
            kept: list[Found] = []
            for hit in found:
                if not kept or hit.start >= kept[-1].end:
                    kept.append(hit)
            found = kept
        if not html:
            return found
        spans = {(hit.start, hit.end): hit for hit in found}
        return [spans[start, end]._replace(link=link) for start, end, link in placed(text, spans)]

    def _confirm(self, text: str, start: int, end: int, html: bool) -> Found | None:
        written = text[start:end]
        if html:
            written = NBSP_IN_NUMBER.sub(" ", written)
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
            return Found(start, end, entry.cc, entry.nsn, international, False)
        return None
