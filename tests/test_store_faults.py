"""The Redis store heals itself: an engine that starts without Redis, lost state, eviction.

Each test runs a redis-server of its own (:mod:`dni_engine.testing.redis_server`)
and keeps the same :class:`Engine` and :class:`RedisStore` objects through the
fault: only Redis is restarted, flushed, replaced, squeezed or killed. Leases run
on a :class:`SimulatedClock`; the store's circuit breaker runs on another one
(``breaker_clock=``), so "tracking again within 2 seconds" is at most 2 s of
breaker time and a bounded count of visits, never a measured duration. Only the
worker started while Redis is down runs on the real monotonic clock (its visits
are counted, not timed).

Every lease an engine hands out is recorded as ground truth (its number and
window, from the decisions), so that each attribution can be checked against
every lease that really held the number, the ones Redis forgot included.
"""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dni_engine.engine import Engine, PoolOptions
from dni_engine.errors import ConfigError
from dni_engine.leases import Attribution, Decision, SimulatedClock, minutes
from dni_engine.schema import NumberPool
from dni_engine.stores.redis import RedisStore
from dni_engine.testing import build_pool, source
from dni_engine.testing.redis_server import RedisServer, free_port

HOLD = minutes(30)  # every pool here has a match_period of 30 minutes
START = 1_700_000_000.0
HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
HOME = "https://shop.example/"
AD = "https://shop.example/?gclid=abc"
LOGGERS = ("dni_engine.stores.redis", "dni_engine.engine")
TRACKED = ("new", "kept")
ORGANIC = ("o1", "o2", "o3")  # visitors of pool 1 (4 numbers)
ADS = ("g1", "g2")  # visitors of pool 2 (3 numbers), who come through an ad


def tracking_pool(pool_id: int, count: int, trigger: str | None = None) -> NumberPool:
    """A pool taking visits from any referrer (with ``trigger`` in the URL, if given)."""
    return build_pool(
        id=pool_id,
        name=f"pool {pool_id}",
        numbers=[f"+4411740{pool_id}{i:04d}" for i in range(count)],
        sources=[source("Any", None if trigger is None else [trigger])],
    )


def two_pools() -> list[NumberPool]:
    """Pool 1 takes every visit; pool 2, more specific, the visits with a ``gclid``."""
    return [tracking_pool(1, 4), tracking_pool(2, 3, "gclid=*")]


@dataclass
class Held:
    """The truth about one lease handed out: its number and attribution window."""

    number: str
    started: float
    expires: float


