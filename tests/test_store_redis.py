"""The Redis store on real servers: parity with the memory store, round trips, keys,
time, the lease log's bounds, the circuit breaker, outages and recovery, and many
processes on one pool.

The lease rules, the engine tests and the engine's state machine run against
every store kind, Redis and Redis Cluster included, in ``test_leases.py`` and
``test_engine.py`` (through the ``store_factory`` fixture of ``conftest.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dni_engine.engine import Engine
from dni_engine.errors import ConfigError
from dni_engine.leases import (
    Attribution,
    Claim,
    Decision,
    Lease,
    PoolTerms,
    SimulatedClock,
    minutes,
)
from dni_engine.schema import NumberPool
from dni_engine.stores import MemoryStore, Store, StoreError
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.stores.breaker import CircuitBreaker
from dni_engine.stores.redis import RedisStore, _pack_round
from dni_engine.testing import build_pool, source
from dni_engine.testing.redis_server import RedisCluster, RedisServer

HOLD = minutes(30)
START = 1_700_000_000.0
HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
names = itertools.count()


def numbers(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"+4411740{prefix}{i:03d}" for i in range(count))


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    """A store in a fresh namespace on the session's server."""
    made = RedisStore(
        redis_server.url, namespace=f"unit{next(names)}", timeout=2.0, new_namespace=True
    )
    yield made
    made.close()


def number_pool(pool_id: int, count: int, match_period: int = 30) -> NumberPool:
    """A pool taking every visit (referrer Any) with ``count`` Bristol numbers."""
    return build_pool(
        id=pool_id,
        name=f"pool {pool_id}",
        numbers=[f"+4411740{pool_id}{i:04d}" for i in range(count)],
        match_period=match_period,
        sources=[source("Any")],
    )


# ---- construction -------------------------------------------------------------------------


def test_redis_store_is_a_store(store: RedisStore) -> None:
    assert isinstance(store, Store)
    assert "namespace='unit" in repr(store)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        RedisStore(
            "redis://127.0.0.1:1/0",
            namespace="a{b}",
            timeout=0.0,
            connect_timeout=-1.0,
            log_capacity=0,
            log_retention=-5.0,
            hint_ttl=0.5,
        )
    text = str(info.value)
    for field in ("namespace", "timeout", "connect_timeout", "log_capacity", "log_retention"):
        assert f"{field}:" in text
    assert "hint_ttl" in text


# ---- parity with the memory store, operation by operation -----------------------------------

PARITY_POOLS = (
    PoolTerms("a", "A", numbers("1", 3), 600.0, 60.0, "recycle", touch="last_touch"),
    PoolTerms("b", "B", numbers("2", 2), 300.0, 0.0, "fallback"),
    PoolTerms(
        "c",
        "C",
        numbers("3", 2),
        900.0,
        120.0,
        "overflow",
        overflow_number="+441174099999",
        touch="last_touch",
    ),
)
PARITY_CLAIMS = (
    None,
    Claim("a"),
    Claim("a", 2, 1, "Google", "gclid=*"),
    Claim("b", 1, 0, "Bing"),
    Claim("b", 2, 1, "Any", "utm_source=*&x=1"),
    Claim("c", 0, 0, "Facebook"),
    Claim("c", 3, 0, "Any", "q=1&r=2&s=3"),
)
PARITY_STEPS = (0.0, 1.0, 30.0, 120.0, 300.0, 301.0, 600.0, 900.0, 1800.0)


class SameLeases:
    """A one-to-one map between the two stores' lease ids, checked at every sighting."""

    def __init__(self) -> None:
        self.forward: dict[str, str] = {}
        self.backward: dict[str, str] = {}

    def check(self, memory_id: str | None, redis_id: str | None) -> None:
        if memory_id is None or redis_id is None:
            assert memory_id is redis_id is None, (memory_id, redis_id)
            return
        assert self.forward.setdefault(memory_id, redis_id) == redis_id
        assert self.backward.setdefault(redis_id, memory_id) == memory_id

    def decision(self, m: Decision, r: Decision) -> None:
        ids = ("lease_id", "displaced", "switched_from")
        for name in Decision._fields:
            if name not in ids:
                assert getattr(m, name) == getattr(r, name), (name, m, r)
        for name in ids:
            self.check(getattr(m, name), getattr(r, name))

    def lease(self, m: Lease | None, r: Lease | None) -> None:
        if m is None or r is None:
            assert m is r is None, (m, r)
            return
        self.check(m.lease_id, r.lease_id)
        self.check(m.displaced_by, r.displaced_by)
        for field in dataclasses.fields(Lease):
            if field.name not in ("lease_id", "displaced_by"):
                assert getattr(m, field.name) == getattr(r, field.name), (field.name, m, r)

    def attribution(self, m: Attribution, r: Attribution) -> None:
        assert (m.number, m.at, m.kind, m.pool_key, m.confidence) == (
            r.number,
            r.at,
            r.kind,
            r.pool_key,
            r.confidence,
        ), (m, r)
        self.lease(m.lease, r.lease)
        assert len(m.candidates) == len(r.candidates)
        for a, b in zip(m.candidates, r.candidates, strict=True):
            self.lease(a, b)


