"""Streaming rewrites against whole-page rewrites of the same pages, in the same run.

- ``rewrite-stream-listed`` / ``rewrite-stream-all``: the synthetic 100 KB shop
  page of ``test_rewrite.py``, rewritten whole (the baseline) and fed to a
  :class:`~dni_engine.rewrite.RewriteStream` in 16, 32 and 64 KB pieces;
- ``rewrite-stream-pages``: every saved real page of ``../shared/corpora/pages/``
  (skipped without it), whole and in 16, 32 and 64 KB pieces, with a pool of the
  page's country (its own numbers listed, and replace_all).

64 KB is what the web integration feeds a stream at a time from a compressed
body (``dni_engine.web.body._PIECE``, the most one decompression step gives);
an uncompressed body is fed in the pieces the application gives. The last
piece goes to the stream's ``close``, as the web integration gives it: a body
known whole is one piece, a streamed one's last piece is the last decoded
output of its last part (the ASGI message without ``more_body``, the end of a
compressed body).

What is timed is the stream's work: the page is cut into pieces before (they
are what arrives) and what the stream gives out is not joined (a server sends
each piece on).

The goal: streaming costs at most 1.2x the whole-page rewrite. The last test
prints the ratios (stream time over whole-page time; at the median page and the
90th percentile for the real pages) next to the goal, marking each one missed
with ``MISSED``; nothing fails on timing.
With ``--benchmark-disable`` the streams are checked instead (their output is
the whole-page rewrite).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from benchmarks.test_rewrite import EVERYTHING, LISTED, PAGE, TRACKING
from benchmarks.test_rewrite_pages import CASES
from dni_engine.rewrite import Rewriter
from dni_engine.web.body import _PIECE as WEB_PIECE

GOAL = 1.2  # stream time / whole-page time, at most
SIZES = sorted({16384, 32768, 65536, WEB_PIECE})  # piece sizes, characters
_medians: dict[tuple[str, str], float] = {}
_pages: dict[str, list[float]] = {}


def cut(html: str, size: int) -> list[str]:
    """``html`` in pieces of ``size`` characters: what arrives, cut before timing."""
    return [html[at : at + size] for at in range(0, len(html), size)]


def fed(rewriter: Rewriter, pieces: list[str], tracking: str) -> list[str]:
    """``pieces`` fed to a stream, the last one given to its close (as the web
    integration gives it the last piece it knows of): what it gives out, piece by
    piece (as a server sends them on; joined, the whole-page rewrite)."""
    stream = rewriter.stream(tracking)
    out = [stream.feed(piece) for piece in pieces[:-1]]
    out.append(stream.close(pieces[-1] if pieces else ""))
    return out


def streamed(rewriter: Rewriter, html: str, tracking: str, size: int) -> str:
    """``html`` fed to a stream in pieces of ``size`` characters; what it gives out."""
    return "".join(fed(rewriter, cut(html, size), tracking))


def _record(benchmark: BenchmarkFixture, group: str, role: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, role] = stats.stats.median


GROUPS = {"rewrite-stream-listed": LISTED, "rewrite-stream-all": EVERYTHING}


@pytest.mark.parametrize("group", GROUPS)
def test_streams_are_the_whole_page_rewrite(group: str) -> None:
    rewriter = GROUPS[group]
    expected = rewriter.rewrite_html(PAGE, TRACKING)
    for size in SIZES:
        assert streamed(rewriter, PAGE, TRACKING, size) == expected


@pytest.mark.parametrize("group", GROUPS)
def test_whole_page(benchmark: BenchmarkFixture, group: str) -> None:
    benchmark.group = group
    assert benchmark(GROUPS[group].rewrite_html, PAGE, TRACKING) != PAGE
    _record(benchmark, group, "whole")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("group", GROUPS)
def test_stream(benchmark: BenchmarkFixture, group: str, size: int) -> None:
    benchmark.group = group
    assert "".join(benchmark(fed, GROUPS[group], cut(PAGE, size), TRACKING)) != PAGE
    _record(benchmark, group, f"stream {size // 1024} KB")


def _best(run: Callable[[], object], rounds: int = 5) -> float:
    """The least CPU time of ``rounds`` runs: the process's own time, so other
    work on the machine weighs on neither side of a ratio."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def _time_pages() -> None:
    for case in CASES:
        for role, rewriter in (("listed", case.listed), ("replace_all", case.everything)):
            html, tracking = case.page.html, case.tracking
            whole = _best(lambda: rewriter.rewrite_html(html, tracking))  # noqa: B023
            for size in SIZES:
                pieces = cut(html, size)
                stream = _best(lambda: fed(rewriter, pieces, tracking))  # noqa: B023
                _pages.setdefault(f"{role} {size // 1024} KB", []).append(stream / max(whole, 1e-9))


def _check_pages() -> None:
    for case in CASES[::10]:
        for rewriter in (case.listed, case.everything):
            expected = rewriter.rewrite_html(case.page.html, case.tracking)
            for size in SIZES:
                assert streamed(rewriter, case.page.html, case.tracking, size) == expected


@pytest.mark.benchmark(group="rewrite-stream-pages")
def test_stream_pages(benchmark: BenchmarkFixture) -> None:
    if not CASES:
        pytest.skip("the saved real pages (../shared/corpora/pages) are not there")
    if benchmark.disabled:
        benchmark(_check_pages)
        return
    benchmark.pedantic(_time_pages, rounds=1, iterations=1)


def _verdict(ratio: float) -> str:
    return f"goal at most {GOAL}x: " + ("met" if ratio <= GOAL else "MISSED")


def _web(size: int) -> str:
    return " (the web integration's pieces)" if size == WEB_PIECE else ""


def test_stream_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print each stream's cost relative to the whole-page rewrite, next to the goal."""
    lines = []
    for group in GROUPS:
        whole = _medians.get((group, "whole"))
        for size in SIZES:
            stream = _medians.get((group, f"stream {size // 1024} KB"))
            if whole is None or stream is None:
                lines.append(
                    f"{group} {size // 1024} KB: not measured (benchmarks disabled or deselected)"
                )
                continue
            ratio = stream / whole
            goals.ratio(f"{group} {size // 1024} KB", "stream / whole page", ratio, GOAL)
            lines.append(
                f"{group} {size // 1024} KB pieces{_web(size)}: {ratio:.2f}x the whole-page "
                f"rewrite ({stream * 1e3:.2f} ms vs {whole * 1e3:.2f} ms); {_verdict(ratio)}"
            )
    for role in ("listed", "replace_all"):
        for size in SIZES:
            ratios = sorted(_pages.get(f"{role} {size // 1024} KB", []))
            if not ratios:
                continue
            median = statistics.median(ratios)
            p90 = ratios[min(len(ratios) - 1, int(len(ratios) * 0.9))]
            name = f"rewrite-stream-pages {role} {size // 1024} KB"
            goals.ratio(name, "stream / whole, median", median, GOAL)
            goals.ratio(name, "stream / whole, 90th pct", p90, GOAL)
            lines.append(
                f"rewrite-stream-pages {role} {size // 1024} KB pieces{_web(size)} "
                f"({len(ratios)} pages): median page {median:.2f}x ({_verdict(median)}), "
                f"90th percentile {p90:.2f}x ({_verdict(p90)}), worst {ratios[-1]:.2f}x"
            )
    if not _pages:
        lines.append("rewrite-stream-pages: not measured (benchmarks disabled or no pages)")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
