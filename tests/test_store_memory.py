"""The embedded store: bounded memory, thread safety, the lease log and its sink."""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dni_engine.errors import ConfigError
from dni_engine.leases import Claim, Decision, Lease, PoolTerms, SimulatedClock, minutes
from dni_engine.stores import MemoryStore, Store
from dni_engine.stores.memory import _Queue

HOLD = minutes(30)
NUMBERS = ("+441174090162", "+441174090163", "+441174090165")
POOL = Claim("bristol")


def numbers(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"+4411740{prefix}{i:03d}" for i in range(count))


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


def test_log_capacity_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="log_capacity"):
        MemoryStore(log_capacity=0)


def test_renewals_do_not_grow_the_heaps() -> None:
    store = MemoryStore()
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    for i in range(10_000):
        assert store.visit("a", float(i), POOL).outcome in ("new", "kept")
    size = store.footprint()
    assert (size.live_leases, size.visitors, size.live_entries, size.free_entries) == (1, 1, 1, 2)
    assert size.log_entries == 1


def test_the_log_is_a_ring_buffer_and_live_leases_stay_attributable() -> None:
    store = MemoryStore(log_capacity=2)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    a = store.visit("a", 0.0, POOL)
    for i, t in enumerate((HOLD, 2 * HOLD, 3 * HOLD)):
        store.visit(f"v{i}", t, POOL)
    assert [lease.visitor_id for lease in store.leases()] == ["v1", "v2"]
    assert store.attribute(NUMBERS[0], 10.0).kind == "pool"  # a's lease has left the log
    assert a.number == NUMBERS[0]
    # A live lease pushed out of the log is still found through its number.
    tiny = MemoryStore(log_capacity=1)
    tiny.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    first = tiny.visit("a", 0.0, POOL)
    tiny.visit("b", 1.0, POOL)
    call = tiny.attribute(NUMBERS[0], 2.0)
    assert call.lease is not None
    assert call.lease.lease_id == first.lease_id


def test_the_log_stays_in_start_order_when_a_forgotten_visitor_leaves_a_gap() -> None:
    store = MemoryStore(log_capacity=3)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    for i, visitor in enumerate("abcd"):  # d's lease pushes a's out of the log
        store.visit(visitor, i * HOLD, POOL)
    store.forget("b", 4 * HOLD)
    assert [lease.visitor_id for lease in store.leases()] == ["c", "d"]
    for i, visitor in enumerate("efg"):  # the log fills again, then drops c, then d
        store.visit(visitor, (5 + i) * HOLD, POOL)
        assert store.footprint().log_entries == 3
    logged = store.leases()
    assert [lease.visitor_id for lease in logged] == ["e", "f", "g"]
    by_number = [lease for n in NUMBERS for lease in store.leases(number=n)]
    assert sorted(lease.lease_id for lease in by_number) == sorted(x.lease_id for x in logged)


def test_a_number_keeps_no_lease_the_log_dropped() -> None:
    store = MemoryStore(log_capacity=10)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS[:1], 1.0))
    for i in range(200):  # one number, leased again and again
        assert store.visit(f"v{i}", 2.0 * i, POOL).outcome == "new"
    held = [x for x in store._by_number[NUMBERS[0]].leases if x is not None]
    assert len(held) == store.footprint().log_entries == 10
    assert [x.lease_id for x in held] == [x.lease_id for x in store.leases()]


class _Item:
    """A queue item told apart by identity (as the store's leases are)."""

    def __init__(self, name: int) -> None:
        self.name = name