def run_parity(redis_store: Store, seed: int, operations: int) -> Counter[str]:
    """Drive a memory store and ``redis_store`` with the same random operations; compare all."""
    rng = random.Random(seed)
    memory = MemoryStore()
    for terms in PARITY_POOLS:
        memory.register_pool(terms)
        redis_store.register_pool(terms)
    same = SameLeases()
    seen: Counter[str] = Counter()
    every_number = [n for t in PARITY_POOLS for n in t.numbers] + ["+441174099999", "+4455"]
    visitors = [f"visitor-{i}" for i in range(12)]
    now = START
    for _ in range(operations):
        roll = rng.random()
        if roll < 0.6:
            visitor, claim = rng.choice(visitors), rng.choice(PARITY_CLAIMS)
            m, r = memory.visit(visitor, now, claim), redis_store.visit(visitor, now, claim)
            same.decision(m, r)
            seen[m.outcome] += 1
            if m.switched_from is not None:
                seen["switched"] += 1
            if m.displaced is not None:
                seen["displaced"] += 1
        elif roll < 0.67:
            visitor = rng.choice(visitors)
            same.lease(memory.release(visitor, now), redis_store.release(visitor, now))
        elif roll < 0.8:
            number, at = rng.choice(every_number), now - rng.choice((0.0, 10.0, 400.0, 2000.0))
            m_call, r_call = memory.attribute(number, at), redis_store.attribute(number, at)
            same.attribution(m_call, r_call)
            seen[f"call:{m_call.kind}"] += 1
        elif roll < 0.85:
            key = rng.choice(PARITY_POOLS).key
            assert memory.stats(key, now) == redis_store.stats(key, now)
        else:
            now += rng.choice(PARITY_STEPS)
    for terms in PARITY_POOLS:
        assert memory.stats(terms.key, now) == redis_store.stats(terms.key, now)
    for number in every_number:
        m_log, r_log = memory.leases(number=number), redis_store.leases(number=number)
        assert len(m_log) == len(r_log)
        for a, b in zip(m_log, r_log, strict=True):
            same.lease(a, b)
    m_all = {lease.lease_id: lease for lease in memory.leases(since=now - 3000, until=now)}
    r_all = {lease.lease_id: lease for lease in redis_store.leases(since=now - 3000, until=now)}
    assert {same.forward[x] for x in m_all} == set(r_all)
    for memory_id, lease in m_all.items():
        same.lease(lease, r_all[same.forward[memory_id]])
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_operation_answers_as_the_memory_store_does(store: RedisStore, seed: int) -> None:
    seen = run_parity(store, seed, 1500)
    # The run went through every path worth comparing.
    for what in ("new", "kept", "overflow", "recycled", "no_match", "switched", "displaced"):
        assert seen[what] > 0, (what, seen)
    assert seen["call:lease"] > 0
    assert seen["call:pool"] > 0


def test_parity_on_a_cluster(redis_cluster: RedisCluster) -> None:
    client = redis_cluster.client()
    try:
        store = RedisStore(client, namespace=f"parity{next(names)}", new_namespace=True)
        seen = run_parity(store, 4, 800)
        assert seen["switched"] > 0
    finally:
        client.close()


# ---- round trips and keys -----------------------------------------------------------------


class CountingConnection(redis.Connection):
    """A connection that counts round trips: each write of commands is one."""

    round_trips = 0  # counted on the class: every connection of the test's pool

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        super().send_packed_command(command, check_health)


def counting_client(server: RedisServer) -> redis.Redis:
    pool = redis.ConnectionPool(
        host="127.0.0.1", port=server.port, connection_class=CountingConnection
    )
    return redis.Redis(connection_pool=pool)


