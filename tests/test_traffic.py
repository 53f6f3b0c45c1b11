"""Synthetic traffic and access-log replay: the inputs of the sizing simulation."""

from __future__ import annotations

import math

import pytest

from dni_engine.errors import ConfigError
from dni_engine.traffic import (
    TYPICAL_DAY,
    SourceMix,
    TrafficModel,
    generate_sessions,
    hourly_profile,
    read_access_log,
    write_access_log,
)


def test_same_seed_same_sessions_and_different_seed_different() -> None:
    model = TrafficModel(visitors_per_hour=300, hours=2)
    first = [(s.visitor, s.views, s.call_at) for s in generate_sessions(model, seed=7)]
    again = [(s.visitor, s.views, s.call_at) for s in generate_sessions(model, seed=7)]
    other = [(s.visitor, s.views, s.call_at) for s in generate_sessions(model, seed=8)]
    assert first == again
    assert first != other


def test_arrivals_follow_the_rate_within_statistical_spread() -> None:
    model = TrafficModel(visitors_per_hour=2000, hours=10)
    count = sum(1 for _ in generate_sessions(model, seed=1))
    expected = 20_000
    assert abs(count - expected) < 5 * math.sqrt(expected)


def test_sessions_come_in_arrival_order_with_views_in_order() -> None:
    sessions = list(generate_sessions(TrafficModel(visitors_per_hour=500, hours=3), seed=3))
    arrivals = [s.arrival for s in sessions]
    assert arrivals == sorted(arrivals)
    assert all(arrivals[i] < 3 * 3600 for i in range(len(arrivals)))
    for session in sessions:
        times = [v[0] for v in session.views]
        assert times == sorted(times)
        if session.call_at is not None:
            assert session.call_at > session.last_activity


def test_mean_page_views_and_call_share_match_the_model() -> None:
    model = TrafficModel(visitors_per_hour=5000, hours=4, pages_mean=3.0, call_share=0.1)
    sessions = list(generate_sessions(model, seed=5))
    humans = [s for s in sessions if s.kind != "bot"]
    mean_pages = sum(len(s.views) for s in sessions) / len(sessions)
    call_rate = sum(s.call_at is not None for s in humans) / len(humans)
    assert 2.9 < mean_pages < 3.1
    assert 0.09 < call_rate < 0.11
    assert not any(s.call_at is not None for s in sessions if s.kind == "bot")


def test_source_mix_builds_real_urls_and_referrers() -> None:
    model = TrafficModel(visitors_per_hour=3000, hours=1, mix=SourceMix(1, 1, 1, 1, 1))
    by_kind = {s.kind: s for s in generate_sessions(model, seed=2)}
    assert set(by_kind) == {"paid", "organic", "direct", "referral", "bot"}
    paid_url, paid_ref = by_kind["paid"].views[0][1:]
    assert "gclid=" in paid_url or "msclkid=" in paid_url
    assert "utm_medium=cpc" in paid_url
    assert paid_ref is not None
    assert by_kind["direct"].views[0][2] is None
    assert "bot" in by_kind["bot"].user_agent.lower()


def test_hourly_profile_shapes_the_day() -> None:
    model = TrafficModel(visitors_per_hour=hourly_profile(TYPICAL_DAY, 1000), hours=24)
    sessions = list(generate_sessions(model, seed=11))
    night = sum(1 for s in sessions if 2 * 3600 <= s.arrival < 4 * 3600)
    morning = sum(1 for s in sessions if 10 * 3600 <= s.arrival < 12 * 3600)
    assert morning > 10 * night


def test_bad_models_list_every_problem() -> None:
    model = TrafficModel(visitors_per_hour=-1, hours=0, pages_mean=0.5, call_share=2)
    with pytest.raises(ConfigError) as info:
        model.validate()
    assert {p.path for p in info.value.problems} == {
        "visitors_per_hour",
        "hours",
        "pages_mean",
        "call_share",
    }


def test_access_log_round_trip_keeps_every_page_view() -> None:
    model = TrafficModel(visitors_per_hour=400, hours=2)
    sessions = list(generate_sessions(model, seed=4))
    lines = list(write_access_log(sessions))
    assert len(lines) == sum(len(s.views) for s in sessions)
    replay = read_access_log(lines, seed=4)
    assert replay.skipped_total == 0
    assert replay.page_views == len(lines)
    first = sessions[0]
    replayed = replay.sessions[0]
    assert replayed.views[0][1] == first.views[0][1]
    assert replayed.views[0][2] == first.views[0][2]


def test_access_log_skips_and_counts_malformed_lines() -> None:
    good = (
        '203.0.113.9 - - [02/Nov/2026:10:00:00 +0000] "GET /?gclid=abc HTTP/1.1" 200 512 '
        '"https://www.google.co.uk/" "Mozilla/5.0 (X11; Linux x86_64)"'
    )
    lines = [
        good,
        "garbage",
        "",
        "\x00\xff binary junk",
        good.replace("02/Nov/2026", "99/Zzz/2026"),
        good.replace("GET", "POST"),
        good.replace(" 200 ", " 500 "),
        good.replace("/?gclid=abc", "/static/site.css"),
        good.replace('"GET /?gclid=abc HTTP/1.1"', '"GET"'),
        good.replace("10:00:00", "10:05:00"),
    ]
    replay = read_access_log(lines)
    assert replay.lines == 10
    assert replay.page_views == 2
    assert replay.skipped == {
        "malformed": 3,
        "bad time": 1,
        "not a GET": 1,
        "error status": 1,
        "asset": 1,
        "malformed request": 1,
    }
    assert len(replay.sessions) == 1
    assert [v[0] for v in replay.sessions[0].views] == [0.0, 300.0]
