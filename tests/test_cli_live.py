"""The live commands (``stats``, ``leases``, ``attribute``, ``release``) on a running site's Redis.

Every command runs as its own process against a real ``redis-server``
shared with two site workers: an :class:`Engine` in this process and a
worker in a subprocess. They must agree with each other and with the
commands: leases taken by either worker are listed, the command attributes a
call as the workers do, and a release by the command is seen by the workers.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dni_engine.engine import Engine
from dni_engine.schema import load_pools
from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import RedisServer
from tests.conftest import EXAMPLES, ROOT

SITE = str(EXAMPLES / "site" / "pools.json")
HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
GOOGLE_AD = "https://www.example.co.uk/tyres?gclid=Cj0KCQ-test"
GOOGLE = "https://www.google.com/"
USAGE, FAILURE = 2, 1
_namespaces = itertools.count()

WORKER = """
import json, sys
from dni_engine.engine import Engine
from dni_engine.schema import load_pools
from dni_engine.stores.redis import RedisStore
url, namespace, visitor, page, referrer, agent = sys.argv[1:]
pools = load_pools(open({site!r}, "rb").read())
engine = Engine(pools, RedisStore(url, namespace=namespace, timeout=5.0))
d = engine.visit(visitor, page, referrer, agent)
print(json.dumps({{"number": d.number, "pool": d.pool_key, "lease": d.lease_id,
                  "outcome": d.outcome}}))