def test_a_visit_takes_one_round_trip_in_the_common_cases(redis_server: RedisServer) -> None:
    client = counting_client(redis_server)
    namespace = f"trips{next(names)}"
    store = RedisStore(client, namespace=namespace)
    store.register_pool(PoolTerms("ads", "Ads", numbers("1", 5), HOLD))
    store.register_pool(PoolTerms("brand", "Brand", numbers("2", 3), HOLD))
    client.script_flush()  # the first visit reloads the scripts (NOSCRIPT) and still succeeds
    assert store.visit("warm", START, Claim("ads")).outcome == "new"

    def trips(visitor: str, claim: Claim | None, hint: str | None = None) -> tuple[str, int]:
        before = CountingConnection.round_trips
        outcome = store.visit(visitor, START + 1, claim, hint=hint).outcome
        return outcome, CountingConnection.round_trips - before

    # A first visit without a hint: the claimed pool keeps no lease; then script + SET hint.
    assert trips("a", Claim("ads")) == ("new", 2)
    assert trips("a", Claim("ads")) == ("kept", 1)  # the claimed pool's script + GETEX hint
    assert trips("a", None) == ("kept", 2)  # GETEX hint; the hinted pool's script
    assert trips("a", None, hint="ads") == ("kept", 1)  # the cookie's hint: its script + GETEX
    assert trips("a", Claim("brand"), hint="ads") == ("kept", 1)  # first touch: kept
    assert trips("a", Claim("brand")) == ("kept", 2)  # brand keeps nothing; GETEX says ads
    assert trips("nobody", None) == ("no_match", 1)
    assert trips("minted", None, hint=NEW_VISITOR) == ("no_match", 0)
    assert trips("minted", Claim("brand"), hint=NEW_VISITOR) == ("new", 1)  # script + SET hint
    assert trips("minted", Claim("brand"), hint="brand") == ("kept", 1)
    # A hint naming a pool this store does not know, or garbage, is ignored.
    assert trips("minted", Claim("brand"), hint="nowhere") == ("kept", 1)
    client.delete(f"{namespace}:{{v:a}}")  # a lost hint: the claimed pool's script still knows
    assert trips("a", Claim("ads")) == ("kept", 1)
    assert trips("a", Claim("ads"), hint="brand") == ("kept", 2)  # a wrong hint costs one more
    client.set(f"{namespace}:{{v:b}}", "brand")  # a stale hint key costs one more, in its claim
    assert trips("b", Claim("ads")) == ("new", 3)
    # A stale cookie hint: nothing live there, and the hint key names no pool: take.
    assert trips("c", Claim("ads"), hint="brand") == ("new", 2)
    assert [lease.pool_key for lease in store.leases() if lease.visitor_id == "c"] == ["ads"]
    assert trips("c", None, hint="ads") == ("kept", 1)
    client.close()


def test_a_pools_keys_share_one_cluster_slot(redis_cluster: RedisCluster) -> None:
    client = redis_cluster.client()
    namespace = f"slots{next(names)}"
    store = RedisStore(client, namespace=namespace)
    pools = [PoolTerms(f"pool-{i}", f"P{i}", numbers(str(i), 2), HOLD) for i in range(6)]
    for terms in pools:
        store.register_pool(terms)
        for v in range(3):
            store.visit(f"{terms.key}-v{v}", START + v, Claim(terms.key))
    nodes_of: dict[str, set[int]] = defaultdict(set)
    slots_of: dict[str, set[int]] = defaultdict(set)
    for index, server in enumerate(redis_cluster.servers):
        with server.client() as node:
            for raw in node.keys(f"{namespace}:{{p:*"):
                key = raw.decode()
                pool = key.split("{p:", 1)[1].split("}", 1)[0]
                nodes_of[pool].add(index)
                slots_of[pool].add(int(node.execute_command("CLUSTER", "KEYSLOT", key)))
    assert set(nodes_of) == {t.key for t in pools}
    assert all(len(nodes) == 1 for nodes in nodes_of.values())
    assert all(len(slots) == 1 for slots in slots_of.values())
    assert len({next(iter(n)) for n in nodes_of.values()}) > 1  # the pools spread over the nodes
    client.close()


