"""``Engine.visit`` end to end and the memory store's operations alone, in visits per second.

Every benchmark runs a batch of ``BATCH`` operations per round. Groups, each
with its baseline measured in the same run (and its harness work alike: the bare
matcher loops over prepared pages, the engine over visitor ids and times each
round's setup builds outside the timing; the dict and the store both make their
visitor ids inside it):

- ``engine-visit``: the bare matcher (``is_bot`` then ``RuleSet.match``, what
  a visit costs without leases: baseline) against ``Engine.visit`` for new
  visitors (each takes a free number; about one expired lease is ended per
  visit) and for returning visitors (each keeps and extends their lease);
- ``store``: a dict lookup and store per visitor (the least any session store
  does: baseline) against ``MemoryStore.visit`` taking a number, keeping one,
  recycling one (every visit displaces the idlest lease), and
  ``MemoryStore.attribute`` on a log of 100,000 leases.

The last test prints a table (microseconds per operation, operations per
second, ratio to the group's baseline; median times) and ``Engine.visit`` as a
multiple of the bare matcher's cost against ``ENGINE_BOUNDS`` and the store's new
lease as a multiple of the dict baseline against ``STORE_BOUNDS``, marking a goal
missed rather than failing.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.bots import is_bot
from dni_engine.engine import Engine
from dni_engine.leases import Claim, Decision, Policy, PoolTerms
from dni_engine.schema import NumberPool
from dni_engine.stores.memory import MemoryStore
from dni_engine.testing import build_pool, source

BATCH = 1_000
# Rounds of each engine-visit benchmark (300,000 new visitors: the lease log is full after 100).
ENGINE_ROUNDS = 300
# Engine.visit may cost at most this many bare matches (the lease layer's share of a visit).
ENGINE_BOUNDS = {"new visitors": 5.0, "returning visitors": 2.0}
# MemoryStore.visit may cost at most this many dict baselines.
STORE_BOUNDS = {"store: new lease": 4.0}
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SHOP = "https://shop.example/tyres/winter"
# Paid and organic visits, all of which one of the two pools takes.
VISITS = (
    (f"{SHOP}?gclid=Cj0KCQiA1xyz&utm_campaign=winter&utm_medium=cpc", "https://www.google.co.uk/"),
    (f"{SHOP}?gclid=Cj0KCQiA2xyz", "https://www.google.com/"),
    (SHOP, "https://www.google.com/search?q=winter+tyres"),
    (f"{SHOP}?utm_source=newsletter&utm_medium=email", None),
    (SHOP, "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example"),
    ("https://shop.example/", None),
    (f"{SHOP}?page=2", "https://www.bing.com/search?q=tyres"),
    (SHOP, "https://duckduckgo.com/"),
)
_medians: dict[tuple[str, str], float] = {}
_baselines = {"engine-visit": "bare matcher", "store": "dict"}


def _pool(pool_id: int, name: str, count: int, sources: list[dict[str, object]]) -> NumberPool:
    """``count`` numbers, ``+44117``, the pool id and five digits; 1-minute holds."""
    return build_pool(
        id=pool_id,
        name=name,
        numbers=[f"+44117{pool_id}{i:05d}" for i in range(count)],
        first_number_id=pool_id * 10_000,
        match_period=1,
        sources=sources,
        numbers_to_replace=["01179460000"],
        termination_number="+441274792823",
    )


def _engine(clock: Callable[[], float] = lambda: 0.0) -> Engine:
    """Google Ads (gclid from Google) and a catch-all, 1,000 numbers each, 1-minute holds.

    ``clock`` is the engine's: the benchmark's visits are timed by a ticker, and
    a time far ahead of the clock would be rejected (and answered at the clock's).
    """
    return Engine(
        [
            _pool(4, "Google Ads", 1_000, [source("Google", ["gclid=*"])]),
            _pool(5, "Everyone else", 1_000, [source("Any")]),
        ],
        MemoryStore(log_capacity=100_000),
        clock=clock,
    )


def _record(benchmark: BenchmarkFixture, group: str, name: str) -> None:
    benchmark.group = group
    benchmark.extra_info["role"] = "baseline" if _baselines[group] == name else "candidate"
    benchmark.extra_info["operations"] = BATCH
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, name] = stats.stats.median


class _Ticker:
    """Visitor ids and times for successive batches: new ones, or a fixed returning set."""

    def __init__(self, step: float) -> None:
        self.now = 1_700_000_000.0
        self.step = step
        self.ids = itertools.count()

    def new_batch(self) -> list[tuple[str, float]]:
        batch = []
        for _ in range(BATCH):
            self.now += self.step
            batch.append((f"visitor-{next(self.ids)}", self.now))
        return batch


# ---- engine-visit ------------------------------------------------------------------------


@pytest.mark.benchmark(group="engine-visit")
def test_bare_matcher(benchmark: BenchmarkFixture) -> None:
    rules = _engine().rules
    batch = [VISITS[i % len(VISITS)] for i in range(BATCH)]

    def run() -> int:
        matched = 0
        for url, referrer in batch:
            if not is_bot(BROWSER) and rules.match(url, referrer, BROWSER, check_bots=False):
                matched += 1
        return matched

    matched: list[int] = []
    benchmark.pedantic(lambda: matched.append(run()), rounds=ENGINE_ROUNDS)  # type: ignore[no-untyped-call]
    assert set(matched) == {BATCH}
    _record(benchmark, "engine-visit", "bare matcher")


def _engine_run(engine: Engine) -> Callable[[list[tuple[str, float]]], list[Decision]]:
    """One round: ``Engine.visit`` for each visitor and time of a batch built before it.

    The batch is made by the round's setup, outside the timing, as the bare
    matcher's pages are: the ratio is the engine's cost, not the visitor ids'.
    """
    visit = engine.visit

    def run(batch: list[tuple[str, float]]) -> list[Decision]:
        out = []
        for i, (visitor, now) in enumerate(batch):
            url, referrer = VISITS[i % len(VISITS)]
            out.append(visit(visitor, url, referrer, BROWSER, now))
        return out

    return run


def _timed_batches(
    benchmark: BenchmarkFixture,
    run: Callable[[list[tuple[str, float]]], list[Decision]],
    batches: Callable[[], list[tuple[str, float]]],
) -> list[Decision]:
    """``run`` for ``ENGINE_ROUNDS`` rounds, each on a fresh batch its setup builds untimed."""
    out: list[Decision] = []

    def setup() -> tuple[tuple[list[tuple[str, float]]], dict[str, object]]:
        return (batches(),), {}

    def timed(batch: list[tuple[str, float]]) -> None:
        out[:] = run(batch)

    benchmark.pedantic(timed, setup=setup, rounds=ENGINE_ROUNDS)  # type: ignore[no-untyped-call]
    return out


@pytest.mark.benchmark(group="engine-visit")
def test_engine_new_visitors(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.1)  # ~600 live leases per pool of 1,000: never exhausted
    engine = _engine(lambda: ticker.now)
    decisions = _timed_batches(benchmark, _engine_run(engine), ticker.new_batch)
    assert {d.outcome for d in decisions} == {"new"}
    _record(benchmark, "engine-visit", "new visitors")


@pytest.mark.benchmark(group="engine-visit")
def test_engine_returning_visitors(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.001)
    engine = _engine(lambda: ticker.now)
    visitors = [f"regular-{i}" for i in range(200)]

    def batch() -> list[tuple[str, float]]:
        out = []
        for i in range(BATCH):
            ticker.now += ticker.step
            out.append((visitors[i % len(visitors)], ticker.now))
        return out

    run = _engine_run(engine)
    run(batch())  # everyone holds a lease before the clock starts
    decisions = _timed_batches(benchmark, run, batch)
    assert {d.outcome for d in decisions} == {"kept"}
    _record(benchmark, "engine-visit", "returning visitors")


# ---- store ------------------------------------------------------------------------------------


def _store(count: int, hold: float, policy: Policy = "fallback") -> MemoryStore:
    store = MemoryStore(log_capacity=100_000)
    numbers = tuple(f"+4411740{i:05d}" for i in range(count))
    store.register_pool(PoolTerms("pool", "Pool", numbers, hold, policy=policy))
    return store


CLAIM = Claim("pool", specificity=1, referrer_domain="Google", trigger="gclid=*")


@pytest.mark.benchmark(group="store")
def test_dict_baseline(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.1)
    sessions: dict[str, float] = {}

    def run() -> int:
        kept = 0
        for visitor, now in ticker.new_batch():
            if sessions.get(visitor) is not None:
                kept += 1
            sessions[visitor] = now
        return kept

    assert benchmark(run) == 0
    _record(benchmark, "store", "dict")


def _store_run(
    store: MemoryStore, batches: Callable[[], list[tuple[str, float]]]
) -> Callable[[], list[Decision]]:
    visit = store.visit

    def run() -> list[Decision]:
        return [visit(visitor, now, CLAIM) for visitor, now in batches()]

    return run


@pytest.mark.benchmark(group="store")
def test_store_new(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.1)
    decisions = benchmark(_store_run(_store(1_000, 60.0), ticker.new_batch))
    assert {d.outcome for d in decisions} == {"new"}
    _record(benchmark, "store", "store: new lease")


@pytest.mark.benchmark(group="store")
def test_store_kept(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.001)
    visitors = [f"regular-{i}" for i in range(200)]

    def batch() -> list[tuple[str, float]]:
        out = []
        for i in range(BATCH):
            ticker.now += ticker.step
            out.append((visitors[i % len(visitors)], ticker.now))
        return out

    run = _store_run(_store(1_000, 60.0), batch)
    run()
    decisions = benchmark(run)
    assert {d.outcome for d in decisions} == {"kept"}
    _record(benchmark, "store", "store: kept lease")


@pytest.mark.benchmark(group="store")
def test_store_recycle(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.1)
    store = _store(100, 1e9, policy="recycle")  # holds never end: every visit displaces
    _store_run(store, ticker.new_batch)()
    decisions = benchmark(_store_run(store, ticker.new_batch))
    assert {d.outcome for d in decisions} == {"recycled"}
    _record(benchmark, "store", "store: recycled lease")


@pytest.mark.benchmark(group="store")
def test_store_attribute(benchmark: BenchmarkFixture) -> None:
    ticker = _Ticker(step=0.5)
    store = _store(100, 60.0)
    for _ in range(100):
        _store_run(store, ticker.new_batch)()  # 100,000 leases in the log
    rng = random.Random(7)
    start = 1_700_000_000.0
    calls = [
        (f"+4411740{rng.randrange(100):05d}", rng.uniform(start, ticker.now)) for _ in range(BATCH)
    ]
    attribute = store.attribute

    def run() -> int:
        return sum(attribute(number, at).lease is not None for number, at in calls)

    assert benchmark(run) > BATCH // 2
    _record(benchmark, "store", "store: attribute a call")


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print operations per second and ratios to each group's baseline, and the engine's goals.

    Never fails on timing: a goal missed is marked in the table and in the run's summary.
    """
    lines = [f"{'group':<14}{'benchmark':<26}{'us/op':>9}{'ops/s':>12}{'vs baseline':>14}"]
    for group, baseline in _baselines.items():
        if (group, baseline) not in _medians:
            continue
        base = _medians[group, baseline]
        for (g, name), median in _medians.items():
            if g != group:
                continue
            per_op = median / BATCH
            shown = "baseline" if name == baseline else f"{median / base:.2f}x"
            lines.append(
                f"{group:<14}{name:<26}{per_op * 1e6:>9.2f}{1 / per_op:>12,.0f}{shown:>14}"
            )
    matcher = _medians.get(("engine-visit", "bare matcher"))
    for name, bound in ENGINE_BOUNDS.items():
        measured = _medians.get(("engine-visit", name))
        ratio = measured / matcher if matcher is not None and measured is not None else None
        note = goals.ratio("engine-visit", f"{name} / bare matcher", ratio, bound)
        if ratio is not None:
            lines.append(f"engine-visit: {name} {ratio:.2f}x the bare matcher{note}")
    sessions = _medians.get(("store", "dict"))
    for name, bound in STORE_BOUNDS.items():
        measured = _medians.get(("store", name))
        ratio = measured / sessions if sessions is not None and measured is not None else None
        note = goals.ratio("store", f"{name} / dict", ratio, bound)
        if ratio is not None:
            lines.append(f"store: {name.removeprefix('store: ')} {ratio:.2f}x the dict{note}")
    with capsys.disabled():
        print("\n" + ("\n".join(lines) if len(lines) > 1 else "lease benchmarks not measured"))
