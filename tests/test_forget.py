"""Forgetting a visitor (erasure on request) on every store kind, and ``dni-engine forget``."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dni_engine import Engine, SimulatedClock
from dni_engine.calls import Call
from dni_engine.leases import Lease
from dni_engine.stores.base import Forgotten, Store
from dni_engine.stores.memory import MemoryStore
from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import RedisServer
from tests.calls_site import (
    GOOGLE,
    HUMAN,
    START,
    StoreMaker,
    pools,
    site,
    stored_text,
    stores_of_kind,
)
from tests.conftest import STORE_KINDS
from tests.test_cli_live import Site

ALICE = "visitor-alice-7f3a"
BOB = "visitor-bob-91c2"
CAROL = "visitor-carol-04de"
ALICE_GCLID = "AliceClick9Q7x"
ALICE_CALLER = "+447700900111"
BOB_GCLID = "BobClick3Z8k"
BOB_CALLER = "+447700900222"
CAROL_CALLER = "+447700900333"


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    yield from stores_of_kind(str(request.param), request)


def _traffic(engine: Engine, clock: SimulatedClock) -> list[str]:
    """Three visitors and five calls; alice has an ended and a live lease. Her lease ids."""
    first = engine.visit(ALICE, f"https://shop.example/?gclid={ALICE_GCLID}", GOOGLE, HUMAN)
    bob = engine.visit(BOB, f"https://shop.example/?gclid={BOB_GCLID}", GOOGLE, HUMAN)
    clock.advance(30)
    assert first.number is not None
    assert bob.number is not None
    engine.record_call(Call("CA-alice-1", first.number, clock(), ALICE_CALLER, 40.0))
    engine.record_call(Call("CA-bob-1", bob.number, clock(), BOB_CALLER, 50.0))
    assert engine.end_session(ALICE) is not None
    clock.advance(30)
    second = engine.visit(ALICE, "https://shop.example/contact", None, HUMAN)
    carol = engine.visit(CAROL, "https://shop.example/", None, HUMAN)
    clock.advance(30)
    assert second.number is not None
    assert carol.number is not None
    engine.record_call(Call("CA-alice-2", second.number, clock(), ALICE_CALLER, 20.0))
    engine.record_call(Call("CA-carol-1", carol.number, clock(), CAROL_CALLER, 10.0))
    engine.record_call(Call("CA-bob-2", bob.number, clock(), BOB_CALLER, 15.0))
    assert first.lease_id is not None
    assert second.lease_id is not None
    return [first.lease_id, second.lease_id]


def _member(lease_id: str) -> str:
    """A Redis lease's member: ``<epoch>.<seq, 12 digits>`` of its id ``<pool>:<epoch>.<seq>``."""
    epoch, _, seq = lease_id.rpartition(":")[2].rpartition(".")
    return f"{epoch}.{int(seq):012d}"


def _of(leases: list[Lease], visitor: str) -> list[Lease]:
    return [lease for lease in leases if lease.visitor_id == visitor]


def test_forget_removes_every_trace_of_one_visitor(make_store: StoreMaker) -> None:
    store = make_store()
    clock = SimulatedClock(START)
    engine = site(store, clock)
    alice_leases = _traffic(engine, clock)
    others_before = {v: _of(engine.leases(), v) for v in (BOB, CAROL)}
    calls_before = [r for r in engine.calls() if r.call.caller != ALICE_CALLER]
    live_before = sum(p.live for p in engine.stats().pools)
    released_before = sum(p.released for p in engine.stats().pools)
    assert len(_of(engine.leases(), ALICE)) == 2
    assert len(engine.calls()) == 5

    forgotten = engine.forget(ALICE)

    assert forgotten == Forgotten(ALICE, leases_released=1, log_entries_removed=2, calls_removed=2)
    assert forgotten.complete
    assert forgotten.to_json() == {
        "visitor_id": ALICE,
        "leases_released": 1,
        "log_entries_removed": 2,
        "calls_removed": 2,
        "complete": True,
        "error": None,
    }
    # her number went back to the pool as a release: counted, no longer live
    stats = engine.stats().pools
    assert sum(p.live for p in stats) == live_before - 1
    assert sum(p.released for p in stats) == released_before + 1
    # others untouched
    assert {v: _of(engine.leases(), v) for v in (BOB, CAROL)} == others_before
    assert engine.calls() == calls_before
    assert {r.call.call_id for r in calls_before} == {"CA-bob-1", "CA-carol-1", "CA-bob-2"}
    # no trace in what the store answers, nor in what it holds
    members = [_member(lease_id) for lease_id in alice_leases]
    secrets = [ALICE, ALICE_GCLID, ALICE_CALLER, *alice_leases, *members]
    texts = [repr(engine.leases()), repr(engine.calls())]
    if not isinstance(store, MemoryStore):
        held = stored_text(store)
        assert BOB in held
        assert BOB_CALLER in held
        assert CAROL in held
        texts.append(held)
    for text in texts:
        for secret in secrets:
            assert secret not in text
    # a new visit of the same id is a first visit
    again = engine.visit(ALICE, "https://shop.example/", None, HUMAN)
    assert again.outcome == "new"