def test_a_cluster_store_from_the_url_of_one_node(redis_cluster: RedisCluster) -> None:
    node = redis_cluster.servers[-1]
    store = RedisStore(node.url, cluster=True, namespace=f"url{next(names)}")
    store.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    first = store.visit("a", START, Claim("p"))
    assert (first.outcome, store.visit("a", START + 1, None).outcome) == ("new", "kept")
    call = store.attribute(first.number or "", START + 2)
    assert call.lease is not None
    assert call.lease.lease_id == first.lease_id
    assert "RedisStore(cluster" in repr(store)
    store.close()


# ---- time ---------------------------------------------------------------------------------


def test_server_time_ignores_the_callers_clock(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace=f"time{next(names)}", server_time=True)
    store.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    with redis_server.client() as admin:
        low = float(admin.time()[0])
        d = store.visit("a", 0.0, Claim("p"))
        high = float(admin.time()[0]) + 1
    assert low <= d.at < high
    assert (d.started, d.expires) == (d.at, d.at + HOLD)
    again = store.visit("a", 5.0, None)
    assert again.outcome == "kept"
    assert again.at >= d.at
    stats = store.stats("p", 0.0)
    assert stats.at >= again.at
    assert stats.live == 1
    store.close()


def test_a_kept_visit_answers_the_callers_own_time_and_expiry_as_empty(
    redis_server: RedisServer,
) -> None:
    namespace = f"compact{next(names)}"
    store = RedisStore(redis_server.url, namespace=namespace)
    store.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    first = store.visit("a", START, Claim("p"))
    kept = store.visit("a", START + 1, Claim("p"))
    assert (kept.outcome, kept.at, kept.started, kept.expires) == (
        "kept",
        START + 1,
        first.started,
        START + 1 + HOLD,
    )
    # The script's own reply: the time and expiry the command sent are left out.
    command = store._visit_command("p", "a", START + 2, None, "held", None, store._holds["p"])
    with redis_server.client() as admin:
        reply = admin.execute_command(*command)
    assert (reply[0], reply[1], reply[9]) == (b"kept", b"", b"")
    # A caller behind the pool's time gets the pool's time and the expiry it formatted.
    behind = RedisStore(redis_server.url, namespace=namespace)
    behind.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    late = behind.visit("a", START + 1.5, Claim("p"))
    assert (late.outcome, late.at, late.expires) == ("kept", START + 2, START + 2 + HOLD)
    behind.close()
    store.close()


@pytest.mark.parametrize("server_time", [False, True])
def test_visit_commands_packed_with_their_heads_once_are_the_whole_commands(
    redis_server: RedisServer, server_time: bool
) -> None:
    hiredis = pytest.importorskip("hiredis")
    store = RedisStore(redis_server.url, namespace=f"packed{next(names)}", server_time=server_time)
    store.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    store.register_pool(PoolTerms("q", "Q", numbers("2", 2), 2 * HOLD))
    hold = store._holds["p"]
    claims = [None, Claim("p"), Claim("q", specificity=2, referrer_domain="Google", trigger="a")]
    commands = [
        store._visit_command("p", visitor, START + k, claim, mode, client, hold)
        for k, (visitor, claim, mode, client) in enumerate(
            itertools.product(("a", "b\u00e9"), claims, ("held", "visit", "keep"), (None, "c"))
        )
    ]
    # Each kind of visit has its own head, packed once, and the rest packed per visit:
    # the bytes are hiredis's packing of each whole command.
    expected = b"".join(hiredis.pack_command(tuple(command)) for command in commands)
    assert _pack_round(commands) == expected
    assert len({id(command[0]) for command in commands}) == 3 * 3
    # And the server reads them so: a held visit of a visitor with a lease keeps it.
    store.visit("a", START, Claim("p"))
    kept = store._visit_command("p", "a", START + 1, Claim("p"), "held", None, hold)
    with redis_server.client() as admin:
        assert admin.execute_command(*kept)[0] == b"kept"
    store.close()


def test_a_pools_time_never_goes_back_across_workers(redis_server: RedisServer) -> None:
    namespace = f"skew{next(names)}"
    store = RedisStore(redis_server.url, namespace=namespace)
    other = RedisStore(redis_server.url, namespace=namespace)
    store.register_pool(PoolTerms("p", "P", numbers("1", 3), HOLD))
    assert store.visit("a", START + 100, Claim("p")).at == START + 100
    late = other.visit("b", START, Claim("p"))  # a worker whose clock lags
    assert (late.at, late.started) == (START + 100, START + 100)
    store.close()
    other.close()


