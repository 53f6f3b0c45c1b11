"""The benchmarks' shared plumbing: every ratio against its goal, in one table at the end.

Each module's last test records its ratios with the ``goals`` fixture instead
of asserting them: a busy machine misses a goal, it does not fail the run. The
table is printed at the end of the pytest run and written into
pytest-benchmark's JSON (under ``goals``), which ``benchmarks/report.py``
prints again last, so ``make bench`` ends with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmarks.report import Goals, goal_table

_GOALS = pytest.StashKey[Goals]()


def pytest_configure(config: pytest.Config) -> None:
    """One record of goals for the whole run."""
    config.stash[_GOALS] = Goals()


@pytest.fixture(scope="session")
def goals(pytestconfig: pytest.Config) -> Goals:
    """Where a benchmark records a ratio and its goal (printed and saved at the end)."""
    return pytestconfig.stash[_GOALS]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print every recorded ratio against its goal."""
    rows = config.stash[_GOALS].rows
    if rows:
        terminalreporter.section("every ratio against its goal")
        terminalreporter.write_line(goal_table(rows))


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
) -> None:
    """Save the recorded goals with the benchmark results, for ``benchmarks/report.py``."""
    output_json["goals"] = [dataclasses.asdict(row) for row in config.stash[_GOALS].rows]
