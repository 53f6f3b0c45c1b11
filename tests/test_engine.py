"""The Engine facade end to end: matching plus leases, options, failures, attribution, threads."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from dni_engine import Attribution, Decision, Engine, PoolOptions
from dni_engine.calls import Call
from dni_engine.errors import ConfigError
from dni_engine.leases import ClaimLike, Lease, PoolStats, PoolTerms, SimulatedClock
from dni_engine.schema import AnyPool, NumberPool, NumberPoolRequest
from dni_engine.stores import MemoryStore, Store, StoreError
from dni_engine.testing import build_pool, source
from dni_engine.testing.state_machine import check_lease_history, make_engine_machine
from tests.conftest import SEED_KINDS, load_example

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
CRAWLER = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
START = 1_700_000_000.0
AD = "https://shop.example/cars?gclid=EAIaIQ"
HOME = "https://shop.example/"
GOOGLE = "https://www.google.co.uk/"
N1, N2, N3 = "+441174090162", "+441174090163", "+441174090165"

StoreFactory = Callable[[], Store]


def seed_pools() -> list[AnyPool]:
    """The vendor's four example pools, Bristol (31849, 3 numbers) first."""
    return [NumberPool.model_validate(load_example(f"{kind}.response")) for kind in SEED_KINDS]


def bristol() -> NumberPool:
    return NumberPool.model_validate(load_example("geographic-city.response"))


def brand_and_ads() -> list[AnyPool]:
    """``brand`` (any referrer with a utm_source, key 1) and ``ads`` (Google + gclid, key 2)."""
    return [
        build_pool(
            id=1,
            name="brand",
            numbers=["+441174090001", "+441174090002"],
            sources=[source("Any", ["utm_source=*"])],
        ),
        build_pool(
            id=2,
            name="ads",
            numbers=["+441174090011", "+441174090012"],
            sources=[source("Google", ["gclid=*"])],
        ),
    ]


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


def visit(engine: Engine, visitor: str, url: str = AD, referrer: str | None = GOOGLE) -> Decision:
    return engine.visit(visitor, url=url, referrer=referrer, user_agent=HUMAN)


# ---- the seed pools end to end -----------------------------------------------------------


