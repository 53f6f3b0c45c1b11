"""Presenting pool-sizing results: a terminal table and a plot of accuracy and blocking.

The plot needs matplotlib, an optional extra (``pip install 'dni-engine[plot]'``);
:func:`plot_sizing` raises :class:`PlotUnavailable` with that advice when it is
missing. The sizing search itself is :mod:`dni_engine.simulate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from dni_engine.extras import MissingExtra
from dni_engine.replications import DEFAULT_CONFIDENCE, Interval, summarize
from dni_engine.simulate import Recommendation, SimulationResult

__all__ = ["PlotUnavailable", "plot_sizing", "recommendations_table", "results_table"]


class PlotUnavailable(MissingExtra):
    """matplotlib (the ``plot`` extra) is not installed."""


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def results_table(
    results: Sequence[SimulationResult], confidence: float = DEFAULT_CONFIDENCE
) -> Table:
    """Per pool, one row per size tried: load, blocking against Erlang B, calls and accuracy.

    ``blocked`` is the share of sessions that found no free number, next to
    Erlang B for the same offered load; ``wrong`` calls were tied to another
    visit, ``late`` ones came after every window closed, ``no num`` callers saw
    no tracking number. ``accuracy`` leaves out late calls (no pool size
    catches those; a longer ``match_period`` does).

    When a size ran more than once (replications), its row gives the mean of
    each count per run, and accuracy and blocking as the mean with the
    ``confidence`` interval one fresh run falls in: ``99.3% [98.9, 99.6]``.
    """
    summaries = summarize(results, confidence)
    runs = max((s.replications for s in summaries), default=1)
    title = "Pool sizing: simulation through the engine"
    if runs > 1:
        title += (
            f" (mean of {runs} runs per size; [interval] where a fresh run falls, "
            f"{confidence * 100:g}% confidence)"
        )
    table = Table(title=title, title_justify="left")
    for header in (
        "pool",
        "size",
        "sessions",
        "load E",
        "blocked",
        "Erlang B",
        "calls",
        "right",
        "wrong",
        "late",
        "no num",
        "accuracy",
        "util95",
    ):
        table.add_column(header, justify="left" if header == "pool" else "right", no_wrap=True)
    for index, summary in enumerate(summaries):
        first = index == 0 or summaries[index - 1].pool_key != summary.pool_key
        last = index == len(summaries) - 1 or summaries[index + 1].pool_key != summary.pool_key
        table.add_row(
            summary.name[:24] if first else "",
            str(summary.quantity),
            f"{summary.mean('sessions'):,.0f}",
            f"{summary.mean('offered_load_erlangs'):.1f}",
            str(summary.blocking),
            _pct(summary.mean("erlang_b")),
            f"{summary.mean('calls'):,.0f}",
            f"{summary.mean('correct'):,.0f}",
            f"{summary.mean('misattributed'):,.0f}",
            f"{summary.mean('unattributed_late'):,.0f}",
            f"{summary.mean('unattributed_no_number'):,.0f}",
            str(summary.accuracy),
            _pct(summary.mean("utilisation_p95")),
            end_section=last,
        )
    return table


def recommendations_table(recommendations: Sequence[Recommendation]) -> Table:
    """The recommended quantity per pool, with what Erlang B says for the same load.

    ``achieved`` is the metric at that quantity: over replications, the mean
    and the interval a fresh run falls in (the quantity is the smallest whose
    interval meets the target). Erlang B is given for the day's average load
    and for the busiest hour's.
    """
    table = Table(title="Recommended pool sizes", title_justify="left")
    for header in (
        "pool",
        "target",
        "numbers",
        "achieved",
        "runs",
        "load E",
        "Erlang B says",
        "peak-hour load E",
        "Erlang B at peak",
    ):
        table.add_column(header, justify="left" if header == "pool" else "right")
    for advice in recommendations:
        goal = (
            f"accuracy >= {_pct(advice.target)}"
            if advice.metric == "accuracy"
            else f"blocking <= {_pct(advice.target)}"
        )
        achieved = "-"
        if advice.achieved is not None:
            achieved = str(
                Interval(
                    advice.achieved,
                    advice.low if advice.low is not None else advice.achieved,
                    advice.high if advice.high is not None else advice.achieved,
                    advice.replications,
                    advice.confidence,
                )
            )
        table.add_row(
            advice.name,
            goal,
            str(advice.quantity) if advice.quantity is not None else "not reached",
            achieved,
            str(advice.replications),
            f"{advice.offered_load_erlangs:.1f}",
            str(advice.erlang_b_quantity),
            f"{advice.peak_hour_load_erlangs:.1f}",
            str(advice.erlang_b_peak_hour_quantity),
        )
    return table


def plot_sizing(
    results: Sequence[SimulationResult],
    path: str | Path,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Path:
    """Write a PNG of attribution accuracy and blocking against pool size, per pool.

    Simulated blocking is drawn with the Erlang B curve for the same load.
    When sizes ran more than once, each line is the mean over the runs and a
    shaded band the ``confidence`` interval one fresh run falls in. Raises
    :class:`PlotUnavailable` when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("plotting", "plot", exc.name) from exc
    summaries = summarize(results, confidence)
    keys = list(dict.fromkeys(s.pool_key for s in summaries))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    banded = False
    for key in keys:
        rows = [s for s in summaries if s.pool_key == key]
        sizes = [s.quantity for s in rows]
        name = rows[0].name
        line = left.plot(sizes, [s.accuracy.mean * 100 for s in rows], marker="o", label=name)[0]
        colour = line.get_color()
        right.plot(sizes, [s.blocking.mean * 100 for s in rows], marker="o", color=colour)
        right.plot(sizes, [s.mean("erlang_b") * 100 for s in rows], linestyle="--", color=colour)
        if any(s.replications > 1 for s in rows):
            banded = True
            for axis, values in (
                (left, [s.accuracy for s in rows]),
                (right, [s.blocking for s in rows]),
            ):
                axis.fill_between(
                    sizes,
                    [v.low * 100 for v in values],
                    [v.high * 100 for v in values],
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
    left.set_title("Calls attributed to the right visit")
    left.set_xlabel("numbers in the pool")
    left.set_ylabel("accuracy (%)")
    left.grid(alpha=0.3)
    right.set_title("Visitors finding no free number")
    right.set_xlabel("numbers in the pool")
    right.set_ylabel("blocked (%)")
    right.grid(alpha=0.3)
    left.legend(fontsize="small")
    # One key for the style, the colours being those of the left panel's pools.
    right.plot([], [], color="grey", marker="o", label="simulated")
    right.plot([], [], color="grey", linestyle="--", label="Erlang B, same load")
    if banded:
        right.fill_between(
            [], [], [], color="grey", alpha=0.15, label=f"a fresh run, {confidence * 100:g}%"
        )
    right.legend(fontsize="small")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