class Site:
    """One engine on one Redis store, with the truth of every lease it handed out.

    ``visit`` checks each decision as it comes: a ``kept`` lease is one handed
    out before, on the same number; any other lease id was never seen before
    (ids are not reused, whatever Redis forgot).
    """

    def __init__(
        self,
        url: str,
        pools: list[NumberPool] | None = None,
        *,
        new_namespace: bool = True,
        namespace: str = "heal",
        timeout: float = 2.0,
    ) -> None:
        self.ticks = SimulatedClock()  # the breaker's monotonic clock, moved by hand
        self.clock = SimulatedClock(START)
        self.store = RedisStore(
            url,
            namespace=namespace,
            timeout=timeout,
            connect_timeout=timeout,
            breaker_clock=self.ticks,
            new_namespace=new_namespace,
        )
        self.engine = Engine(pools or two_pools(), self.store, clock=self.clock)
        self.numbers = sorted(n for terms in self.engine.terms.values() for n in terms.numbers)
        self.leases: dict[str, Held] = {}
        self.decisions: list[Decision] = []

    def visit(self, visitor: str, url: str = HOME, step: float = 1.0) -> Decision:
        """A page view ``step`` seconds after the previous one."""
        self.clock.advance(step)
        d = self.engine.visit(visitor, url=url, user_agent=HUMAN)
        self.decisions.append(d)
        if d.lease_id is not None:
            assert d.number is not None
            assert d.started is not None
            assert d.expires is not None
            if d.outcome == "kept":
                held = self.leases[d.lease_id]
                assert held.number == d.number, d
                held.expires = d.expires
            else:
                assert d.lease_id not in self.leases, f"lease id {d.lease_id} reused: {d}"
                self.leases[d.lease_id] = Held(d.number, d.started, d.expires)
        return d

    def resume(self, visitor: str, url: str = HOME) -> Decision:
        """Visits 0.1 s of breaker time apart (2 s at most) until one is tracked again."""
        outcomes = []
        for _ in range(20):
            self.ticks.advance(0.1)
            d = self.visit(visitor, url)
            if d.outcome != "store_unavailable":
                return d
            outcomes.append(d.outcome)
        pytest.fail(f"not tracking again after 2 s of breaker time: {outcomes}")

    def call(self, number: str, at: float) -> Attribution:
        """A call at ``at``: now (the engine's clock moves there) or in the past."""
        if at > self.clock():
            self.clock.set(at)
        return self.engine.attribute_call(number, at=at)

    def covering(self, number: str, at: float) -> set[str]:
        """The leases that really held ``number`` at ``at`` (forgotten ones included)."""
        return {
            lease_id
            for lease_id, held in self.leases.items()
            if held.number == number and held.started <= at < held.expires
        }

    def check_calls(self, times: Iterable[float] | None = None) -> int:
        """Attribute a call on every number at each time (by default: around every lease).

        No call goes to a lease that did not hold the number then, and none has
        confidence 1.0 (or 1.0 with a caveat) while two leases held it.
        Returns how many calls were checked.
        """
        if times is None:
            times = {t for h in self.leases.values() for t in (h.started + 0.5, h.expires - 0.5)}
        checked = 0
        for at in sorted(times):
            for number in self.numbers:
                call = self.call(number, at)
                truth = self.covering(number, at)
                assert call.kind in ("lease", "pool"), call
                if call.lease is not None:
                    assert call.lease.lease_id in truth, (call, truth)
                if call.confidence == 1.0:
                    assert len(truth) == 1, (call, truth)
                    assert call.caveat is None, call
                checked += 1
        return checked


def errors(records: Iterable[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR and r.name in LOGGERS]


def warnings(records: Iterable[logging.LogRecord]) -> list[str]:
    """The store's and the engine's warnings, but the one saying the store answers again."""
    return [
        r.getMessage()
        for r in records
        if r.levelno == logging.WARNING
        and r.name in LOGGERS
        and "answers again" not in r.getMessage()
    ]


def assert_certain(call: Attribution, lease_id: str | None) -> None:
    assert (call.kind, call.confidence, call.caveat) == ("lease", 1.0, None), call
    assert call.lease is not None
    assert call.lease.lease_id == lease_id


def assert_uncertain(call: Attribution, lease_id: str | None) -> None:
    """A call on a re-issued number while a forgotten visitor may still hold it."""
    assert call.kind == "lease", call
    assert call.lease is not None
    assert call.lease.lease_id == lease_id
    assert call.confidence < 1.0, call
    assert isinstance(call.caveat, str)
    assert call.caveat, call


# ---- start-up without Redis ------------------------------------------------------------------


def test_an_engine_built_while_redis_is_down_tracks_once_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer()  # its port is chosen; nothing listens there yet
    try:
        with caplog.at_level(logging.WARNING, logger="dni_engine"):
            site = Site(server.url)  # does not raise
            assert not site.engine.ready()
            down = site.visit("o1")
            assert (down.outcome, down.number, down.pool_key) == ("store_unavailable", None, "1")
            assert site.visit("g1", AD).outcome == "store_unavailable"
            assert site.call(site.numbers[0], site.clock()).kind == "store_unavailable"
            assert not site.engine.ready()

            server.start()
            # Until the breaker's open interval has passed, nothing is sent.
            assert site.visit("o1").outcome == "store_unavailable"
            site.ticks.advance(site.store.breaker.open_seconds + 0.01)
            first = site.visit("o1")
            assert first.outcome == "new"
            assert site.engine.ready()
            assert site.visit("o1").outcome == "kept"
            ad = site.visit("g1", AD)
            assert (ad.outcome, ad.pool_key) == ("new", "2")
            assert_certain(site.call(first.number or "", site.clock()), first.lease_id)
        assert errors(caplog.records) == []  # nothing was lost: it was never there
        stats = site.engine.stats()
        assert [(p.pool_key, p.live) for p in stats.pools] == [("1", 1), ("2", 1)]
        site.store.close()
    finally:
        server.close()


BAD_CONFIGURATIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "two pools with one number": lambda: {
        "pools": [tracking_pool(1, 2), tracking_pool(1, 2).model_copy(update={"id": 2})]
    },
    "an overflow number that is another pool's": lambda: {
        "pools": two_pools(),
        "policy": "overflow",
        "overflow_number": "+441174020000",
    },
    "a negative cooldown": lambda: {
        "pools": two_pools(),
        "options": {"pool 2": PoolOptions(cooldown=-1.0)},
    },
    "an overflow number that is no number": lambda: {
        "pools": two_pools(),
        "overflow_number": "not a number",
    },
}