def test_a_paid_visit_takes_a_number_and_keeps_it(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine = Engine(seed_pools(), store_factory(), clock=clock)
    d = visit(engine, "alice")
    assert d == Decision(
        visitor_id="alice",
        at=START,
        outcome="new",
        number=N1,
        pool_key="31849",
        pool_name="ABC Company 123",
        source_index=0,
        referrer_domain="Any",
        trigger="gclid=*",
        lease_id=d.lease_id,
        started=START,
        expires=START + 30 * 60,
    )
    assert d.tracked
    clock.advance(600)
    again = visit(engine, "alice", url=HOME, referrer=None)  # no gclid now: still her session
    assert (again.outcome, again.number, again.lease_id) == ("kept", N1, d.lease_id)
    assert (again.trigger, again.pool_key) == ("gclid=*", "31849")
    assert again.expires == START + 600 + 30 * 60
    assert visit(engine, "bob", url=HOME).outcome == "no_match"
    assert engine.visit("crawler", url=AD, referrer=GOOGLE, user_agent=CRAWLER).outcome == "bot"
    assert engine.visit("nobody", url=AD, referrer=GOOGLE).outcome == "bot"  # no user agent
    stats = engine.stats()
    assert stats.visits == 5
    assert {k: v for k, v in stats.outcomes.items() if v} == {
        "new": 1,
        "kept": 1,
        "no_match": 1,
        "bot": 2,
    }
    bristol_stats = next(s for s in stats.pools if s.pool_key == "31849")
    assert (bristol_stats.live, bristol_stats.size) == (1, 3)
    assert bristol_stats.utilisation == pytest.approx(1 / 3)
    assert engine.outcome_count("bot") == 2


def test_explain_delegates_to_the_rules() -> None:
    engine = Engine(seed_pools())
    report = str(engine.explain(url=AD, referrer=GOOGLE, user_agent=HUMAN))
    assert "ABC Company 123" in report
    assert "gclid=*" in report
    assert engine.explain(url=AD, referrer=GOOGLE, user_agent=HUMAN).match is not None
    anonymous = engine.explain(url=AD, referrer=GOOGLE)  # no user agent: counted as a bot
    assert anonymous.bot
    assert anonymous.match is None


def test_pool_lookup_and_lease_log_by_name(clock: SimulatedClock) -> None:
    engine = Engine(seed_pools(), clock=clock)
    d = visit(engine, "alice")
    assert engine.pool_key("31849") == "31849"
    assert engine.pool_key("ABC Company 127") == "31852"
    with pytest.raises(KeyError, match="nowhere"):
        engine.pool_key("nowhere")
    assert engine.pool("31849").name == "ABC Company 123"
    assert [lease.lease_id for lease in engine.leases(number="0117 409 0162")] == [d.lease_id]
    assert engine.leases(pool="ABC Company 127") == []
    assert isinstance(engine.pool_stats("ABC Company 126"), PoolStats)
    assert list(engine.pools) == ["31849", "31850", "31851", "31852"]
    assert engine.terms["31849"].hold_seconds == 1800.0
    assert isinstance(engine.store, MemoryStore)
    assert engine.clock is clock


# ---- exhaustion policies on the 3-number pool ----------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("fallback", ("overflow", None, None)),
        ("overflow", ("overflow", "+441174090199", None)),
        ("recycle", ("recycled", N1, "alice")),
    ],
)
def test_each_policy_when_the_pool_is_exhausted(
    store_factory: StoreFactory,
    clock: SimulatedClock,
    policy: Any,
    expected: tuple[str, str | None, str | None],
) -> None:
    engine = Engine(
        [bristol()],
        store_factory(),
        policy=policy,
        overflow_number="0117 409 0199",  # written nationally; stored in E.164
        clock=clock,
    )
    first = [visit(engine, v) for v in ("alice", "bob", "carol")]
    assert [d.number for d in first] == [N1, N2, N3]
    clock.advance(60)
    d = visit(engine, "dave")
    outcome, number, displaced_visitor = expected
    assert (d.outcome, d.number) == (outcome, number)
    if displaced_visitor is None:
        assert d.displaced is None
    else:
        assert d.displaced == first[0].lease_id
    stats = engine.pool_stats("31849")
    assert stats.overflows == (1 if outcome == "overflow" else 0)
    assert stats.displacements == (1 if outcome == "recycled" else 0)
    assert engine.stats().visits == 4