# Queue operations: push a key some steps after the last one pushed (mostly forward,
# as a store's time moves, sometimes back), pop, pop only the item, or peek.
_QUEUE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(-3, 6)),
        st.tuples(st.sampled_from(["pop", "pop_item", "peek"]), st.just(0)),
    ),
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(initial=st.lists(st.integers(0, 5), max_size=40), ops=_QUEUE_OPS)
def test_the_queue_gives_entries_least_first_and_keeps_no_popped_item(
    initial: list[int], ops: list[tuple[str, int]]
) -> None:
    ties = itertools.count()
    model = [(float(key), next(ties), _Item(i)) for i, key in enumerate(initial)]
    queue: _Queue[_Item] = _Queue(list(model))
    popped: list[_Item] = []
    last = 0.0
    for op, step in ops:
        if op == "push":
            last += step
            entry = (last, next(ties), _Item(len(model) + len(popped)))
            queue.push(*entry)
            model.append(entry)
            continue
        model.sort(key=lambda e: (e[0], e[1]))
        if not model:
            assert len(queue) == 0
            continue
        if op == "peek":
            assert queue.peek() == model[0]
        elif op == "pop":
            assert queue.pop() == model[0]
            popped.append(model.pop(0)[2])
        else:
            assert queue.pop_item() is model[0][2]
            popped.append(model.pop(0)[2])
    model.sort(key=lambda e: (e[0], e[1]))
    assert len(queue) == len(model)
    assert queue.least_key() == (model[0][0] if model else math.inf)
    assert sorted(queue.entries(), key=lambda e: (e[0], e[1])) == model
    held = {id(item) for item in queue.items} | {id(entry[2]) for entry in queue.heap}
    assert not held & {id(item) for item in popped}


def test_sink_receives_each_ended_lease_once() -> None:
    ended: list[Lease] = []
    store = MemoryStore(on_lease_closed=ended.append)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS[:1], HOLD, policy="recycle"))
    store.register_pool(PoolTerms("brand", "Brand", numbers("9", 2), HOLD, touch="last_touch"))
    store.visit("a", 0.0, POOL)
    store.visit("b", 10.0, POOL)  # displaces a
    store.visit("c", 0.0, Claim("brand"))
    store.visit("c", 20.0, Claim("bristol", specificity=3))  # no free number: c stays
    store.release("c", 30.0)
    store.visit("d", 40.0, Claim("brand"))
    store.visit("d", 50.0, Claim("bristol", specificity=3))  # bristol is held by b
    store.purge(10.0 + HOLD)  # b's hold ran out
    store.visit("e", 100.0 + HOLD, Claim("brand"))
    reasons = Counter(lease.end_reason for lease in ended)
    assert reasons == {"displaced": 1, "released": 1, "expired": 2}
    assert len({lease.lease_id for lease in ended}) == len(ended)
    assert all(lease.ended is not None for lease in ended)


def test_a_failing_sink_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(lease: Lease) -> None:
        raise RuntimeError("report database is down")

    store = MemoryStore(on_lease_closed=broken)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    store.visit("a", 0.0, POOL)
    with caplog.at_level(logging.ERROR, logger="dni_engine.stores.memory"):
        assert store.visit("b", 2 * HOLD, POOL).outcome == "new"
    assert "on_lease_closed failed" in caplog.text


def test_purge_ends_expired_leases_everywhere() -> None:
    store = MemoryStore()
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    store.register_pool(PoolTerms("brand", "Brand", numbers("9", 3), HOLD * 2))
    for i in range(3):
        store.visit(f"a{i}", float(i), POOL)
        store.visit(f"b{i}", float(i), Claim("brand"))
    assert store.purge(HOLD + 5) == 3
    size = store.footprint()
    assert (size.live_leases, size.visitors) == (3, 3)
    assert store.purge(2 * HOLD + 5) == 3
    size = store.footprint()
    assert (size.live_leases, size.visitors, size.live_entries, size.free_entries) == (0, 0, 0, 6)


