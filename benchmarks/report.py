"""Print each benchmark group's candidate/baseline ratios from pytest-benchmark JSON output.

Usage::

    pytest benchmarks --benchmark-json=.benchmarks/latest.json
    python benchmarks/report.py [RESULTS.json ...] [--baseline GROUP=NAME ...] [--stat median]

Without files, reads ``.benchmarks/latest.json``, else the newest JSON file
under ``.benchmarks/`` (pytest-benchmark's ``--benchmark-autosave``).

Every group has one baseline and any number of candidates. The baseline is,
in order: the benchmark named by ``--baseline GROUP=NAME`` (a substring of its
name), the one whose ``extra_info`` has ``role: baseline``, the one whose name
contains ``baseline``, else the fastest of the group. For each candidate the
report prints its time, the baseline's, the ratio candidate/baseline, and that
ratio in words ("12.5x faster" or "1.3x slower").

Then, when the run recorded them (``benchmarks/conftest.py`` writes them into
the JSON under ``goals``), one table of every ratio the benchmark modules
measured against its goal, with the goals missed marked: the benchmarks
measure, they never fail on timing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT = Path(".benchmarks") / "latest.json"


@dataclass(frozen=True)
class Goal:
    """One ratio a benchmark measured and its goal (``None``: not measured in this run).

    ``at_most``: the ratio meets the goal at or below it (a cost), else at or
    above it (a speed-up). ``unit`` says what the ratio is of, for the table.
    """

    group: str
    measure: str
    value: float | None
    goal: float | None
    at_most: bool = True
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        """Whether the goal is met; ``None`` without a value or a goal."""
        if self.value is None or self.goal is None:
            return None
        return self.value <= self.goal if self.at_most else self.value >= self.goal

    def mark(self) -> str:
        """``met``, ``MISSED``, ``not measured`` or ``-`` (no goal)."""
        if self.value is None:
            return "not measured"
        return {True: "met", False: "MISSED", None: "-"}[self.met]


class Goals:
    """Where the benchmark modules record their ratios (the ``goals`` fixture)."""

    def __init__(self) -> None:
        self.rows: list[Goal] = []

    def ratio(
        self,
        group: str,
        measure: str,
        value: float | None,
        goal: float | None,
        *,
        at_most: bool = True,
        unit: str = "x",
    ) -> str:
        """Record one ratio; return the note to print after it (``""`` when met)."""
        row = Goal(group, measure, value, goal, at_most, unit)
        self.rows.append(row)
        if row.met is False:
            return f" -- MISSED (goal {'at most' if at_most else 'at least'} {goal:g}{unit})"
        return ""


def goal_table(rows: Sequence[Goal]) -> str:
    """Every ratio against its goal, one line each, and how many goals were missed."""
    table = [("group", "ratio", "measured", "goal", "")]
    for row in rows:
        table.append(
            (
                row.group,
                row.measure,
                "-" if row.value is None else f"{row.value:.3g}{row.unit}",
                "-"
                if row.goal is None
                else f"{'<=' if row.at_most else '>='} {row.goal:g}{row.unit}",
                row.mark(),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    missed = sum(1 for row in rows if row.met is False)
    judged = sum(1 for row in rows if row.met is not None)
    lines.append(f"{judged - missed} of {judged} goals met; {missed} missed")
    return "\n".join(lines)


def load_goals(paths: Sequence[Path]) -> list[Goal]:
    """The goals recorded in the given pytest-benchmark JSON files (none: an empty list)."""
    rows = []
    for path in paths:
        try:
            document: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for item in document.get("goals", []):
            rows.append(Goal(**item))
    return rows


@dataclass(frozen=True)
class Result:
    """One benchmark's summary: group, name, chosen statistic (seconds) and role."""

    group: str
    name: str
    seconds: float
    role: str | None


def find_results(paths: Sequence[str]) -> list[Path]:
    """The JSON files to read: those given, else the default or newest saved run."""
    if paths:
        return [Path(p) for p in paths]
    if DEFAULT.exists():
        return [DEFAULT]
    saved = sorted(Path(".benchmarks").glob("**/*.json"), key=lambda p: p.stat().st_mtime)
    if not saved:
        raise SystemExit("no benchmark results: run pytest with --benchmark-json=FILE first")
    return [saved[-1]]


def load(paths: Sequence[Path], stat: str) -> list[Result]:
    """Every benchmark of the given pytest-benchmark JSON files."""
    results = []
    for path in paths:
        try:
            document: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{path}: cannot read benchmark results ({exc})") from None
        for bench in document.get("benchmarks", []):
            results.append(
                Result(
                    group=bench.get("group") or "(no group)",
                    name=bench["name"],
                    seconds=float(bench["stats"][stat]),
                    role=(bench.get("extra_info") or {}).get("role"),
                )
            )
    return results


def pick_baseline(group: list[Result], wanted: str | None) -> Result:
    """The group's baseline (see the module docstring for the order of the rules)."""
    if wanted is not None:
        named = [r for r in group if wanted in r.name]
        if named:
            return named[0]
    for rule in (lambda r: r.role == "baseline", lambda r: "baseline" in r.name):
        chosen = [r for r in group if rule(r)]
        if chosen:
            return chosen[0]
    return min(group, key=lambda r: r.seconds)


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _words(ratio: float) -> str:
    if ratio <= 1:
        return f"{1 / ratio:,.1f}x faster"
    return f"{ratio:,.2f}x slower"


def report(results: list[Result], baselines: dict[str, str], stat: str) -> str:
    """The ratio table as text."""
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    rows = [("group", "candidate", "baseline", stat, "baseline " + stat, "ratio", "")]
    for name in sorted(groups):
        group = groups[name]
        baseline = pick_baseline(group, baselines.get(name))
        candidates = [r for r in group if r is not baseline]
        if not candidates:
            rows.append(
                (name, "-", baseline.name, "-", _time(baseline.seconds), "-", "no candidate")
            )
        for candidate in candidates:
            ratio = candidate.seconds / baseline.seconds
            rows.append(
                (
                    name,
                    candidate.name,
                    baseline.name,
                    _time(candidate.seconds),
                    _time(baseline.seconds),
                    f"{ratio:.4g}",
                    _words(ratio),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", help="pytest-benchmark JSON files")
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="GROUP=NAME",
        help="the baseline of GROUP is the benchmark whose name contains NAME",
    )
    parser.add_argument("--stat", default="median", choices=["median", "mean", "min"])
    args = parser.parse_args(argv)
    baselines = {}
    for option in args.baseline:
        group, equals, name = option.partition("=")
        if not equals:
            parser.error(f"--baseline {option!r} is not GROUP=NAME")
        baselines[group] = name
    results = load(find_results(args.files), args.stat)
    if not results:
        print("no benchmarks in the results (were they disabled?)")
        return 1
    print(report(results, baselines, args.stat))
    goals = load_goals(find_results(args.files))
    if goals:
        print("\nEvery ratio against its goal (measured in this run, on this machine):")
        print(goal_table(goals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
