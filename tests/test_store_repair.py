"""What a store repairs or refuses on every store kind: poisoned times, reused lease ids,
shared totals; and the embedded store used across a fork.

The faults of a real Redis (restarts, flushes, eviction) are in ``test_store_faults.py``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from dni_engine.engine import Engine
from dni_engine.leases import MAX_CLOCK_SKEW, Claim, PoolTerms, SimulatedClock, minutes
from dni_engine.stores import MemoryStore, Store
from dni_engine.stores.redis import RedisStore
from dni_engine.testing import build_pool
from dni_engine.testing.redis_server import RedisServer

N1, N2 = "+441174090162", "+441174090163"
HOLD = minutes(30)
POOL = Claim("bristol")
HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
StoreFactory = Callable[[], Store]
names = itertools.count()


def terms() -> PoolTerms:
    return PoolTerms("bristol", "Bristol", (N1, N2), HOLD)


@pytest.mark.parametrize("poison", [1_700_000_000_000.0, 1e308])
def test_a_poisoned_pool_time_is_repaired_on_registration(
    store_factory: StoreFactory, poison: float
) -> None:
    store = store_factory()
    store.register_pool(terms(), 1000.0)
    # A time in milliseconds (or absurd) reaches the store directly, past any engine check.
    poisoned = store.visit("a", poison, POOL)
    assert poisoned.outcome == "new"
    # Every later visit is raised to that time: the lease never runs out in real time.
    assert store.visit("b", 2000.0, POOL).at == poison
    # A new registration with the real clock's time brings the pool back.
    store.register_pool(terms(), 2000.0)
    assert store.visit("c", 2001.0, POOL).at == 2001.0
    # The leases stamped in the future run out one hold after the repair, in real time.
    later = 2000.0 + HOLD + 1
    fresh = [store.visit(v, later, POOL) for v in ("d", "e")]
    assert [d.outcome for d in fresh] == ["new", "new"]
    assert store.stats("bristol", later).live == 2


def test_a_time_within_the_skew_is_not_repaired(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.register_pool(terms(), 1000.0)
    ahead = 1000.0 + MAX_CLOCK_SKEW / 2
    store.visit("a", ahead, POOL)
    store.register_pool(terms(), 1000.0)
    assert store.visit("b", 1000.0, POOL).at == ahead  # time never goes back for small skews


def test_lease_ids_differ_between_stores(store_factory: StoreFactory) -> None:
    ids = set()
    for _ in range(3):
        store = store_factory()
        store.register_pool(terms(), 0.0)
        decision = store.visit("a", 0.0, POOL)
        assert decision.lease_id is not None
        ids.add(decision.lease_id)
    assert len(ids) == 3


def test_stats_agree_across_workers_sharing_a_redis_pool(redis_server: RedisServer) -> None:
    namespace = f"shared{next(names)}"
    clock = SimulatedClock(1_700_000_000.0)
    pool = build_pool(id=77, name="shared", numbers=[f"+44117409{i:04d}" for i in range(3)])
    engines = [
        Engine([pool], RedisStore(redis_server.url, namespace=namespace), clock=clock)
        for _ in range(2)
    ]
    url = "https://shop.example/"
    for i in range(5):  # 3 new, then 2 overflows, spread over both workers
        engines[i % 2].visit(f"v{i}", url=url, user_agent=HUMAN)
    engines[0].visit("v0", url=url, user_agent=HUMAN)  # kept
    engines[1].visit("crawler", url=url, user_agent="Googlebot/2.1")
    first, second = (engine.stats() for engine in engines)
    shared = ("new", "kept", "overflow", "recycled")
    assert {k: first.outcomes[k] for k in shared} == {
        "new": 3,
        "kept": 1,
        "overflow": 2,
        "recycled": 0,
    }
    assert {k: second.outcomes[k] for k in shared} == {k: first.outcomes[k] for k in shared}
    # What never reaches the store is this process's own count.
    assert (first.outcomes["bot"], second.outcomes["bot"]) == (0, 1)
    assert sum(first.process_outcomes.values()) + sum(second.process_outcomes.values()) == 7


def test_a_memory_store_used_after_a_fork_warns_once(tmp_path: object) -> None:
    script = textwrap.dedent(
        """
        import logging, os, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
        from dni_engine.leases import Claim, PoolTerms
        from dni_engine.stores import MemoryStore
        store = MemoryStore()
        store.register_pool(PoolTerms("p", "P", ("+441174090162",), 60.0))
        store.visit("parent", 0.0, Claim("p"))
        pid = os.fork()
        if pid == 0:
            for i in range(3):
                store.visit(f"child{i}", 1.0, Claim("p"))
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        store.visit("parent", 2.0, Claim("p"))
        print("parent done")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if "fork" in line]
    assert len(warnings) == 1
    assert "RedisStore" in warnings[0]
    assert "parent done" in done.stdout


def test_a_memory_store_in_one_process_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    store.register_pool(terms(), 0.0)
    store.visit("a", 0.0, POOL)
    assert "fork" not in caplog.text
