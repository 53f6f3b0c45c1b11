"""The client cap through the Store protocol (run against every store kind).

At most ``client_cap`` live leases of a pool are started with one client key;
a first visit over it is ``capped`` (no number, counted in ``PoolStats.capped``),
and every way a lease ends gives its client's place back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

import dni_engine
from dni_engine.errors import ConfigError
from dni_engine.leases import Claim, PoolTerms, minutes
from dni_engine.stores import Store
from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import RedisServer

HOLD = minutes(30)
NUMBERS = tuple(f"+44117409{i:04d}" for i in range(6))
OTHER = tuple(f"+44117408{i:04d}" for i in range(3))
BRISTOL = Claim("bristol", specificity=0, source_index=0, referrer_domain="Any")
BATH = Claim("bath", specificity=2, source_index=1, referrer_domain="Google", trigger="gclid=*")
SCRIPT = "client-script"  # one client key: in real use an HMAC of network and user agent
HUMAN = "client-human"

StoreFactory = Callable[[], Store]


def make_store(store_factory: StoreFactory, cap: int = 2, **terms: object) -> Store:
    """A store with the 6-number pool ``bristol`` (30-minute hold, cap ``cap``)."""
    store = store_factory()
    options: dict[str, object] = {"hold_seconds": HOLD, "client_cap": cap, **terms}
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, **options))  # type: ignore[arg-type]
    return store


def take(store: Store, visitors: list[str], at: float, client: str | None = SCRIPT) -> list[str]:
    """The outcomes of a first visit by each of ``visitors`` at ``at`` from ``client``."""
    return [store.visit(v, at, BRISTOL, client).outcome for v in visitors]


def test_a_client_at_its_cap_is_capped_and_others_are_not(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    assert take(store, ["a", "b"], 10.0) == ["new", "new"]
    capped = store.visit("c", 11.0, BRISTOL, SCRIPT)
    assert capped.outcome == "capped"
    assert capped.number is None
    assert capped.lease_id is None
    assert not capped.tracked
    assert (capped.pool_key, capped.pool_name) == ("bristol", "Bristol")
    assert (capped.source_index, capped.referrer_domain, capped.trigger) == (0, "Any", None)
    assert capped.at == 11.0
    assert store.visit("d", 12.0, BRISTOL, HUMAN).outcome == "new"
    assert store.visit("e", 13.0, BRISTOL, None).outcome == "new"  # no key: no cap
    stats = store.stats("bristol", 14.0)
    assert (stats.new, stats.capped, stats.live, stats.overflows) == (4, 1, 4, 0)
    assert not [x for x in store.leases(pool_key="bristol") if x.visitor_id == "c"]


def test_a_returning_visitor_keeps_their_lease_at_the_cap(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    first = store.visit("a", 10.0, BRISTOL, SCRIPT)
    take(store, ["b"], 11.0)
    again = store.visit("a", 20.0, BRISTOL, SCRIPT)
    assert (again.outcome, again.lease_id, again.number) == ("kept", first.lease_id, first.number)
    # a visit without a claim, or from another client, keeps it too
    assert store.visit("a", 21.0, None, SCRIPT).outcome == "kept"
    assert store.visit("b", 22.0, BRISTOL, HUMAN).outcome == "kept"
    assert store.stats("bristol", 23.0).capped == 0


def test_no_cap_without_a_client_or_with_cap_zero(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, cap=0)
    assert take(store, ["a", "b", "c", "d"], 10.0) == ["new"] * 4
    assert take(store, ["e", "f"], 11.0, None) == ["new", "new"]
    assert store.stats("bristol", 12.0).capped == 0


def test_expiry_gives_the_place_back(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    take(store, ["a", "b"], 10.0)
    assert take(store, ["c"], 10.0 + HOLD - 1) == ["capped"]
    assert take(store, ["d"], 10.0 + HOLD) == ["new"]  # a's and b's holds ran out just now
    assert take(store, ["e"], 10.0 + HOLD) == ["new"]
    assert take(store, ["f"], 10.0 + HOLD) == ["capped"]


def test_release_gives_the_place_back(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    take(store, ["a", "b"], 10.0)
    ended = store.release("a", 20.0)
    assert ended is not None
    assert ended.end_reason == "released"
    assert take(store, ["c", "d"], 21.0) == ["new", "capped"]
    assert store.release("a", 22.0) is None  # nothing left to give back twice
    assert take(store, ["e"], 23.0) == ["capped"]


def test_forget_gives_the_place_back(store_factory: StoreFactory) -> None:
    store = make_store(store_factory)
    take(store, ["a", "b"], 10.0)
    assert store.forget("a", 20.0).leases_released == 1
    assert store.forget("a", 21.0).leases_released == 0  # idempotent, nothing counted twice
    assert take(store, ["c", "d"], 22.0) == ["new", "capped"]


def test_a_forgotten_lease_that_ran_out_gives_its_place_back_once(
    store_factory: StoreFactory,
) -> None:
    store = make_store(store_factory)
    take(store, ["a"], 10.0)
    take(store, ["b"], 10.0 + HOLD / 2)
    store.forget("a", 10.0 + HOLD + 5)  # a ran out unnoticed: it ends as expired
    assert take(store, ["c", "d"], 10.0 + HOLD + 6) == ["new", "capped"]


def test_a_capped_client_displaces_nobody(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_pool(
        PoolTerms("bristol", "Bristol", NUMBERS[:2], HOLD, policy="recycle", client_cap=1)
    )
    assert store.visit("human", 10.0, BRISTOL, HUMAN).outcome == "new"
    assert store.visit("a", 11.0, BRISTOL, SCRIPT).outcome == "new"
    # the pool is exhausted: the script's next visitor would displace the human's lease
    capped = store.visit("b", 12.0, BRISTOL, SCRIPT)
    assert capped.outcome == "capped"
    assert capped.displaced is None
    assert store.visit("human", 13.0, BRISTOL, HUMAN).outcome == "kept"
    stats = store.stats("bristol", 14.0)
    assert (stats.recycled, stats.displacements, stats.capped) == (0, 0, 1)


def test_displacement_gives_the_displaced_clients_place_back(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_pool(
        PoolTerms("bristol", "Bristol", NUMBERS[:2], HOLD, policy="recycle", client_cap=1)
    )
    first = store.visit("a", 10.0, BRISTOL, SCRIPT)
    store.visit("human", 11.0, BRISTOL, HUMAN)
    taken = store.visit("other", 12.0, BRISTOL, "client-other")
    assert (taken.outcome, taken.displaced) == ("recycled", first.lease_id)
    # the script's lease was displaced: its client holds none now, so it may take one
    again = store.visit("b", 13.0, BRISTOL, SCRIPT)
    assert again.outcome == "recycled"
    assert store.visit("c", 14.0, BRISTOL, SCRIPT).outcome == "capped"


def test_an_exhausted_pool_caps_before_it_overflows(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS[:1], HOLD, client_cap=1))
    assert store.visit("a", 10.0, BRISTOL, SCRIPT).outcome == "new"
    assert store.visit("b", 11.0, BRISTOL, SCRIPT).outcome == "capped"
    assert store.visit("c", 12.0, BRISTOL, HUMAN).outcome == "overflow"
    stats = store.stats("bristol", 13.0)
    assert (stats.capped, stats.overflows) == (1, 1)


def two_pools(store_factory: StoreFactory, cap: int) -> Store:
    """``bristol`` (last touch, Any) and the more specific ``bath``, both capped at ``cap``."""
    store = store_factory()
    store.register_pool(
        PoolTerms("bristol", "Bristol", NUMBERS, HOLD, touch="last_touch", client_cap=cap)
    )
    store.register_pool(PoolTerms("bath", "Bath", OTHER, HOLD, client_cap=cap))
    return store


def test_a_switch_counts_in_the_new_pool_and_leaves_the_old(store_factory: StoreFactory) -> None:
    store = two_pools(store_factory, cap=1)
    first = store.visit("a", 10.0, BRISTOL, SCRIPT)
    assert store.visit("b", 11.0, BRISTOL, SCRIPT).outcome == "capped"
    moved = store.visit("a", 12.0, BATH, SCRIPT)
    assert (moved.outcome, moved.pool_key, moved.switched_from) == ("new", "bath", first.lease_id)
    # a's Bristol lease ended (switched): the client may take one there again...
    assert store.visit("b", 13.0, BRISTOL, SCRIPT).outcome == "new"
    # ...and holds Bath's one place now
    assert store.visit("c", 14.0, BATH, SCRIPT).outcome == "capped"
    assert store.stats("bath", 15.0).capped == 1


def test_a_client_at_the_new_pools_cap_keeps_its_lease(store_factory: StoreFactory) -> None:
    store = two_pools(store_factory, cap=1)
    assert store.visit("x", 10.0, BATH, SCRIPT).outcome == "new"
    held = store.visit("a", 11.0, BRISTOL, SCRIPT)
    kept = store.visit("a", 12.0, BATH, SCRIPT)  # would switch, but Bath is at the cap
    assert (kept.outcome, kept.lease_id, kept.pool_key) == ("kept", held.lease_id, "bristol")
    assert store.stats("bath", 13.0).capped == 0  # the visitor was not refused a number
    # another client switches
    other = store.visit("h", 14.0, BRISTOL, HUMAN)
    moved = store.visit("h", 15.0, BATH, HUMAN)
    assert (moved.outcome, moved.switched_from) == ("new", other.lease_id)


def test_the_cap_is_per_pool(store_factory: StoreFactory) -> None:
    store = two_pools(store_factory, cap=1)
    assert store.visit("a", 10.0, BRISTOL, SCRIPT).outcome == "new"
    assert store.visit("b", 11.0, BATH, SCRIPT).outcome == "new"
    assert store.visit("c", 12.0, BATH, SCRIPT).outcome == "capped"


def test_registering_a_new_cap_keeps_the_counts(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, cap=3)
    assert take(store, ["a", "b", "c"], 10.0) == ["new"] * 3
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap=2))
    assert take(store, ["d"], 11.0) == ["capped"]
    store.release("a", 12.0)
    store.release("b", 12.0)
    assert take(store, ["e", "f"], 13.0) == ["new", "capped"]
    store.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap=0))
    assert take(store, ["g", "h"], 14.0) == ["new", "new"]


def test_many_first_visits_of_one_client_take_at_most_the_cap(store_factory: StoreFactory) -> None:
    store = make_store(store_factory, cap=3)
    outcomes = take(store, [f"fresh-{i}" for i in range(60)], 10.0)
    assert outcomes.count("new") == 3
    assert outcomes.count("capped") == 57
    stats = store.stats("bristol", 11.0)
    assert (stats.live, stats.capped, stats.free) == (3, 57, 3)


def test_the_cap_must_be_a_whole_number() -> None:
    with pytest.raises(ConfigError) as caught:
        PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap=-1)
    assert [p.path for p in caught.value.problems] == ["pool 'bristol'.client_cap"]
    with pytest.raises(TypeError if dni_engine.COMPILED else ConfigError):
        PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap="3")  # type: ignore[arg-type]


@pytest.mark.skipif(dni_engine.COMPILED, reason="compiled, a bool is read as an int")
def test_a_bool_is_not_a_cap() -> None:
    with pytest.raises(ConfigError):
        PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap=True)


# ---- Redis: where the counts live, and lost state -------------------------------------------


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[RedisStore]:
    made = RedisStore(redis_server.url, namespace="capped", timeout=2.0, new_namespace=True)
    made.client.flushdb()
    made.register_pool(PoolTerms("bristol", "Bristol", NUMBERS, HOLD, client_cap=2))
    yield made
    made.close()


def test_redis_counts_live_leases_per_client_in_the_pools_slot(redis_store: RedisStore) -> None:
    client = redis_store.client
    take(redis_store, ["a", "b", "c"], 10.0)
    take(redis_store, ["h"], 10.0, HUMAN)
    assert client.hgetall("capped:{p:bristol}:clients") == {
        SCRIPT.encode(): b"2",
        HUMAN.encode(): b"1",
    }
    redis_store.release("h", 11.0)
    redis_store.forget("a", 11.0)
    assert client.hgetall("capped:{p:bristol}:clients") == {SCRIPT.encode(): b"1"}
    redis_store.stats("bristol", 10.0 + HOLD)  # b's hold ran out: expired
    assert client.hgetall("capped:{p:bristol}:clients") == {}
    assert redis_store.stats("bristol", 10.0 + HOLD).capped == 1


def test_redis_heals_lost_state_with_fresh_counts(
    redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    take(redis_store, ["a", "b"], 10.0)
    redis_store.client.flushdb()  # Redis forgot everything: leases and counts alike
    with caplog.at_level(logging.ERROR, logger="dni_engine.stores.redis"):
        assert take(redis_store, ["c", "d", "e"], 20.0) == ["new", "new", "capped"]
    assert redis_store.client.hgetall("capped:{p:bristol}:clients") == {SCRIPT.encode(): b"2"}


def test_redis_counts_never_go_below_zero_when_the_count_key_is_lost(
    redis_store: RedisStore,
) -> None:
    take(redis_store, ["a", "b"], 10.0)
    redis_store.client.delete("capped:{p:bristol}:clients")  # only the counts were lost
    redis_store.release("a", 11.0)
    redis_store.release("b", 11.0)
    assert redis_store.client.hgetall("capped:{p:bristol}:clients") == {}
    assert take(redis_store, ["c", "d", "e"], 12.0) == ["new", "new", "capped"]