@pytest.fixture
def silent_port() -> Iterator[tuple[int, socket.socket]]:
    """A loopback port that accepts connections and never answers (nor reads)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        yield int(listener.getsockname()[1]), listener


@pytest.mark.parametrize("problem", list(BAD_CONFIGURATIONS))
def test_configuration_errors_raise_at_construction_without_asking_redis(
    problem: str, silent_port: tuple[int, socket.socket]
) -> None:
    nowhere = RedisStore(f"redis://127.0.0.1:{free_port()}/0", namespace="cfg")
    with pytest.raises(ConfigError):
        Engine(**BAD_CONFIGURATIONS[problem](), store=nowhere)
    port, listener = silent_port
    silent = RedisStore(f"redis://127.0.0.1:{port}/0", namespace="cfg", timeout=0.2)
    with pytest.raises(ConfigError):
        Engine(**BAD_CONFIGURATIONS[problem](), store=silent)
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody tried to connect
    if problem == "two pools with one number":
        with pytest.raises(ConfigError, match=r"\+441174010000"):  # names the shared number
            Engine(**BAD_CONFIGURATIONS[problem](), store=nowhere)


WORKER = '''\
"""A web worker that builds its engine when imported, as a WSGI module does."""

import sys

from dni_engine.engine import Engine
from dni_engine.schema import NumberPool
from dni_engine.stores.redis import RedisStore

POOL = NumberPool.model_validate_json(open(sys.argv[2]).read())
ENGINE = Engine([POOL], RedisStore(sys.argv[1], namespace="worker"))


def serve():
    print("started", flush=True)
    for line in sys.stdin:
        decision = ENGINE.visit(line.strip(), url="https://shop.example/", user_agent=sys.argv[3])
        print(decision.outcome, flush=True)
'''


def test_a_worker_importing_its_engine_while_redis_is_down_starts_and_recovers(
    tmp_path: Path,
) -> None:
    (tmp_path / "worker_app.py").write_text(WORKER)
    (tmp_path / "pool.json").write_text(tracking_pool(1, 3).model_dump_json(by_alias=True))
    server = RedisServer()  # not started: the worker comes up first
    stderr = (tmp_path / "stderr.txt").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import worker_app; worker_app.serve()",
            server.url,
            str(tmp_path / "pool.json"),
            HUMAN,
        ],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert worker.stdout is not None
    assert worker.stdin is not None
    stdout = worker.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line.strip())

    threading.Thread(target=read, daemon=True).start()

    def answer(visitor: str | None = None) -> str:
        if visitor is not None:
            worker.stdin.write(visitor + "\n")
            worker.stdin.flush()
        try:
            return lines.get(timeout=30)  # a guard against a hung worker, not a measurement
        except queue.Empty:
            pytest.fail(f"the worker did not answer: {(tmp_path / 'stderr.txt').read_text()}")

    try:
        assert answer() == "started", (tmp_path / "stderr.txt").read_text()
        assert answer("visitor") == "store_unavailable"
        server.start()
        outcomes = []
        for _ in range(50):
            time.sleep(0.1)
            outcomes.append(answer("visitor"))
            if outcomes[-1] != "store_unavailable":
                break
        assert outcomes[-1] == "new", outcomes
        assert set(outcomes[:-1]) <= {"store_unavailable"}
        # The worker's store has the default 100 ms timeout: on a busy machine a visit
        # may still time out now and then, but the lease it took is never taken again.
        for _ in range(50):
            outcomes.append(answer("visitor"))
            if outcomes[-1] != "store_unavailable":
                break
            time.sleep(0.1)
        assert outcomes[-1] == "kept", outcomes
        worker.stdin.close()
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        stderr.close()
        server.close()


# ---- lost state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """A fault that loses Redis' state: ``down`` takes the server away (or nothing),
    ``up`` brings back an empty one (or empties the running one)."""

    appendonly: bool
    down: Callable[[RedisServer], None] | None
    up: Callable[[RedisServer], object]


LOSSES = {
    "restart-without-persistence": Loss(False, RedisServer.stop, RedisServer.start),
    "flushall": Loss(False, None, RedisServer.flushall),
    # Same port, new data directory: its append-only file does not come with it.
    "replaced-by-an-empty-server": Loss(True, RedisServer.kill, RedisServer.restart_empty),
    "kill-9-without-aof": Loss(False, RedisServer.kill, RedisServer.start),
}


@pytest.mark.parametrize("fault", list(LOSSES))
def test_lost_state_heals_by_itself(fault: str, caplog: pytest.LogCaptureFixture) -> None:
    loss = LOSSES[fault]
    server = RedisServer(appendonly=loss.appendonly)
    with server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url)
        before = [site.visit(v) for v in ORGANIC] + [site.visit(v, AD) for v in ADS]
        assert [d.outcome for d in before] == ["new"] * 5
        assert site.engine.ready()
        for d in before:
            assert_certain(site.call(d.number or "", d.at + 0.5), d.lease_id)
        # A forgotten visitor may hold their number until at least then.
        forgotten_until = min(d.expires or 0.0 for d in before)
        mark = len(caplog.records)

        if loss.down is not None:
            loss.down(server)
            for visitor in ORGANIC:
                assert site.visit(visitor).outcome == "store_unavailable"
            assert site.call(before[0].number or "", site.clock()).kind == "store_unavailable"
            assert not site.engine.ready()
        loss.up(server)

        first = site.resume("o1")  # a returning visitor: their lease was forgotten
        assert first.outcome == "new"
        assert len(warnings(caplog.records[mark:])) <= 1
        after = {"o1": first}
        for visitor in ORGANIC[1:]:
            after[visitor] = site.visit(visitor)
        for visitor in ADS:
            after[visitor] = site.visit(visitor, AD)
        assert {v: d.outcome for v, d in after.items()} == dict.fromkeys(after, "new")
        assert site.engine.ready()
        site.engine.stats()
        # The same numbers go out again, while their forgotten holders may still call.
        assert {d.number for d in after.values()} == {d.number for d in before}
        for d in after.values():
            assert d.at + 0.5 < forgotten_until
            assert_uncertain(site.call(d.number or "", d.at + 0.5), d.lease_id)

        # One match_period after the loss, attribution is certain again.
        site.clock.advance(HOLD + 60)
        later = [site.visit(v) for v in ("p1", "p2", "p3")] + [site.visit(v, AD) for v in ("q1",)]
        assert [d.outcome for d in later] == ["new"] * 4
        for d in later:
            assert_certain(site.call(d.number or "", d.at + 0.5), d.lease_id)
        # Asked later, from the lease log, the uncertain calls are still uncertain.
        for d in after.values():
            assert_uncertain(site.call(d.number or "", d.at + 0.5), d.lease_id)
        stats = site.engine.stats()
        assert [p.live for p in stats.pools] == [3, 1]
        assert site.check_calls() > 0  # (this moves the clock on, to the last lease's end)
        site.store.close()
    lost = errors(caplog.records)
    assert len(lost) == len(set(lost)) == 2, lost  # one per pool
    assert all("lost" in message for message in lost), lost


def test_any_operation_can_be_the_first_to_find_the_state_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer() as server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url)
        held = site.visit("o1")
        ad = site.visit("g1", AD)
        server.flushall()
        site.clock.advance(5.0)
        stats = site.engine.stats()  # pool 1 and 2 found empty, rebuilt, and answered
        assert [(p.pool_key, p.live, p.free) for p in stats.pools] == [("1", 0, 4), ("2", 0, 3)]
        call = site.call(ad.number or "", site.clock())
        assert (call.kind, call.lease, call.confidence) == ("pool", None, 0.0)
        again = site.visit("o1")
        assert again.outcome == "new"
        assert again.lease_id != held.lease_id
        assert_uncertain(site.call(again.number or "", again.at), again.lease_id)
        site.store.close()
    lost = errors(caplog.records)
    assert len(lost) == len(set(lost)) == 2, lost  # one per pool
    assert all("lost" in message for message in lost), lost


def test_stats_during_an_outage_do_not_raise() -> None:
    with RedisServer() as server:
        site = Site(server.url)
        assert site.visit("o1").outcome == "new"
        server.kill()
        assert site.visit("o1").outcome == "store_unavailable"
        site.engine.stats()  # the caller of stats gets no exception either
        site.store.close()


def test_a_crash_with_the_append_only_file_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(appendonly=True, appendfsync="always")
    with server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url)
        before = {v: site.visit(v) for v in ORGANIC}
        before |= {v: site.visit(v, AD) for v in ADS}
        mark = len(caplog.records)
        server.kill()
        for visitor in ORGANIC:
            assert site.visit(visitor).outcome == "store_unavailable"
        server.start()
        first = site.resume("o1")
        assert len(warnings(caplog.records[mark:])) <= 1
        after = {"o1": first}
        after |= {v: site.visit(v) for v in ORGANIC[1:]}
        after |= {v: site.visit(v, AD) for v in ADS}
        for visitor, d in after.items():  # old leases are honoured
            assert d.outcome == "kept"
            assert (d.number, d.lease_id) == (before[visitor].number, before[visitor].lease_id)
            assert_certain(site.call(d.number or "", d.at), d.lease_id)
            assert_certain(site.call(d.number or "", before[visitor].at + 0.5), d.lease_id)
        fresh = site.visit("o4")
        assert fresh.outcome == "new"
        assert_certain(site.call(fresh.number or "", fresh.at), fresh.lease_id)
        assert site.engine.ready()
        assert site.check_calls() > 0
        site.store.close()
    assert errors(caplog.records) == []  # nothing was lost


def test_eviction_under_memory_pressure_heals(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(maxmemory="6mb", maxmemory_policy="allkeys-lru")
    pools = [tracking_pool(1, 40)]
    with server, server.client() as admin, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url, pools)
        visitors = [f"v{i}" for i in range(30)]
        before = {v: site.visit(v) for v in visitors}
        assert {d.outcome for d in before.values()} == {"new"}
        # Load: a cache fills the server while visitors come and go; Redis evicts.
        for round_ in range(8):
            server.fill(1024 * 1024, prefix="cache")
            for k in range(4):
                visitor = visitors[(round_ * 3 + k) % 30] if k else f"w{round_}"
                assert site.visit(visitor).outcome in TRACKED
        # A quiet spell for the site while the cache goes on: the pool's keys go.
        cfg = "heal:{p:1}:cfg"  # the pool's terms (see the key layout in the store's doc)
        for _ in range(30):
            if not admin.exists(cfg):  # EXISTS does not refresh a key's LRU clock
                break
            server.fill(2 * 1024 * 1024, prefix="cache")
        assert not admin.exists(cfg), "the pool's keys were never evicted"
        assert int(admin.info("stats")["evicted_keys"]) > 0

        first = site.resume("v0")
        assert first.outcome == "new"
        after = [first] + [site.visit(v) for v in visitors[1:10]]
        assert {d.outcome for d in after} == {"new"}
        reissued = [d for d in after if site.covering(d.number or "", d.at + 0.5) - {d.lease_id}]
        assert reissued, "no number went out again while a forgotten visitor held it"
        for d in reissued:
            assert_uncertain(site.call(d.number or "", d.at + 0.5), d.lease_id)
        site.clock.advance(HOLD + 60)
        later = site.visit("late")
        assert later.outcome == "new"
        assert_certain(site.call(later.number or "", later.at + 0.5), later.lease_id)
        assert site.check_calls() > 0
        site.store.close()
    lost = errors(caplog.records)
    assert lost, "the loss was not reported"
    assert all("lost" in message for message in lost), lost
    assert any("maxmemory-policy" in m for m in warnings(caplog.records))


# ---- trust in new state -----------------------------------------------------------------------


def test_state_created_in_an_empty_namespace_is_trusted_only_when_promised_new(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer() as server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        unsure = Site(server.url, namespace="unsure", new_namespace=False)
        d = unsure.visit("a")
        assert d.outcome == "new"
        # The store cannot tell a new deployment from a flushed one.
        assert_uncertain(unsure.call(d.number or "", d.at + 0.5), d.lease_id)
        unsure.clock.advance(HOLD + 60)
        later = unsure.visit("b")
        assert_certain(unsure.call(later.number or "", later.at + 0.5), later.lease_id)
        assert_uncertain(unsure.call(d.number or "", d.at + 0.5), d.lease_id)

        promised = Site(server.url, namespace="fresh", new_namespace=True)
        d = promised.visit("a")
        assert_certain(promised.call(d.number or "", d.at + 0.5), d.lease_id)
        # Another worker joining the namespace later creates nothing: still trusted.
        joining = Site(server.url, namespace="fresh", new_namespace=False)
        joining.clock.set(promised.clock())
        kept = joining.engine.visit("a", url=HOME, user_agent=HUMAN)
        assert (kept.outcome, kept.lease_id) == ("kept", d.lease_id)
        assert_certain(joining.call(d.number or "", d.at + 0.5), d.lease_id)
        for site in (unsure, promised, joining):
            site.store.close()
    assert errors(caplog.records) == []  # nothing was lost


# ---- the eviction policy check ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "warned"),
    [
        ("allkeys-lru", True),
        ("allkeys-random", True),
        ("noeviction", False),
        ("volatile-lru", False),
    ],
)
def test_an_eviction_policy_that_may_drop_lease_state_is_warned_about(
    policy: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(maxmemory="64mb", maxmemory_policy=policy)
    with server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url, [tracking_pool(1, 4)])
        assert [site.visit(f"v{i}").outcome for i in range(4)] == ["new"] * 4
        assert site.engine.ready()
        site.store.close()
    about = [m for m in warnings(caplog.records) if "maxmemory-policy" in m]
    assert len(about) == (1 if warned else 0), about


def test_a_refused_config_get_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(rename_commands={"CONFIG": ""})  # a managed Redis
    with server, caplog.at_level(logging.WARNING, logger="dni_engine"):
        site = Site(server.url, [tracking_pool(1, 4)])
        assert [site.visit(f"v{i}").outcome for i in range(4)] == ["new"] * 4
        assert site.engine.ready()
        site.store.close()
    said = warnings(caplog.records)
    assert len(said) == 1, said
    assert "maxmemory-policy" in said[0]
