"""The asynchronous Redis store on real servers: what the shared suite does not reach.

The lease rules, the engine tests and the call log run against the async store
through ``store_factory`` (``conftest.py``); here its own I/O: one round trip
per returning visit, ``NOSCRIPT`` reload, healing lost state, the breaker and
timeouts, on Redis and Redis Cluster.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncCluster

from dni_engine.leases import Claim, PoolTerms, minutes
from dni_engine.stores import StoreError
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.stores.redis import AsyncRedisStore
from dni_engine.testing.redis_server import RedisCluster, RedisServer, free_port

HOLD = minutes(30)
START = 1_700_000_000.0
names = itertools.count()
ADS = PoolTerms("ads", "Ads", tuple(f"+44117409{i:04d}" for i in range(4)), HOLD)


class CountingConnection(redis.asyncio.Connection):
    """A connection that counts round trips: each write of commands is one."""

    round_trips = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        await super().send_packed_command(command, check_health)


def test_one_round_trip_per_returning_visit_and_scripts_reloaded(
    redis_server: RedisServer,
) -> None:
    async def run() -> list[tuple[str, int]]:
        pool = redis.asyncio.ConnectionPool(
            host="127.0.0.1", port=redis_server.port, connection_class=CountingConnection
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        store = AsyncRedisStore(client, namespace=f"atrips{next(names)}")
        store.register_pool(ADS)
        await client.script_flush()  # the first operation loads the scripts and registers

        async def trips(visitor: str, claim: Claim | None, hint: str | None) -> tuple[str, int]:
            before = CountingConnection.round_trips
            decision = await store.visit(visitor, START + 1, claim, hint=hint)
            return decision.outcome, CountingConnection.round_trips - before

        assert await store.ready()
        found = [
            await trips("a", Claim("ads"), NEW_VISITOR),
            await trips("a", Claim("ads"), None),
            await trips("a", None, "ads"),
            await trips("b", Claim("ads"), None),
        ]
        await client.aclose()
        return found

    assert asyncio.run(run()) == [("new", 1), ("kept", 1), ("kept", 1), ("new", 2)]


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_lost_state_is_healed(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        nodes = [server]

        def connect() -> Any:
            return redis.asyncio.Redis(host="127.0.0.1", port=server.port)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        nodes = cluster.servers

        def connect() -> Any:
            return AsyncCluster(host="127.0.0.1", port=cluster.servers[0].port)

    async def run() -> tuple[str, str, int, list[str]]:
        client = connect()
        store = AsyncRedisStore(client, namespace=f"aheal{next(names)}", new_namespace=True)
        store.register_pool(ADS)
        first = await store.visit("a", START, Claim("ads"))
        for node in nodes:
            with node.client() as direct:
                direct.flushall()
        again = await store.visit("b", START + 1, Claim("ads"))
        leases = await store.leases()
        await client.aclose()
        return first.outcome, again.outcome, store.losses, [x.visitor_id for x in leases]

    assert asyncio.run(run()) == ("new", "new", 1, ["b"])


def test_a_dead_redis_fails_fast_behind_the_breaker() -> None:
    clock = [0.0]

    async def run() -> tuple[str, str, bool, str]:
        store = AsyncRedisStore(
            f"redis://127.0.0.1:{free_port()}/0", breaker_clock=lambda: clock[0]
        )
        store.register_pool(ADS)  # no I/O: registered at the first operation Redis answers
        errors = []
        for _ in range(2):
            try:
                await store.visit("a", START, Claim("ads"))
            except StoreError as exc:
                errors.append(str(exc))
        ready = await store.ready()
        state = str(store.breaker.state)
        await store.close()
        return errors[0], errors[1], ready, state

    first, second, ready, state = asyncio.run(run())
    assert first.startswith("Redis did not answer")
    assert second.startswith("Redis is unavailable; failing fast")
    assert not ready
    assert "open" in state


def test_a_timeout_is_a_store_error(redis_server: RedisServer) -> None:
    async def run() -> str:
        store = AsyncRedisStore(redis_server.url, namespace=f"aslow{next(names)}", timeout=0.05)
        store.register_pool(ADS)
        with redis_server.client() as admin:
            assert await store.ready()
            admin.execute_command("CLIENT", "PAUSE", 1000, "ALL")
            try:
                await store.visit("a", START, Claim("ads"))
            except StoreError as exc:
                return str(exc)
            finally:
                admin.execute_command("CLIENT", "UNPAUSE")
                await store.close()
        return "no error"

    assert asyncio.run(run()).startswith("Redis did not answer")


class Before8Connection(redis.asyncio.Connection):
    """A connection with the readiness check of redis-py before 8: ``can_read_destructive`` only."""

    checks = 0

    @property
    def can_read(self) -> Any:
        raise AttributeError("can_read")  # redis-py 5 to 7 have no such method

    async def can_read_destructive(self) -> bool:
        Before8Connection.checks += 1
        parser: Any = self._parser  # its check has the new name from redis-py 8 on
        return bool(await (getattr(parser, "can_read", None) or parser.can_read_destructive)())


def test_kept_connections_are_checked_with_the_api_of_redis_py_before_8(
    redis_server: RedisServer,
) -> None:
    # The supported redis-py range starts at 5: a kept connection is checked with what
    # the installed version offers, and one the server closed is still replaced.
    async def run() -> None:
        store = AsyncRedisStore(redis_server.url, namespace=f"abefore8{next(names)}", timeout=2.0)
        pool = store.client.connection_pool
        pool.connection_class = Before8Connection

        async def ensure_connection(connection: Any) -> None:
            # redis-py 7's pool makes sure of a connection by the old name too
            await connection.connect()
            if await connection.can_read_destructive():
                await connection.disconnect()
                await connection.connect()

        pool.ensure_connection = ensure_connection
        store.register_pool(ADS)
        try:
            assert await store.ready()
            first = await store.visit("a", START, Claim("ads"))
            again = await store.visit("a", START + 1, Claim("ads"))
            assert (again.outcome, again.lease_id) == ("kept", first.lease_id)
            with redis_server.client() as admin:
                assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            await asyncio.sleep(0.05)  # the loop sees the end of the stream
            later = await store.visit("a", START + 2, Claim("ads"))
            assert (later.outcome, later.lease_id) == ("kept", first.lease_id)
            assert store.breaker.failures == 0
            assert Before8Connection.checks >= 3
        finally:
            await store.close()

    asyncio.run(run())
