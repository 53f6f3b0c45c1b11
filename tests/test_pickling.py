"""Frozen dataclasses of the compiled modules pickle, copy and deep-copy, in either build.

Every frozen dataclass of a module the compiled build compiles (setup.py's
``HOT_PATH``) is built here from real values, most of them by the code that
makes them in use (an engine's visits, attributions and stats, a rule set's
compiled sources, a simulation's call log). Each must survive a pickle round
trip at every protocol, ``copy.copy`` and ``copy.deepcopy`` as an equal value
of the same type that is still frozen. In the compiled pass a subprocess with
the pure build loads what this process pickled and pickles it back, so a value
moves between the builds both ways.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

import dni_engine
from dni_engine import Engine, PoolOptions
from dni_engine.bots import CrawlerMatcher
from dni_engine.engine import EngineStats
from dni_engine.landing import Landing, next_landing
from dni_engine.leases import (
    Attribution,
    Claim,
    Facts,
    Lease,
    PoolStats,
    PoolTerms,
    SimulatedClock,
)
from dni_engine.referrers import (
    CatalogueEntry,
    ReferrerRule,
    catalogue_entry,
    parse_referrer_domain,
)
from dni_engine.rules import compile_pools
from dni_engine.rules.compile import (
    CompiledSource,
    Match,
    _build_index,
    _Entry,
    _Index,
    _ranked_entries,
)
from dni_engine.simulate import SimulatedCall, simulate
from dni_engine.stores import MemoryStore
from dni_engine.stores.memory import StoreFootprint
from dni_engine.testing import build_pool, source
from dni_engine.traffic import SourceMix, TrafficModel
from dni_engine.triggers import Condition, Glob, Trigger, parse_trigger

ROOT = Path(__file__).resolve().parent.parent
START = 1_700_000_000.0
HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
AD = "https://shop.example/cars?gclid=EAIaIQ&utm_source=google&utm_medium=cpc"
GOOGLE = "https://www.google.co.uk/"


def _pools() -> list[object]:
    return [
        build_pool(
            id=1,
            name="brand",
            numbers=["+441174090001", "+441174090002"],
            sources=[source("Any", ["utm_source=*", "utm_campaign=brand*"])],
        ),
        build_pool(
            id=2,
            name="ads",
            numbers=["+441174090011"],
            sources=[source("Google", ["gclid=*"]), source("%.example.org", track_organic=True)],
        ),
    ]


def _engine_values() -> dict[type, object]:
    """Leases, attributions and stats as an engine over a memory store makes them."""
    clock = SimulatedClock(START)
    store = MemoryStore()
    engine = Engine(_pools(), store, clock=clock, options={"ads": PoolOptions(policy="recycle")})
    engine.visit("visitor-1", url=AD, referrer=GOOGLE, user_agent=HUMAN)
    clock.advance(30.0)
    engine.visit("visitor-2", url=AD, referrer=GOOGLE, user_agent=HUMAN)  # recycles
    lease = next(lease for lease in engine.leases() if lease.facts is not None and lease.ended)
    attribution = engine.attribute_call(lease.number, lease.started + 1.0)
    assert attribution.lease is not None
    stats = engine.stats()
    assert stats.pools
    assert isinstance(stats.outcomes, MappingProxyType)
    return {
        Lease: lease,
        Facts: lease.facts,
        Attribution: attribution,
        PoolStats: stats.pools[0],
        EngineStats: stats,
        StoreFootprint: store.footprint(),
    }


def _rule_values() -> dict[type, object]:
    """A rule set's compiled sources, ranked entries, index and a match."""
    rules = compile_pools(_pools())
    sources = [s for pool in rules.sources for s in pool]
    entries = _ranked_entries(
        rules.pools, rules.pool_keys, rules.priorities, rules.active, rules.sources
    )
    match = rules.match(AD, GOOGLE, HUMAN)
    assert match is not None
    return {
        CompiledSource: sources[0],
        _Entry: next(e for e in entries if e.trigger is not None and e.ref_glob is None),
        _Index: _build_index(entries),
        Match: match,
    }


def _simulated_call() -> SimulatedCall:
    traffic = TrafficModel(visitors_per_hour=400.0, hours=1.0, call_share=0.3)
    result = simulate(_pools()[:1], traffic, seed=3, keep_calls=True)
    return result.call_log[0]


