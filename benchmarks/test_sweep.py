"""A sizing sweep spread over two worker processes, against the same sweep run serially.

Group ``sweep-2-workers``. The sweep is the example site's six pools at four
sizes, two replications each (eight runs of a day with 1,000 visitors an hour,
about 24,000 sessions a run): the shape of ``dni-engine simulate --quantity``.

* The baseline runs the eight runs one after another in this process.
* ``2 workers``: the same sweep on a ``ProcessPoolExecutor`` of two processes,
  started (and warmed up with one small run each) before the timing, as a
  long-lived pool or a cluster would be.

The last test checks that both gave the same results (whole reports; every
run carries its seed) and prints the speed-up against the goal: at least
``GOAL`` x on two cores. On a machine with fewer free cores, or busy with
other work, the goal is marked missed; the benchmark never fails on timing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import dni_engine
from benchmarks.report import Goals
from dni_engine.replications import SimulationTask, run_tasks
from dni_engine.schema import load_pools
from dni_engine.simulate import sweep
from dni_engine.traffic import TrafficModel

SITE = Path(__file__).resolve().parent.parent / "examples" / "site" / "pools.json"
TRAFFIC = TrafficModel(visitors_per_hour=1000, hours=24)
SIZES = [20, 40, 60, 80]
REPLICATIONS = 2
WORKERS = 2
GOAL = 1.8  # serial time / 2-worker time, at least

_seconds: dict[str, float] = {}
_reports: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def workers() -> Iterator[Executor]:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as executor:
        pools = tuple(load_pools(SITE.read_bytes()))
        small = TrafficModel(visitors_per_hour=10, hours=1)
        run_tasks([SimulationTask(pools, small, 2, seed) for seed in range(WORKERS)], executor)
        yield executor


def _sweep(executor: Executor | None) -> list[dict[str, Any]]:
    pools = load_pools(SITE.read_bytes())
    runs = sweep(pools, TRAFFIC, SIZES, seed=3, replications=REPLICATIONS, executor=executor)
    return [r.as_dict() for r in runs]


def _timed(benchmark: BenchmarkFixture, name: str, executor: Executor | None) -> None:
    started = time.perf_counter()
    _reports[name] = benchmark.pedantic(_sweep, args=(executor,), rounds=1, iterations=1)
    _seconds[name] = time.perf_counter() - started


@pytest.mark.benchmark(group="sweep-2-workers")
def test_baseline_serial_sweep(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["role"] = "baseline"
    _timed(benchmark, "serial", None)


@pytest.mark.benchmark(group="sweep-2-workers")
def test_sweep_on_two_workers(benchmark: BenchmarkFixture, workers: Executor) -> None:
    benchmark.extra_info["role"] = "candidate"
    _timed(benchmark, "2 workers", workers)


def test_speed_up(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """The same results either way; print the speed-up against the goal."""
    if len(_seconds) < 2:
        goals.ratio("sweep-2-workers", "serial / 2 workers time", None, GOAL, at_most=False)
        pytest.skip("run the whole file: both sweeps are needed for the ratio")
    assert _reports["2 workers"] == _reports["serial"]
    speed_up = _seconds["serial"] / _seconds["2 workers"]
    note = goals.ratio("sweep-2-workers", "serial / 2 workers time", speed_up, GOAL, at_most=False)
    build = "compiled" if dni_engine.COMPILED else "pure Python"
    runs = len(SIZES) * REPLICATIONS
    with capsys.disabled():
        print(
            f"\nsweep-2-workers ({build} build, {os.cpu_count()} cores): {runs} runs, "
            f"{speed_up:.2f}x faster on {WORKERS} worker processes than serially, "
            "identical results" + (note or f" (goal at least {GOAL}x: met)")
        )
