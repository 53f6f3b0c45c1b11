"""Rewriting a 100 KB page showing 10 numbers, against scanning it with PhoneNumberMatcher.

Two groups, each with its baseline measured in the same run:

- ``rewrite-listed``: ``numbers_to_replace`` rewrite vs ``PhoneNumberMatcher``
  over the same page (target: at least 100x faster);
- ``rewrite-all``: ``replace_all_numbers`` rewrite vs the same scan (target: at
  least 5x faster).

The last test prints both ratios (median times) next to their targets; it never
fails on timing. ``test_rewrite_pages.py`` measures the same on real pages.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.rewrite import Rewriter

TRACKING = "+441174090199"
NUMBERS = (
    "0117 409 0162",
    "+44 117 409 0162",
    "(0117) 409-0162",
    "0117&nbsp;409&nbsp;0162",
    '<a href="tel:+441174090162">0117 409 0162</a>',
    "+44 (0)117 409 0162",
    "0044 117 409 0162",
    "01174090162",
    "0117.409.0162",
    '<a href="tel:01174090162">Call us</a>',
)
WORDS = (
    "delivery returns warranty quality service store branch opening hours weekend contact",
    "support product range offer customers family business local team repairs parts fitting",
    "tyres brakes servicing appointment booking online",
)


def _product(rng: random.Random, i: int) -> str:
    def n(low: int, high: int) -> int:
        return rng.randint(low, high)

    return (
        f'<div class="product card col-{n(1, 12)}" data-id="{n(10000, 999999)}">'
        f'<a href="/products/{n(1000, 99999)}?ref=list&amp;page={n(1, 40)}">'
        f'<img src="/img/{n(100000, 999999)}.jpg" width="{rng.choice((120, 240, 300))}" '
        f'height="{rng.choice((90, 180, 200))}" alt="Item {i}"></a>'
        f"<h3>Item {i} – model {n(100, 9999)}</h3>"
        f'<p class="price">£{n(5, 900)}.{n(0, 99):02d} <s>£{n(5, 900)}.99</s></p>'
        f'<p class="meta">SKU {n(10**7, 10**9)} · {n(1, 500)} reviews · rated {n(1, 4)}.{n(0, 9)}/5'
        f" · added {n(1, 28):02d}/{n(1, 12):02d}/20{n(10, 24)}</p></div>\n"
    )


def _script(rng: random.Random) -> str:
    rows = ",".join(
        f'{{"id":{rng.randint(1, 10**6)},"price":{rng.randint(1, 900)}.{rng.randint(0, 99)},'
        f'"ts":{rng.randint(10**9, 2 * 10**9)}}}'
        for _ in range(30)
    )
    return f"<script>window.__DATA__=[{rows}];if(a<b&&c>d){{x()}}</script>\n"


def _style(rng: random.Random) -> str:
    n = rng.randint
    rules = "".join(
        f".c{i}{{margin:{n(0, 40)}px {n(0, 40)}px;width:{n(10, 100)}%}}" for i in range(40)
    )
    return f"<style>{rules}</style>\n"


def shop_page(seed: int = 7, size: int = 100_000) -> str:
    """A shop's HTML page of about ``size`` characters (prices, SKUs, dates, scripts,
    styles, comments) showing the business's number in the 10 ways of ``NUMBERS``."""
    rng = random.Random(seed)
    body: list[str] = []
    length = 0
    i = 0
    while length < size - 4000:
        kind = rng.random()
        if kind < 0.5:
            part = _product(rng, i)
            i += 1
        elif kind < 0.9:
            vocabulary = " ".join(WORDS).split(" ")
            words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(20, 60)))
            part = f'<p class="c{rng.randint(0, 39)}">{words.capitalize()}.</p>\n'
        elif kind < 0.95:
            part = _script(rng)
        else:
            part = f"<!-- block {rng.randint(1, 10**6)} -->\n"
        body.append(part)
        length += len(part)
    for written in NUMBERS:
        body.insert(rng.randrange(len(body) + 1), f'<p class="phone">Call {written}, 9-5.</p>\n')
    head = f"<!DOCTYPE html><html><head><title>Shop</title>{_style(rng)}{_script(rng)}</head>"
    return f"{head}<body>\n{''.join(body)}</body></html>\n"


PAGE = shop_page()
LISTED = Rewriter("GB", ["01174090162"])
EVERYTHING = Rewriter("GB", replace_all=True)
_medians: dict[tuple[str, str], float] = {}


def _record(benchmark: BenchmarkFixture, group: str, role: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, role] = stats.stats.median


def _matcher_scan() -> int:
    return sum(1 for _ in phonenumbers.PhoneNumberMatcher(PAGE, "GB"))


def test_the_page() -> None:
    assert 99_000 <= len(PAGE) <= 110_000
    assert len(LISTED.find_html(PAGE)) == 11  # 9 in text, 2 in tel: links
    assert LISTED.rewrite_html(PAGE, TRACKING).count("0199") == 11
    assert len(EVERYTHING.find_html(PAGE)) == 11


@pytest.mark.benchmark(group="rewrite-listed")
def test_listed_baseline_phonenumber_matcher(benchmark: BenchmarkFixture) -> None:
    assert benchmark(_matcher_scan) >= 8
    _record(benchmark, "rewrite-listed", "baseline")


@pytest.mark.benchmark(group="rewrite-listed")
def test_listed_rewrite(benchmark: BenchmarkFixture) -> None:
    out = benchmark(LISTED.rewrite_html, PAGE, TRACKING)
    assert out != PAGE
    _record(benchmark, "rewrite-listed", "candidate")


@pytest.mark.benchmark(group="rewrite-all")
def test_all_baseline_phonenumber_matcher(benchmark: BenchmarkFixture) -> None:
    assert benchmark(_matcher_scan) >= 8
    _record(benchmark, "rewrite-all", "baseline")


@pytest.mark.benchmark(group="rewrite-all")
def test_all_rewrite(benchmark: BenchmarkFixture) -> None:
    out = benchmark(EVERYTHING.rewrite_html, PAGE, TRACKING)
    assert out != PAGE
    _record(benchmark, "rewrite-all", "candidate")


TARGETS = {"rewrite-listed": 100.0, "rewrite-all": 5.0}


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print each group's speed-up (baseline median / candidate median) next to its target."""
    lines = []
    for group, target in TARGETS.items():
        baseline = _medians.get((group, "baseline"))
        candidate = _medians.get((group, "candidate"))
        if baseline is None or candidate is None:
            lines.append(f"{group}: not measured (benchmarks disabled or deselected)")
            goals.ratio(group, "PhoneNumberMatcher / rewrite", None, target, at_most=False)
            continue
        ratio = baseline / candidate
        goals.ratio(group, "PhoneNumberMatcher / rewrite", ratio, target, at_most=False)
        lines.append(
            f"{group}: {ratio:.1f}x faster than PhoneNumberMatcher "
            f"({candidate * 1e3:.2f} ms vs {baseline * 1e3:.2f} ms; target {target:.0f}x)"
            + (" -- BELOW TARGET" if ratio < target else "")
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
