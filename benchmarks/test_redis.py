"""``Engine.visit`` on the Redis store, against a bare ``PING`` and the memory store.

One real ``redis-server`` on loopback serves the whole module. Group
``redis-visit`` measures, in the same run:

- ``ping``: one ``PING`` round trip on that server: the physical floor (a visit
  in the common cases is one round trip: a pool's script, pipelined with the
  visitor's hint key);
- ``memory``: a returning visitor's visit on the embedded memory store;
- ``redis-kept``: the same traffic on :class:`RedisStore`, without a hint (one
  round trip: the claimed pool keeps the lease);
- ``redis-kept-hinted``: a returning visitor on a page matching no pool, with
  the web integration's hint (the lease cookie's pool): one round trip;
- ``redis-new-minted``: first visits of visitor ids minted for the request
  (``hint=NEW_VISITOR``, as the web integration passes), each taking a free
  number: one round trip (and one expired lease ended by the script on average);
- ``redis-new``: the same first visits without a hint: two round trips (the
  claimed pool keeps nothing; the hint key names nothing; then the take).

The last test prints each Redis visit in ``PING`` round trips and against the
memory store (median times), next to its goal (1.3 round trips' worth of time
for a returning visit, 1.5 for a first visit with the minted hint, 2.5 without
a hint). ``benchmarks/report.py`` shows the same group against its ``PING``
baseline.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.engine import Engine
from dni_engine.leases import SimulatedClock
from dni_engine.schema import NumberPool
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.stores.memory import MemoryStore
from dni_engine.stores.redis import RedisStore
from dni_engine.testing import build_pool, source
from dni_engine.testing.redis_server import RedisServer

HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
URL = "https://shop.example/?gclid=abc"
REFERRER = "https://www.google.com/"
RETURNING = 200
_medians: dict[str, float] = {}


def _pool(count: int, match_period: int) -> NumberPool:
    """The Google Ads pool: ``count`` numbers, ``+4411740`` and five digits."""
    return build_pool(
        id=1,
        name="bench",
        numbers=[f"+4411740{i:05d}" for i in range(count)],
        first_number_id=0,
        match_period=match_period,
        sources=[source("Google", ["gclid=*"])],
        numbers_to_replace=["01179460000"],
        termination_number="+441274792823",
    )


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


def _record(benchmark: BenchmarkFixture, name: str) -> None:
    # The PING is the group's baseline for benchmarks/report.py; the rest are candidates.
    benchmark.extra_info["role"] = "baseline" if name == "ping" else "candidate"
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[name] = stats.stats.median


def _returning(engine: Engine, clock: SimulatedClock) -> Iterator[str]:
    """Warm ``RETURNING`` visitors up, then cycle through them (each visit is ``kept``)."""
    visitors = [f"visitor-{i}" for i in range(RETURNING)]
    for visitor in visitors:
        assert engine.visit(visitor, URL, REFERRER, HUMAN).outcome == "new"
    clock.advance(1.0)
    return itertools.cycle(visitors)


@pytest.mark.benchmark(group="redis-visit")
def test_baseline_ping_round_trip(benchmark: BenchmarkFixture, server: RedisServer) -> None:
    with server.client() as client:
        assert benchmark(client.ping)
    _record(benchmark, "ping")


@pytest.mark.benchmark(group="redis-visit")
def test_visit_memory_store(benchmark: BenchmarkFixture) -> None:
    clock = SimulatedClock(1_700_000_000.0)
    engine = Engine([_pool(500, 30)], MemoryStore(), clock=clock)
    visitors = _returning(engine, clock)

    def visit() -> str:
        clock.advance(0.01)
        return engine.visit(next(visitors), URL, REFERRER, HUMAN).outcome

    assert benchmark(visit) == "kept"
    _record(benchmark, "memory")


@pytest.mark.benchmark(group="redis-visit")
def test_visit_redis_store_returning(benchmark: BenchmarkFixture, server: RedisServer) -> None:
    clock = SimulatedClock(1_700_000_000.0)
    store = RedisStore(server.url, namespace="bench-kept")
    engine = Engine([_pool(500, 30)], store, clock=clock)
    visitors = _returning(engine, clock)

    def visit() -> str:
        clock.advance(0.01)
        return engine.visit(next(visitors), URL, REFERRER, HUMAN).outcome

    assert benchmark(visit) == "kept"
    assert engine.outcome_count("store_unavailable") == 0
    store.close()
    _record(benchmark, "redis-kept")


def _first_visits(server: RedisServer, benchmark: BenchmarkFixture, role: str) -> None:
    clock = SimulatedClock(1_700_000_000.0)
    store = RedisStore(server.url, namespace=f"bench-{role}")
    # One-minute holds and 0.1 s between visits: about 600 live leases, never exhausted.
    engine = Engine([_pool(1000, 1)], store, clock=clock)
    counter = itertools.count()
    hint = NEW_VISITOR if role == "redis-new-minted" else None

    def visit() -> str:
        clock.advance(0.1)
        return engine.visit(f"new-{next(counter)}", URL, REFERRER, HUMAN, hint=hint).outcome

    assert benchmark(visit) == "new"
    assert engine.outcome_count("overflow") == engine.outcome_count("store_unavailable") == 0
    store.close()
    _record(benchmark, role)


@pytest.mark.benchmark(group="redis-visit")
def test_visit_redis_store_returning_hinted(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    clock = SimulatedClock(1_700_000_000.0)
    store = RedisStore(server.url, namespace="bench-kept-hinted")
    engine = Engine([_pool(500, 30)], store, clock=clock)
    visitors = _returning(engine, clock)
    pool_key = engine.pool_key("bench")

    def visit() -> str:
        clock.advance(0.01)
        # A later page of the site: no match, the lease cookie's pool as the hint.
        return engine.visit(
            next(visitors), "https://shop.example/contact", None, HUMAN, hint=pool_key
        ).outcome

    assert benchmark(visit) == "kept"
    assert engine.outcome_count("store_unavailable") == 0
    store.close()
    _record(benchmark, "redis-kept-hinted")


@pytest.mark.benchmark(group="redis-visit")
def test_visit_redis_store_first_visit_minted(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    _first_visits(server, benchmark, "redis-new-minted")


@pytest.mark.benchmark(group="redis-visit")
def test_visit_redis_store_first_visit(benchmark: BenchmarkFixture, server: RedisServer) -> None:
    _first_visits(server, benchmark, "redis-new")


# Targets in PING round trips: the round trips, the script's own work, the client library.
TARGETS = {
    "redis-kept": 1.3,
    "redis-kept-hinted": 1.3,
    "redis-new-minted": 1.5,
    "redis-new": 2.5,
}


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print each Redis visit in PING round trips and against the memory store.

    Never fails on timing: a goal missed is marked here and in the run's summary.
    """
    ping, memory = _medians.get("ping"), _medians.get("memory")
    lines = []
    for role, target in TARGETS.items():
        visit = _medians.get(role)
        if visit is None or ping is None or memory is None:
            lines.append(f"{role}: not measured (benchmarks disabled or deselected)")
            goals.ratio(role, "visit / PING", None, target, unit=" round trips")
            continue
        trips = visit / ping
        lines.append(
            f"{role}: {visit * 1e6:.0f} us per visit ({1 / visit:,.0f}/s) = {trips:.1f} PING "
            f"round trips ({ping * 1e6:.0f} us; target <= {target:.1f}); "
            f"{visit / memory:.1f}x the memory store ({memory * 1e6:.1f} us)"
        )
        lines[-1] += goals.ratio(role, "visit / PING", trips, target, unit=" round trips")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