# ---- memory bound -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_visitors_over_thirty_days_leave_only_live_state() -> None:
    days = 30
    visitors = 1_000_000
    rng = random.Random(20240601)
    store = MemoryStore(log_capacity=20_000)
    pools = (
        PoolTerms("small", "Small", numbers("1", 3), HOLD, minutes(5), "fallback"),
        PoolTerms("medium", "Medium", numbers("2", 20), HOLD, 0.0, "recycle"),
        PoolTerms(
            "large",
            "Large",
            numbers("3", 100),
            minutes(60),
            minutes(2),
            "overflow",
            overflow_number="+441174099999",
        ),
    )
    for terms in pools:
        store.register_pool(terms)
    claims = [Claim(terms.key) for terms in pools]
    total_numbers = sum(len(terms.numbers) for terms in pools)
    mean_gap = days * 86_400 / visitors
    outcomes: Counter[str] = Counter()
    t = 0.0
    for i in range(visitors):
        t += rng.expovariate(1.0 / mean_gap)
        outcomes[store.visit(f"visitor-{i}", t, claims[i % 3]).outcome] += 1
        if i % 4 == 0 and i >= 200:  # a visitor from a few minutes ago comes back
            outcomes[store.visit(f"visitor-{i - 200}", t, claims[(i - 200) % 3]).outcome] += 1
        if i % 100_000 == 0:
            size = store.footprint()
            assert size.live_leases <= total_numbers
            assert size.visitors <= size.live_leases
            assert size.free_entries + size.live_leases == total_numbers
            assert size.live_entries <= total_numbers
            assert size.log_entries <= 20_000
    assert t > (days - 1) * 86_400
    assert outcomes["kept"] > 0
    assert outcomes["new"] > 0
    assert outcomes["overflow"] > 0
    assert outcomes["recycled"] > 0
    size = store.footprint()
    assert size.live_leases <= total_numbers
    assert size.visitors <= size.live_leases
    assert size.log_entries == 20_000
    assert size.numbers_logged <= total_numbers
    # Once every hold and cooldown has run out nothing but the log and the free numbers remain.
    store.purge(t + minutes(62))
    size = store.footprint()
    assert (size.live_leases, size.visitors, size.live_entries) == (0, 0, 0)
    assert size.free_entries == total_numbers
    assert sum(store.stats(terms.key, t + minutes(62)).cooling for terms in pools) == 0


# ---- threads ------------------------------------------------------------------------------


def test_eight_threads_share_one_pool_safely() -> None:
    threads, per_thread = 8, 20_000
    cooldown = 20.0
    store = MemoryStore(log_capacity=threads * per_thread)
    store.register_pool(
        PoolTerms("bristol", "Bristol", numbers("5", 40), 60.0, cooldown, "recycle")
    )
    clock = SimulatedClock()
    results: list[list[Decision]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine = results[index]
        start.wait()
        for _ in range(per_thread):
            visitor = f"v{rng.randrange(400)}"
            mine.append(store.visit(visitor, clock.advance(0.25), POOL))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    decisions = [d for mine in results for d in mine]
    outcomes = Counter(d.outcome for d in decisions)
    assert sum(outcomes.values()) == threads * per_thread
    assert set(outcomes) <= {"new", "kept", "recycled", "overflow"}
    assert outcomes["recycled"] > 0
    assert outcomes["kept"] > 0
    stats = store.stats("bristol", clock())
    assert (stats.new, stats.kept, stats.recycled) == (
        outcomes["new"],
        outcomes["kept"],
        outcomes["recycled"],
    )
    assert stats.displacements == sum(1 for d in decisions if d.displaced is not None)

    leases = {lease.lease_id: lease for lease in store.leases()}
    assert len(leases) == outcomes["new"] + outcomes["recycled"]
    by_lease: dict[str, list[Decision]] = defaultdict(list)
    for d in decisions:
        if d.lease_id is not None:
            by_lease[d.lease_id].append(d)
    started_by = {}
    for lease_id, seen in by_lease.items():
        lease = leases[lease_id]
        assert {(d.visitor_id, d.number) for d in seen} == {(lease.visitor_id, lease.number)}
        assert max(d.at for d in seen) == lease.last_activity
        opening = [d for d in seen if d.outcome != "kept"]
        assert len(opening) == 1  # exactly one decision started each lease
        started_by[lease_id] = opening[0]
    # On each number the leases follow each other: never two holders at once, and a
    # number is reused inside its cooldown or while held only by recycling, which says so.
    per_number: dict[str, list[Lease]] = defaultdict(list)
    for lease in leases.values():
        per_number[lease.number].append(lease)
    for chain in per_number.values():
        chain.sort(key=lambda lease: (lease.started, int(lease.lease_id.rpartition(".")[2])))
        for before, after in itertools.pairwise(chain):
            assert before.end <= after.started
            opened = started_by[after.lease_id]
            if before.end_reason == "displaced":
                assert before.displaced_by == after.lease_id
                assert opened.displaced == before.lease_id
            elif after.started < before.end + cooldown:
                assert opened.outcome == "recycled"
    live = [lease for lease in leases.values() if lease.ended is None]
    assert len({lease.number for lease in live}) == len(live)
    assert len({lease.visitor_id for lease in live}) == len(live)


def test_live_leases_is_the_live_count_of_the_stats_and_ends_what_ran_out() -> None:
    closed: list[Lease] = []
    store = MemoryStore(on_lease_closed=closed.append)
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD))
    rng = random.Random(5)
    t = latest = 0.0
    for i in range(400):
        t += rng.expovariate(1 / 300)
        store.visit(f"v{rng.randrange(40)}", t, POOL)
        probe = t + rng.uniform(0, HOLD)
        latest = max(latest, probe)
        before = len(closed)
        live = store.live_leases("bristol", probe)
        assert live == store.stats("bristol", probe).live, i
        assert all(lease.ended is not None for lease in closed[before:])
    assert closed  # leases that ran out were ended and delivered
    # probes move the store's clock too, so the last lease ends a hold after the latest
    assert store.live_leases("bristol", latest + HOLD) == 0