# ---- the lease log ------------------------------------------------------------------------


def test_the_log_is_bounded_and_live_leases_stay_attributable(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace=f"log{next(names)}", log_capacity=2)
    terms = PoolTerms("p", "P", numbers("1", 3), HOLD)
    store.register_pool(terms)
    first = store.visit("a", 0.0, Claim("p"))
    for i, t in enumerate((HOLD, 2 * HOLD, 3 * HOLD)):
        store.visit(f"v{i}", t, Claim("p"))
    assert [lease.visitor_id for lease in store.leases()] == ["v1", "v2"]
    assert store.attribute(terms.numbers[0], 10.0).kind == "pool"  # a's lease left the log
    assert first.number == terms.numbers[0]
    tiny_namespace = f"log{next(names)}"
    tiny = RedisStore(redis_server.url, namespace=tiny_namespace, log_capacity=1)
    tiny.register_pool(terms)
    held = tiny.visit("a", 0.0, Claim("p"))
    tiny.visit("b", 1.0, Claim("p"))
    call = tiny.attribute(terms.numbers[0], 2.0)
    assert call.lease is not None
    assert call.lease.lease_id == held.lease_id  # live, out of the log, still found
    tiny.release("a", 3.0)  # once it ends, its record goes too
    assert tiny.attribute(terms.numbers[0], 2.0).kind == "pool"
    with redis_server.client() as admin:
        records = admin.keys(f"{tiny_namespace}:{{p:p}}:l:*")
    assert len(records) == 1
    store.close()
    tiny.close()


def test_a_smaller_log_capacity_trims_the_log_at_the_next_lease(redis_server: RedisServer) -> None:
    # Several leases over the capacity leave the log at once, with their number's log
    # entries and (ended) records.
    namespace = f"log{next(names)}"
    terms = PoolTerms("p", "P", numbers("1", 6), HOLD)
    wide = RedisStore(redis_server.url, namespace=namespace, log_capacity=5)
    wide.register_pool(terms)
    for i in range(5):
        wide.visit(f"v{i}", i * HOLD, Claim("p"))
    assert len(wide.leases()) == 5
    narrow = RedisStore(redis_server.url, namespace=namespace, log_capacity=2)
    narrow.register_pool(terms)
    narrow.visit("w", 4.5 * HOLD, Claim("p"))
    assert [lease.visitor_id for lease in narrow.leases()] == ["v4", "w"]
    with redis_server.client() as admin:
        records = admin.keys(f"{namespace}:{{p:p}}:l:*")
        logged = sum(admin.zcard(key) for key in admin.keys(f"{namespace}:{{p:p}}:n:*"))
    assert (len(records), logged) == (2, 2)
    wide.close()
    narrow.close()


def test_old_leases_leave_the_log_after_the_retention(redis_server: RedisServer) -> None:
    day = 86_400.0
    store = RedisStore(redis_server.url, namespace=f"ret{next(names)}", log_retention=day)
    terms = PoolTerms("p", "P", numbers("1", 20), HOLD)
    store.register_pool(terms)
    for i in range(2):
        store.visit(f"old{i}", i * 10.0, Claim("p"))
    # Leases 3 to 15: the old ones stay until the periodic trim (every 16th lease).
    for i in range(13):
        store.visit(f"new{i}", 2 * day, Claim("p"))
    assert len(store.leases()) == 15
    last = store.visit("new13", 2 * day, Claim("p"))  # lease 16
    assert [lease.visitor_id for lease in store.leases()] == [f"new{i}" for i in range(14)]
    assert store.attribute(terms.numbers[0], 5.0).kind == "pool"
    call = store.attribute(last.number or "", 2 * day + 1)
    assert call.lease is not None
    assert call.lease.visitor_id == "new13"
    store.close()


def test_purge_and_pool_keys(store: RedisStore) -> None:
    store.register_pool(PoolTerms("p", "P", numbers("1", 3), HOLD))
    store.register_pool(PoolTerms("q", "Q", numbers("2", 3), 2 * HOLD))
    assert store.pool_keys == ("p", "q")
    for i in range(3):
        store.visit(f"a{i}", float(i), Claim("p"))
        store.visit(f"b{i}", float(i), Claim("q"))
    assert store.purge(HOLD + 5) == 3
    assert store.purge(2 * HOLD + 5) == 3
    assert store.stats("q", 2 * HOLD + 5).expired == 3


