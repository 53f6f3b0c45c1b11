"""The engine's per-request entry points on untrusted input: times, visitor ids, hostile
objects and dialled numbers as telephony systems report them."""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dni_engine
from dni_engine import Attribution, Decision, Engine
from dni_engine.engine import MAX_DIALLED, MAX_VISITOR_ID
from dni_engine.errors import ConfigError
from dni_engine.leases import OUTCOMES, Lease, SimulatedClock
from dni_engine.rules import Explanation
from dni_engine.schema import AnyPool, NumberPool
from dni_engine.stores import MemoryStore, Store
from tests.conftest import SEED_KINDS, load_example

HUMAN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
CRAWLER = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
START = 1_700_000_000.0
AD = "https://shop.example/cars?gclid=EAIaIQ"
GOOGLE = "https://www.google.co.uk/"
N1 = "+441174090162"  # the Bristol pool's first number
HOLD = 30 * 60.0  # its match_period
PAGE = '<p>Call 0101 123 1234 or <a href="tel:01011231234">tap</a></p>'

StoreFactory = Callable[[], Store]
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    # One log handler collects every example's records; checked once at the end.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def seed_pools() -> list[AnyPool]:
    return [NumberPool.model_validate(load_example(f"{kind}.response")) for kind in SEED_KINDS]


def bristol() -> NumberPool:
    return NumberPool.model_validate(load_example("geographic-city.response"))


class Spy:
    """A store that passes every call on and remembers the names of the calls."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call


def spied(store: Store, clock: SimulatedClock, **options: Any) -> tuple[Engine, Spy]:
    spy = Spy(store)
    return Engine([bristol()], cast(Store, spy), clock=clock, **options), spy


def ad_visit(engine: Engine, visitor: object, at: object = None) -> Decision:
    return engine.visit(visitor, url=AD, referrer=GOOGLE, user_agent=HUMAN, at=at)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("dni_engine")]


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


# ---- times ------------------------------------------------------------------------------


class Hour(enum.IntEnum):
    LATER = int(START) + 3600


class Seconds(float):
    """A float subclass whose arithmetic would lie; the engine reads the float itself."""

    def __sub__(self, other: object) -> float:
        raise RuntimeError("hostile")

    def __float__(self) -> float:
        raise RuntimeError("hostile")


class NoOffset(tzinfo):
    """A tzinfo without an offset: its datetimes are naive in effect."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


class FailingZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        raise RuntimeError("hostile")


