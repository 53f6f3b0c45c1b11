"""The test harness's real Redis servers: configuration, the faults they inject
(kill, restart with and without persistence, replacement by an empty server,
flush, memory pressure), clean-up, and a cluster."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from dni_engine.testing.redis_server import RedisCluster, RedisServer, RedisServerError


def test_appendonly_server_keeps_acknowledged_writes_across_a_kill() -> None:
    with RedisServer(appendonly=True) as server:
        client = server.client()
        client.set("lease", "held")
        server.kill()
        assert not server.running
        server.start()
        assert client.get("lease") == b"held"
        client.close()


def test_cluster_spreads_hash_tags_over_its_masters() -> None:
    with RedisCluster(masters=3) as cluster:
        client = cluster.client()
        for tag in range(30):
            client.set(f"{{pool-{tag}}}:k", tag)
        assert [int(client.get(f"{{pool-{tag}}}:k") or -1) for tag in range(30)] == list(range(30))
        per_node = [server.client().dbsize() for server in cluster.servers]
        assert sum(per_node) == 30
        assert all(count > 0 for count in per_node)
        client.close()


def test_a_server_made_before_it_starts_keeps_its_port_for_later() -> None:
    server = RedisServer()
    try:
        url, port = server.url, server.port
        assert url == f"redis://127.0.0.1:{port}/0"
        assert (server.running, server.pid) == (False, None)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5.0)  # nothing listens yet
        server.start()
        assert (server.port, server.url) == (port, url)
        assert server.pid is not None
        with redis.Redis.from_url(url) as client:
            assert client.ping()
    finally:
        server.close()
    assert not server.directory.exists()


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "kill"])
@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "appendonly"])
def test_restart_brings_data_back_only_from_the_append_only_file(
    appendonly: bool, kill: bool
) -> None:
    with RedisServer(appendonly=appendonly) as server:
        port, directory, pid = server.port, server.directory, server.pid
        with server.client() as client:
            client.set("lease", "held")
        server.restart(kill=kill)
        assert (server.port, server.directory) == (port, directory)
        assert server.pid not in (None, pid)
        with server.client() as client:
            assert client.get("lease") == (b"held" if appendonly else None)


def test_restart_empty_replaces_the_server_on_the_same_port() -> None:
    with RedisServer(appendonly=True) as server:
        old_directory, pid = server.directory, server.pid
        with server.client() as client:
            client.set("lease", "held")
        server.restart_empty(kill=True)
        assert server.running
        assert server.pid != pid
        assert server.directory != old_directory
        assert not old_directory.exists()  # nothing left to come back from
        with server.client(decode_responses=True) as client:
            assert client.dbsize() == 0
            assert client.config_get("appendonly")["appendonly"] == "yes"  # same configuration
        new_directory = server.directory
    assert not new_directory.exists()


def test_a_directory_given_by_the_caller_is_left_in_place(tmp_path: Path) -> None:
    given = tmp_path / "data"
    with RedisServer(directory=given) as server:
        assert (given / "redis.conf").exists()
        server.restart_empty()
        replacement = server.directory
        assert replacement != given
    assert given.exists()
    assert not replacement.exists()


def test_configuration_options_reach_the_server() -> None:
    with (
        RedisServer(
            appendonly=True,
            appendfsync="everysec",
            maxmemory="8mb",
            maxmemory_policy="allkeys-lru",
            config={"maxmemory-samples": "10", "hz": "20"},
        ) as server,
        server.client(decode_responses=True) as client,
    ):
        got = {
            name: client.config_get(name)[name]
            for name in (
                "appendonly",
                "appendfsync",
                "maxmemory",
                "maxmemory-policy",
                "maxmemory-samples",
                "hz",
                "bind",
                "save",
            )
        }
    assert got == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory": str(8 * 1024 * 1024),
        "maxmemory-policy": "allkeys-lru",
        "maxmemory-samples": "10",
        "hz": "20",
        "bind": "127.0.0.1",
        "save": "",
    }


def test_renamed_and_disabled_commands() -> None:
    with RedisServer(rename_commands={"CONFIG": "", "FLUSHDB": "SECRET-FLUSHDB"}) as server:
        with server.client() as client:
            with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
                client.config_get("maxmemory-policy")  # a managed Redis refusing CONFIG
            client.set("k", "v")
            with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
                client.flushdb()
            client.execute_command("SECRET-FLUSHDB")
            assert client.dbsize() == 0
        server.restart()  # the harness itself needs none of them
        assert server.running


def test_flushall_drops_every_database() -> None:
    with RedisServer() as server, server.client(db=0) as zero, server.client(db=3) as three:
        zero.set("a", 1)
        three.set("b", 2)
        server.flushall()
        assert zero.dbsize() == three.dbsize() == 0


def test_fill_pushes_older_keys_out_under_an_allkeys_policy() -> None:
    server = RedisServer(maxmemory="4mb", maxmemory_policy="allkeys-lru")
    with server, server.client() as client:
        client.set("old", "state")
        assert server.fill(16 * 1024 * 1024) == 4096  # 16 MiB of 4 KiB values
        assert server.fill(4096, value_bytes=1024) == 4  # numbering goes on after the first
        assert client.exists("filler:4099") == 1
        assert client.exists("old") == 0
        assert int(client.info("stats")["evicted_keys"]) > 0


def test_fill_is_refused_by_a_full_server_that_evicts_nothing() -> None:
    server = RedisServer(maxmemory="2mb", maxmemory_policy="noeviction")
    with server, server.client() as client:
        client.set("old", "state")
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            server.fill(8 * 1024 * 1024)
        assert client.get("old") == b"state"


def test_a_server_that_cannot_start_says_why_and_leaves_no_process() -> None:
    with RedisServer() as first:
        second = RedisServer(port=first.port)  # the port is taken
        try:
            with pytest.raises(RedisServerError, match=f"port {first.port}"):
                second.start(timeout=5.0)
            assert (second.running, second.pid) == (False, None)
        finally:
            second.close()
        assert not second.directory.exists()
        with first.client() as client:
            assert client.ping()