def test_connections_the_server_closed_are_replaced_without_a_failure(
    redis_server: RedisServer,
) -> None:
    # The store keeps the connections of the client it built between calls: one closed
    # by the server meanwhile (a timeout, CLIENT KILL, a restart) is reconnected first.
    store = RedisStore(redis_server.url, namespace="kept-conns", timeout=2.0, new_namespace=True)
    store.register_pool(PoolTerms("p", "P", numbers("4", 2), HOLD))
    first = store.visit("a", 1.0, Claim("p"))
    with redis_server.client() as admin:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        again = store.visit("a", 2.0, Claim("p"))
        assert (again.outcome, again.lease_id) == ("kept", first.lease_id)
        assert store.breaker.failures == 0
        # one connection served every call, and close gives it back to the client's pool
        for at in range(3, 8):
            assert store.visit("a", float(at), Claim("p")).outcome == "kept"
        names = [c for c in admin.client_list() if c["cmd"] != "client|list"]
        assert len(names) == 1
    store.close()


def test_threads_sharing_a_store_never_share_a_connection(store: RedisStore) -> None:
    # The kept connections are taken and given back whole, one thread at a time each.
    store.register_pool(PoolTerms("p", "P", numbers("6", 400), HOLD))
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(50):
                visitor = f"t{thread}-{i}"
                first = store.visit(visitor, 1.0, Claim("p"), hint=NEW_VISITOR)
                again = store.visit(visitor, 2.0, Claim("p"))
                assert (first.outcome, again.lease_id) == ("new", first.lease_id)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    leases = store.leases(pool_key="p")
    assert len(leases) == len({lease.number for lease in leases}) == 400


def test_thousands_of_leases_due_at_once_all_end(store: RedisStore) -> None:
    # A pool left idle for a hold: one script ends every due lease, beyond what one Lua
    # call can take as arguments at once.
    many = tuple(f"+44117{i:06d}" for i in range(9000))
    store.register_pool(PoolTerms("p", "P", many, HOLD))
    for i in range(len(many)):
        assert store.visit(f"v{i}", 1.0, Claim("p"), hint=NEW_VISITOR).outcome == "new"
    assert store.purge(HOLD + 5) == len(many)
    stats = store.stats("p", HOLD + 5)
    assert (stats.live, stats.expired, stats.free) == (0, len(many), len(many))


def test_a_claim_on_an_unknown_pool_leaves_no_stale_hint_behind(store: RedisStore) -> None:
    store.register_pool(PoolTerms("p", "P", numbers("1", 2), HOLD))
    with pytest.raises(StoreError, match="nowhere"):
        store.visit("a", 0.0, Claim("nowhere"))
    assert store.visit("a", 1.0, Claim("p")).outcome == "new"
    assert store.visit("a", 2.0, None).outcome == "kept"
    with pytest.raises(StoreError, match="nowhere"):
        store.visit("b", 3.0, Claim("nowhere"))
    assert store.visit("b", 4.0, None).outcome == "no_match"
    assert store.release("b", 5.0) is None


def test_an_unknown_pool_is_a_store_error(store: RedisStore) -> None:
    with pytest.raises(StoreError, match="nowhere"):
        store.stats("nowhere", 0.0)
    assert store.leases(pool_key="nowhere") == []
    assert store.leases() == []
    assert store.purge(0.0) == 0
    assert store.release("nobody", 0.0) is None
    assert store.breaker.state == "closed"  # an answer from Redis is not an outage


# ---- the circuit breaker ------------------------------------------------------------------


def test_breaker_fails_fast_then_lets_one_probe_through() -> None:
    ticks = SimulatedClock()
    breaker = CircuitBreaker(2.0, ticks)
    assert breaker.allow()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open"
    assert not breaker.allow()
    ticks.advance(1.9)
    assert not breaker.allow()
    ticks.advance(0.1)
    assert breaker.allow()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # only one
    breaker.failed()
    assert not breaker.allow()
    ticks.advance(2.0)
    assert breaker.allow()
    ticks.advance(2.0)
    assert breaker.allow()  # a probe that never reported is replaced after an interval
    breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert (breaker.failures, breaker.rejected) == (2, 4)
    with pytest.raises(ConfigError, match="breaker_open_seconds"):
        CircuitBreaker(-1.0)


# ---- outages through the engine -------------------------------------------------------------