POISONED_TIMES = [
    pytest.param(time.time() * 1000, id="milliseconds"),
    pytest.param(1e308, id="1e308"),
    pytest.param("1e308", id="str"),
    pytest.param(True, id="True"),
    pytest.param(False, id="False"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(math.nan, id="nan"),
    pytest.param(10**400, id="huge-int"),
    pytest.param(int(START) + 3600, id="int-an-hour-ahead"),
    pytest.param(Hour.LATER, id="IntEnum-an-hour-ahead"),
    pytest.param(START + 61, id="just-beyond-the-skew"),
    pytest.param(datetime.fromtimestamp(START + 7200, UTC), id="aware-datetime-ahead"),
    pytest.param(datetime(2024, 1, 1), id="naive-datetime"),
    pytest.param(datetime(2024, 1, 1, tzinfo=NoOffset()), id="tzinfo-without-offset"),
    pytest.param(datetime(2024, 1, 1, tzinfo=FailingZone()), id="failing-tzinfo"),
    pytest.param(b"1700000000", id="bytes"),
    pytest.param([START], id="list"),
    pytest.param(object(), id="object"),
]


@pytest.mark.parametrize("poisoned", POISONED_TIMES)
def test_a_poisoned_time_is_answered_at_the_clock_and_leases_still_expire(
    store_factory: StoreFactory, clock: SimulatedClock, poisoned: object
) -> None:
    engine, _ = spied(store_factory(), clock)
    first = ad_visit(engine, "alice", at=poisoned)
    assert (first.outcome, first.at, first.started, first.expires) == (
        "new",
        START,
        START,
        START + HOLD,
    )
    assert engine.rejected_times == 1
    clock.advance(HOLD)  # alice's hold ran out in the clock's time
    again = ad_visit(engine, "alice")
    assert (again.outcome, again.at) == ("new", START + HOLD)
    assert again.lease_id != first.lease_id
    assert engine.pool_stats("31849").expired == 1
    call = engine.attribute_call(N1, at=START + 10)
    assert call.lease is not None
    assert call.lease.lease_id == first.lease_id
    assert engine.rejected_times == 1


@pytest.mark.parametrize("poisoned", POISONED_TIMES)
def test_a_poisoned_call_or_session_end_is_answered_at_the_clock(
    store_factory: StoreFactory, clock: SimulatedClock, poisoned: object
) -> None:
    engine, _ = spied(store_factory(), clock)
    d = ad_visit(engine, "alice")
    call = engine.attribute_call(N1, at=poisoned)
    assert (call.at, call.kind, call.lease and call.lease.lease_id) == (START, "lease", d.lease_id)
    ended = engine.end_session("alice", at=poisoned)
    assert ended is not None
    assert (ended.ended, ended.end_reason) == (START, "released")
    assert engine.rejected_times == 2
    clock.advance(HOLD)
    assert ad_visit(engine, "bob").at == START + HOLD


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(START, START, id="now"),
        pytest.param(START + 60, START + 60, id="at-the-skew"),
        pytest.param(int(START) + 30, START + 30, id="int"),
        pytest.param(Seconds(START + 5), START + 5, id="float-subclass"),
        pytest.param(datetime.fromtimestamp(START + 1, UTC), START + 1, id="aware-datetime"),
        pytest.param(
            datetime.fromtimestamp(START, timezone(timedelta(hours=5))), START, id="offset"
        ),
    ],
)
def test_real_times_are_taken_as_given(
    store_factory: StoreFactory, clock: SimulatedClock, at: object, expected: float
) -> None:
    engine, _ = spied(store_factory(), clock)
    d = ad_visit(engine, "alice", at=at)
    assert (d.outcome, d.at) == ("new", expected)
    assert engine.attribute_call(N1, at=at).at == expected
    assert engine.rejected_times == 0


