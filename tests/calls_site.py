"""Shared set-up of the call log, report and export tests: a site with two pools, and stores.

``make_store`` builds empty stores of each kind (memory, a real redis-server, a
real Redis Cluster) with the call log's options; ``site`` is an engine with an
``ads`` pool (Google, ``gclid``) and a catch-all ``all`` pool on a simulated clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dni_engine import Engine, SimulatedClock
from dni_engine.schema import AnyPool
from dni_engine.stores import MemoryStore, Store
from dni_engine.stores.redis import RedisStore
from dni_engine.testing import build_pool, source
from dni_engine.testing.redis_server import RedisCluster, RedisServer
from tests.conftest import awaited_stores

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
GOOGLE = "https://www.google.co.uk/"
AD_NUMBERS = ("+441174090011", "+441174090012")
ALL_NUMBERS = ("+441174090021", "+441174090022", "+441174090023")
OVERFLOW = "+441174090099"

StoreMaker = Callable[..., Store]
_names = itertools.count()


def pools() -> list[AnyPool]:
    """``ads`` (key 1: Google referrer with a gclid) and ``all`` (key 2: any visit)."""
    return [
        build_pool(
            id=1, name="ads", numbers=list(AD_NUMBERS), sources=[source("Google", ["gclid=*"])]
        ),
        build_pool(id=2, name="all", numbers=list(ALL_NUMBERS), sources=[source("Any")]),
    ]


def stores_of_kind(kind: str, request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    """Yield a maker of empty stores of ``kind`` (keyword options go to the store)."""
    if kind == "memory":
        yield lambda **options: MemoryStore(**options)
        return
    if kind.endswith("-async"):
        maker = awaited_stores(kind, request, "calls")
        yield next(maker)
        maker.close()
        return
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client: Any = server.client()
        nodes = [server]
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = cluster.client()
        nodes = cluster.servers
    made: list[RedisStore] = []

    def make(**options: Any) -> Store:
        store = RedisStore(
            client, namespace=f"calls{next(_names)}", new_namespace=True, timeout=2.0, **options
        )
        made.append(store)
        return store

    yield make
    client.close()
    for node in nodes:
        with node.client() as direct:
            direct.flushall()


def site(store: Store | None = None, clock: SimulatedClock | None = None) -> Engine:
    """The two-pool site's engine (overflow policy) on ``clock`` (``START`` by default)."""
    return Engine(
        pools(),
        store,
        clock=clock or SimulatedClock(START),
        policy="overflow",
        overflow_number=OVERFLOW,
    )


def stored_text(store: Store) -> str:
    """Every key and value a Redis store holds, as text (the whole keyspace, every node)."""
    client: Any = store.client  # type: ignore[attr-defined]
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        parts.append(repr(key))
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        else:
            parts.append(f"{kind!r}")
    return "\n".join(parts)
