"""The test harness's real Redis servers: restart with persistence, and a cluster."""

from __future__ import annotations

from dni_engine.testing.redis_server import RedisCluster, RedisServer


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
