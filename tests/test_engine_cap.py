"""The client cap through the Engine: its options, the ``client`` argument, the counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import dni_engine
from dni_engine import Engine, PoolOptions
from dni_engine.engine import DEFAULT_CLIENT_CAP, MAX_CLIENT_KEY
from dni_engine.errors import ConfigError
from dni_engine.leases import OUTCOMES, SimulatedClock
from dni_engine.schema import AnyPool
from dni_engine.stores import Store
from dni_engine.testing import build_pool, source

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
START = 1_700_000_000.0
HOME = "https://shop.example/"
AD = "https://shop.example/?gclid=abc"
GOOGLE = "https://www.google.co.uk/"
SCRIPT = "0f" * 16  # a client key as the web integration makes them (a keyed hash)

StoreFactory = Callable[[], Store]


def pools() -> list[AnyPool]:
    """``site`` (any referrer, 8 numbers, key 1) and ``ads`` (Google + gclid, 4 numbers, key 2)."""
    return [
        build_pool(
            id=1,
            name="site",
            numbers=[f"+44117409{i:04d}" for i in range(8)],
            sources=[source("Any")],
        ),
        build_pool(
            id=2,
            name="ads",
            numbers=[f"+44117408{i:04d}" for i in range(4)],
            sources=[source("Google", ["gclid=*"])],
        ),
    ]


def first_visits(engine: Engine, count: int, client: object, url: str = HOME) -> list[str]:
    """Outcomes of ``count`` first visits from ``client`` (an ad click when ``url`` is ``AD``)."""
    referrer = GOOGLE if url == AD else None
    return [
        engine.visit(f"fresh-{i}-{url}", url, referrer, HUMAN, client=client).outcome
        for i in range(count)
    ]


def test_the_default_cap_is_three_per_pool(store_factory: StoreFactory) -> None:
    engine = Engine(pools(), store_factory(), clock=SimulatedClock(START))
    assert DEFAULT_CLIENT_CAP == 3
    assert {t.client_cap for t in engine.terms.values()} == {3}
    assert first_visits(engine, 10, SCRIPT) == ["new"] * 3 + ["capped"] * 7
    # the cap is per pool: the ad pool has its own three places
    ads = [engine.visit(f"ad-{i}", AD, GOOGLE, HUMAN, client=SCRIPT).outcome for i in range(5)]
    assert ads == ["new"] * 3 + ["capped"] * 2
    # another client is served
    assert engine.visit("human", HOME, None, HUMAN, client="another").outcome == "new"
    stats = engine.stats()
    assert stats.outcomes["capped"] == 9
    assert stats.process_outcomes["capped"] == 9
    assert engine.outcome_count("capped") == 9
    assert [p.capped for p in stats.pools] == [7, 2]
    assert sum(stats.outcomes.values()) == stats.visits == 16
    assert "capped" in OUTCOMES


def test_a_capped_visit_keeps_the_page_numbers(store_factory: StoreFactory) -> None:
    engine = Engine(pools(), store_factory(), client_cap=1, clock=SimulatedClock(START))
    engine.visit("a", HOME, None, HUMAN, client=SCRIPT)
    capped = engine.visit("b", HOME, None, HUMAN, client=SCRIPT)
    assert (capped.outcome, capped.number, capped.pool_key) == ("capped", None, "1")
    page = "<p>Call 0117 496 0000</p>"
    assert engine.rewrite(page, capped) == page


def test_a_pool_may_set_its_own_cap(store_factory: StoreFactory) -> None:
    engine = Engine(
        pools(),
        store_factory(),
        client_cap=1,
        options={"ads": PoolOptions(client_cap=0)},
        clock=SimulatedClock(START),
    )
    assert {k: t.client_cap for k, t in engine.terms.items()} == {"1": 1, "2": 0}
    assert first_visits(engine, 3, SCRIPT) == ["new", "capped", "capped"]
    assert first_visits(engine, 4, SCRIPT, AD) == ["new"] * 4


def test_cap_zero_turns_the_cap_off(store_factory: StoreFactory) -> None:
    engine = Engine(pools(), store_factory(), client_cap=0, clock=SimulatedClock(START))
    assert first_visits(engine, 8, SCRIPT) == ["new"] * 8


@pytest.mark.parametrize(
    "client",
    [None, 7, b"0f0f", ["x"], "", "x" * (MAX_CLIENT_KEY + 1), "\ud800"],
    ids=["none", "int", "bytes", "list", "empty", "too-long", "surrogate"],
)
def test_a_client_that_is_not_a_key_applies_no_cap(client: object) -> None:
    engine = Engine(pools(), client_cap=1, clock=SimulatedClock(START))
    assert first_visits(engine, 3, client) == ["new"] * 3


def test_a_str_subclass_is_read_as_its_text() -> None:
    class Key(str):
        def __str__(self) -> str:
            raise AssertionError("never called")

    engine = Engine(pools(), client_cap=1, clock=SimulatedClock(START))
    assert first_visits(engine, 2, Key(SCRIPT)) == ["new", "capped"]
    assert first_visits(engine, 1, SCRIPT, AD) == ["new"]
    assert engine.visit("z", HOME, None, HUMAN, client=SCRIPT).outcome == "capped"


def test_the_longest_client_key_counts() -> None:
    engine = Engine(pools(), client_cap=1, clock=SimulatedClock(START))
    key = "k" * MAX_CLIENT_KEY
    assert first_visits(engine, 2, key) == ["new", "capped"]


def test_the_engine_cap_must_not_be_negative() -> None:
    with pytest.raises(ConfigError) as caught:
        Engine(pools(), client_cap=-1)
    assert [p.path for p in caught.value.problems] == ["client_cap"]


@pytest.mark.parametrize("cap", ["3", 2.5, None])
def test_the_engine_cap_must_be_a_whole_number(cap: object) -> None:
    with pytest.raises(TypeError if dni_engine.COMPILED else ConfigError) as caught:
        Engine(pools(), client_cap=cap)  # type: ignore[arg-type]
    if isinstance(caught.value, ConfigError):
        assert [p.path for p in caught.value.problems] == ["client_cap"]


@pytest.mark.skipif(dni_engine.COMPILED, reason="compiled, a bool is read as an int")
def test_a_bool_is_not_a_cap() -> None:
    with pytest.raises(ConfigError):
        Engine(pools(), client_cap=True)


def test_a_pools_cap_must_be_a_whole_number() -> None:
    with pytest.raises(ConfigError) as caught:
        Engine(pools(), options={"site": PoolOptions(client_cap=-2)})
    assert [p.path for p in caught.value.problems] == ["options['1'].client_cap"]
