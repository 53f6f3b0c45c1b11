"""Lease rules on a 3-number pool, through the Store protocol (run against every store kind)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dni_engine.errors import ConfigError
from dni_engine.leases import (
    Attribution,
    Claim,
    Decision,
    Lease,
    PoolTerms,
    SimulatedClock,
    attribution_from,
    exhausted_action,
    leased,
    may_switch,
    minutes,
)
from dni_engine.stores import Store, StoreError

N1, N2, N3 = "+441174090162", "+441174090163", "+441174090165"
NUMBERS = (N1, N2, N3)
OVERFLOW = "+441174090199"
HOLD = minutes(30)
POOL = Claim("bristol", specificity=1, source_index=0, referrer_domain="Any", trigger="gclid=*")

StoreFactory = Callable[[], Store]


def make_store(store_factory: StoreFactory, **terms: object) -> Store:
    """A store with the 3-number pool ``bristol`` (30-minute hold) registered."""
    store = store_factory()
    options: dict[str, object] = {"hold_seconds": HOLD, **terms}
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, **options))  # type: ignore[arg-type]
    return store


def fill(store: Store, start: float = 0.0) -> list[str]:
    """Visitors a, b, c take the three numbers at start, +10 s, +20 s; their lease ids."""
    ids = []
    for offset, visitor in ((0, "a"), (10, "b"), (20, "c")):
        decision = store.visit(visitor, start + offset, POOL)
        assert decision.outcome == "new"
        assert decision.lease_id is not None
        ids.append(decision.lease_id)
    return ids


# ---- taking and keeping a number ------------------------------------------------------


def test_new_visitor_takes_a_number_with_its_lease(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    d = store.visit("a", 100.0, POOL)
    assert d.outcome == "new"
    assert d.number == N1  # never used numbers are free since forever; API order breaks ties
    assert (d.pool_key, d.pool_name) == ("bristol", "Bristol")
    assert (d.source_index, d.referrer_domain, d.trigger) == (0, "Any", "gclid=*")
    assert (d.started, d.expires) == (100.0, 100.0 + HOLD)
    assert d.tracked
    assert d.displaced is None
    assert d.switched_from is None


def test_the_number_free_longest_is_taken(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    fill(store)  # a: N1 until 1800, b: N2 until 1810, c: N3 until 1820
    late = HOLD + 30
    first = store.visit("d", late, POOL)
    second = store.visit("e", late, POOL)
    third = store.visit("f", late, POOL)
    assert [first.number, second.number, third.number] == [N1, N2, N3]


def test_a_visitor_without_a_match_and_without_a_lease_gets_no_match(
    store_factory: StoreFactory,
) -> None:
    store = make_store(store_factory)
    d = store.visit("a", 0.0, None)
    assert d.outcome == "no_match"
    assert d.number is None
    assert not d.tracked


def test_sliding_hold_keeps_the_number_while_the_visitor_is_active(
    store_factory: StoreFactory,
) -> None:
    store = make_store(store_factory)
    first = store.visit("a", 0.0, POOL)
    # Each visit falls inside the hold the previous visit renewed.
    for t in (HOLD - 1, 2 * HOLD - 2, 3 * HOLD - 3):
        d = store.visit("a", t, None)  # a later visit need not match at all
        assert d.outcome == "kept"
        assert (d.number, d.lease_id, d.started) == (first.number, first.lease_id, 0.0)
        assert d.expires == t + HOLD
        assert (d.trigger, d.source_index) == (POOL.trigger, POOL.source_index)


def test_number_is_released_after_match_period(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    first = store.visit("a", 0.0, POOL)
    assert store.visit("a", HOLD - 0.001, POOL).outcome == "kept"
    # The hold is now HOLD - 0.001 + HOLD; exactly at its end the lease is over.
    back = store.visit("a", 2 * HOLD - 0.001, POOL)
    assert back.outcome == "new"
    assert back.lease_id != first.lease_id
    # N1 became free only now; N2 has been free longer, so the returning visitor gets N2.
    assert back.number == N2
    stats = store.stats("bristol", 2 * HOLD)
    assert (stats.expired, stats.live, stats.new, stats.kept) == (1, 1, 2, 1)


def test_time_never_goes_backwards_inside_a_store(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    store.visit("a", 500.0, POOL)
    late = store.visit("b", 100.0, POOL)
    assert late.at == 500.0
    assert late.started == 500.0


# ---- exhaustion -----------------------------------------------------------------------


def test_fallback_gives_no_number_and_counts_an_overflow(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)  # fallback is the default
    fill(store)
    d = store.visit("d", 30.0, POOL)
    assert d.outcome == "overflow"
    assert d.number is None
    assert not d.tracked
    assert d.pool_key == "bristol"
    assert d.trigger == POOL.trigger
    stats = store.stats("bristol", 30.0)
    assert (stats.live, stats.overflows, stats.new, stats.utilisation) == (3, 1, 3, 1.0)
    # The visitor is not stuck: once a number is free again they get it.
    assert store.visit("d", HOLD + 1, POOL).outcome == "new"


def test_overflow_policy_shows_the_overflow_number(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, policy="overflow", overflow_number=OVERFLOW)
    fill(store)
    d = store.visit("d", 30.0, POOL)
    assert (d.outcome, d.number, d.lease_id) == ("overflow", OVERFLOW, None)
    assert store.stats("bristol", 30.0).overflows == 1
    call = store.attribute(OVERFLOW, 40.0)
    assert (call.kind, call.pool_key, call.lease) == ("overflow", "bristol", None)


def test_recycle_displaces_the_lease_idle_longest(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, policy="recycle")
    a, b, _ = fill(store)
    store.visit("a", 25.0, None)  # a is active again: b is now the idlest
    d = store.visit("d", 30.0, POOL)
    assert (d.outcome, d.number, d.displaced) == ("recycled", N2, b)
    stats = store.stats("bristol", 30.0)
    assert (stats.recycled, stats.displacements, stats.live, stats.overflows) == (1, 1, 3, 0)
    # b lost the number: back inside their old hold they are a new visitor and recycle again.
    again = store.visit("b", 40.0, POOL)
    assert again.outcome == "recycled"
    assert again.number == N3  # c (last active at 20) is now the idlest
    displaced = store.leases(number=N2)[0]
    assert (displaced.lease_id, displaced.end_reason) == (b, "displaced")
    assert (displaced.ended, displaced.displaced_by) == (30.0, d.lease_id)
    assert a != b


def test_recycle_on_a_pool_without_numbers_falls_back(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_pool(PoolTerms("empty", "Empty", (), HOLD, policy="recycle"))
    d = store.visit("a", 0.0, Claim("empty"))
    assert (d.outcome, d.number) == ("overflow", None)
    assert store.stats("empty", 0.0).overflows == 1


def test_a_claim_on_an_unregistered_pool_is_a_store_error(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    with pytest.raises(StoreError, match="nowhere"):
        store.visit("a", 0.0, Claim("nowhere"))


# ---- cooldown -------------------------------------------------------------------------


def test_cooldown_keeps_a_released_number_out_of_circulation(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, cooldown_seconds=minutes(5))
    fill(store)
    store.visit("b", 1000.0, None)
    store.visit("c", 1000.0, None)
    # a's hold ends at 1800: N1 cools until 2100, while b and c still hold theirs.
    assert store.visit("d", 1900.0, POOL).outcome == "overflow"
    stats = store.stats("bristol", 1900.0)
    assert (stats.live, stats.cooling, stats.free) == (2, 1, 0)
    d = store.visit("d", 2100.0, POOL)
    assert (d.outcome, d.number) == ("new", N1)


def test_recycle_takes_a_cooling_number_before_a_live_one(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, policy="recycle", cooldown_seconds=minutes(5))
    fill(store)
    store.visit("b", 1000.0, None)
    store.visit("c", 1000.0, None)
    d = store.visit("d", 1900.0, POOL)
    assert (d.outcome, d.number, d.displaced) == ("recycled", N1, None)
    stats = store.stats("bristol", 1900.0)
    assert (stats.cooldowns_cut, stats.displacements, stats.live) == (1, 0, 3)


def test_explicit_release_starts_the_cooldown(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, cooldown_seconds=60.0)
    a = store.visit("a", 0.0, POOL)
    ended = store.release("a", 100.0)
    assert ended is not None
    assert (ended.lease_id, ended.ended, ended.end_reason) == (a.lease_id, 100.0, "released")
    assert store.release("a", 101.0) is None
    stats = store.stats("bristol", 110.0)
    assert (stats.live, stats.cooling, stats.released) == (0, 1, 1)
    # A fresh visitor still gets N2 and N3 (free since forever) before the cooling N1.
    assert store.visit("b", 120.0, POOL).number == N2


# ---- first and last touch -------------------------------------------------------------

BRAND = Claim("brand", specificity=0, source_index=0, referrer_domain="Any")
ADS = Claim("ads", specificity=5, source_index=1, referrer_domain="Google", trigger="gclid=*")


def two_pools(store_factory: StoreFactory, touch: str, ads_numbers: int = 3) -> Store:
    store = store_factory()
    brand = ("+441174090001", "+441174090002", "+441174090003")
    ads = ("+441174090011", "+441174090012", "+441174090013")[:ads_numbers]
    store.register_pool(PoolTerms("brand", "Brand", brand, HOLD, touch=touch))  # type: ignore[arg-type]
    store.register_pool(PoolTerms("ads", "Ads", ads, HOLD))
    return store


def test_first_touch_keeps_the_first_pool_inside_the_session(store_factory: StoreFactory) -> None:
    store = two_pools(store_factory, "first_touch")
    first = store.visit("a", 0.0, BRAND)
    d = store.visit("a", 60.0, ADS)
    assert (d.outcome, d.pool_key, d.number, d.lease_id) == (
        "kept",
        "brand",
        first.number,
        first.lease_id,
    )
    assert d.referrer_domain == "Any"  # the session's source, not this visit's
    assert store.stats("ads", 60.0).new == 0


def test_last_touch_switches_to_a_more_specific_match(store_factory: StoreFactory) -> None:
    store = two_pools(store_factory, "last_touch")
    first = store.visit("a", 0.0, BRAND)
    d = store.visit("a", 60.0, ADS)
    assert (d.outcome, d.pool_key, d.switched_from) == ("new", "ads", first.lease_id)
    assert d.number == "+441174090011"
    old = store.leases(number=first.number)[0]
    assert (old.ended, old.end_reason) == (60.0, "switched")
    brand, ads = store.stats("brand", 60.0), store.stats("ads", 60.0)
    assert (brand.switched_out, brand.live, ads.switched_in, ads.new) == (1, 0, 1, 1)
    # Inside the new session a less specific match keeps the new pool.
    assert store.visit("a", 120.0, BRAND).pool_key == "ads"


def test_last_touch_ignores_matches_that_are_not_more_specific(
    store_factory: StoreFactory,
) -> None:
    store = two_pools(store_factory, "last_touch")
    first = store.visit("a", 0.0, ADS)  # ads is first_touch: its sessions never move
    assert store.visit("a", 10.0, BRAND).lease_id == first.lease_id
    store.visit("b", 0.0, BRAND)
    same = Claim("ads", specificity=0)  # brand is last_touch, but this match is no more specific
    assert store.visit("b", 20.0, same).outcome == "kept"


def test_last_touch_keeps_the_session_when_the_other_pool_is_exhausted(
    store_factory: StoreFactory,
) -> None:
    store = two_pools(store_factory, "last_touch", ads_numbers=1)
    store.visit("x", 0.0, ADS)
    first = store.visit("a", 0.0, BRAND)
    d = store.visit("a", 60.0, ADS)
    assert (d.outcome, d.lease_id) == ("kept", first.lease_id)
    assert store.stats("ads", 60.0).overflows == 0  # a kept visitor is no overflow


# ---- call attribution -----------------------------------------------------------------


def test_call_inside_a_lease_is_attributed_to_it(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    a, b, _ = fill(store)
    call = store.attribute(N2, 600.0)
    assert call.kind == "lease"
    assert call.lease is not None
    assert call.lease.lease_id == b
    assert (call.lease.visitor_id, call.lease.trigger) == ("b", POOL.trigger)
    assert call.confidence == 1.0
    assert [c.lease_id for c in call.candidates] == [b]
    assert store.attribute(N1, 0.0).lease is not None  # the lease starts with its first visit
    assert a != b


def test_late_call_after_release_goes_to_the_pool_only(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    store.visit("a", 0.0, POOL)
    store.visit("a", 600.0, None)  # hold now ends at 2400
    inside = store.attribute(N1, 2399.0)
    assert inside.kind == "lease"
    assert inside.confidence == 1.0
    late = store.attribute(N1, 2400.0)
    assert (late.kind, late.pool_key, late.lease, late.confidence) == ("pool", "bristol", None, 0.0)
    assert late.candidates == ()
    before = store.attribute(N1, -1.0)
    assert before.kind == "pool"
    never = store.attribute(N3, 100.0)
    assert (never.kind, never.pool_key) == ("pool", "bristol")


def test_ambiguous_call_after_recycling(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, policy="recycle")
    a, _, _ = fill(store)
    d = store.visit("d", 30.0, POOL)
    assert (d.number, d.displaced) == (N1, a)
    # a may still call the number they saw until their own hold ends at 1800.
    call = store.attribute(N1, 40.0)
    assert call.kind == "lease"
    assert call.lease is not None
    assert call.lease.lease_id == d.lease_id
    assert call.confidence == 0.5
    assert [c.lease_id for c in call.candidates] == [d.lease_id, a]
    assert [c.visitor_id for c in call.candidates] == ["d", "a"]
    # Before the displacement only a held it; after a's hold only d can be calling.
    before = store.attribute(N1, 29.0)
    assert before.lease is not None
    assert before.lease.lease_id == a
    assert before.confidence == 1.0
    after = store.attribute(N1, HOLD + 1)
    assert after.lease is not None
    assert after.lease.lease_id == d.lease_id
    assert after.confidence == 1.0


def test_calls_are_attributed_afterwards_from_the_log(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    taken: list[tuple[float, str, str]] = []  # (time, number, lease id)
    t = 0.0
    for i in range(60):  # a stream of single-visit sessions over many hours
        d = store.visit(f"v{i}", t, POOL)
        if d.lease_id is not None:
            assert d.number is not None
            taken.append((t, d.number, d.lease_id))
        t += 700.0
    for start, number, lease_id in taken:
        call = store.attribute(number, start + 60.0)
        assert call.lease is not None
        assert (call.lease.lease_id, call.confidence) == (lease_id, 1.0)


def test_unknown_number(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    call = store.attribute("+15555550100", 0.0)
    assert (call.kind, call.pool_key, call.lease) == ("unknown", None, None)


def test_lease_log_query(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    fill(store)
    store.visit("d", 5000.0, POOL)
    everything = store.leases()
    assert [lease.visitor_id for lease in everything] == ["a", "b", "c", "d"]
    assert [lease.visitor_id for lease in store.leases(number=N1)] == ["a", "d"]
    assert [lease.visitor_id for lease in store.leases(since=3000.0)] == ["d"]
    assert [lease.visitor_id for lease in store.leases(until=10.0)] == ["a"]
    assert store.leases(pool_key="other") == []
    first = everything[0]
    assert (first.ended, first.end_reason) == (HOLD, "expired")
    assert everything[-1].ended is None


# ---- configuration and the pure rules ---------------------------------------------------


def test_pool_terms_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        PoolTerms(
            "p",
            "P",
            (N1, N1),
            0.0,
            cooldown_seconds=-1.0,
            policy="sometimes",  # type: ignore[arg-type]
            touch="middle",  # type: ignore[arg-type]
        )
    text = str(info.value)
    for field in ("hold_seconds", "cooldown", "policy", "touch", "numbers"):
        assert f"pool 'p'.{field}" in text
    with pytest.raises(ConfigError, match="needs an overflow number"):
        PoolTerms("p", "P", (N1,), HOLD, policy="overflow")
    with pytest.raises(ConfigError, match="tracked apart"):
        PoolTerms("p", "P", (N1,), HOLD, policy="overflow", overflow_number=N1)


def test_a_number_belongs_to_one_pool(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    with pytest.raises(ConfigError, match="already belongs to pool 'bristol'"):
        store.register_pool(PoolTerms("other", "Other", (N3,), HOLD))
    with pytest.raises(ConfigError, match="tracking number of pool 'bristol'"):
        store.register_pool(
            PoolTerms("other", "Other", (), HOLD, policy="overflow", overflow_number=N1)
        )


def test_registering_again_updates_the_terms(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    fill(store)
    store.register_pool(PoolTerms("bristol", "Bristol", (N1, N2, N3, OVERFLOW), HOLD))
    d = store.visit("d", 30.0, POOL)
    assert (d.outcome, d.number) == ("new", OVERFLOW)
    store.register_pool(PoolTerms("bristol", "Bristol", (N2, N3, OVERFLOW), HOLD))
    assert store.attribute(N1, 40.0).kind == "unknown"
    # a's lease on the dropped N1 runs out without N1 coming back.
    for i in range(3):
        assert store.visit(f"late{i}", HOLD + 100.0, POOL).number != N1
    assert store.stats("bristol", HOLD + 100.0).size == 3


def test_exhausted_action() -> None:
    assert exhausted_action("fallback", cooling=True, live=True) == "fallback"
    assert exhausted_action("overflow", cooling=True, live=True) == "overflow"
    assert exhausted_action("recycle", cooling=True, live=True) == "cut_cooldown"
    assert exhausted_action("recycle", cooling=False, live=True) == "displace"
    assert exhausted_action("recycle", cooling=False, live=False) == "fallback"


def test_may_switch() -> None:
    assert may_switch("last_touch", "brand", 0, "Any", ADS)
    assert not may_switch("first_touch", "brand", 0, "Any", ADS)
    assert not may_switch("last_touch", "brand", 0, "Any", None)
    assert not may_switch("last_touch", "ads", 0, "Any", ADS)  # same pool
    assert not may_switch("last_touch", "brand", 5, "Google", ADS)  # just as specific
    assert not may_switch("last_touch", "brand", 6, "Any", ADS)  # fewer conditions
    assert may_switch("last_touch", "brand", 5, "Any", ADS)  # as many, from a named referrer
    # Equal conditions: a specific referrer is more specific than Any, not the reverse.
    google = Claim("ads", specificity=0, referrer_domain="Google")
    assert may_switch("last_touch", "brand", 0, "*", google)
    assert not may_switch("last_touch", "brand", 0, "Bing", google)
    assert not may_switch("last_touch", "brand", 0, "Google", Claim("ads", referrer_domain="Any"))


def lease(lease_id: str, started: float, expires: float, ended: float | None = None) -> Lease:
    return Lease(lease_id, "p", N1, f"visitor-{lease_id}", started, started, expires, ended)


def test_attribution_from_ranks_the_latest_holder_first() -> None:
    leases = [lease("1", 0.0, 100.0, ended=50.0), lease("2", 50.0, 150.0), lease("3", 50.0, 90.0)]
    call = attribution_from(N1, 60.0, "p", leases)
    assert isinstance(call, Attribution)
    assert [c.lease_id for c in call.candidates] == ["3", "2", "1"]
    assert call.confidence == pytest.approx(1 / 3)
    assert attribution_from(N1, 200.0, "p", leases).kind == "pool"
    assert lease("1", 0.0, 100.0, ended=50.0).end == 50.0
    assert lease("1", 0.0, 100.0, ended=50.0).live_at(49.0)
    assert not lease("1", 0.0, 100.0, ended=50.0).live_at(50.0)
    assert lease("1", 0.0, 100.0, ended=50.0).window_contains(99.0)


def test_simulated_clock() -> None:
    clock = SimulatedClock(10.0)
    assert clock() == 10.0
    assert clock.advance(5) == 15.0
    assert clock.set(20.0) == 20.0
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(19.0)
    with pytest.raises(ValueError, match=">= 0"):
        clock.advance(-1.0)
    assert clock() == 20.0


def test_a_decision_built_for_the_hot_path_is_the_same_value() -> None:
    fields = ("v1", 12.5, "kept", N1, "p", "Pool", 0, "Any", "gclid", "7", 3.0, 600.0)
    fast = leased(*fields, displaced="6", switched_from=None)
    slow = Decision(*fields, displaced="6")
    assert fast == slow
    assert type(fast) is Decision
    assert (fast.outcome, fast.number, fast.expires, fast.displaced) == ("kept", N1, 600.0, "6")
    assert fast.tracked
    assert leased("v2", 1.0, "overflow", None, "p", "Pool", 1, "Google", None) == Decision(
        "v2", 1.0, "overflow", None, "p", "Pool", 1, "Google", None
    )
