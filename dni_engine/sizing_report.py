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
from dni_engine.simulate import Recommendation, SimulationResult

__all__ = ["PlotUnavailable", "plot_sizing", "recommendations_table", "results_table"]


class PlotUnavailable(MissingExtra):
    """matplotlib (the ``plot`` extra) is not installed."""


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def results_table(results: Sequence[SimulationResult]) -> Table:
    """Per pool, one row per size tried: load, blocking against Erlang B, calls and accuracy.

    ``blocked`` is the share of sessions that found no free number, next to
    Erlang B for the same offered load; ``wrong`` calls were tied to another
    visit, ``late`` ones came after every window closed, ``no num`` callers saw
    no tracking number. ``accuracy`` leaves out late calls (no pool size
    catches those; a longer ``match_period`` does).
    """
    table = Table(title="Pool sizing: simulation through the engine", title_justify="left")
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
    ordered = sorted(results, key=lambda r: r.quantity or 0)
    keys = [p.pool_key for p in ordered[0].pools] if ordered else []
    for key in keys:
        for index, result in enumerate(ordered):
            report = result.pool(key)
            table.add_row(
                report.name[:24] if index == 0 else "",
                str(report.quantity),
                f"{report.sessions:,}",
                f"{report.offered_load_erlangs:.1f}",
                _pct(report.no_free_number_share),
                _pct(report.erlang_b),
                f"{report.calls:,}",
                f"{report.correct:,}",
                f"{report.misattributed:,}",
                f"{report.unattributed_late:,}",
                f"{report.unattributed_no_number:,}",
                _pct(report.accuracy),
                _pct(report.utilisation_p95),
                end_section=index == len(ordered) - 1,
            )
    return table


def recommendations_table(recommendations: Sequence[Recommendation]) -> Table:
    """The recommended quantity per pool, with what Erlang B says for the same load.

    Erlang B is given for the day's average load and for the busiest hour's.
    """
    table = Table(title="Recommended pool sizes", title_justify="left")
    for header in (
        "pool",
        "target",
        "numbers",
        "achieved",
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
        table.add_row(
            advice.name,
            goal,
            str(advice.quantity) if advice.quantity is not None else "not reached",
            _pct(advice.achieved) if advice.achieved is not None else "-",
            f"{advice.offered_load_erlangs:.1f}",
            str(advice.erlang_b_quantity),
            f"{advice.peak_hour_load_erlangs:.1f}",
            str(advice.erlang_b_peak_hour_quantity),
        )
    return table


def plot_sizing(results: Sequence[SimulationResult], path: str | Path) -> Path:
    """Write a PNG of attribution accuracy and blocking against pool size, per pool.

    Simulated blocking is drawn with the Erlang B curve for the same load.
    Raises :class:`PlotUnavailable` when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("plotting", "plot", exc.name) from exc
    ordered = sorted(results, key=lambda r: r.quantity or 0)
    keys = [p.pool_key for p in ordered[0].pools] if ordered else []
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for key in keys:
        sizes = [r.quantity or 0 for r in ordered]
        reports = [r.pool(key) for r in ordered]
        name = reports[0].name
        left.plot(sizes, [p.accuracy * 100 for p in reports], marker="o", label=name)
        line = right.plot(sizes, [p.no_free_number_share * 100 for p in reports], marker="o")[0]
        right.plot(
            sizes, [p.erlang_b * 100 for p in reports], linestyle="--", color=line.get_color()
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
    right.legend(fontsize="small")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