def test_calls_may_be_attributed_long_after(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine, _ = spied(store_factory(), clock)
    d = ad_visit(engine, "alice")
    clock.advance(7 * 24 * 3600)
    call = engine.attribute_call(N1, at=START + 60)  # from the log, a week later
    assert (call.at, call.lease and call.lease.lease_id) == (START + 60, d.lease_id)
    assert engine.rejected_times == 0


def test_a_past_visit_is_handled_at_the_stores_latest_time(
    store_factory: StoreFactory, clock: SimulatedClock
) -> None:
    engine, _ = spied(store_factory(), clock)
    ad_visit(engine, "alice")
    late = ad_visit(engine, "bob", at=START - 3600)
    assert (late.outcome, late.at) == ("new", START)
    assert engine.rejected_times == 0


def test_the_skew_is_a_constructor_option_on_any_clock() -> None:
    clock = SimulatedClock(100.0)
    strict = Engine([bristol()], clock=clock, max_clock_skew=0)
    assert ad_visit(strict, "a", at=100.5).at == 100.0
    assert strict.rejected_times == 1
    clock.advance(1)
    assert ad_visit(strict, "b", at=100.5).at == 100.5  # now in the past
    lenient = Engine([bristol()], clock=SimulatedClock(100.0), max_clock_skew=math.inf)
    assert ad_visit(lenient, "a", at=1e300).at == 1e300
    assert ad_visit(lenient, "b", at=math.inf).at == 1e300  # still not a finite time
    assert lenient.rejected_times == 1


@pytest.mark.parametrize("skew", [-1.0, -math.inf, math.nan])
def test_a_bad_skew_is_a_config_error(skew: float) -> None:
    with pytest.raises(ConfigError, match="max_clock_skew"):
        Engine([bristol()], max_clock_skew=skew)


@pytest.mark.parametrize(
    "skew",
    [
        "60",
        None,
        pytest.param(
            True,
            marks=pytest.mark.skipif(dni_engine.COMPILED, reason="compiled, True is read as 1.0"),
        ),
    ],
)
def test_a_skew_that_is_not_a_number_is_refused(skew: Any) -> None:
    # A compiled build checks the declared type itself, before the engine can.
    with pytest.raises(TypeError if dni_engine.COMPILED else ConfigError):
        Engine([bristol()], max_clock_skew=skew)


def test_rejected_times_are_warned_about_once_without_a_traceback(
    clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine([bristol()], clock=clock)
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        for poisoned in (1e308, "1e308", True, math.nan):
            ad_visit(engine, "alice", at=poisoned)
            engine.attribute_call(N1, at=poisoned)
    (record,) = warnings_of(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "clock" in record.getMessage()
    assert engine.rejected_times == 8


# ---- visitor ids ------------------------------------------------------------------------


class Hostile:
    """Every method a careless engine might call raises."""

    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __str__ = __repr__ = __format__ = __eq__ = __ne__ = __lt__ = __le__ = _fail
    __bool__ = __len__ = __iter__ = __float__ = __int__ = __index__ = _fail
    __hash__ = __getitem__ = __contains__ = __add__ = __sub__ = __call__ = _fail  # type: ignore[assignment]


class HostileStr(str):
    """A str whose own methods all raise: only its characters can be trusted."""

    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __str__ = __repr__ = __format__ = __eq__ = __ne__ = __lt__ = __le__ = _fail  # type: ignore[assignment]
    __bool__ = __len__ = __iter__ = __getitem__ = __contains__ = __add__ = _fail  # type: ignore[assignment]
    __hash__ = strip = lower = partition = split = encode = isascii = startswith = _fail  # type: ignore[assignment]
    translate = replace = find = join = __mod__ = __mul__ = _fail  # type: ignore[assignment]


class Liar:
    """Claims to be a str (``isinstance`` believes it) without being one."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return str


class Raising:
    """Its ``__class__`` raises, which ``isinstance`` consults."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        raise RuntimeError("hostile")


# Factories: pytest looks into parameter values, and some of these raise when looked at.
INVALID_IDS: list[Any] = [
    pytest.param(lambda: None, id="None"),
    pytest.param(lambda: b"alice", id="bytes"),
    pytest.param(lambda: 42, id="int"),
    pytest.param(lambda: 4.2, id="float"),
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "x" * (MAX_VISITOR_ID + 1), id="too-long"),
    pytest.param(lambda: "é" * (MAX_VISITOR_ID + 1), id="too-long-non-ascii"),
    pytest.param(lambda: "\ud800", id="lone-surrogate"),
    pytest.param(lambda: "alice\udcff", id="surrogate-escape"),
    pytest.param(lambda: ["alice"], id="list"),
    pytest.param(lambda: ("alice",), id="tuple"),
    pytest.param(lambda: Hostile(), id="hostile"),
    pytest.param(lambda: Liar(), id="liar"),
    pytest.param(lambda: Raising(), id="raising-class"),
    pytest.param(lambda: HostileStr(""), id="hostile-empty-str"),
]

VALID_IDS = [
    pytest.param("alice", "alice", id="ascii"),
    pytest.param("x" * MAX_VISITOR_ID, "x" * MAX_VISITOR_ID, id="longest"),
    pytest.param("é" * MAX_VISITOR_ID, "é" * MAX_VISITOR_ID, id="longest-non-ascii"),
    pytest.param("😀" * MAX_VISITOR_ID, "😀" * MAX_VISITOR_ID, id="astral"),
    pytest.param("a\x00b\x7f\n", "a\x00b\x7f\n", id="control-characters"),
    pytest.param("}{v:}", "}{v:}", id="braces"),
    pytest.param(" ", " ", id="space"),
    pytest.param(HostileStr("mallory"), "mallory", id="hostile-str-subclass"),
]


@pytest.mark.parametrize("make", INVALID_IDS)
def test_an_invalid_visitor_id_gets_one_outcome_without_a_store_call(
    store_factory: StoreFactory, clock: SimulatedClock, make: Callable[[], object]
) -> None:
    bad = make()
    engine, spy = spied(store_factory(), clock)
    before = len(spy.calls)
    for agent in (HUMAN, CRAWLER, None):
        d = engine.visit(bad, url=AD, referrer=GOOGLE, user_agent=agent)
        assert d == Decision("", START, "invalid_visitor")
    assert engine.end_session(bad) is None
    assert spy.calls[before:] == []
    assert engine.outcome_count("invalid_visitor") == 3
    assert engine.pool_stats("31849").live == 0
    assert engine.leases() == []
    assert PAGE is engine.rewrite(PAGE, d)


@pytest.mark.parametrize(("given", "plain"), VALID_IDS)
def test_a_valid_visitor_id_is_held_by_every_store(
    store_factory: StoreFactory, clock: SimulatedClock, given: object, plain: str
) -> None:
    engine, _ = spied(store_factory(), clock)
    d = ad_visit(engine, given)
    assert (d.outcome, d.number, d.visitor_id, type(d.visitor_id)) == ("new", N1, plain, str)
    clock.advance(60)
    again = ad_visit(engine, plain)
    assert (again.outcome, again.lease_id) == ("kept", d.lease_id)
    (lease,) = engine.leases()
    assert lease.visitor_id == plain
    call = engine.attribute_call(N1)
    assert call.lease is not None
    assert call.lease.visitor_id == plain
    ended = engine.end_session(given)
    assert ended is not None
    assert (ended.lease_id, ended.visitor_id) == (d.lease_id, plain)


def test_alternating_bad_and_good_ids_warn_at_most_once(
    store_factory: StoreFactory, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(seed_pools(), store_factory(), clock=clock)
    reference = Engine(seed_pools(), MemoryStore(), clock=clock)
    bad_ids: list[object] = [None, b"x", "", "\ud800", 7, "y" * 300, HostileStr("")]
    answers: list[tuple[str, str | None, str]] = []
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        for i in range(1000):
            visitor = bad_ids[i // 2 % len(bad_ids)] if i % 2 == 0 else f"v{i % 20}"
            d = ad_visit(engine, visitor)
            assert ad_visit(reference, visitor)[:4] == d[:4]  # the same on every store
            answers.append((d.outcome, d.number, d.visitor_id))
            clock.advance(7)
    assert len(warnings_of(caplog)) <= 1
    outcomes = [outcome for outcome, _, _ in answers]
    assert outcomes[::2] == ["invalid_visitor"] * 500
    assert set(outcomes[1::2]) == {"new", "kept", "overflow"}
    assert engine.outcome_count("invalid_visitor") == 500


def test_invalid_visitor_is_an_outcome_counted_with_the_others(clock: SimulatedClock) -> None:
    assert "invalid_visitor" in OUTCOMES
    engine = Engine([bristol()], clock=clock)
    ad_visit(engine, None)
    ad_visit(engine, "alice")
    stats = engine.stats()
    assert stats.outcomes["invalid_visitor"] == 1
    assert stats.visits == 2


# ---- hostile values: the entry points never raise -------------------------------------------


class HostileFloat(float):
    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __float__ = __sub__ = __le__ = __lt__ = __eq__ = __hash__ = __repr__ = __bool__ = _fail  # type: ignore[assignment]


class HostileInt(int):
    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __float__ = __index__ = __sub__ = __le__ = __eq__ = __hash__ = __repr__ = _fail  # type: ignore[assignment]


class HostileDatetime(datetime):
    def _fail(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    timestamp = utcoffset = __eq__ = __hash__ = __repr__ = _fail  # type: ignore[assignment]


def surrogates() -> st.SearchStrategy[str]:
    return st.text(st.characters(categories=["Cs"]) | st.characters(), min_size=1, max_size=20)


def strings() -> st.SearchStrategy[str]:
    return (
        st.text(max_size=40)
        | surrogates()
        | st.sampled_from([AD, GOOGLE, HUMAN, N1, "tel:" + N1, "0117 409 0162", "alice"])
        | st.integers(1, 200_000).map(lambda n: "9" * n)
        | st.just("https://shop.example/?gclid=" + "%" * 70_000)
    )


def scalars() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers() | st.just(10**400),
        st.floats(),  # NaN and the infinities included
        st.binary(max_size=20),
        strings(),
        strings().map(HostileStr),
        st.floats().map(HostileFloat),
        st.integers(-(2**62), 2**62).map(HostileInt),
        st.datetimes(timezones=st.none() | st.timezones()),
        # built, not st.just: hypothesis shows a just() value with repr()
        st.builds(lambda: HostileDatetime(2024, 1, 1, tzinfo=UTC)),
        st.builds(lambda: datetime(2024, 1, 1, tzinfo=FailingZone())),
        st.builds(Hostile),
        st.builds(Liar),
        st.builds(Raising),
        st.just(object()),
    )


def hostile() -> st.SearchStrategy[object]:
    """Anything at all, nested in containers too."""
    return st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            | st.frozensets(st.integers(), max_size=3)
        ),
        max_leaves=6,
    )


def decisions() -> st.SearchStrategy[object]:
    """Decisions with any field values, real ones, and things that only look like one."""
    fields = st.sampled_from([None, "31849", "31850", N1, "+441174090163"]) | hostile()
    made_up = st.builds(
        Decision,
        visitor_id=hostile(),
        at=hostile(),
        outcome=st.sampled_from(OUTCOMES) | hostile(),
        number=fields,
        pool_key=fields,
    )
    real = st.just(Decision("alice", START, "new", N1, "31849"))
    truncated = st.just(tuple.__new__(Decision, ()))
    return made_up | real | truncated | hostile() | st.builds(tuple, st.lists(fields, max_size=14))


class NoTracebacks(logging.Handler):
    """Collects the engine's log records: hostile input must never look like a bug."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def no_tracebacks() -> Iterator[NoTracebacks]:
    handler = NoTracebacks()
    logger = logging.getLogger("dni_engine")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records if r.exc_info] == []
    assert [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR] == []


_ENGINES: dict[str, Engine] = {}


def shared_engine() -> Engine:
    """One engine for every example (building one per example would dominate the run)."""
    if "memory" not in _ENGINES:
        _ENGINES["memory"] = Engine(seed_pools(), MemoryStore(), clock=SimulatedClock(START))
    return _ENGINES["memory"]


@SETTINGS
@given(visitor=hostile(), url=hostile(), referrer=hostile(), agent=hostile(), at=hostile())
def test_visit_never_raises(
    no_tracebacks: NoTracebacks,
    visitor: object,
    url: object,
    referrer: object,
    agent: object,
    at: object,
) -> None:
    d = shared_engine().visit(visitor, url, referrer, agent, at)
    assert type(d) is Decision
    assert d.outcome in OUTCOMES
    assert type(d.visitor_id) is str
    assert type(d.at) is float
    assert math.isfinite(d.at)
    assert d.at <= START + 60


@SETTINGS
@given(number=hostile(), at=hostile())
def test_attribute_call_never_raises(
    no_tracebacks: NoTracebacks, number: object, at: object
) -> None:
    call = shared_engine().attribute_call(number, at)
    assert type(call) is Attribution
    assert type(call.number) is str
    assert type(call.at) is float
    assert math.isfinite(call.at)


@SETTINGS
@given(url=hostile(), referrer=hostile(), agent=hostile())
def test_explain_never_raises(
    no_tracebacks: NoTracebacks, url: object, referrer: object, agent: object
) -> None:
    explanation = shared_engine().explain(url, referrer, agent)
    assert type(explanation) is Explanation
    str(explanation)
    if not issubclass(type(url), str):
        assert explanation.match is None


@SETTINGS
@given(page=hostile() | st.just(PAGE) | st.just(PAGE).map(HostileStr), decision=decisions())
def test_rewrite_never_raises(no_tracebacks: NoTracebacks, page: object, decision: object) -> None:
    engine = shared_engine()
    for swapped in (engine.rewrite(page, decision), engine.rewrite_text(page, decision)):
        if type(decision) is not Decision or not issubclass(type(page), str):
            assert swapped is page
        else:
            assert type(swapped) is str or swapped is page


@SETTINGS
@given(visitor=hostile(), at=hostile())
def test_end_session_never_raises(no_tracebacks: NoTracebacks, visitor: object, at: object) -> None:
    ended = shared_engine().end_session(visitor, at)
    assert ended is None or type(ended) is Lease


@pytest.mark.skipif(dni_engine.COMPILED, reason="a compiled engine's attributes keep their types")
def test_an_explanation_that_fails_is_one_without_a_match(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def explain(self, *args: object) -> Explanation:
            raise RuntimeError("a bug in the matcher")

    engine = Engine([bristol()])
    engine._rules = cast(Any, Broken())
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        for _ in range(3):
            explanation = engine.explain(AD, GOOGLE, HUMAN)
            assert type(explanation) is Explanation
            assert explanation.match is None
            assert "no pool matches" in str(explanation)
    (record,) = warnings_of(caplog)  # a bug: with its traceback, once
    assert record.exc_info is not None


@pytest.mark.parametrize("make", [Hostile, lambda: HostileStr("x"), Liar, Raising, lambda: [[]]])
def test_hostile_values_on_every_store(
    store_factory: StoreFactory, make: Callable[[], object]
) -> None:
    value = make()
    engine = Engine([bristol()], store_factory(), clock=SimulatedClock(START))
    assert engine.visit(value, value, value, value, value).outcome in OUTCOMES
    assert engine.visit("alice", value, value, HUMAN, value).outcome == "no_match"
    assert engine.attribute_call(value, value).kind == "unknown"
    assert engine.explain(value, value, value).match is None
    assert engine.rewrite(value, value) is value
    assert engine.end_session(value, value) is None


def test_rewrite_leaves_the_page_for_anything_but_a_decision(
    clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine([bristol()], clock=clock)
    real = ad_visit(engine, "alice")
    assert engine.rewrite(PAGE, real) != PAGE
    unhashable = real._replace(number=["+441174090162"])
    bad_key = real._replace(pool_key={"31849"})
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        for _ in range(100):
            for decision in (None, "new", tuple(real), unhashable, bad_key, Hostile()):
                assert engine.rewrite(PAGE, decision) is PAGE
                assert engine.rewrite_text(PAGE, decision) is PAGE
            assert engine.rewrite(b"<p>0101 123 1234</p>", real) == b"<p>0101 123 1234</p>"
            assert engine.rewrite(None, real) is None
    records = warnings_of(caplog)
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in records)
    assert len(records) <= 2  # one per kind of problem, not one per page
    subclassed = engine.rewrite(HostileStr(PAGE), real)
    assert type(subclassed) is str
    assert subclassed == engine.rewrite(PAGE, real)


# ---- calls from telephony systems -----------------------------------------------------------


@pytest.mark.parametrize(
    "dialled",
    [
        "tel:+441174090162",
        "tel://+441174090162",
        "TEL:+44-117-409-0162",
        "tel:+44.117.409.0162",
        "tel:+44(117)409-0162",
        "tel:+44 117 409 0162",
        "tel:+441174090162;ext=123",
        "tel:+441174090162;isub=1411;ext=7",
        "tel:4090162;phone-context=+44-117",
        "tel:01174090162;phone-context=example.com",
        "tel:0117%20409%200162",
        "tel:%2B441174090162",
        "  tel:+441174090162?x=y  ",
        "sip:+441174090162@pbx.example.com",
        "sip:+441174090162@pbx.example.com;user=phone",
        "sips:+441174090162@pbx.example.com:5061;transport=tls",
        "sip:+441174090162;npdi@gw.example.com;user=phone",
        "sip:+44-117-409-0162:secret@gw.example.com",
        "sip:01174090162@gw.example.com?subject=call",
        "SIP:%2B441174090162@gw.example.com",
        "sip://+441174090162@gw.example.com",
    ],
)
def test_a_call_from_a_telephony_uri_is_attributed(
    store_factory: StoreFactory, clock: SimulatedClock, dialled: str
) -> None:
    engine = Engine(seed_pools(), store_factory(), clock=clock)
    d = ad_visit(engine, "alice")
    clock.advance(60)
    call = engine.attribute_call(dialled)
    assert (call.number, call.kind) == (N1, "lease")
    assert call.lease is not None
    assert call.lease.lease_id == d.lease_id
    (lease,) = engine.leases(number=dialled)
    assert lease.lease_id == d.lease_id


@pytest.mark.parametrize(
    "dialled",
    [
        "tel:",
        "sip:",
        "sip:alice@example.com",
        "sip:@example.com",
        "tel:+15550100",
        "tel:;ext=1",
        "mailto:+441174090162",
        "tel:" + "1" * MAX_DIALLED,
        "tel:+441174090162;ext=" + "1" * MAX_DIALLED,
        "0" * 100_000,
        "tel:%ZZ",
        "tel:%ED%A0%80",
        "tel:4090162;phone-context=+1-212",
    ],
)
def test_other_dialled_texts_are_unknown(
    store_factory: StoreFactory, clock: SimulatedClock, dialled: str
) -> None:
    engine = Engine(seed_pools(), store_factory(), clock=clock)
    ad_visit(engine, "alice")
    started = time.perf_counter()
    call = engine.attribute_call(dialled)
    assert time.perf_counter() - started < 0.5
    assert (call.kind, call.lease) == ("unknown", None)
