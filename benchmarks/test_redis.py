"""``Engine.visit`` on the Redis store, against a bare ``PING`` and the memory store.

One real ``redis-server`` on loopback serves the whole module, pinned with
the benchmark process to one CPU where the system allows it (see
``_one_cpu``: on a virtual machine a round trip between two CPUs costs
several times one on one CPU, and which of the two a measurement gets
changes while the module runs). Group ``redis-visit`` measures, in the same
run:

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

Group ``redis-visit-async`` measures the same four visits on
:class:`AsyncRedisStore` through :meth:`Engine.avisit`, against an awaited
``PING`` of ``redis.asyncio`` on the same server (``ping-async``). Each round
awaits ``ASYNC_BATCH`` calls in a row inside one run of the event loop, so the
loop's own start-up is not measured; the times are per call.

The last test prints each Redis visit in ``PING`` round trips (sync visits
against the sync ``PING``, async ones against the async ``PING``) and against
the memory store (median times), next to its goal (1.3 round trips' worth of
time for a returning visit, 1.5 for a first visit with the minted hint, 2.5
without a hint). ``benchmarks/report.py`` shows the same groups against their
``PING`` baselines (there per batch of ``ASYNC_BATCH`` for the async group).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis.asyncio
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.engine import Engine
from dni_engine.leases import SimulatedClock
from dni_engine.schema import NumberPool
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.stores.memory import MemoryStore
from dni_engine.stores.redis import AsyncRedisStore, RedisStore
from dni_engine.testing import build_pool, source
from dni_engine.testing.redis_server import RedisServer

HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
URL = "https://shop.example/?gclid=abc"
REFERRER = "https://www.google.com/"
RETURNING = 200
ASYNC_BATCH = 50
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


def _one_cpu(pids: list[int]) -> Callable[[], None]:
    """Pin ``pids`` to this process's first allowed CPU; return what undoes it.

    On a virtual machine a loopback round trip between two processes on
    different CPUs costs a wake-up of the other virtual CPU (on a 2-core VM:
    about 55 us against 15 us on one CPU), and the scheduler moves the
    benchmark and the server between the two states while a module runs: a
    ``PING`` measured in one and the visits in the other made ratios swing
    from 1 to 4 round trips. On one CPU every benchmark of the module sees the
    same round trip. Without ``sched_setaffinity`` (not Linux) nothing is done.
    """
    get = getattr(os, "sched_getaffinity", None)
    set_ = getattr(os, "sched_setaffinity", None)
    if get is None or set_ is None:
        return lambda: None
    before = {pid: get(pid) for pid in pids}
    cpu = {min(before[pids[0]])}
    for pid in pids:
        set_(pid, cpu)

    def undo() -> None:
        for pid, cpus in before.items():
            with contextlib.suppress(OSError):  # the server may have stopped
                set_(pid, cpus)

    return undo


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        assert running.pid is not None
        undo = _one_cpu([os.getpid(), running.pid])
        with running.client() as client:
            for _ in range(5_000):  # both settled on that CPU before the first benchmark
                client.ping()
        try:
            yield running
        finally:
            undo()


def _record(benchmark: BenchmarkFixture, name: str, per_round: int = 1) -> None:
    # The PING is the group's baseline for benchmarks/report.py; the rest are candidates.
    benchmark.extra_info["role"] = "baseline" if name.startswith("ping") else "candidate"
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[name] = stats.stats.median / per_round


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


# ---- the same visits on AsyncRedisStore, through Engine.avisit ----------------------


def _batched(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[str]]
) -> str:
    """Benchmark ``ASYNC_BATCH`` awaited calls in a row per round; the last call's answer."""

    async def batch() -> str:
        answer = ""
        for _ in range(ASYNC_BATCH):
            answer = await call()
        return answer

    answer: str = benchmark(lambda: loop.run_until_complete(batch()))
    return answer


@pytest.mark.benchmark(group="redis-visit-async")
def test_baseline_ping_round_trip_async(benchmark: BenchmarkFixture, server: RedisServer) -> None:
    loop = asyncio.new_event_loop()
    client = redis.asyncio.Redis.from_url(server.url)

    async def ping() -> str:
        return "PONG" if await client.ping() else ""

    try:
        assert _batched(benchmark, loop, ping) == "PONG"
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    _record(benchmark, "ping-async", ASYNC_BATCH)


