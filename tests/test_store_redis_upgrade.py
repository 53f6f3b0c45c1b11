"""A rolling upgrade on Redis: the previous release's pool script and the current one on one state.

``tests/data/pool_previous.lua`` is the pool script as the previous release shipped it.
The current script writes a pool's ``cfg`` with the fields a visit reads first, and a
filler entry in the visitors hash (so that hash is a hash table, read in one probe):
state the previous script wrote must read the same and be re-ordered by a registration,
and the previous script, still running beside the new one, must keep working on state
the new one wrote.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dni_engine.leases import Claim, PoolTerms, minutes
from dni_engine.stores.redis import REGISTRY_SCRIPT, RedisStore, _lease_id
from dni_engine.testing.redis_server import RedisServer

PREVIOUS = (Path(__file__).parent / "data" / "pool_previous.lua").read_text()
NUMBERS = tuple(f"+44117409{i:04d}" for i in range(6))
HOLD = minutes(30)
START = 1_700_000_000.0
CLAIM = Claim("bristol", specificity=1, source_index=0, referrer_domain="Google")
# What a visit reads and writes of cfg, in the order the current script keeps it.
VISIT_FIELDS = ["name", "hold", "now", "kept", "cooldown", "epoch", "seq", "new", "expired"]
names = itertools.count()


def terms() -> PoolTerms:
    return PoolTerms("bristol", "Bristol", NUMBERS, HOLD)


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisStore]:
    made = RedisStore(redis_server.url, namespace=f"upgrade{next(names)}")
    yield made
    made.close()


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


def previous(client: redis.Redis, command: tuple[Any, ...]) -> Any:
    """Run a pool command the store built (``EVALSHA`` of the current script) on the old one.

    The previous script took a visit's arguments as: time, visitor, mode, claim, hold.
    """
    assert command[0] == "EVALSHA"
    args = list(command[2:])
    op = 1 + args[0]  # after the number of keys and the keys
    if args[op] == "visit":
        mode, claim, hold, now, visitor = args[op + 2 : op + 7]
        args[op + 2 : op + 7] = [now, visitor, mode, claim, hold]
    return client.execute_command("EVAL", PREVIOUS, *args)


def current(client: redis.Redis, command: tuple[Any, ...]) -> Any:
    return client.execute_command(*command)


def register_previous(store: RedisStore, client: redis.Redis, now: float) -> None:
    """Register the pool as the previous release did: the registry, then the pool script."""
    run = store._register_remote(terms(), now, trusted=True)
    commands = next(run)
    try:
        while True:
            replies = [
                previous(client, c)
                if c[1] == store._head("bristol")[1]
                else client.execute_command("EVAL", REGISTRY_SCRIPT, *c[2:])
                for c in commands
            ]
            commands = run.send(replies)
    except StopIteration:
        pass


def visit(store: RedisStore, visitor: str, now: float) -> tuple[Any, ...]:
    return store._visit_command("bristol", visitor, now, CLAIM, "visit")


def stats(store: RedisStore, now: float) -> tuple[Any, ...]:
    return store._script("bristol", "stats", now)


def cfg_key(store: RedisStore) -> str:
    return f"{store._prefix('bristol')}:cfg"


def visitors_key(store: RedisStore) -> str:
    return f"{store._prefix('bristol')}:visitors"


def test_state_the_previous_script_wrote_reads_the_same_and_is_reordered(
    store: RedisStore, admin: redis.Redis
) -> None:
    register_previous(store, admin, START)
    taken = {v: previous(admin, visit(store, v, START + i)) for i, v in enumerate("abc")}
    assert [r[0] for r in taken.values()] == [b"new"] * 3
    assert previous(admin, visit(store, "a", START + 10))[0] == b"kept"
    reply_before = previous(admin, stats(store, START + 20))
    before = admin.hgetall(cfg_key(store))
    assert list(before)[:2] == [b"epoch", b"trusted"]  # the previous order
    assert admin.object("encoding", visitors_key(store)) == b"listpack"

    store.register_pool(terms(), START + 20)  # the new release starts: it registers again

    after = admin.hgetall(cfg_key(store))
    assert [f.decode() for f in after][: len(VISIT_FIELDS)] == VISIT_FIELDS
    missing = {f.encode() for f in VISIT_FIELDS} - set(before)
    assert missing == {b"expired"}  # the counter nothing had counted yet: written as 0
    assert after == {**before, b"expired": b"0"}
    assert admin.object("encoding", visitors_key(store)) == b"hashtable"
    # Both scripts read the re-ordered state as they read it before.
    assert current(admin, stats(store, START + 20)) == reply_before
    assert previous(admin, stats(store, START + 20)) == reply_before
    # The leases the previous script started are kept by the new one, on their numbers.
    for i, (visitor, reply) in enumerate(taken.items()):
        decision = store.visit(visitor, START + 30 + i, CLAIM)
        assert decision.outcome == "kept"
        assert decision.number == reply[2].decode()
        assert decision.lease_id == _lease_id("bristol", reply[7])
    assert store.visit("d", START + 40, CLAIM).outcome == "new"
    assert store.stats("bristol", START + 40).kept == 4


def test_the_previous_script_works_on_state_the_new_one_wrote(
    store: RedisStore, admin: redis.Redis
) -> None:
    store.register_pool(terms(), START)
    new = {v: store.visit(v, START + i, CLAIM) for i, v in enumerate("abc")}
    assert [d.outcome for d in new.values()] == ["new"] * 3
    keys = [f.decode() for f in admin.hkeys(cfg_key(store))]
    assert keys[: len(VISIT_FIELDS)] == VISIT_FIELDS  # 'now' too: written by the first clock
    assert admin.object("encoding", visitors_key(store)) == b"hashtable"
    assert admin.hlen(visitors_key(store)) == 4  # three visitors and the filler

    # The previous release, still running beside the new one: it keeps the new leases ...
    for i, (visitor, decision) in enumerate(new.items()):
        reply = previous(admin, visit(store, visitor, START + 10 + i))
        assert reply[0] == b"kept"
        assert reply[2].decode() == decision.number
    # ... takes a number for a new visitor, agrees on the counts, and ends leases.
    assert previous(admin, visit(store, "d", START + 20))[0] == b"new"
    assert previous(admin, stats(store, START + 21)) == current(admin, stats(store, START + 21))
    released = previous(admin, store._script("bristol", "release", START + 22, "b"))
    assert released[0] == b"released"
    assert store.release("b", START + 23) is None
    forgot = previous(admin, store._script("bristol", "forget", START + 24, "c"))
    assert forgot[0] == b"forgot"
    assert forgot[2] == 1  # one live lease released
    # Every lease the previous script left is read by the new one; the hold ends them all.
    assert store.visit("a", START + 30, CLAIM).outcome == "kept"
    assert store.visit("d", START + 31, CLAIM).outcome == "kept"
    later = START + 31 + HOLD + 1
    assert previous(admin, store._script("bristol", "purge", later))[0] == b"purged"
    assert store.stats("bristol", later).live == 0
    assert [store.visit(v, later + 1, CLAIM).outcome for v in "abcd"] == ["new"] * 4
    assert store.stats("bristol", later + 1).kept == 5


def test_the_filler_is_never_a_lease(store: RedisStore, admin: redis.Redis) -> None:
    # The engine never passes an empty visitor id; a store called directly still treats
    # the filler's field as no lease, and such a visitor's own lease as theirs.
    store.register_pool(terms(), START)
    assert admin.hexists(visitors_key(store), "")
    assert store.release("", START) is None
    assert store.forget("", START).leases_released == 0
    assert admin.hexists(visitors_key(store), "")  # forgetting no one left the filler
    first = store.visit("", START + 1, CLAIM)
    assert first.outcome == "new"
    assert store.visit("", START + 2, CLAIM).outcome == "kept"
    assert store.release("", START + 3) is not None
    assert store.visit("x", START + 4, CLAIM).outcome == "new"
    assert store.stats("bristol", START + 4).live == 1
