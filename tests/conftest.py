"""Shared fixtures: the vendor's example pools."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dni_engine
from dni_engine.stores import MemoryStore, Store
from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import RedisCluster, RedisServer


def pytest_report_header() -> str:
    """Say which build of the package the tests run against."""
    build = "compiled" if dni_engine.COMPILED else "pure Python"
    return f"dni-engine build: {build} ({Path(dni_engine.__file__).parent})"


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


STORE_KINDS = ("memory", "redis", "redis-cluster")


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
