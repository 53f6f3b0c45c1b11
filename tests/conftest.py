"""Shared fixtures: the vendor's example pools."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncCluster

import dni_engine
from dni_engine.stores import MemoryStore, Store
from dni_engine.stores.redis import AsyncRedisStore, RedisStore
from dni_engine.testing.redis_server import RedisCluster, RedisServer

# Test files whose subject the compiled build never compiles: the page rewriter, response
# bodies, the browser script, the multi-server runs and the packaging. The compiled
# pass exists to test the compiled modules (and everything that calls them in process),
# so these run in the pure pass only.
PURE_ONLY = frozenset(
    {
        "test_rewrite.py",
        "test_rewrite_countries.py",
        "test_rewrite_html5.py",
        "test_rewrite_inline.py",
        "test_rewrite_links.py",
        "test_rewrite_markup.py",
        "test_rewrite_precision.py",
        "test_rewrite_recall.py",
        "test_rewrite_select.py",
        "test_rewrite_style.py",
        "test_web_browser.py",
        "test_web_script.py",
        "test_web_servers.py",
        "test_install.py",
    }
)


def _compiled_pass() -> bool:
    return os.environ.get("DNI_ENGINE_EXPECT") == "compiled"


def pytest_report_header() -> list[str]:
    """Say which build of the package the tests run against."""
    build = "compiled" if dni_engine.COMPILED else "pure Python"
    lines = [f"dni-engine build: {build} ({Path(dni_engine.__file__).parent})"]
    if _compiled_pass():
        lines.append(
            f"compiled pass: {len(PURE_ONLY)} test files of parts never compiled "
            "(the rewriter but its stream, the browser script, servers, packaging) "
            "run in the pure pass only"
        )
    return lines


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the compiled pass, leave out the test files of parts never compiled."""
    if _compiled_pass() and collection_path.name in PURE_ONLY:
        return True
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run a pass meant for one build against the other.

    ``DNI_ENGINE_EXPECT=compiled`` (or ``pure``) is set by the Makefile's test
    passes, so that a path mix-up cannot make the compiled pass test pure code.
    """
    expected = os.environ.get("DNI_ENGINE_EXPECT")
    if expected and expected != ("compiled" if dni_engine.COMPILED else "pure"):
        pytest.exit(
            f"expected the {expected} build of dni_engine, imported {dni_engine.__file__}",
            returncode=4,
        )


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SEED_KINDS = ("geographic-city", "geographic-area-code", "tollfree", "national")


def load_example(name: str) -> Any:
    """The parsed JSON of ``examples/pools/<name>.json``."""
    return json.loads((EXAMPLES / "pools" / f"{name}.json").read_text())


@pytest.fixture(params=SEED_KINDS)
def seed_kind(request: pytest.FixtureRequest) -> str:
    """Each of the vendor document's four pool kinds."""
    return str(request.param)


STORE_KINDS = ("memory", "redis", "redis-cluster", "redis-async", "redis-cluster-async")


class AwaitedStore:
    """A :class:`Store` running an :class:`AsyncRedisStore`'s coroutines on an event loop.

    The loop runs on a thread of its own, so the store may be called from any
    thread (as the engine's concurrency tests do) and its connections stay on
    one loop. Every attribute the async store has is passed through; its
    coroutines are awaited to the end.
    """

    def __init__(self, make: Callable[[], AsyncRedisStore], client: Any) -> None:
        self.client = client
        """A synchronous client of the same server, for tests that look at the keys."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.inner = self.call(_built(make))

    def call(self, awaitable: Any) -> Any:
        """The result of ``awaitable``, run on the store's loop."""
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result()

    def register_pool(self, terms: Any, now: float | None = None) -> None:
        self.inner.register_pool(terms, now)

    @property
    def pool_keys(self) -> tuple[str, ...]:
        return tuple(self.call(self.inner.pool_keys()))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def run(*args: Any, **kwargs: Any) -> Any:
            return self.call(attribute(*args, **kwargs))

        return run

    def shut(self) -> None:
        self.call(self.inner.client.aclose())
        self.client.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _built(make: Callable[[], AsyncRedisStore]) -> AsyncRedisStore:
    return make()  # built on the loop that will run it


def awaited_stores(
    kind: str, request: pytest.FixtureRequest, prefix: str
) -> Iterator[Callable[..., Store]]:
    """Yield (forever, until closed) a maker of async stores of ``kind`` behind AwaitedStore.

    ``kind`` is ``redis-async`` or ``redis-cluster-async``; each store gets a
    namespace of its own (``prefix`` and a count) and the maker's keyword
    options. Closing the generator closes the stores and flushes the servers.
    """
    cluster: RedisCluster
    if kind == "redis-async":
        server: RedisServer = request.getfixturevalue("redis_server")
        nodes = [server]

        def connect() -> Any:
            return redis.asyncio.Redis(host="127.0.0.1", port=server.port)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        nodes = cluster.servers

        def connect() -> Any:
            return AsyncCluster(host="127.0.0.1", port=cluster.servers[0].port)

    made: list[AwaitedStore] = []
    counter = itertools.count()

    def make(**options: Any) -> Store:
        namespace = f"{prefix}{next(counter)}"
        store = AwaitedStore(
            lambda: AsyncRedisStore(
                connect(), namespace=namespace, new_namespace=True, timeout=2.0, **options
            ),
            nodes[0].client() if kind == "redis-async" else cluster.client(),
        )
        made.append(store)
        return cast(Store, store)

    try:
        while True:
            yield make
    finally:
        for store in made:
            store.shut()
        for node in nodes:
            with node.client() as direct:
                direct.flushall()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, one per test process."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-master Redis Cluster on free loopback ports, one per test process."""
    cluster = RedisCluster(masters=3).start()
    yield cluster
    cluster.close()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each kind of lease store (tests needing ``store_factory`` run once per kind)."""
    return str(request.param)


@pytest.fixture
def store_factory(store_kind: str, request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Makes empty lease stores of each kind; the lease and engine tests run on every kind.

    Redis stores share the session's server (or cluster), each in a namespace of
    its own; the data is flushed when the test ends.
    """
    kind = store_kind
    if kind == "memory":
        yield MemoryStore
        return
    if kind.endswith("-async"):
        maker = awaited_stores(kind, request, "test")
        yield lambda: next(maker)()
        maker.close()
        return
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client: Any = server.client()
        nodes = [server]
    elif kind == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = cluster.client()
        nodes = cluster.servers
    else:
        raise LookupError(f"no store kind {kind!r}")
    names = itertools.count()
    yield lambda: RedisStore(client, namespace=f"test{next(names)}", new_namespace=True)
    client.close()
    for node in nodes:
        with node.client() as direct:
            direct.flushall()
