"""One million visitor sessions through the real engine, in sessions per second.

Group ``simulate-1M``. The traffic is a month of a business site with a million
sessions (33,000 a day, shaped like a working day: quiet nights, lunchtime and
early-evening peaks) on the example site's six pools.

* The baseline draws the same sessions from the traffic model alone: the
  simulation's own floor (random numbers, URLs, page views and calls, no
  engine).
* ``sized``: the whole simulation with every pool at 500 numbers, enough for
  the busiest hour (the busiest pool turns away about 0.1% of its visitors).
  This is the question the simulation exists to answer.
* ``overloaded``: the same traffic with pools of 25 numbers, so that most
  visitors find no free number and try again on every page: the engine's
  slowest path, on every page view.

``test_rates`` prints the build (``make bench`` runs the compiled one when the
machine can build it) and the machine, the rates, and their ratio to the floor
against the goal: the simulation takes at most ``GOAL`` times the generator's
time. ``test_the_other_build`` then runs the generator and the sized simulation
on the other build (pure Python under the compiled one, the compiled build in
``.compiled/site`` under pure Python) in a child process, so one run prints both
builds' rates and ratios. Rates are this machine's; the ratio is what carries
to another.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import dni_engine
from benchmarks.report import Goals
from dni_engine.schema import load_pools
from dni_engine.simulate import simulate
from dni_engine.traffic import TYPICAL_DAY, TrafficModel, generate_sessions, hourly_profile

SITE = Path(__file__).resolve().parent.parent / "examples" / "site" / "pools.json"
SESSIONS = 1_000_000
DAYS = 30
_PEAK = SESSIONS / DAYS / sum(TYPICAL_DAY) * max(TYPICAL_DAY)  # visitors in the busiest hour
TRAFFIC = TrafficModel(visitors_per_hour=hourly_profile(TYPICAL_DAY, _PEAK), hours=24.0 * DAYS)
SIZES = {"sized": 500, "overloaded": 25}
GOAL = 5.0  # the sized simulation's time / the generator's time, at most

_rates: dict[str, float] = {}
ROOT = Path(__file__).resolve().parent.parent
# What the child process of test_the_other_build runs: the generator, then the sized run.
_OTHER_BUILD = """
import json, time
import dni_engine
from benchmarks.test_simulate import SITE, SIZES, TRAFFIC, _generate_only
from dni_engine.schema import load_pools
from dni_engine.simulate import simulate
started = time.perf_counter()
floor = _generate_only() / (time.perf_counter() - started)
result = simulate(load_pools(SITE.read_bytes()), TRAFFIC, quantity=SIZES["sized"], seed=1)
rates = {"generation only": floor, "sized": result.sessions_per_second}
print(json.dumps({"compiled": dni_engine.COMPILED, "rates": rates}))
"""


def _generate_only() -> int:
    return sum(1 for _ in generate_sessions(TRAFFIC, seed=1))


@pytest.mark.benchmark(group="simulate-1M")
def test_baseline_traffic_generation(benchmark: BenchmarkFixture) -> None:
    benchmark.extra_info["role"] = "baseline"
    started = time.perf_counter()
    count = benchmark.pedantic(_generate_only, rounds=1, iterations=1)
    _rates["generation only"] = count / (time.perf_counter() - started)


@pytest.mark.benchmark(group="simulate-1M")
@pytest.mark.parametrize("case", list(SIZES))
def test_simulation_through_the_engine(benchmark: BenchmarkFixture, case: str) -> None:
    benchmark.extra_info["role"] = "candidate"
    pools = load_pools(SITE.read_bytes())
    result = benchmark.pedantic(
        lambda: simulate(pools, TRAFFIC, quantity=SIZES[case], seed=1), rounds=1, iterations=1
    )
    assert abs(result.sessions - SESSIONS) < 5_000
    blocked = sum(p.blocked_sessions for p in result.pools) / result.sessions
    benchmark.extra_info["sessions_per_second"] = result.sessions_per_second
    benchmark.extra_info["visits"] = result.visits
    benchmark.extra_info["blocked_share"] = blocked
    _rates[case] = result.sessions_per_second
    if case == "sized":
        assert blocked < 0.01
    else:
        assert blocked > 0.5


def test_rates(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print sessions per second and the ratio to the generator alone, against the goal."""
    build = "compiled" if dni_engine.COMPILED else "pure Python"
    if len(_rates) < 1 + len(SIZES):
        goals.ratio(f"simulate-1M {build}", "simulation / generation time", None, GOAL)
        pytest.skip("run the whole file: every benchmark is needed for the ratios")
    floor = _rates["generation only"]
    sized = _rates["sized"]
    note = goals.ratio(f"simulate-1M {build}", "simulation / generation time", floor / sized, GOAL)
    machine = f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}"
    with capsys.disabled():
        print(
            f"\nsimulate-1M ({build} build, on {machine}): traffic generation alone "
            f"{floor:,.0f} sessions/s"
        )
        for case, quantity in SIZES.items():
            rate = _rates[case]
            print(
                f"  {case} ({quantity} numbers a pool): {rate:,.0f} sessions/s through the "
                f"engine (the simulation takes {floor / rate:.1f}x the generator's time)"
            )
        print(f"  sized: the simulation takes {floor / sized:.1f}x the generator's time{note}")


def test_the_other_build(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Rates and ratio of the build not imported here, measured in a child process.

    Under the compiled build the child imports the checkout's pure-Python
    sources; under pure Python it imports ``.compiled/site`` (skipped when
    there is none: ``make compiled`` builds it). Never fails on timing.
    """
    if dni_engine.COMPILED:
        build, path = "pure Python", str(ROOT)
    else:
        site = ROOT / ".compiled" / "site"
        if not (site / "dni_engine").is_dir():
            goals.ratio("simulate-1M compiled", "simulation / generation time", None, GOAL)
            pytest.skip("no compiled build in .compiled/site (make compiled builds it)")
        build, path = "compiled", os.pathsep.join([str(site), str(ROOT)])
    child = subprocess.run(
        [sys.executable, "-P", "-c", _OTHER_BUILD],
        env={**os.environ, "PYTHONPATH": path},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["compiled"] == (build == "compiled"), "the child imported the wrong build"
    floor, sized = report["rates"]["generation only"], report["rates"]["sized"]
    note = goals.ratio(f"simulate-1M {build}", "simulation / generation time", floor / sized, GOAL)
    with capsys.disabled():
        print(
            f"\nsimulate-1M ({build} build, child process): traffic generation alone "
            f"{floor:,.0f} sessions/s; sized: {sized:,.0f} sessions/s through the engine "
            f"(the simulation takes {floor / sized:.1f}x the generator's time){note}"
        )
