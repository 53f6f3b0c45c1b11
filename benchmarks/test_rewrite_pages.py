"""Rewriting the saved real pages, each against PhoneNumberMatcher over the same page.

Every page of ``../shared/corpora/pages/`` is rewritten with a pool of its site's
country (``tests/data/page_numbers.json``): one listing the page's own phone
numbers of that country (or the country's example number when it shows none),
and one with ``replace_all_numbers``. The baseline is a scan of the same page
with ``phonenumbers.PhoneNumberMatcher`` for the same country, timed in the same
run. Per page, the ratio is the matcher's time over the rewrite's (best of a few
rounds); the last test prints the ratios at the median page and at the slow end
(the 10th percentile of the ratios: nine pages in ten do better) next to the
goals, and never fails on timing:

- listed numbers: at least 100x faster at the median page;
- replace_all: at least 5x faster at the median page, and not slower (1x) at
  the slow end.

With ``--benchmark-disable`` (as ``make test`` runs) nothing is timed: the
rewrites are checked instead (only numbers change, nothing raises).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.rewrite import Rewriter
from tests.page_corpus import PAGES, Page, labelled_pages

pytestmark = pytest.mark.skipif(
    not PAGES.is_dir(), reason=f"the saved real pages are not there ({PAGES})"
)

ROUNDS = 5
GOALS = {"listed": (100.0, None), "replace_all": (5.0, 1.0)}  # (median, slow end)


@dataclass(frozen=True)
class _Case:
    page: Page
    listed: Rewriter
    everything: Rewriter
    tracking: str


def _tracking_number(country: str) -> str:
    example = phonenumbers.example_number_for_type(
        country, phonenumbers.PhoneNumberType.FIXED_LINE
    ) or phonenumbers.example_number(country)
    assert example is not None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _cases() -> list[_Case]:
    cases = []
    for page in labelled_pages():
        own = sorted({p.e164 for p in page.phones if p.country == page.country and p.e164})
        tracking = _tracking_number(page.country)
        cases.append(
            _Case(
                page,
                Rewriter(page.country, own or [tracking]),
                Rewriter(page.country, replace_all=True),
                tracking,
            )
        )
    return cases


CASES = _cases() if PAGES.is_dir() else []
_times: dict[str, dict[str, float]] = {}  # role -> page -> seconds


def _best(run: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _time_pages(role: str, run: Callable[[_Case], object], rounds: int) -> None:
    _times[role] = {
        case.page.name: _best(lambda case=case: run(case), rounds)  # type: ignore[misc]
        for case in CASES
    }


def _matcher(case: _Case) -> int:
    return sum(1 for _ in phonenumbers.PhoneNumberMatcher(case.page.html, case.page.country))


def _check_rewrite(rewriter: Rewriter, case: _Case) -> None:
    """The rewrite changes the page at the numbers found and nowhere else."""
    html = case.page.html
    out = rewriter.rewrite_html(html, case.tracking)
    found = rewriter.find_html(html)
    if out is html:
        return
    # Outside the numbers (and a "(" before one) the text is the same, in order.
    assert found, case.page.name
    pieces = []
    done = 0
    for number in found:
        pieces.append(html[done : max(done, number.start - 1)])
        done = number.end
    pieces.append(html[done:])
    position = 0
    for piece in pieces:
        at = out.find(piece, position)
        assert at >= 0, (case.page.name, piece[:80])
        position = at + len(piece)


def _run_or_check(
    benchmark: BenchmarkFixture,
    role: str,
    run: Callable[[_Case], object],
    rounds: int,
    check: Callable[[], None],
) -> None:
    """Time ``run`` over every page (benchmarks enabled), else run ``check`` once."""
    if benchmark.disabled:
        benchmark(check)  # run once, untimed
        return
    benchmark.pedantic(_time_pages, args=(role, run, rounds), rounds=1, iterations=1)


def _check_pages() -> None:
    assert len(CASES) == len(list(PAGES.glob("*.html")))


@pytest.mark.benchmark(group="rewrite-pages")
def test_pages_baseline_phonenumber_matcher(benchmark: BenchmarkFixture) -> None:
    _run_or_check(benchmark, "baseline", _matcher, 1, _check_pages)


@pytest.mark.benchmark(group="rewrite-pages")
def test_pages_listed_rewrite(benchmark: BenchmarkFixture) -> None:
    def check() -> None:
        for case in CASES:
            _check_rewrite(case.listed, case)

    def run(case: _Case) -> str:
        return case.listed.rewrite_html(case.page.html, case.tracking)

    _run_or_check(benchmark, "listed", run, ROUNDS, check)


@pytest.mark.benchmark(group="rewrite-pages")
def test_pages_replace_all_rewrite(benchmark: BenchmarkFixture) -> None:
    def check() -> None:
        for case in CASES:
            _check_rewrite(case.everything, case)

    def run(case: _Case) -> str:
        return case.everything.rewrite_html(case.page.html, case.tracking)

    _run_or_check(benchmark, "replace_all", run, ROUNDS, check)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_page_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print the per-page speed-ups next to their goals (never fails on timing)."""
    baseline = _times.get("baseline")
    lines = []
    for role, (median_goal, slow_goal) in GOALS.items():
        candidate = _times.get(role)
        if baseline is None or candidate is None:
            lines.append(f"rewrite-pages {role}: not measured (benchmarks disabled or deselected)")
            continue
        ratios = [baseline[name] / max(candidate[name], 1e-9) for name in candidate]
        median = statistics.median(ratios)
        slow = _quantile(ratios, 0.1)
        group = f"rewrite-pages {role}"
        goals.ratio(group, "matcher / rewrite, median page", median, median_goal, at_most=False)
        if slow_goal is not None:
            goals.ratio(group, "matcher / rewrite, 10th pct", slow, slow_goal, at_most=False)
        line = (
            f"rewrite-pages {role} ({len(ratios)} pages): {median:.1f}x faster than "
            f"PhoneNumberMatcher at the median page (goal {median_goal:.0f}x), "
            f"{slow:.1f}x at the slow end (10th percentile), {min(ratios):.1f}x at the slowest; "
            f"median page {statistics.median(candidate.values()) * 1e3:.2f} ms vs "
            f"{statistics.median(baseline.values()) * 1e3:.1f} ms"
        )
        if slow_goal is not None:
            line += f" (slow-end goal {slow_goal:.0f}x)"
        missed = median < median_goal or (slow_goal is not None and slow < slow_goal)
        lines.append(line + (" -- BELOW GOAL" if missed else ""))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