def test_forget_is_idempotent_and_an_unknown_visitor_removes_nothing(
    make_store: StoreMaker,
) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    _traffic(engine, clock)
    assert engine.forget("nobody-here") == Forgotten("nobody-here")
    assert len(engine.calls()) == 5
    assert len(engine.leases()) == 4
    first = engine.forget(BOB)
    assert (first.leases_released, first.log_entries_removed, first.calls_removed) == (1, 1, 2)
    assert engine.forget(BOB) == Forgotten(BOB)
    assert len(engine.calls()) == 3
    assert _of(engine.leases(), ALICE)


def test_forget_after_the_lease_ran_out(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    _traffic(engine, clock)
    clock.advance(7 * 86_400)  # every hold ran out, unnoticed by the pools
    forgotten = engine.forget(CAROL)
    assert (forgotten.leases_released, forgotten.log_entries_removed) == (0, 1)
    assert forgotten.calls_removed == 1
    assert not _of(engine.leases(), CAROL)


def test_an_invalid_visitor_id_is_a_value_error() -> None:
    engine = site(MemoryStore())
    for bad in ("", "x" * 257, None, 12):
        with pytest.raises(ValueError, match="visitor_id"):
            engine.forget(bad)


def test_a_store_failure_is_reported_not_raised() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    forgotten = site(store).forget(ALICE)
    assert not forgotten.complete
    assert forgotten.error is not None
    assert "StoreError" in forgotten.error
    assert forgotten.to_json()["complete"] is False
    store.close()


def test_the_store_protocol_has_forget() -> None:
    assert isinstance(MemoryStore(), Store)
    assert callable(Store.forget)


# ---- the command -------------------------------------------------------------------


def test_the_forget_command(redis_server: RedisServer) -> None:
    live = Site(redis_server)
    engine = live.engine
    visit = engine.visit(
        ALICE, f"https://www.example.co.uk/tyres?gclid={ALICE_GCLID}", GOOGLE, HUMAN
    )
    engine.visit(BOB, "https://www.example.co.uk/", GOOGLE, HUMAN)
    assert visit.number is not None
    engine.record_call(Call("CA-cli-1", visit.number, engine.clock(), ALICE_CALLER, 5.0))

    done = live.run("forget", ALICE)
    assert done.returncode == 0, done.stderr
    assert "1 live lease released" in done.stdout
    assert "1 lease-log entry" in done.stdout
    assert "1 call removed" in done.stdout
    assert live.json("forget", ALICE) == {
        "visitor_id": ALICE,
        "leases_released": 0,
        "log_entries_removed": 0,
        "calls_removed": 0,
        "complete": True,
        "error": None,
    }
    assert not _of(engine.leases(), ALICE)
    assert _of(engine.leases(), BOB)
    assert engine.calls() == []
    reader = RedisStore(live.url, namespace=live.namespace)
    held = stored_text(reader)
    reader.close()
    assert BOB in held
    for secret in (ALICE, ALICE_GCLID, ALICE_CALLER):
        assert secret not in held
    bad = live.run("forget", "")
    assert bad.returncode == 2
    assert "visitor_id" in bad.stderr


def test_forgetting_the_visitor_who_displaced_another(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    store = make_store()
    engine = Engine(pools(), store, clock=clock, policy="recycle")
    first = engine.visit(BOB, f"https://shop.example/?gclid={BOB_GCLID}", GOOGLE, HUMAN)
    clock.advance(5)
    engine.visit(CAROL, "https://shop.example/?gclid=CarolClick", GOOGLE, HUMAN)
    clock.advance(5)
    taker = engine.visit(ALICE, f"https://shop.example/?gclid={ALICE_GCLID}", GOOGLE, HUMAN)
    assert taker.outcome == "recycled"
    assert taker.number == first.number
    assert first.number is not None
    (bob,) = _of(engine.leases(), BOB)
    assert bob.displaced_by == taker.lease_id
    # bob's call, recorded after the displacement: its lease names alice's in displaced_by
    engine.record_call(Call("CA-bob", first.number, START + 2, BOB_CALLER, 9.0))
    (call,) = engine.calls()
    assert call.lease is not None
    assert call.lease.displaced_by == taker.lease_id
    forgotten = engine.forget(ALICE)
    assert (forgotten.leases_released, forgotten.log_entries_removed) == (1, 1)
    (bob_after,) = _of(engine.leases(), BOB)
    assert bob_after.displaced_by is None
    assert bob_after.end_reason == "displaced"
    assert taker.lease_id is not None
    assert taker.lease_id not in repr(engine.leases()) + repr(engine.calls())
    (call_after,) = engine.calls()
    assert call_after.lease is not None
    assert call_after.lease.displaced_by is None
    assert call_after.call == call.call
    if not isinstance(store, MemoryStore):
        held = stored_text(store)
        assert BOB_CALLER in held
        for secret in (ALICE, ALICE_GCLID, taker.lease_id, _member(taker.lease_id)):
            assert secret not in held