def values() -> dict[type, object]:
    """One real instance of every frozen dataclass of the compiled modules, by class."""
    trigger = parse_trigger("utm_source=goo*&utm_medium")
    found: dict[type, object] = {
        Glob: Glob.compile("spring*sale*"),
        Condition: trigger.conditions[0],
        Trigger: trigger,
        CatalogueEntry: catalogue_entry("Google"),
        ReferrerRule: parse_referrer_domain("%.example.org"),
        CrawlerMatcher: CrawlerMatcher.compile(["googlebot", "Spider", "^curl/"], ["spider"]),
        PoolTerms: PoolTerms("k1", "brand", ("+441174090001",), 1800.0, 60.0, "recycle"),
        Claim: Claim("k1", 2, 1, "Google", "gclid=*", Facts("u", "h", "c", True)),
        PoolOptions: PoolOptions(policy="recycle", cooldown=120.0, client_cap=3),
        SourceMix: SourceMix(paid=0.5, organic=0.2),
        TrafficModel: TrafficModel(visitors_per_hour=(10.0, 30.0), mix=SourceMix(bot=0.1)),
        SimulatedCall: _simulated_call(),
        Landing: next_landing(None, AD, GOOGLE, START, site_host="shop.example"),
    }
    found.update(_engine_values())
    found.update(_rule_values())
    return found


VALUES = values()
FROZEN = sorted(VALUES, key=lambda cls: (cls.__module__, cls.__qualname__))


def test_every_frozen_dataclass_of_the_compiled_modules_is_covered() -> None:
    """The classes above are all the frozen dataclasses of setup.py's HOT_PATH."""
    import ast

    setup = ast.parse((ROOT / "setup.py").read_text())
    hot = next(
        node.value
        for node in ast.walk(setup)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOT_PATH"
    )
    expected = set()
    for path in ast.literal_eval(hot):
        module = ast.parse((ROOT / path).read_text())
        for node in module.body:
            if isinstance(node, ast.ClassDef) and any(
                "frozen=True" in ast.unparse(d) for d in node.decorator_list
            ):
                expected.add((path[: -len(".py")].replace("/", "."), node.name))
    assert {(cls.__module__, cls.__name__) for cls in VALUES} == expected


def _assert_same(copied: object, original: object) -> None:
    assert type(copied) is type(original)
    assert copied == original
    name = dataclasses.fields(copied)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(copied, name, getattr(copied, name))
    try:
        expected = hash(original)
    except TypeError:  # a field holds a dict or a read-only view
        return
    assert hash(copied) == expected


@pytest.mark.parametrize("cls", FROZEN, ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(cls: type, protocol: int) -> None:
    value = VALUES[cls]
    _assert_same(pickle.loads(pickle.dumps(value, protocol)), value)


@pytest.mark.parametrize("cls", FROZEN, ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copies(cls: type, how: Callable[[object], object]) -> None:
    value = VALUES[cls]
    _assert_same(how(value), value)


# Run by the other build: loads the pickled values from stdin, checks they are its own
# frozen classes, and writes back their class names and the values pickled again.
_OTHER_BUILD = """
import dataclasses, pickle, sys
import dni_engine
assert dni_engine.COMPILED == (sys.argv[1] == "compiled"), dni_engine.__file__
assert dni_engine.__file__.startswith(sys.argv[2]), dni_engine.__file__
values = pickle.loads(sys.stdin.buffer.read())
for value in values:
    module = sys.modules[type(value).__module__]
    assert module.__file__.endswith(".py") == (sys.argv[1] == "pure"), module.__file__
    name = dataclasses.fields(value)[0].name
    try:
        setattr(value, name, getattr(value, name))
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError(f"{type(value).__name__} is not frozen")
sys.stdout.buffer.write(pickle.dumps([type(v).__qualname__ for v in values]))
sys.stdout.buffer.write(pickle.dumps(values))
"""


def test_values_move_between_the_builds() -> None:
    """What the compiled build pickles loads in the pure build, and the other way round.

    Run in the compiled pass, where the pure build is the checkout's own
    sources; the pure pass has no compiled build it can be sure is current.
    """
    if not dni_engine.COMPILED:
        pytest.skip("run by the compiled pass, against the checkout's pure build")
    originals = [VALUES[cls] for cls in FROZEN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_BUILD, "pure", str(ROOT / "dni_engine")],
        input=pickle.dumps(originals),
        capture_output=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer = io.BytesIO(done.stdout)
    assert pickle.load(answer) == [type(value).__qualname__ for value in originals]
    returned = pickle.load(answer)
    for back, original in zip(returned, originals, strict=True):
        _assert_same(back, original)