def test_a_killed_server_is_survived_and_leases_outlive_the_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = SimulatedClock()  # the breaker's monotonic clock, moved by hand
    with RedisServer(appendonly=True) as server:
        store = RedisStore(server.url, namespace="fault", breaker_clock=ticks)
        pool = number_pool(1, 10)
        clock = SimulatedClock(START)
        engine = Engine([pool], store, clock=clock)
        before = {
            f"v{i}": engine.visit(f"v{i}", url="https://shop.example/", user_agent=HUMAN)
            for i in range(5)
        }
        assert {d.outcome for d in before.values()} == {"new"}
        outcomes: list[str] = []
        with caplog.at_level(logging.WARNING, logger="dni_engine"):
            for i in range(200):
                if i == 100:
                    server.kill()
                visitor = f"v{i % 8}"  # five returning visitors, three new ones
                clock.advance(1.0)
                d = engine.visit(visitor, url="https://shop.example/", user_agent=HUMAN)
                outcomes.append(d.outcome)
                if d.outcome == "store_unavailable":
                    assert (d.number, d.pool_key) == (None, str(pool.id))
        # Every visit got a decision; from the first one after the kill, no number.
        assert Counter(outcomes[:100]) == {"kept": 97, "new": 3}
        assert set(outcomes[100:]) == {"store_unavailable"}
        # Only the first failing visit waited on Redis; the breaker refused the rest at once.
        assert (store.breaker.failures, store.breaker.rejected) == (1, 99)
        assert len([r for r in caplog.records if r.name == "dni_engine.engine"]) == 1

        server.start()  # same port, same append-only file
        assert engine.visit("v0", url="https://shop.example/", user_agent=HUMAN).outcome == (
            "store_unavailable"  # the breaker is still open: no probe before its interval
        )
        ticks.advance(store.breaker.open_seconds)
        with caplog.at_level(logging.WARNING, logger="dni_engine"):
            after = {
                visitor: engine.visit(visitor, url="https://shop.example/", user_agent=HUMAN)
                for visitor in before
            }
        assert "answers again" in caplog.text
        assert store.breaker.state == "closed"
        for visitor, d in after.items():
            assert d.outcome == "kept"
            assert (d.number, d.lease_id) == (before[visitor].number, before[visitor].lease_id)
        assert engine.visit("v9", url="https://shop.example/", user_agent=HUMAN).outcome == "new"
        store.close()


def test_a_stalled_server_times_out_into_store_unavailable(redis_server: RedisServer) -> None:
    ticks = SimulatedClock()
    store = RedisStore(
        redis_server.url, namespace=f"stall{next(names)}", timeout=0.05, breaker_clock=ticks
    )
    pool = number_pool(2, 5)
    engine = Engine([pool], store, clock=SimulatedClock(START))
    assert engine.visit("a", url="https://shop.example/", user_agent=HUMAN).outcome == "new"
    with redis_server.client() as admin:
        admin.execute_command("CLIENT", "PAUSE", 2000, "ALL")  # Redis answers nobody until UNPAUSE
        try:
            outcomes = [
                engine.visit(f"v{i}", url="https://shop.example/", user_agent=HUMAN).outcome
                for i in range(20)
            ]
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
        assert set(outcomes) == {"store_unavailable"}
        assert (store.breaker.failures, store.breaker.rejected) == (1, 19)
        ticks.advance(store.breaker.open_seconds)
        assert engine.visit("a", url="https://shop.example/", user_agent=HUMAN).outcome == "kept"
    store.close()


def test_an_unreachable_server_fails_every_operation_as_a_store_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer() as server:
        port = server.port
    store = RedisStore(f"redis://127.0.0.1:{port}/0", namespace="gone", breaker_open_seconds=0)
    with pytest.raises(StoreError, match="Redis did not answer"):
        store.visit("a", 0.0, Claim("p"))
    # Registering waits for Redis (a web app builds its engine before Redis may be up).
    store.register_pool(PoolTerms("p", "P", numbers("1", 1), HOLD))
    assert "registered when it answers" in caplog.text
    assert not store.ready()
    for call in (
        lambda: store.attribute("+441174010000", 0.0),
        lambda: store.stats("p", 0.0),
        lambda: store.leases(),
        lambda: store.release("a", 0.0),
    ):
        with pytest.raises(StoreError, match="Redis did not answer"):
            call()
    assert store.breaker.failures == 7
    store.close()


# ---- many processes on one pool ---------------------------------------------------------------

