"""The saved real pages of ``../shared/corpora/pages/`` and their labelled numbers.

Pages are read from the shared corpora (never copied into the project); the
labels, ``tests/data/page_numbers.json``, are the project's own: every phone
number written in the pages' text and ``tel:`` links, with its country, and the
look-alikes (dates, ids, amounts, ...) an over-generous extractor and
``phonenumbers.PhoneNumberMatcher`` find there. ``tests/data/label_pages.py``
made them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from dni_engine.rewrite.markup import placed

__all__ = [
    "LABELS",
    "PAGES",
    "Label",
    "Page",
    "labelled_pages",
    "matcher_numbers",
    "read_page",
]

PAGES = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "pages"
LABELS = Path(__file__).resolve().parent / "data" / "page_numbers.json"


def read_page(path: Path) -> str:
    """A saved page as text: UTF-8, else Windows-1252 (as its ``charset`` says)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


@dataclass(frozen=True)
class Label:
    """One labelled candidate: ``text[start:end]`` as written on the page."""

    start: int
    end: int
    text: str
    phone: bool
    country: str | None  # ISO region of a phone number ("001": international freephone)
    e164: str | None
    kind: str  # "phone", or what the look-alike is: "date", "id", "amount", ...

    def covered_by(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` holds every digit of the labelled number."""
        digits = [i for i, ch in enumerate(self.text) if ch.isdigit()]
        return start <= self.start + digits[0] and end >= self.start + digits[-1] + 1


@dataclass(frozen=True)
class Page:
    """A saved page, its site's country and its labels."""

    name: str
    country: str
    html: str
    labels: tuple[Label, ...]

    @property
    def phones(self) -> tuple[Label, ...]:
        """The labelled phone numbers."""
        return tuple(label for label in self.labels if label.phone)


def labelled_pages() -> Iterator[Page]:
    """Every saved page with its labels (the corpora must be there)."""
    document = json.loads(LABELS.read_text(encoding="utf-8"))
    for name, entry in sorted(document["pages"].items()):
        html = read_page(PAGES / name)
        labels = []
        for item in entry["numbers"]:
            label = Label(
                start=item["start"],
                end=item["end"],
                text=item["text"],
                phone=item["phone"],
                country=item.get("country"),
                e164=item.get("e164"),
                kind=item["kind"],
            )
            if html[label.start : label.end] != label.text:
                raise ValueError(f"{name}: label {label.text!r} is not at {label.start}")
            labels.append(label)
        yield Page(name, entry["country"], html, tuple(labels))


# Where the matcher is run: around every run of digits, with room on both sides.
_DIGITS = re.compile(r"[0-9][0-9\s.\-/()\u00a0\u2010-\u2015+]*[0-9]|[0-9]")
_MARGIN = 64


def matcher_numbers(html: str, country: str) -> list[tuple[int, int, str]]:
    """``(start, end, E.164)`` of what ``PhoneNumberMatcher`` (leniency VALID) finds in
    ``html`` for ``country``, kept where the rewriter may swap (text and ``tel:``
    targets) and when the number is of ``country``.

    The matcher reads each stretch of the page around digits in text, with 64
    characters on each side: what it finds there is what it finds over the whole
    page (it looks no further than a number and the character on each side of it),
    at a fraction of the time.
    """
    stretches: list[list[int]] = []
    runs = [match.span() for match in _DIGITS.finditer(html)]
    for run_start, run_end, _ in placed(html, runs):  # digits in scripts hold no numbers
        start, end = max(0, run_start - _MARGIN), run_end + _MARGIN
        if stretches and start <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([start, end])
    found: dict[tuple[int, int], str] = {}
    for start, end in stretches:
        for match in phonenumbers.PhoneNumberMatcher(
            html[start:end], country, leniency=phonenumbers.Leniency.VALID
        ):
            if phonenumbers.region_code_for_number(match.number) != country:
                continue
            span = (start + match.start, start + match.end)
            found[span] = phonenumbers.format_number(
                match.number, phonenumbers.PhoneNumberFormat.E164
            )
    spans = sorted(found)
    return [(s, e, found[s, e]) for s, e, _ in placed(html, spans)]