def _async_engine(
    server: RedisServer, namespace: str, pool: NumberPool
) -> tuple[Engine, AsyncRedisStore, SimulatedClock]:
    clock = SimulatedClock(1_700_000_000.0)
    store = AsyncRedisStore(server.url, namespace=namespace)
    return Engine([pool], store, clock=clock), store, clock


def _async_returning(
    benchmark: BenchmarkFixture, server: RedisServer, role: str, hinted: bool
) -> None:
    loop = asyncio.new_event_loop()
    engine, store, clock = _async_engine(server, f"bench-{role}", _pool(500, 30))
    visitors = [f"visitor-{i}" for i in range(RETURNING)]

    async def warm() -> None:
        for visitor in visitors:
            assert (await engine.avisit(visitor, URL, REFERRER, HUMAN)).outcome == "new"

    loop.run_until_complete(warm())
    clock.advance(1.0)
    cycle = itertools.cycle(visitors)
    pool_key = engine.pool_key("bench")

    async def visit() -> str:
        clock.advance(0.01)
        if hinted:  # a later page of the site: no match, the lease cookie's pool as the hint
            decision = await engine.avisit(
                next(cycle), "https://shop.example/contact", None, HUMAN, hint=pool_key
            )
        else:
            decision = await engine.avisit(next(cycle), URL, REFERRER, HUMAN)
        return decision.outcome

    try:
        assert _batched(benchmark, loop, visit) == "kept"
        assert engine.outcome_count("store_unavailable") == 0
    finally:
        loop.run_until_complete(store.close())
        loop.close()
    _record(benchmark, role, ASYNC_BATCH)


def _async_first_visits(benchmark: BenchmarkFixture, server: RedisServer, role: str) -> None:
    loop = asyncio.new_event_loop()
    # One-minute holds and 0.1 s between visits: about 600 live leases, never exhausted.
    engine, store, clock = _async_engine(server, f"bench-{role}", _pool(1000, 1))
    counter = itertools.count()
    hint = NEW_VISITOR if role == "redis-new-minted-async" else None

    async def visit() -> str:
        clock.advance(0.1)
        visitor = f"new-{next(counter)}"
        return (await engine.avisit(visitor, URL, REFERRER, HUMAN, hint=hint)).outcome

    try:
        assert _batched(benchmark, loop, visit) == "new"
        assert engine.outcome_count("overflow") == engine.outcome_count("store_unavailable") == 0
    finally:
        loop.run_until_complete(store.close())
        loop.close()
    _record(benchmark, role, ASYNC_BATCH)


@pytest.mark.benchmark(group="redis-visit-async")
def test_visit_async_redis_store_returning(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    _async_returning(benchmark, server, "redis-kept-async", hinted=False)


@pytest.mark.benchmark(group="redis-visit-async")
def test_visit_async_redis_store_returning_hinted(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    _async_returning(benchmark, server, "redis-kept-hinted-async", hinted=True)


@pytest.mark.benchmark(group="redis-visit-async")
def test_visit_async_redis_store_first_visit_minted(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    _async_first_visits(benchmark, server, "redis-new-minted-async")


@pytest.mark.benchmark(group="redis-visit-async")
def test_visit_async_redis_store_first_visit(
    benchmark: BenchmarkFixture, server: RedisServer
) -> None:
    _async_first_visits(benchmark, server, "redis-new-async")


# Targets in PING round trips: the round trips, the script's own work, the client library.
TARGETS = {
    "redis-kept": 1.3,
    "redis-kept-hinted": 1.3,
    "redis-new-minted": 1.5,
    "redis-new": 2.5,
}
# The async visits, each against the async PING, with the same goals.
ASYNC_TARGETS = {f"{role}-async": target for role, target in TARGETS.items()}


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print each Redis visit in PING round trips (async ones: async PINGs) and against memory.

    Never fails on timing: a goal missed is marked here and in the run's summary.
    """
    memory = _medians.get("memory")
    lines = []
    for role, target in {**TARGETS, **ASYNC_TARGETS}.items():
        ping = _medians.get("ping-async" if role in ASYNC_TARGETS else "ping")
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
