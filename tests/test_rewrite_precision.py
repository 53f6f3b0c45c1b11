"""replace_all on real pages: precision and recall per country, against the labelled set.

For every country measured, a ``replace_all_numbers`` pool of that country is run
over every saved page of ``../shared/corpora/pages/``; what it would swap is
compared with the page's labelled phone numbers of that country
(``tests/data/page_numbers.json``). A swap is right when it covers every digit
of a labelled phone number of the country and names the same number; anything
else it swaps is a false positive (a date, an id, another country's number, a
piece of a number). ``phonenumbers.PhoneNumberMatcher`` (leniency VALID) is
measured the same way, on the same pages, for comparison.

Targets: precision at least 95% with recall at least 99%, in each country with
phone numbers on the pages; no swap at all in a country without any.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from dni_engine.rewrite import Rewriter
from tests.page_corpus import LABELS, PAGES, Page, labelled_pages, matcher_numbers

pytestmark = pytest.mark.skipif(
    not PAGES.is_dir(), reason=f"the saved real pages are not there ({PAGES})"
)

PRECISION = 0.95
RECALL = 0.99
# Neighbours measured beside the pages' own countries and their numbers': their
# pools have no number of theirs to find here, so every swap would be wrong.
NEIGHBOURS = ("BE", "ES", "IN", "IT", "PL")


@dataclass
class Score:
    """What one finder swapped for one country over the whole set."""

    phones: int = 0
    right: int = 0
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def swapped(self) -> int:
        return self.right + len(self.wrong)

    @property
    def precision(self) -> float | None:
        return self.right / self.swapped if self.swapped else None

    @property
    def recall(self) -> float | None:
        return self.right / self.phones if self.phones else None


def _score(score: Score, page: Page, country: str, swaps: Iterable[tuple[int, int, str]]) -> None:
    phones = [p for p in page.phones if p.country == country]
    score.phones += len(phones)
    found = set()
    for start, end, number in swaps:
        hits = [p for p in phones if p.e164 == number and p.covered_by(start, end)]
        if hits:
            score.right += 1
            found.update(hits)
        else:
            score.wrong.append(f"{page.name}: {page.html[start:end]!r} as {number}")
    score.missed += [f"{page.name}: {p.text!r}" for p in phones if p not in found]


Swaps = dict[tuple[str, str], list[tuple[int, int, str]]]  # (country, page) -> swaps


@functools.cache
def _measure() -> tuple[list[str], dict[str, Score], dict[str, Score], Swaps]:
    pages = list(labelled_pages())
    countries = sorted(
        {page.country for page in pages}
        | {p.country for page in pages for p in page.phones if p.country != "001"}
        | set(NEIGHBOURS)
    )
    ours = {country: Score() for country in countries}
    theirs = {country: Score() for country in countries}
    swaps: Swaps = {}
    for country in countries:
        rewriter = Rewriter(country, replace_all=True)
        for page in pages:
            found = [(f.start, f.end, f.number) for f in rewriter.find_html(page.html)]
            matched = matcher_numbers(page.html, country)
            _score(ours[country], page, country, found)
            _score(theirs[country], page, country, matched)
            swaps[country, page.name] = found + matched
    return countries, ours, theirs, swaps


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _table(countries: list[str], ours: dict[str, Score], theirs: dict[str, Score]) -> str:
    ours_head = ("swapped", "right", "precision", "recall")
    rows = [("country", "phones", *ours_head, "|", "matcher", *ours_head[1:])]
    total = {"ours": Score(), "theirs": Score()}
    for country in countries:
        row: tuple[str, ...] = (country, str(ours[country].phones))
        for name, score in (("ours", ours[country]), ("theirs", theirs[country])):
            sums = total[name]
            sums.phones += score.phones
            sums.right += score.right
            sums.wrong += score.wrong
            if name == "theirs":
                row += ("|",)
            row += (
                str(score.swapped),
                str(score.right),
                _percent(score.precision),
                _percent(score.recall),
            )
        rows.append(row)
    row = ("all", str(total["ours"].phones))
    for name in ("ours", "theirs"):
        score = total[name]
        if name == "theirs":
            row += ("|",)
        row += (str(score.swapped), str(score.right))
        row += (_percent(score.precision), _percent(score.recall))
    rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def test_replace_all_precision_and_recall_on_real_pages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert LABELS.exists()
    countries, ours, theirs, _ = _measure()
    with capsys.disabled():
        print(
            "\nreplace_all on the saved real pages (swapped vs labelled phone numbers), "
            "beside PhoneNumberMatcher (leniency VALID):\n" + _table(countries, ours, theirs)
        )
    for country in countries:
        score = ours[country]
        detail = f"{country}: wrong {score.wrong[:5]}, missed {score.missed[:5]}"
        if score.phones:
            assert (score.precision or 0) >= PRECISION, detail
            assert (score.recall or 0) >= RECALL, detail
        else:
            assert score.swapped == 0, detail


def test_the_labels_cover_whatever_a_finder_swaps() -> None:
    """Every swap of either finder, in every country measured, is a labelled phone
    number or overlaps a labelled look-alike: the labels cover what is measured."""
    *_, swaps = _measure()
    labels = {page.name: page for page in labelled_pages()}
    for (country, name), found in swaps.items():
        page = labels[name]
        for start, end, _ in found:
            assert any(label.start < end and start < label.end for label in page.labels), (
                country,
                name,
                page.html[start:end],
            )