WORKERS, VISITS_EACH, POOL_NUMBERS, VISITORS = 8, 5000, 20, 400
COOLDOWN_MINUTES = 0.25


def _worker(url: str, index: int, started: Any) -> list[Decision]:
    """One web worker: its own store and engine, visits on its own (slightly skewed) clock.

    Every worker registers the pool before any visits (``started`` is a barrier
    shared by all of them): a worker that started after another had run its
    clock a minute on would register a pool time that far ahead of its own
    clock, which the store treats as poisoned and brings back.
    """
    store = RedisStore(url, namespace="crowd", timeout=5.0, connect_timeout=5.0)
    engine = Engine(
        [number_pool(7, POOL_NUMBERS, match_period=1)],
        store,
        policy="recycle",
        cooldown=COOLDOWN_MINUTES,
        clock=SimulatedClock(START + index),
    )
    started.wait(120)
    rng = random.Random(index)
    decisions = []
    clock = engine.clock
    assert isinstance(clock, SimulatedClock)
    for _ in range(VISITS_EACH):
        clock.advance(0.5)
        visitor = f"visitor-{rng.randrange(VISITORS)}"
        decisions.append(engine.visit(visitor, url="https://shop.example/", user_agent=HUMAN))
    store.close()
    return decisions


@pytest.mark.slow
def test_eight_processes_share_one_pool_without_double_leasing(redis_server: RedisServer) -> None:
    # No forkserver preload: on Python 3.11 the server imports preloaded modules
    # before it takes this process's sys.path, so a checkout in the working
    # directory would shadow the package under test in every later forkserver child.
    context = multiprocessing.get_context("forkserver")
    with context.Manager() as manager, context.Pool(WORKERS) as workers:
        started = manager.Barrier(WORKERS)
        jobs = [(redis_server.url, i, started) for i in range(WORKERS)]
        results = workers.starmap(_worker, jobs, chunksize=1)
    decisions = [d for mine in results for d in mine]
    assert len(decisions) == WORKERS * VISITS_EACH  # every visit got a decision
    outcomes = Counter(d.outcome for d in decisions)
    assert set(outcomes) <= {"new", "kept", "recycled"}, outcomes
    assert min(outcomes["new"], outcomes["kept"], outcomes["recycled"]) > 0

    store = RedisStore(redis_server.url, namespace="crowd", timeout=5.0)
    leases = {lease.lease_id: lease for lease in store.leases()}
    key = "7"  # the pool's id
    last = max(d.at for d in decisions)
    stats = store.stats(key, last)
    store.close()
    # The shared counters add up to what the workers saw.
    assert (stats.new, stats.kept, stats.recycled) == (
        outcomes["new"],
        outcomes["kept"],
        outcomes["recycled"],
    )
    assert stats.displacements == sum(1 for d in decisions if d.displaced is not None) > 0
    assert len(leases) == outcomes["new"] + outcomes["recycled"]

    opened: dict[str, Decision] = {}
    latest: dict[str, float] = {}
    for d in decisions:
        assert d.lease_id is not None
        lease = leases[d.lease_id]
        assert (d.visitor_id, d.number) == (lease.visitor_id, lease.number)
        latest[d.lease_id] = max(latest.get(d.lease_id, d.at), d.at)
        if d.outcome != "kept":
            assert d.lease_id not in opened  # one decision opened each lease
            opened[d.lease_id] = d
    assert set(opened) == set(leases)
    assert all(leases[x].last_activity == at for x, at in latest.items())
    # On each number the leases follow each other: never two live holders, and a number
    # reused inside its hold or cooldown is reused by recycling, which records it.
    cooldown = minutes(COOLDOWN_MINUTES)
    chains: dict[str, list[Lease]] = defaultdict(list)
    for lease in leases.values():
        chains[lease.number].append(lease)
    for chain in chains.values():
        chain.sort(key=lambda lease: lease.started)
        for before, after in itertools.pairwise(chain):
            assert before.end <= after.started, (before, after)
            if before.end_reason == "displaced":
                assert before.displaced_by == after.lease_id
                assert opened[after.lease_id].displaced == before.lease_id
            elif after.started < before.end + cooldown:
                assert opened[after.lease_id].outcome == "recycled", (before, after)
    live = [lease for lease in leases.values() if lease.ended is None]
    assert len({lease.number for lease in live}) == len(live)
    assert len({lease.visitor_id for lease in live}) == len(live)
