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
        "test_rewrite_stream.py",
        "test_rewrite_style.py",
        "test_web_body.py",
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
            "(the rewriter, bodies, the browser script, servers, packaging) run in the "
            "pure pass only"
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