"""


def dni(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DNI_REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "dni_engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


class Site:
    """One site on the shared server, in a namespace of its own."""

    def __init__(self, server: RedisServer) -> None:
        self.url = server.url
        self.namespace = f"live{os.getpid()}x{next(_namespaces)}"
        self.pools = load_pools((EXAMPLES / "site" / "pools.json").read_bytes())
        # The first worker of a new deployment: the state it creates is trusted at once.
        store = RedisStore(self.url, namespace=self.namespace, new_namespace=True)
        self.engine = Engine(self.pools, store)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A live command on this site."""
        return dni(*args, "--pools", SITE, "--redis", self.url, "--namespace", self.namespace)

    def json(self, *args: str) -> object:
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout)

    def worker_visit(self, visitor: str, page: str, referrer: str) -> dict[str, str]:
        """A visit decided by a second worker process."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                WORKER.format(site=SITE),
                self.url,
                self.namespace,
                visitor,
                page,
                referrer,
                HUMAN,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=True,
        )
        answer: dict[str, str] = json.loads(done.stdout)
        return answer


@pytest.fixture
def site(redis_server: RedisServer) -> Iterator[Site]:
    made = Site(redis_server)
    yield made
    client = redis_server.client()
    keys = list(client.scan_iter(f"{made.namespace}:*"))
    if keys:
        client.delete(*keys)


def test_leases_taken_by_two_workers_are_listed_by_the_command(site: Site) -> None:
    here = site.engine.visit("here-1", GOOGLE_AD, GOOGLE, HUMAN)
    there = site.worker_visit("there-1", GOOGLE_AD, GOOGLE)
    assert here.outcome == "new"
    assert there["outcome"] == "new"
    assert here.pool_key == there["pool"]
    assert here.number != there["number"]
    listed = site.json("leases", str(here.pool_key))
    assert isinstance(listed, list)
    assert {(x["visitor_id"], x["number"], x["lease_id"]) for x in listed} == {
        ("here-1", here.number, here.lease_id),
        ("there-1", there["number"], there["lease"]),
    }
    by_name = site.run("leases", site.engine.pool(str(here.pool_key)).name)
    assert by_name.returncode == 0, by_name.stderr
    assert "2 live leases in pool" in by_name.stdout
    assert "here-1" in by_name.stdout
    assert "there-1" in by_name.stdout


def test_stats_are_the_same_from_the_command_and_both_workers(site: Site) -> None:
    site.engine.visit("a", GOOGLE_AD, GOOGLE, HUMAN)
    site.worker_visit("b", GOOGLE_AD, GOOGLE)
    site.engine.visit("a", GOOGLE_AD, GOOGLE, HUMAN)  # kept
    shown = site.json("stats")
    assert isinstance(shown, dict)
    ours = {p.pool_key: p for p in site.engine.stats().pools}
    pools = {p["pool_key"]: p for p in shown["pools"]}
    assert set(pools) == set(ours)
    for key, theirs in pools.items():
        mine = ours[key]
        assert (theirs["size"], theirs["live"], theirs["free"], theirs["new"], theirs["kept"]) == (
            mine.size,
            mine.live,
            mine.free,
            mine.new,
            mine.kept,
        )
    assert shown["outcomes"]["new"] == 2
    assert shown["outcomes"]["kept"] == 1
    table = site.run("stats")
    assert table.returncode == 0, table.stderr
    assert "Google Ads" in table.stdout


def test_the_command_attributes_a_call_as_the_workers_do(site: Site) -> None:
    there = site.worker_visit("caller-1", GOOGLE_AD, GOOGLE)
    number = there["number"]
    at = site.engine.clock()
    mine = site.engine.attribute_call(number, at)
    assert mine.kind == "lease"
    assert mine.lease is not None
    shown = site.json("attribute", number, "--at", repr(at))
    assert isinstance(shown, dict)
    assert shown["kind"] == "lease"
    assert shown["lease"]["lease_id"] == mine.lease.lease_id == there["lease"]
    assert shown["lease"]["visitor_id"] == "caller-1"
    assert shown["confidence"] == mine.confidence == 1.0
    assert shown["caveat"] is mine.caveat is None
    # The number as a caller dials it, in the pool's national form.
    national = "0" + number.removeprefix("+44")
    text = site.run("attribute", national)
    assert text.returncode == 0, text.stderr
    assert "attributed  lease" in text.stdout
    assert "caller-1" in text.stdout
    # Before the lease began, no lease holds the call: pool level only.
    early = site.json("attribute", number, "--at", "2020-01-01T00:00:00+00:00")
    assert isinstance(early, dict)
    assert early["kind"] == site.engine.attribute_call(number, 1_577_836_800.0).kind == "pool"
    unknown = site.json("attribute", "+15005550006")
    assert isinstance(unknown, dict)
    assert unknown["kind"] == "unknown"


def test_a_release_by_the_command_is_seen_by_both_workers(site: Site) -> None:
    here = site.engine.visit("leaving", GOOGLE_AD, GOOGLE, HUMAN)
    there = site.worker_visit("by-lease", GOOGLE_AD, GOOGLE)
    released = site.json("release", "leaving")
    assert isinstance(released, dict)
    assert released["lease_id"] == here.lease_id
    assert released["end_reason"] == "released"
    by_id = site.run("release", there["lease"])
    assert by_id.returncode == 0, by_id.stderr
    assert "by-lease" in by_id.stdout
    assert [x for x in site.engine.leases(pool=str(here.pool_key)) if x.ended is None] == []
    again = site.run("release", "leaving")
    assert again.returncode == FAILURE
    assert again.stderr.startswith("error: no live lease for visitor or lease 'leaving'")
    ended = site.run("release", str(here.lease_id))
    assert ended.returncode == FAILURE
    assert "already ended" in ended.stderr
    # The second worker sees the number free again: a new visitor there takes a lease.
    after = site.worker_visit("next", GOOGLE_AD, GOOGLE)
    assert after["outcome"] == "new"
    logged = site.json("leases", str(here.pool_key), "--all")
    assert isinstance(logged, list)
    reasons = {x["visitor_id"]: x["end_reason"] for x in logged}
    assert reasons == {"leaving": "released", "by-lease": "released", "next": None}


def test_without_redis_the_commands_say_a_running_store_is_needed() -> None:
    for args in (["stats"], ["leases", "41001"], ["attribute", "+441174960000"], ["release", "v"]):
        done = dni(*args, "--pools", SITE)
        assert done.returncode == USAGE, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1
        assert "--redis" in lines[0]
        assert "running site" in lines[0]


def test_live_usage_errors_name_the_option(site: Site) -> None:
    bad_time = site.run("attribute", "+441174960000", "--at", "yesterday")
    assert bad_time.returncode == USAGE
    assert "'--at'" in bad_time.stderr
    naive = site.run("attribute", "+441174960000", "--at", "2026-01-01T10:00:00")
    assert naive.returncode == USAGE
    assert "UTC offset" in naive.stderr
    no_pool = site.run("leases", "no-such-pool")
    assert no_pool.returncode == USAGE
    assert "no pool 'no-such-pool'" in no_pool.stderr
    window = site.run("leases", "41001", "--since", "0")
    assert window.returncode == USAGE
    bad_url = dni("stats", "--pools", SITE, "--redis", "http://localhost:6379")
    assert bad_url.returncode == USAGE
    assert "redis://" in bad_url.stderr


def test_an_unreachable_redis_is_a_failure() -> None:
    from dni_engine.testing.redis_server import free_port

    done = dni("stats", "--pools", SITE, "--redis", f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == FAILURE
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: the Redis store at redis://127.0.0.1:")


def test_stats_count_capped_visits_and_the_command_keeps_the_sites_cap(site: Site) -> None:
    site.engine = Engine(site.pools, site.engine.store, client_cap=1)
    for visitor in ("a", "b", "c"):
        site.engine.visit(visitor, GOOGLE_AD, GOOGLE, HUMAN, client="one-script")
    shown = site.json("stats", "--client-cap", "1")
    assert isinstance(shown, dict)
    assert shown["outcomes"]["capped"] == 2
    assert shown["outcomes"]["new"] == 1
    ads = next(p for p in shown["pools"] if p["name"] == "Google Ads")
    assert (ads["new"], ads["capped"]) == (1, 2)
    table = site.run("stats", "--client-cap", "1")
    assert table.returncode == 0, table.stderr
    assert "capped" in table.stdout.splitlines()[1]
    # The command registered the site's terms again: the cap still holds.
    assert site.engine.visit("d", GOOGLE_AD, GOOGLE, HUMAN, client="one-script").outcome == (
        "capped"
    )
    assert site.run("stats", "--client-cap", "-1").returncode == USAGE