def test_release_after_match_period_and_sliding_hold(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine = Engine([bristol()], store_factory(), clock=clock)
    first = visit(engine, "alice")
    for _ in range(4):
        clock.advance(29 * 60)
        assert visit(engine, "alice", url=HOME).lease_id == first.lease_id
    clock.advance(30 * 60)  # silence for a whole match_period: the number went back
    again = visit(engine, "alice")
    assert again.outcome == "new"
    assert again.lease_id != first.lease_id
    assert again.number == N2  # N1 was freed last; N2 has been free since forever


def test_cooldown_from_the_options(store_factory: StoreFactory, clock: SimulatedClock) -> None:
    engine = Engine(
        [bristol()],
        store_factory(),
        options={"ABC Company 123": PoolOptions(cooldown=5)},
        clock=clock,
    )
    assert engine.terms["31849"].cooldown_seconds == 300.0
    visit(engine, "alice")
    clock.advance(10)
    visit(engine, "bob")
    visit(engine, "carol")
    clock.advance(30 * 60 + 60)  # everyone's hold ran out; N1 cools until START + 2100
    assert [visit(engine, v).number for v in ("d", "e", "f")] == [None, None, None]
    clock.advance(240)
    assert visit(engine, "g").number == N1


def test_first_touch_keeps_the_first_pool(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine = Engine(brand_and_ads(), store_factory(), clock=clock)
    first = visit(engine, "alice", url=HOME + "?utm_source=newsletter", referrer=None)
    assert (first.outcome, first.pool_name) == ("new", "brand")
    clock.advance(60)
    d = visit(engine, "alice")  # now from a Google ad: more specific, but first touch wins
    assert (d.outcome, d.pool_name, d.lease_id) == ("kept", "brand", first.lease_id)


def test_last_touch_switches_to_the_more_specific_pool(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine = Engine(brand_and_ads(), store_factory(), touch="last_touch", clock=clock)
    first = visit(engine, "alice", url=HOME + "?utm_source=newsletter", referrer=None)
    clock.advance(60)
    d = visit(engine, "alice")
    assert (d.outcome, d.pool_name, d.switched_from) == ("new", "ads", first.lease_id)
    assert d.number == "+441174090011"
    clock.advance(60)
    back = visit(engine, "alice", url=HOME + "?utm_source=newsletter", referrer=None)
    assert (back.outcome, back.lease_id) == ("kept", d.lease_id)  # brand is not more specific
    assert engine.pool_stats("brand").switched_out == 1


def test_per_pool_touch_mode_overrides_the_default(clock: SimulatedClock) -> None:
    engine = Engine(
        brand_and_ads(),
        touch="last_touch",
        options={"1": PoolOptions(touch="first_touch")},
        clock=clock,
    )
    visit(engine, "alice", url=HOME + "?utm_source=newsletter", referrer=None)
    assert visit(engine, "alice").pool_name == "brand"


def test_priority_option_breaks_ties_between_pools(clock: SimulatedClock) -> None:
    twins = [
        build_pool(id=1, name="first", numbers=["+441174090001"], sources=[source("Any")]),
        build_pool(id=2, name="second", numbers=["+441174090011"], sources=[source("Any")]),
    ]
    assert visit(Engine(twins, clock=clock), "a").pool_name == "first"
    chosen = Engine(twins, options={"second": PoolOptions(priority=5)}, clock=clock)
    assert visit(chosen, "a").pool_name == "second"


def test_a_pool_request_has_no_numbers_to_lease(clock: SimulatedClock) -> None:
    request = NumberPoolRequest.model_validate(load_example("geographic-city.request"))
    engine = Engine([request], clock=clock)
    d = visit(engine, "alice")
    assert (d.outcome, d.number, d.pool_key) == ("overflow", None, "ABC Company 123")
    with_overflow = Engine(
        [request], policy="overflow", overflow_number="+441174090199", clock=clock
    )
    assert visit(with_overflow, "alice").number == "+441174090199"
    call = with_overflow.attribute_call("01174090199")
    assert (call.kind, call.pool_key) == ("overflow", "ABC Company 123")


# ---- configuration errors --------------------------------------------------------------------


def test_bad_options_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        Engine(
            seed_pools(),
            options={
                "nowhere": PoolOptions(),
                "31849": PoolOptions(cooldown=-1, overflow_number="12345"),
                "31850": PoolOptions(policy="overflow"),
            },
        )
    text = str(info.value)
    assert "options['nowhere']: names no pool" in text
    with pytest.raises(ConfigError) as info:
        Engine(
            seed_pools(),
            options={
                "31849": PoolOptions(cooldown=-1, overflow_number="12345"),
                "31850": PoolOptions(policy="overflow"),
            },
        )
    text = str(info.value)
    assert "options['31849'].cooldown" in text
    assert "options['31849'].overflow_number" in text
    assert "overflow_number: policy 'overflow' needs an overflow number" in text


def test_an_overflow_number_must_not_be_a_tracking_number() -> None:
    with pytest.raises(ConfigError, match="tracking number of pool '31849'"):
        Engine(seed_pools(), options={"31850": PoolOptions(overflow_number=N1)})


# ---- never raising into the host -------------------------------------------------------------


class FlakyStore:
    """A memory store that fails while ``down`` is set, like a back end that went away."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("connection refused")

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        self.inner.register_pool(terms, now)

    def ready(self) -> bool:
        return not self.down

    def visit(self, visitor_id: str, now: float, claim: ClaimLike | None) -> Decision:
        self._check()
        return self.inner.visit(visitor_id, now, claim)

    def release(self, visitor_id: str, now: float) -> Lease | None:
        self._check()
        return self.inner.release(visitor_id, now)

    def attribute(self, number: str, at: float) -> Attribution:
        self._check()
        return self.inner.attribute(number, at)

    def stats(self, pool_key: str, now: float) -> PoolStats:
        return self.inner.stats(pool_key, now)

    def leases(self, **kwargs: Any) -> list[Lease]:
        return self.inner.leases(**kwargs)


def test_a_failing_store_gives_store_unavailable_and_is_logged_once(
    clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    engine = Engine([bristol()], store, clock=clock)
    first = visit(engine, "alice")
    store.down = True
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        outages = [visit(engine, v) for v in ("alice", "bob", "carol")]
        call = engine.attribute_call(N1)
    assert {d.outcome for d in outages} == {"store_unavailable"}
    assert all(d.number is None for d in outages)
    assert [(d.pool_key, d.trigger) for d in outages] == [("31849", "gclid=*")] * 3
    assert call.kind == "store_unavailable"
    assert len([r for r in caplog.records if r.name == "dni_engine.engine"]) == 1
    caplog.clear()
    store.down = False
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        back = visit(engine, "alice")
    assert (back.outcome, back.lease_id) == ("kept", first.lease_id)
    assert "answers again" in caplog.text
    assert engine.stats().outcomes["store_unavailable"] == 3
    assert engine.stats().visits == 5


def test_an_outage_is_a_warning_naming_its_cause_and_end_session_never_raises(
    clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    engine = Engine([bristol()], store, clock=clock)
    visit(engine, "alice")
    store.down = True
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        assert engine.end_session("alice") is None
        visit(engine, "bob")
    (record,) = [r for r in caplog.records if r.name == "dni_engine.engine"]
    assert record.levelno == logging.WARNING
    assert "StoreError: connection refused" in record.getMessage()
    store.down = False
    ended = engine.end_session("alice")
    assert ended is not None
    assert ended.end_reason == "released"


@pytest.mark.parametrize(
    ("url", "referrer", "at"),
    [
        ("https://shop.example/?gclid=" + "%" * 70_000, GOOGLE, None),
        ("\x00\udcff://[::1", "\xff\x00binary", None),
        (None, None, None),
        (AD, GOOGLE, "yesterday"),
        (AD, GOOGLE, float("nan")),
        (AD, GOOGLE, datetime(2024, 1, 1)),
    ],
)
def test_malformed_visits_never_raise(url: Any, referrer: Any, at: Any) -> None:
    engine = Engine([bristol()])
    d = engine.visit("alice", url=url, referrer=referrer, user_agent=HUMAN, at=at)
    assert d.outcome in ("no_match", "new")
    assert engine.stats().visits == 1


def test_times_may_be_aware_datetimes() -> None:
    engine = Engine([bristol()])
    moment = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    d = engine.visit("alice", url=AD, referrer=GOOGLE, user_agent=HUMAN, at=moment)
    assert d.started == moment.timestamp()
    assert engine.attribute_call(N1, at=moment).lease is not None


# ---- calls -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written", [N1, "0117 409 0162", "+44 (0)117 409 0162", "0044 117 409 0162", "01174090162"]
)
def test_a_call_in_any_written_form_is_attributed(clock: SimulatedClock, written: str) -> None:
    engine = Engine(seed_pools(), clock=clock)
    d = visit(engine, "alice")
    call = engine.attribute_call(written, at=START + 60)
    assert call.number == N1
    assert call.lease is not None
    assert (call.lease.lease_id, call.confidence) == (d.lease_id, 1.0)


def test_late_and_unknown_calls(store_factory: StoreFactory, clock: SimulatedClock) -> None:
    engine = Engine(seed_pools(), store_factory(), clock=clock)
    visit(engine, "alice")
    clock.advance(30 * 60)  # a call's time may not run ahead of the clock
    late = engine.attribute_call(N1, at=START + 30 * 60)
    assert (late.kind, late.pool_key, late.lease) == ("pool", "31849", None)
    unknown = engine.attribute_call("+1 555 0100")
    assert (unknown.kind, unknown.lease) == ("unknown", None)
    assert engine.attribute_call("garbage \x00").kind == "unknown"


def test_ambiguous_call_after_recycling(store_factory: StoreFactory, clock: SimulatedClock) -> None:
    engine = Engine([bristol()], store_factory(), policy="recycle", clock=clock)
    alice = visit(engine, "alice")
    for v in ("bob", "carol"):
        clock.advance(10)
        visit(engine, v)
    clock.advance(10)
    dave = visit(engine, "dave")
    assert (dave.number, dave.displaced) == (N1, alice.lease_id)
    call = engine.attribute_call(N1, at=clock() + 5)
    assert call.kind == "lease"
    assert call.confidence < 1
    assert call.confidence == 0.5
    assert [c.visitor_id for c in call.candidates] == ["dave", "alice"]
    assert call.lease is not None
    assert call.lease.lease_id == dave.lease_id


def test_end_session(clock: SimulatedClock) -> None:
    engine = Engine([bristol()], clock=clock)
    d = visit(engine, "alice")
    clock.advance(60)
    ended = engine.end_session("alice")
    assert ended is not None
    assert (ended.lease_id, ended.end_reason, ended.ended) == (d.lease_id, "released", START + 60)
    assert engine.end_session("alice") is None
    assert visit(engine, "alice").lease_id != d.lease_id


# ---- the state machine and threads ---------------------------------------------------------------


# Each example of the machine is a few hundred store calls: fewer of them over the network.
MACHINE_EXAMPLES = {
    "memory": 300,
    "redis": 100,
    "redis-cluster": 30,
    "redis-async": 50,
    "redis-cluster-async": 20,
}


def test_state_machine(store_factory: StoreFactory, store_kind: str) -> None:
    run_state_machine_as_test(
        make_engine_machine(store_factory),
        settings=settings(
            max_examples=MACHINE_EXAMPLES[store_kind],
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_eight_threads_of_visits_on_one_pool() -> None:
    threads, per_thread = 8, 20_000
    numbers = [f"+4411740905{i:02d}" for i in range(30)]
    site = build_pool(id=9, name="site", numbers=numbers, match_period=1)
    clock = SimulatedClock(START)
    store = MemoryStore(log_capacity=threads * per_thread)
    # The threads stamp their own times, up to hours ahead of this clock.
    engine = Engine(
        [site], store, policy="recycle", cooldown=0.25, clock=clock, max_clock_skew=math.inf
    )
    results: list[list[Decision]] = [[] for _ in range(threads)]
    gate = threading.Barrier(threads)
    ticks = iter(range(threads * per_thread))
    tick_lock = threading.Lock()

    def next_time() -> float:
        with tick_lock:
            return START + next(ticks) * 0.05

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine = results[index]
        gate.wait()
        for _ in range(per_thread):
            visitor = f"v{rng.randrange(300)}"
            agent = HUMAN if rng.random() < 0.97 else CRAWLER
            url = HOME if rng.random() < 0.9 else "\x00broken"
            mine.append(engine.visit(visitor, url=url, user_agent=agent, at=next_time()))

    running = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()

    decisions = [d for mine in results for d in mine]
    outcomes = Counter(d.outcome for d in decisions)
    stats = engine.stats(at=START + threads * per_thread * 0.05)
    assert stats.visits == threads * per_thread == sum(outcomes.values())
    assert dict(+Counter(stats.outcomes)) == dict(outcomes)
    assert outcomes["recycled"] > 0
    assert outcomes["kept"] > 0
    assert outcomes["bot"] > 0
    site_stats = stats.pools[0]
    assert (site_stats.new, site_stats.kept, site_stats.recycled) == (
        outcomes["new"],
        outcomes["kept"],
        outcomes["recycled"],
    )
    check_lease_history(decisions, engine.leases(), cooldown=15.0)
    assert engine.rejected_times == 0


def test_outcome_counts_are_exact_at_every_read(clock: SimulatedClock) -> None:
    # Outcomes are added to the counts in batches: a read between batches sees every visit.
    engine = Engine([bristol()], clock=clock)
    for n in range(1, 151):
        visit(engine, f"human-{n}", url=AD, referrer=None)
        engine.visit(f"bot-{n}", url=AD, user_agent=CRAWLER)
        assert engine.outcome_count("bot") == n
        assert engine.stats().process_outcomes["bot"] == n
    assert engine.stats().visits == 300


class OddOutcomeStore(FlakyStore):
    """A store answering an outcome the engine does not know."""

    def visit(self, visitor_id: str, now: float, claim: ClaimLike | None) -> Decision:
        return self.inner.visit(visitor_id, now, claim)._replace(outcome="odd")  # type: ignore[arg-type]


def test_an_outcome_the_engine_does_not_know_is_answered_not_counted(clock: SimulatedClock) -> None:
    engine = Engine([bristol()], OddOutcomeStore(), clock=clock)
    answers = [visit(engine, f"v{i}") for i in range(100)]
    assert {d.outcome for d in answers} == {"odd"}
    assert engine.stats().process_outcomes == dict.fromkeys(engine.stats().process_outcomes, 0)


def test_demo_plays_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from dni_engine import demo

    demo.main()
    out = capsys.readouterr().out
    assert "4 example pools validated" in out
    for outcome in ("new", "kept", "overflow", "no_match", "bot"):
        assert outcome in out
    assert "pool 31850 only" in out  # the late call
    assert "1.00" in out


# ---- the async entry points ---------------------------------------------------------------


def test_the_async_entry_points_answer_as_the_sync_ones(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine = Engine(brand_and_ads(), store_factory(), clock=clock)

    async def run() -> list[Any]:
        first = await engine.avisit("alice", AD, GOOGLE, HUMAN)
        again = await engine.avisit("alice", HOME, None, HUMAN, hint=first.pool_key)
        minted = await engine.avisit("bob", HOME, None, HUMAN, hint="\x00new")
        bot = await engine.avisit("carol", AD, GOOGLE, "Googlebot/2.1")
        invalid = await engine.avisit("", AD, GOOGLE, HUMAN)
        attributed = await engine.aattribute_call(first.number, clock())
        call = Call("c-1", str(first.number), clock())
        recorded = await engine.arecord_call(call)
        replayed = await engine.arecord_call(call)
        return [
            first,
            again,
            minted,
            bot,
            invalid,
            attributed,
            recorded,
            replayed,
            await engine.aready(),
        ]

    first, again, minted, bot, invalid, attributed, recorded, replayed, ready = asyncio.run(run())
    assert (first.outcome, again.outcome, minted.outcome) == ("new", "kept", "no_match")
    assert again.lease_id == first.lease_id
    assert (bot.outcome, invalid.outcome) == ("bot", "invalid_visitor")
    assert attributed.lease is not None
    assert attributed.lease.lease_id == first.lease_id
    assert recorded.stored
    assert not recorded.replayed
    assert replayed.replayed
    assert ready
    assert engine.visit("alice", HOME, None, HUMAN).lease_id == first.lease_id


def test_avisit_never_raises_and_runs_a_store_doing_io_off_the_loop(
    clock: SimulatedClock,
) -> None:
    store = FlakyStore()
    engine = Engine(brand_and_ads(), store, clock=clock)
    threads: list[threading.Thread] = []
    inner_visit = store.inner.visit

    def recording(visitor_id: str, now: float, claim: ClaimLike | None) -> Decision:
        threads.append(threading.current_thread())
        if store.down:
            raise StoreError("connection refused")
        return inner_visit(visitor_id, now, claim)

    store.visit = recording  # type: ignore[method-assign]

    async def run() -> tuple[Decision, Decision, threading.Thread]:
        ok = await engine.avisit("alice", AD, GOOGLE, HUMAN, hint="2")
        store.down = True
        down = await engine.avisit("bob", AD, GOOGLE, HUMAN)
        return ok, down, threading.current_thread()

    ok, down, loop_thread = asyncio.run(run())
    assert ok.outcome == "new"
    assert threads
    assert loop_thread not in threads  # called on a worker thread, without a hint
    assert down.outcome == "store_unavailable"
    assert down.pool_key == "2"