def _attributions(store: MemoryStore, at: float) -> list[object]:
    """Every number's attribution at ``at``."""
    return [store.attribute(number, at) for number in (*NUMBERS, *numbers("9", 4))]


@pytest.mark.parametrize(("seed", "capacity"), [(1, 1_000), (2, 1_000), (3, 40), (4, 7)])
def test_dropping_closed_leases_changes_no_later_attribution(seed: int, capacity: int) -> None:
    # Two stores given the same visits; one drops the leases whose windows have
    # closed every so often. Calls at or after each drop are attributed alike.
    rng = random.Random(seed)
    stores = [MemoryStore(log_capacity=capacity), MemoryStore(log_capacity=capacity)]
    stores[1]._epoch = stores[0]._epoch  # the same lease ids
    for store in stores:
        store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD, policy="recycle"))
        store.register_pool(PoolTerms("bath", "Bath", numbers("9", 4), HOLD / 3))
    now = 0.0
    dropped = 0
    for step in range(3_000):
        now += rng.expovariate(1 / 60.0)
        visitor = f"v{rng.randrange(40)}"  # returning visitors renew their leases
        claim = Claim(rng.choice(["bristol", "bath"]))
        decisions = {store.visit(visitor, now, claim) for store in stores}
        assert len(decisions) == 1
        if step % 50 == 0:
            dropped += stores[1]._drop_closed(now)
        if step % 7 == 0:
            at = now + rng.uniform(0.0, HOLD)
            assert _attributions(stores[0], at) == _attributions(stores[1], at)
    assert dropped > 0
    kept, full = stores[1].footprint().log_entries, stores[0].footprint().log_entries
    assert kept < full if capacity > 100 else kept <= full  # a tiny log refills
    logged = stores[1].leases()
    assert [x.lease_id for x in logged] == [x.lease_id for x in stores[0].leases()[-len(logged) :]]
    by_number = [
        lease for n in (*NUMBERS, *numbers("9", 4)) for lease in stores[1].leases(number=n)
    ]
    assert sorted(x.lease_id for x in by_number) == sorted(x.lease_id for x in logged)
