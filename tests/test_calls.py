"""Attribution facts on leases, and the call log, on every store kind (memory, Redis, Cluster)."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from urllib.parse import unquote_plus

import pytest

from dni_engine import Engine, SimulatedClock
from dni_engine.calls import (
    CLICK_IDS,
    MAX_FACT_VALUE,
    MAX_FACTS_URL,
    MAX_UTM,
    Call,
    CallRecord,
    facts_of,
)
from dni_engine.facts import MAX_UTM_NAME, landing_facts
from dni_engine.landing import cap_url
from dni_engine.leases import Facts, Lease, _new_facts, _new_lease
from dni_engine.referrers import classify_host, referrer_host
from dni_engine.rules.visit import CLICK_IDS as PAID_CLICK_IDS
from dni_engine.rules.visit import PAID_MEDIA
from dni_engine.stores.memory import MemoryStore
from dni_engine.stores.redis import RedisStore
from tests.calls_site import (
    AD_NUMBERS,
    ALL_NUMBERS,
    GOOGLE,
    HUMAN,
    OVERFLOW,
    START,
    StoreMaker,
    site,
    stored_text,
    stores_of_kind,
)
from tests.conftest import STORE_KINDS, AwaitedStore

AD = "https://shop.example/cars?gclid=EAIaIQobChMI_Ab-1&utm_source=google&utm_medium=cpc&utm_campaign=Spring%20Sale#top"


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    yield from stores_of_kind(str(request.param), request)


@pytest.fixture(params=[kind for kind in STORE_KINDS if kind != "memory"])
def make_redis_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    yield from stores_of_kind(str(request.param), request)


# ---- facts_of ------------------------------------------------------------------------------


def test_facts_of_an_ad_landing() -> None:
    facts = facts_of(AD, "https://www.google.co.uk/search?q=cars")
    assert facts == Facts(
        landing_url=AD.partition("#")[0],
        referrer_host="www.google.co.uk",
        referrer_class="Google",
        paid=True,
        click_ids=(("gclid", "EAIaIQobChMI_Ab-1"),),
        utm=(("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", "Spring Sale")),
    )
    assert facts.click_id("gclid") == "EAIaIQobChMI_Ab-1"  # case kept: click ids are exact
    assert facts.click_id("msclkid") is None
    assert facts.utm_value("campaign") == facts.utm_value("utm_campaign") == "Spring Sale"


def test_facts_of_a_direct_organic_visit() -> None:
    assert facts_of("https://shop.example/", None) == Facts("https://shop.example/")
    assert facts_of(None, None) == Facts()
    assert facts_of(12, b"x") == Facts()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "paid"),
    [
        ("utm_medium=CPC", True),
        ("utm_medium=paid_social", True),
        ("utm_medium=email", False),
        ("msclkid=abc", True),
        ("fbclid=abc", False),  # Facebook adds it to organic links too
        ("gbraid=abc", True),
        ("", False),
    ],
)
def test_paid_or_organic(query: str, paid: bool) -> None:
    assert facts_of(f"https://shop.example/?{query}", None).paid is paid


def test_every_click_id_is_kept_in_catalogue_order() -> None:
    query = "&".join(f"{name}=V{index}" for index, name in enumerate(reversed(CLICK_IDS)))
    facts = facts_of(f"https://shop.example/?{query}", None)
    assert [name for name, _ in facts.click_ids] == list(CLICK_IDS)
    assert facts.click_id("yclid") == "V0"


def test_facts_are_bounded() -> None:
    long_id = "A" * (MAX_FACT_VALUE * 3)
    utms = "&".join(f"utm_x{i}={'v' * (MAX_FACT_VALUE + 4)}" for i in range(MAX_UTM + 5))
    filler = "&".join(f"p{i}={'z' * 50}" for i in range(40))
    url = f"https://shop.example/{'path/' * 60}?{filler}&gclid={long_id}&{utms}#frag"
    assert MAX_FACTS_URL < len(url) < 8192  # the facts read the first 8,192 characters
    facts = facts_of(url, "https://" + "sub." * 300 + "example.com/")
    assert len(facts.landing_url) <= MAX_FACTS_URL
    assert "#" not in facts.landing_url
    assert facts.click_id("gclid") == "A" * MAX_FACT_VALUE
    assert len(facts.utm) == MAX_UTM
    assert all(len(value) == MAX_FACT_VALUE for _, value in facts.utm)
    assert facts.referrer_host == ""  # longer than DNS allows: no host
    encoded = json.dumps(facts.to_json())
    assert len(encoded) < MAX_FACTS_URL + (1 + MAX_UTM) * (MAX_FACT_VALUE + 40) + 200


def _reference_facts(url: str, referrer: str, keep: frozenset[str]) -> Facts:
    """The facts of a landing read the plain way: the query twice, each field on its own."""
    base, _, query = url.partition("#")[0].partition("?")
    parts = query.split("&", 256)[:256] if query else []

    def name_of(raw: str) -> str:
        return unquote_plus(raw, errors="replace").lower()

    params: dict[str, str] = {}
    for part in parts:
        raw_name, _, raw_value = part.partition("=")
        name = name_of(raw_name)
        if name and name not in params and (name in CLICK_IDS or name.startswith("utm_")):
            params[name] = unquote_plus(raw_value[: 4 * MAX_FACT_VALUE], errors="replace")
    kept = [
        part
        for part in parts
        if (name := name_of(part.partition("=")[0])) in CLICK_IDS
        or name.startswith("utm_")
        or name in keep
    ]
    page = base + ("?" + "&".join(kept) if kept else "")
    click_ids = tuple(
        (name, params[name][:MAX_FACT_VALUE]) for name in CLICK_IDS if params.get(name)
    )
    utm = tuple(
        (name, value[:MAX_FACT_VALUE])
        for name, value in params.items()
        if name.startswith("utm_") and len(name) <= MAX_UTM_NAME
    )[:MAX_UTM]
    if len(page) > MAX_FACTS_URL:
        page = cap_url(page, MAX_FACTS_URL, frozenset(CLICK_IDS) | {n for n, _ in utm})
    medium = params.get("utm_medium")
    paid = bool(PAID_CLICK_IDS & params.keys()) or (
        medium is not None and medium.lower() in PAID_MEDIA
    )
    host = (referrer_host(referrer) or "") if referrer else ""
    referrer_class = (classify_host(host) or "") if host else ""
    return Facts(page, host, referrer_class, paid, click_ids, utm)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "gclid=G1&utm_source=google&utm_medium=cpc&utm_campaign=servicing",
        "yclid=Y&fbclid=F&gclid=G&msclkid=M",  # not in catalogue order
        "gclid=&gclid=second&fbclid=",  # an empty value, then a repeat
        "GCLID=Up&Utm_Source=Mixed&UTM_SOURCE=again&utm_source=third",
        "utm%5Fsource=coded&gcl%69d=coded+id&utm_term=a+b%20c&x%2By=1",
        "utm_content=a%ZZb&utm_term=%E2%82%AC&utm_bad=%FF",  # bad escapes, bad UTF-8
        "ref=keep-me&page=2&=empty-name&utm_=bare&utm_medium=Paid_Social",
        "&&gclid=G&&utm_source=s&",
        "&".join(f"utm_p{i}=v{i}" for i in range(MAX_UTM + 3)),
        "utm_" + "n" * MAX_UTM_NAME + "=long-name&utm_" + "n" * (MAX_UTM_NAME - 4) + "=fits",
        "&".join(f"p{i}=x" for i in range(300)) + "&gclid=after-the-256th",
        "gclid=" + "V" * (MAX_FACT_VALUE * 5) + "&utm_source=" + "%41" * MAX_FACT_VALUE,
    ],
)
@pytest.mark.parametrize("referrer", ["", "https://www.google.co.uk/", "android-app://x.y/"])
def test_landing_facts_read_a_query_in_one_pass_as_read_field_by_field(
    query: str, referrer: str
) -> None:
    keep = frozenset({"ref", "page"})
    for url in (
        f"https://shop.example/p?{query}#frag",
        f"https://shop.example/{'a/' * 900}?{query}",
    ):
        facts = landing_facts(url, referrer, keep)
        assert facts == _reference_facts(url, referrer, keep)
        assert type(facts) is Facts


def test_facts_and_leases_built_the_fast_way_are_the_constructors_values() -> None:
    """The compiled build sets the fields of Facts and Lease directly: the same values."""
    fields = ("https://shop.example/?gclid=G", "www.google.co.uk", "Google", True)
    pairs = ((("gclid", "G"),), (("utm_source", "google"),))
    fast = _new_facts(*fields, *pairs)
    plain = Facts(*fields, *pairs)
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert repr(fast) == repr(plain)
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert dataclasses.replace(fast, paid=False) == Facts(
        fields[0], fields[1], fields[2], False, *pairs
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.paid = False  # type: ignore[misc]
    row = ("p.7", "41006", "+441174960602", "v1", 10.0, 20.0, 620.0, 30.0, "displaced")
    rest = ("p.8", 2, 1, "google.co.uk", "gclid", fast)
    lease = _new_lease(*row, *rest)  # type: ignore[arg-type]
    again = Lease(*row, *rest)  # type: ignore[arg-type]
    assert lease == again
    assert hash(lease) == hash(again)
    assert repr(lease) == repr(again)
    assert [getattr(lease, f.name) for f in dataclasses.fields(Lease)] == [*row, *rest]
    assert lease.window_contains(619.0)
    assert not lease.live_at(30.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lease.ended = None  # type: ignore[misc]
    live = _new_lease(*row[:7], None, None, None, 0, 0, "", None, None)
    assert live == Lease(*row[:7])
    assert live.end == 620.0


def test_facts_json_round_trip_and_errors() -> None:
    facts = facts_of(AD, GOOGLE)
    assert Facts.from_json(json.loads(json.dumps(facts.to_json()))) == facts
    with pytest.raises(ValueError, match=r"facts\.paid"):
        Facts.from_json({"paid": "yes"})
    with pytest.raises(ValueError, match=r"facts\.click_ids"):
        Facts.from_json({"click_ids": {"gclid": 3}})


# ---- leases carry facts --------------------------------------------------------------------


def test_a_lease_keeps_its_first_touch_facts(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    first = engine.visit("alice", AD, "https://www.google.co.uk/search?q=cars", HUMAN)
    assert first.outcome == "new"
    assert first.pool_name == "ads"
    clock.advance(60)
    again = engine.visit("alice", "https://shop.example/contact", GOOGLE, HUMAN)
    assert again.outcome == "kept"
    (lease,) = engine.leases(pool="ads")
    assert lease.facts == facts_of(AD, "https://www.google.co.uk/search?q=cars")
    attribution = engine.attribute_call(first.number, clock())
    assert attribution.lease is not None
    assert attribution.lease.facts == lease.facts
    assert attribution.candidates[0].facts == lease.facts


def test_a_visit_without_url_or_referrer_leases_without_facts(make_store: StoreMaker) -> None:
    engine = site(make_store())
    decision = engine.visit("bob", "", None, HUMAN)
    assert decision.pool_name == "all"
    (lease,) = engine.leases(pool="all")
    assert lease.facts is None


def test_bounded_facts_survive_the_store(make_store: StoreMaker) -> None:
    url = f"https://shop.example/?gclid={'G' * 5000}&" + "&".join(
        f"utm_{i}={'é' * 400}" for i in range(30)
    )
    engine = site(make_store())
    engine.visit("carol", url, GOOGLE, HUMAN)
    (lease,) = engine.leases()
    assert lease.facts is not None
    assert lease.facts == facts_of(url, GOOGLE)
    assert lease.facts.click_id("gclid") == "G" * MAX_FACT_VALUE
    assert len(lease.facts.landing_url) <= MAX_FACTS_URL


# ---- the call log --------------------------------------------------------------------------


def test_a_call_in_a_hold_is_logged_with_the_visitors_facts(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    decision = engine.visit("alice", AD, GOOGLE, HUMAN)
    assert decision.number is not None
    clock.advance(120)
    record = engine.record_call(Call("CA1", decision.number, clock(), "+447700900123", 75.0))
    assert record.stored
    assert not record.replayed
    assert record.attribution.kind == "lease"
    assert record.attribution.confidence == 1.0
    assert record.lease is not None
    assert record.lease.visitor_id == "alice"
    assert record.facts is not None
    assert record.facts.click_id("gclid") == "EAIaIQobChMI_Ab-1"
    assert record.reason is None
    assert record.recorded == clock()
    assert engine.calls() == [record]


def test_a_replayed_delivery_attributes_once(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    number = engine.visit("alice", AD, GOOGLE, HUMAN).number
    assert number is not None
    call = Call("CA1", number, clock() + 10, "+447700900123", 30.0, "twilio")
    first = engine.record_call(call)
    clock.advance(3600)  # the hold is over: attributing again would give the pool only
    later = engine.record_call(Call("CA1", number, clock(), "", 99.0))
    assert later.replayed
    assert later.call == call
    assert later.attribution == first.attribution
    assert engine.calls() == [first]


def test_concurrent_duplicate_deliveries_keep_one_record(make_store: StoreMaker) -> None:
    store = make_store()
    clock = SimulatedClock(START)
    engine = site(store, clock)
    number = engine.visit("alice", AD, GOOGLE, HUMAN).number
    assert number is not None
    # Two engines share a Redis store as two workers would; memory: two threads of one.
    other = site(store, clock) if isinstance(store, RedisStore) else engine
    call = Call("CA-dup", number, START + 5, "+447700900123", 30.0)
    answers: list[CallRecord] = []
    barrier = threading.Barrier(8)

    def deliver(target: Engine) -> None:
        barrier.wait()
        answers.append(target.record_call(call))

    threads = [
        threading.Thread(target=deliver, args=(engine if i % 2 else other,)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8
    assert sum(1 for a in answers if not a.replayed) == 1
    stored = engine.calls()
    assert len(stored) == 1
    assert all(a.attribution == stored[0].attribution for a in answers)


def test_an_unknown_number_is_an_unattributed_call(make_store: StoreMaker) -> None:
    engine = site(make_store())
    record = engine.record_call(Call("CA2", "+441632960000", START, "+447700900123"))
    assert record.stored
    assert record.attribution.kind == "unknown"
    assert record.lease is None
    assert record.facts is None
    assert record.reason is not None
    assert "not a number of any pool" in record.reason
    assert engine.calls() == [record]


def test_calls_are_listed_by_time_pool_and_number(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    ad = engine.visit("alice", AD, GOOGLE, HUMAN).number
    other = engine.visit("bob", "https://shop.example/", None, HUMAN).number
    assert ad in AD_NUMBERS
    assert other in ALL_NUMBERS
    clock.advance(600)
    calls = [
        Call("c3", other, START + 300),
        Call("c1", ad, START + 100),
        Call("c2", "+44 117 409 0011", START + 200),  # the ad number, written nationally
        Call("c4", OVERFLOW, START + 400),
    ]
    for call in calls:
        engine.record_call(call)
    assert [r.call.call_id for r in engine.calls()] == ["c1", "c2", "c3", "c4"]
    assert [r.call.call_id for r in engine.calls(START + 200, START + 400)] == ["c2", "c3"]
    assert [r.call.call_id for r in engine.calls(pool="ads")] == ["c1", "c2"]
    assert [r.call.call_id for r in engine.calls(pool="2")] == ["c3"]
    assert [r.call.call_id for r in engine.calls(number="+44 117 409 0011")] == ["c1", "c2"]
    assert [r.call.call_id for r in engine.calls(number=OVERFLOW)] == ["c4"]
    assert engine.calls(START + 10_000) == []
    with pytest.raises(KeyError, match="nope"):
        engine.calls(pool="nope")


def test_the_call_log_is_bounded(make_store: StoreMaker) -> None:
    engine = site(make_store(call_capacity=3))
    for i in (5, 1, 4, 2, 3):  # out of order: the call that started first goes first
        engine.record_call(Call(f"c{i}", ALL_NUMBERS[0], START + i))
    assert [r.call.call_id for r in engine.calls()] == ["c3", "c4", "c5"]


def test_the_call_log_keeps_calls_for_its_retention(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(call_retention=3600.0), clock)
    engine.record_call(Call("old", ALL_NUMBERS[0], START))
    engine.record_call(Call("mid", ALL_NUMBERS[0], START + 1800))
    clock.advance(3600)
    engine.record_call(Call("edge", ALL_NUMBERS[0], START + 3000))
    # Recorded at START + 3600: the call that started at START is exactly one retention old.
    assert [r.call.call_id for r in engine.calls()] == ["old", "mid", "edge"]
    clock.advance(1)
    engine.record_call(Call("new", ALL_NUMBERS[0], START + 3601))
    assert [r.call.call_id for r in engine.calls()] == ["mid", "edge", "new"]
    clock.advance(10_000)
    engine.record_call(Call("later", ALL_NUMBERS[0], clock()))
    assert [r.call.call_id for r in engine.calls()] == ["later"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (Call("", "+441174090011", START), "call_id"),
        (Call("x" * 300, "+441174090011", START), "call_id"),
        (Call("c", "", START), "number"),
        (Call("c", "+441174090011", float("nan")), "started"),
        (Call("c", "+441174090011", float("inf")), "started"),
        (Call("c", "+441174090011", START, duration=-1.0), "duration"),
        (Call("c", "+441174090011", START, caller=None), "caller"),  # type: ignore[arg-type]
    ],
)
def test_invalid_calls_name_their_field_and_store_nothing(call: Call, field: str) -> None:
    engine = site()
    with pytest.raises(ValueError, match=rf"^{field}:"):
        engine.record_call(call)
    assert engine.calls() == []


def test_a_call_record_round_trips_through_json() -> None:
    clock = SimulatedClock(START)
    engine = site(clock=clock)
    number = engine.visit("alice", AD, GOOGLE, HUMAN).number
    assert number is not None
    record = engine.record_call(Call("CA1", number, START + 1, "+447700900123", 12.5, "twilio"))
    body = json.loads(json.dumps(record.to_json()))
    assert body["attribution"]["lease"]["facts"]["click_ids"] == {"gclid": "EAIaIQobChMI_Ab-1"}
    assert body["replayed"] is False
    assert body["stored"] is True
    assert CallRecord.from_json(body) == record
    with pytest.raises(ValueError, match=r"call\.started"):
        CallRecord.from_json({**body, "call": {**body["call"], "started": "soon"}})
    with pytest.raises(ValueError, match=r"attribution\.kind"):
        CallRecord.from_json({**body, "attribution": {**body["attribution"], "kind": "maybe"}})


def test_a_failing_store_answers_an_unstored_record_without_raising() -> None:
    down = RedisStore("redis://127.0.0.1:1", namespace="down", new_namespace=True)
    engine = site(down)
    record = engine.record_call(Call("CA1", AD_NUMBERS[0], START, "+447700900123"))
    assert record.stored is False
    assert record.attribution.kind == "store_unavailable"
    down.close()


def test_the_call_log_survives_a_script_flush(make_redis_store: StoreMaker) -> None:
    store = make_redis_store()
    assert isinstance(store, RedisStore | AwaitedStore)
    engine = site(store)
    engine.record_call(Call("before", ALL_NUMBERS[0], START))
    store.client.script_flush()
    record = engine.record_call(Call("after", ALL_NUMBERS[0], START + 1))
    assert record.stored
    assert [r.call.call_id for r in engine.calls()] == ["before", "after"]


def test_a_lease_record_with_unreadable_facts_has_none(
    make_redis_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_redis_store()
    assert isinstance(store, RedisStore | AwaitedStore)
    engine = site(store)
    engine.visit("alice", AD, GOOGLE, HUMAN)
    client = store.client
    (key,) = [k for k in client.keys("*:l:*") if client.hexists(k, "z")]
    # Unreadable text, new to the parse cache: unique in the process (an id() of a
    # store may be one a store of an earlier test had, whose text is cached).
    client.hset(key, "z", f"{{not json {secrets.token_hex(8)}")
    (lease,) = engine.leases()
    assert lease.facts is None
    assert "facts cannot be read" in caplog.text


def test_calls_that_started_together_are_listed_by_id(make_store: StoreMaker) -> None:
    engine = site(make_store())
    for call_id in ("b", "c", "a"):
        engine.record_call(Call(call_id, ALL_NUMBERS[0], START))
    assert [r.call.call_id for r in engine.calls()] == ["a", "b", "c"]


# ---- what is kept of a landing -------------------------------------------------------------

PRIVATE = (
    "https://shop.example/offer?email=jo%40example.org&token=s3cr3t-t0ken&gclid=G1"
    "&sessionid=abc123&promo=spring&utm_campaign=Spring#details"
)


def test_a_landing_keeps_only_the_parameters_attribution_needs() -> None:
    facts = facts_of(PRIVATE, GOOGLE)
    assert facts.landing_url == "https://shop.example/offer?gclid=G1&utm_campaign=Spring"
    kept = facts_of(PRIVATE, GOOGLE, frozenset({"promo"}))
    assert (
        kept.landing_url == "https://shop.example/offer?gclid=G1&promo=spring&utm_campaign=Spring"
    )
    assert facts_of("https://shop.example/a?email=x%40y.z", None).landing_url == (
        "https://shop.example/a"
    )
    # A parameter name written encoded is still recognised.
    assert facts_of("https://shop.example/?%67clid=G2&x=1", None).landing_url == (
        "https://shop.example/?%67clid=G2"
    )


def test_no_store_and_no_log_keeps_what_attribution_does_not_need(
    make_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = make_store()
    clock = SimulatedClock(START)
    engine = site(store, clock)
    decision = engine.visit("alice", PRIVATE, GOOGLE, HUMAN)
    assert decision.number is not None
    clock.advance(60)
    record = engine.record_call(Call("CA-private", decision.number, clock(), "+447700900123"))
    assert record.facts is not None
    assert record.facts.landing_url == "https://shop.example/offer?gclid=G1&utm_campaign=Spring"
    (lease,) = engine.leases(pool="ads")
    assert lease.facts == record.facts
    answer = json.dumps(record.to_json())
    texts = [answer, caplog.text, repr(engine.calls()), repr(engine.leases())]
    if not isinstance(store, MemoryStore):
        texts.append(stored_text(store))
    for text in texts:
        for secret in ("s3cr3t", "jo%40example", "jo@example", "abc123", "sessionid", "email"):
            assert secret not in text
    assert "G1" in answer
