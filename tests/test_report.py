"""Engine.report against hand-computed figures, on every store kind; its JSON, CSV, text, plot."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dni_engine import Engine, SimulatedClock
from dni_engine.calls import Call
from dni_engine.report import CSV_HEADER, Breakdown, Report, plot_report
from tests.calls_site import (
    GOOGLE,
    HUMAN,
    OVERFLOW,
    START,
    StoreMaker,
    pools,
    site,
    stores_of_kind,
)
from tests.conftest import STORE_KINDS

DAY = 86_400.0
SPRING = "https://shop.example/cars?gclid=G1&utm_campaign=Spring%20Sale"
BRAND = "https://shop.example/vans?gclid=G2&utm_campaign=Brand"
THIRD = "https://shop.example/?gclid=G3"
UNKNOWN = "+441632960000"


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    yield from stores_of_kind(str(request.param), request)


def scenario(engine: Engine, clock: SimulatedClock) -> None:
    """Four visits (one overflows the two-number ads pool), then six calls.

    c1 alice (Spring Sale) and c2 bob (Brand) in their holds; c3 the shared
    overflow number; c4 dave (direct, the catch-all pool) in his hold; two days
    later c5 alice's number (late) and c6 a number of no pool.
    """
    alice = engine.visit("alice", SPRING, GOOGLE, HUMAN)
    bob = engine.visit("bob", BRAND, GOOGLE, HUMAN)
    carol = engine.visit("carol", THIRD, GOOGLE, HUMAN)
    dave = engine.visit("dave", "https://shop.example/", None, HUMAN)
    assert [d.outcome for d in (alice, bob, carol, dave)] == ["new", "new", "overflow", "new"]
    assert carol.number == OVERFLOW
    assert alice.number is not None
    assert bob.number is not None
    assert dave.number is not None
    clock.advance(300)
    engine.record_call(Call("c1", alice.number, START + 60, "+447700900001", 60.0))
    engine.record_call(Call("c2", bob.number, START + 120, "+447700900002", 60.0))
    engine.record_call(Call("c3", OVERFLOW, START + 180, "+447700900003", 60.0))
    engine.record_call(Call("c4", dave.number, START + 60, "+447700900004", 60.0))
    clock.set(START + 2 * DAY + 600)
    engine.record_call(Call("c5", alice.number, START + 2 * DAY, "+447700900005", 60.0))
    engine.record_call(Call("c6", UNKNOWN, START + 2 * DAY + 1, "+447700900006", 60.0))


def test_the_report_agrees_with_hand_computed_figures(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    scenario(engine, clock)
    report = engine.report()
    assert report.total == Breakdown("all", "all calls", 6, 3, 2, 1, 1)
    assert report.overflow_calls == 1
    assert report.attributed_share == pytest.approx(3 / 6)
    assert report.pool_level_share == pytest.approx(2 / 6)
    assert report.late_share == pytest.approx(1 / 6)
    assert report.unattributed_share == pytest.approx(1 / 6)
    assert dict(report.confidence) == {"1": 3, "[0.5, 1)": 0, "< 0.5": 0}
    assert report.by_pool == (
        Breakdown("1", "ads", 3, 2, 1, 1, 0),
        Breakdown("-", "(no pool)", 2, 0, 1, 0, 1),  # the shared overflow number; c6
        Breakdown("2", "all", 1, 1, 0, 0, 0),
    )
    assert report.by_source == (
        Breakdown("(no visit)", "(no visit)", 3, 0, 2, 1, 1),
        Breakdown("1/0", "ads #0: Google [gclid=*]", 2, 2, 0, 0, 0),
        Breakdown("2/0", "all #0: Any", 1, 1, 0, 0, 0),
    )
    assert report.by_campaign == (
        Breakdown("(no visit)", "(no visit)", 3, 0, 2, 1, 1),
        Breakdown("(none)", "(none)", 1, 1, 0, 0, 0),
        Breakdown("Brand", "Brand", 1, 1, 0, 0, 0),
        Breakdown("Spring Sale", "Spring Sale", 1, 1, 0, 0, 0),
    )
    # START is 2023-11-14 22:13:20 UTC
    assert report.by_day == (
        Breakdown("2023-11-14", "2023-11-14", 4, 3, 1, 0, 0),
        Breakdown("2023-11-16", "2023-11-16", 2, 0, 1, 1, 1),
    )
    (ads, rest) = report.pools
    assert (ads.name, ads.size, ads.sessions, ads.overflows) == ("ads", 2, 3, 1)
    assert ads.share == pytest.approx(1 / 3)
    assert (rest.name, rest.size, rest.sessions, rest.overflows) == ("all", 3, 1, 0)
    assert report.overflow_share == pytest.approx(1 / 4)


def test_the_report_is_bounded_by_time_and_dated_in_its_zone(make_store: StoreMaker) -> None:
    clock = SimulatedClock(START)
    engine = site(make_store(), clock)
    scenario(engine, clock)
    first = engine.report(START, START + DAY)
    assert first.calls == 4
    assert first.late_share == 0.0
    later = engine.report(since=START + DAY)
    assert [row.key for row in later.by_pool] == ["-", "1"]
    tokyo = engine.report(time_zone="Asia/Tokyo")  # UTC+9: the calls fall a day later
    assert [(row.key, row.calls) for row in tokyo.by_day] == [("2023-11-15", 4), ("2023-11-17", 2)]
    with pytest.raises(ValueError, match="time_zone"):
        engine.report(time_zone="Mars/Olympus")


def test_an_empty_report() -> None:
    report = site().report()
    assert report.calls == 0
    assert report.attributed_share == 0.0
    assert report.overflow_share == 0.0
    assert "(no calls)" in str(report)


@pytest.fixture
def report() -> Report:
    clock = SimulatedClock(START)
    engine = site(clock=clock)
    scenario(engine, clock)
    return engine.report()


def test_report_json(report: Report) -> None:
    body = json.loads(report.to_json_text())
    assert body == report.to_json()
    assert body["calls"] == 6
    assert body["shares"]["late"] == pytest.approx(1 / 6)
    assert body["shares"]["overflow_of_sessions"] == pytest.approx(0.25)
    assert body["by_campaign"][2] == {
        "key": "Brand",
        "label": "Brand",
        "calls": 1,
        "attributed": 1,
        "pool_level": 0,
        "late": 0,
        "unattributed": 0,
    }
    assert body["pools"][0]["overflow_share"] == pytest.approx(1 / 3)


def test_report_csv(report: Report) -> None:
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    assert rows == report.csv_rows()
    assert rows[0] == list(CSV_HEADER)
    assert all(len(row) == len(CSV_HEADER) for row in rows)
    assert rows[1] == [
        *["total", "all", "all calls", "6", "3", "2", "1", "1", "4", "1", "0.2500", "0"]
    ]
    assert ["pool", "1", "ads", "3", "2", "1", "1", "0", "3", "1", "0.3333", "0"] in rows
    sections = [row[0] for row in rows[1:]]
    assert sections.count("day") == 2
    assert sections.count("confidence") == 3
    assert ["confidence", "1", "confidence 1", "3", *[""] * 8] in rows


def test_report_text(report: Report) -> None:
    text = str(report)
    assert "Calls from the start until now: 6" in text
    assert "attributed to a visit        3  50.0%" in text
    assert "late 1, 16.7%" in text
    assert "sessions that found their pool exhausted: 25.0%" in text
    assert "Spring Sale" in text
    assert "ads #0: Google [gclid=*]" in text


def test_report_plot(report: Report, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = plot_report(report, tmp_path / "report.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000


def test_visits_over_the_client_cap_are_reported_apart_from_the_overflow_share(
    make_store: StoreMaker,
) -> None:
    engine = Engine(
        pools(),
        make_store(),
        clock=SimulatedClock(START),
        policy="overflow",
        overflow_number=OVERFLOW,
        client_cap=1,
    )
    home = "https://shop.example/"
    outcomes = [
        engine.visit(visitor, home, None, HUMAN, client=client).outcome
        for visitor, client in (("v1", "office"), ("v2", "office"), ("v3", "home"))
    ]
    assert outcomes == ["new", "capped", "new"]
    report = engine.report()
    rest = next(pool for pool in report.pools if pool.name == "all")
    assert (rest.sessions, rest.overflows, rest.capped) == (2, 0, 1)
    assert report.overflow_share == 0.0  # the pool had numbers: the cap is no exhaustion
    assert report.to_json()["pools"][1]["capped"] == 1  # type: ignore[index]
    total = report.csv_rows()[1]
    assert total[CSV_HEADER.index("capped")] == "1"
    assert "visits over the per-client cap (not in that share): 1" in str(report)
