"""One million visitor sessions through the real engine, in sessions per second.

Group ``simulate-1M``: the baseline is drawing the same sessions from the
traffic model alone (the simulation's own floor: random numbers, URLs, page
views and calls, no engine); the candidate is the whole simulation, every page
view an ``Engine.visit`` and every call an ``Engine.attribute_call`` on the
example site's six pools. The last test prints both rates and their ratio.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dni_engine.schema import load_pools
from dni_engine.simulate import simulate
from dni_engine.traffic import TrafficModel, generate_sessions

SITE = Path(__file__).resolve().parent.parent / "examples" / "site" / "pools.json"
SESSIONS = 1_000_000
HOURS = 24.0
TRAFFIC = TrafficModel(visitors_per_hour=SESSIONS / HOURS, hours=HOURS)
TARGET_PER_SECOND = 100_000

_rates: dict[str, float] = {}


def _generate_only() -> int:
    return sum(1 for _ in generate_sessions(TRAFFIC, seed=1))


@pytest.mark.benchmark(group="simulate-1M")
def test_baseline_traffic_generation(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["role"] = "baseline"
    started = time.perf_counter()
    count = benchmark.pedantic(_generate_only, rounds=1, iterations=1)
    _rates["generation only"] = count / (time.perf_counter() - started)


@pytest.mark.benchmark(group="simulate-1M")
def test_simulation_through_the_engine(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["role"] = "candidate"
    pools = load_pools(SITE.read_bytes())
    result = benchmark.pedantic(
        lambda: simulate(pools, TRAFFIC, quantity=200, seed=1), rounds=1, iterations=1
    )
    assert abs(result.sessions - SESSIONS) < 5_000
    benchmark.extra_info["sessions_per_second"] = result.sessions_per_second
    benchmark.extra_info["visits"] = result.visits
    _rates["simulation"] = result.sessions_per_second


def test_rates(capsys: pytest.CaptureFixture[str]) -> None:
    """Print sessions per second, the ratio to the generator alone, and the target."""
    if len(_rates) < 2:
        pytest.fail("run the whole file: both benchmarks are needed for the ratio")
    simulation, floor = _rates["simulation"], _rates["generation only"]
    verdict = "met" if simulation >= TARGET_PER_SECOND else "not met"
    with capsys.disabled():
        print(
            f"\nsimulate-1M: {simulation:,.0f} sessions/s through the engine; "
            f"traffic generation alone {floor:,.0f} sessions/s "
            f"(simulation takes {floor / simulation:.1f}x the generator's time); "
            f"target {TARGET_PER_SECOND:,}/s: {verdict}"
        )
