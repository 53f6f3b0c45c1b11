"""Conversion exports against the platforms' import templates, column for column."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dni_engine import Engine, SimulatedClock
from dni_engine.calls import Call, CallRecord
from dni_engine.exports import (
    NO_CALLER,
    NO_CLICK_ID,
    NO_DURATION,
    NOT_ATTRIBUTED,
    TOO_SHORT,
    Export,
    google_ads_calls,
    google_ads_clicks,
    microsoft_ads,
)
from tests.calls_site import GOOGLE, HUMAN, START, StoreMaker, site, stores_of_kind
from tests.conftest import STORE_KINDS

BING = "https://www.bing.com/search?q=vans"
GCLID = "EAIaIQobChMI8pT-Ab_cd"
# The templates' rows as the platforms publish them.
GOOGLE_CLICKS = [
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
GOOGLE_CALLS = [
    "Caller's Phone Number",
    "Call Start Time",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
MICROSOFT = [
    "Microsoft Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
]
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")  # yyyy-MM-dd HH:mm:ss


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    yield from stores_of_kind(str(request.param), request)


def rows_of(export: Export) -> list[list[str]]:
    return list(csv.reader(io.StringIO(export.text)))


def local(seconds: float, zone: str) -> str:
    return datetime.fromtimestamp(seconds, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def calls(engine: Engine, clock: SimulatedClock) -> list[CallRecord]:
    """alice (gclid), bob (msclkid, Bing), carol (gbraid only), dave (direct); five calls."""
    visits = {
        "alice": (f"https://shop.example/cars?gclid={GCLID}&utm_campaign=Spring", GOOGLE),
        "bob": ("https://shop.example/?msclkid=ms-42&utm_medium=cpc", BING),
        "carol": ("https://shop.example/?gbraid=GB-7", None),
        "dave": ("https://shop.example/", None),
    }
    numbers = {}
    for visitor, (url, referrer) in visits.items():
        decision = engine.visit(visitor, url, referrer, HUMAN)
        assert decision.number is not None, visitor
        numbers[visitor] = decision.number
    clock.advance(600)
    made = [
        Call("a", numbers["alice"], START + 60, "+447700900123", 125.0, "twilio"),
        Call("b", numbers["bob"], START + 120, "07700 900456", 40.0),
        Call("c", numbers["carol"], START + 180, "+447700900789", 300.0),
        Call("d", numbers["dave"], START + 240, "", None),
        Call("e", "+441632960000", START + 300, "+447700900999", 60.0),
    ]
    return [engine.record_call(call) for call in made]


@pytest.fixture
def records() -> list[CallRecord]:
    clock = SimulatedClock(START)
    return calls(site(clock=clock), clock)


def test_a_call_in_a_hold_is_exported_with_the_visitors_gclid(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    decision = engine.visit("alice", f"https://shop.example/?gclid={GCLID}", GOOGLE, HUMAN)
    assert decision.number is not None
    clock.advance(90)
    engine.record_call(Call("CA9", decision.number, clock(), "+447700900123", 75.0))
    (logged,) = engine.calls()
    assert logged.lease is not None
    assert logged.lease.visitor_id == "alice"
    export = google_ads_clicks(
        engine.calls(), conversion_name="Phone call", time_zone="Europe/London"
    )
    assert rows_of(export) == [
        ["Parameters:TimeZone=Europe/London"],
        GOOGLE_CLICKS,
        [GCLID, "Phone call", local(START + 90, "Europe/London"), "", ""],
    ]


def test_google_click_conversions_follow_the_template(records: list[CallRecord]) -> None:
    export = google_ads_clicks(
        records,
        conversion_name="Phone call",
        time_zone="America/New_York",
        value=25,
        currency="USD",
    )
    rows = rows_of(export)
    assert rows[0] == ["Parameters:TimeZone=America/New_York"]
    assert rows[1] == GOOGLE_CLICKS
    # START + 60 is 2023-11-14 22:14:20 UTC: 17:14:20 in New York (EST, UTC-5)
    assert rows[2:] == [[GCLID, "Phone call", "2023-11-14 17:14:20", "25.00", "USD"]]
    assert all(TIME.match(row[2]) for row in rows[2:])
    assert export.exported == 1
    # bob (msclkid), carol (gbraid only) and dave carry no gclid; e is a number of no pool
    assert dict(export.skipped) == {NO_CLICK_ID: 3, NOT_ATTRIBUTED: 1}
    assert export.skipped_total == 4
    assert export.text.endswith("\r\n")


def test_google_click_conversions_with_braid_columns(records: list[CallRecord]) -> None:
    export = google_ads_clicks(
        records, conversion_name="Phone call", time_zone="+0100", braids=True
    )
    rows = rows_of(export)
    assert rows[0] == ["Parameters:TimeZone=+0100"]
    assert rows[1] == ["Google Click ID", "GBRAID", "WBRAID", *GOOGLE_CLICKS[1:]]
    assert rows[2:] == [
        [GCLID, "", "", "Phone call", "2023-11-14 23:14:20", "", ""],
        ["", "GB-7", "", "Phone call", "2023-11-14 23:16:20", "", ""],
    ]
    assert dict(export.skipped) == {NO_CLICK_ID: 2, NOT_ATTRIBUTED: 1}


def test_a_minimum_duration_leaves_short_and_unknown_calls_out(
    records: list[CallRecord],
) -> None:
    export = google_ads_clicks(records, conversion_name="Call", min_duration=130.0, braids=True)
    assert [row[0] or row[1] for row in export.rows] == ["GB-7"]  # alice's call lasted 125 s
    assert dict(export.skipped) == {
        TOO_SHORT: 2,
        NO_DURATION: 1,
        NOT_ATTRIBUTED: 1,
    }


def test_google_call_conversions_follow_the_template(records: list[CallRecord]) -> None:
    export = google_ads_calls(
        records,
        conversion_name="Calls from ads",
        time_zone="Europe/London",
        currency="GBP",
        value=10.5,
        region="GB",
    )
    rows = rows_of(export)
    assert rows[0] == ["Parameters:TimeZone=Europe/London"]
    assert rows[1] == GOOGLE_CALLS
    # alice's call: started 22:14:20 UTC (GMT in November), ended 125 s later
    assert rows[2:] == [
        [
            "+447700900123",
            "2023-11-14 22:14:20",
            "Calls from ads",
            "2023-11-14 22:16:25",
            "10.50",
            "GBP",
        ],
        [
            "+447700900789",
            "2023-11-14 22:16:20",
            "Calls from ads",
            "2023-11-14 22:21:20",
            "10.50",
            "GBP",
        ],
    ]
    assert dict(export.skipped) == {NO_CLICK_ID: 2, NOT_ATTRIBUTED: 1}
    everyone = google_ads_calls(
        records, conversion_name="Calls", require_click_id=False, region="GB"
    )
    # bob's national number is written in E.164; dave withheld his
    assert [row[0] for row in everyone.rows] == ["+447700900123", "+447700900456", "+447700900789"]
    assert dict(everyone.skipped) == {NO_CALLER: 1, NOT_ATTRIBUTED: 1}


def test_microsoft_offline_conversions_follow_the_template(records: list[CallRecord]) -> None:
    export = microsoft_ads(records, conversion_name="Phone lead", time_zone="-0800", value=3)
    rows = rows_of(export)
    assert rows[0] == ["Parameters:TimeZone=-0800"]
    assert rows[1] == MICROSOFT
    # START + 120 = 2023-11-14 22:15:20 UTC: 14:15:20 at UTC-8
    assert rows[2:] == [["ms-42", "Phone lead", "2023-11-14 14:15:20", "3.00", ""]]
    assert dict(export.skipped) == {NO_CLICK_ID: 3, NOT_ATTRIBUTED: 1}
    utc = microsoft_ads(records, conversion_name="Phone lead")
    assert rows_of(utc)[0] == ["Parameters:TimeZone=+0000"]
    assert utc.rows[0][2] == datetime.fromtimestamp(START + 120, UTC).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"conversion_name": ""}, "conversion_name"),
        ({"conversion_name": "x", "currency": "usd"}, "currency"),
        ({"conversion_name": "x", "value": -1.0}, "value"),
        ({"conversion_name": "x", "min_duration": -5.0}, "min_duration"),
        ({"conversion_name": "x", "time_zone": "Nowhere/Land"}, "time_zone"),
        ({"conversion_name": "x", "min_confidence": 2.0}, "min_confidence"),
    ],
)
def test_bad_arguments_name_their_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        google_ads_clicks([], **arguments)  # type: ignore[arg-type]


def test_microsoft_wants_a_fixed_offset() -> None:
    with pytest.raises(ValueError, match=r"^time_zone:"):
        microsoft_ads([], conversion_name="x", time_zone="Europe/London")


def test_an_empty_export_is_the_template_alone() -> None:
    export = google_ads_clicks([], conversion_name="Phone call")
    assert export.text == "Parameters:TimeZone=UTC\r\n" + ",".join(GOOGLE_CLICKS) + "\r\n"
    assert export.skipped_total == 0
