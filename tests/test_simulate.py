"""Pool-sizing simulation: checked against Erlang B, reproducible, and usable on logs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import CliRunner

from dni_engine import COMPILED
from dni_engine.cli import cli
from dni_engine.engine import Engine
from dni_engine.erlang import erlang_b
from dni_engine.errors import ConfigError
from dni_engine.landing import Landing, landing_page, next_landing
from dni_engine.leases import Decision, Policy
from dni_engine.schema import NumberPool, NumberPoolRequest, load_pools
from dni_engine.simulate import (
    _Now,
    _Run,
    _SessionState,
    parse_quantities,
    recommend,
    resize_pools,
    simulate,
)
from dni_engine.stores.memory import MemoryStore
from dni_engine.traffic import (
    TYPICAL_DAY,
    LogReplay,
    Session,
    SourceMix,
    TrafficModel,
    generate_sessions,
    hourly_profile,
    read_access_log,
    write_access_log,
)
from tests.conftest import EXAMPLES, load_example


def catch_all_pool(match_period: int = 10) -> NumberPool:
    """The vendor's Bristol pool, taking every visitor (Any referrer, no triggers)."""
    data = load_example("geographic-city.response")
    del data["replacement_configuration"]["tracking_sources"][0]["url_triggers"]
    data["match_period"] = match_period
    return NumberPool.model_validate(data)


def poisson_traffic(load: float, hold: float, arrivals: int) -> TrafficModel:
    """Single-page direct visits at the rate that offers ``load`` Erlangs for ``hold`` s."""
    rate = load / hold
    return TrafficModel(
        visitors_per_hour=rate * 3600,
        hours=arrivals / rate / 3600,
        mix=SourceMix(paid=0, organic=0, direct=1, referral=0, bot=0),
        pages_mean=1.0,
        call_share=0.0,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("load", "servers"),
    [(10, 10), (10, 15), (25, 25), (25, 32), (50, 48), (50, 57), (100, 95), (100, 108)],
)
def test_fallback_blocking_matches_erlang_b(load: int, servers: int) -> None:
    expected = erlang_b(load, servers)
    assert 0.01 <= expected <= 0.25
    hold = 600.0
    result = simulate(
        [catch_all_pool(match_period=10)],
        poisson_traffic(load, hold, arrivals=80_000),
        quantity=servers,
        seed=20261126,
        warmup=3 * hold,
    )
    report = result.pools[0]
    assert report.sessions > 70_000
    assert report.no_free_number_share == pytest.approx(expected, abs=0.005)
    assert report.offered_load_erlangs == pytest.approx(load, rel=0.03)
    assert report.erlang_b == pytest.approx(erlang_b(report.offered_load_erlangs, servers))


def busy_site() -> TrafficModel:
    return TrafficModel(visitors_per_hour=900, hours=12, call_share=0.1)


def test_same_seed_gives_the_same_result() -> None:
    pools = [NumberPool.model_validate(load_example("geographic-city.response"))]
    first = simulate(pools, busy_site(), quantity=6, seed=3).as_dict()
    again = simulate(pools, busy_site(), quantity=6, seed=3).as_dict()
    assert first == again


@pytest.mark.parametrize(
    ("policy", "cooldown", "quantity"),
    [("fallback", 0.0, 4), ("fallback", 0.0, 40), ("overflow", 2.0, 6), ("recycle", 0.0, 5)],
)
def test_skipping_provably_idle_page_views_changes_nothing(
    policy: Policy, cooldown: float, quantity: int
) -> None:
    # Long sessions (many pages, long dwell against a short hold) so that some
    # leases would lapse between page views, small pools so that visitors are
    # blocked and retry, and calls that land on recycled numbers.
    national = load_example("national.response")
    del national["replacement_configuration"]["tracking_sources"][0]["url_triggers"]
    national["match_period"] = 5
    pools = [
        NumberPool.model_validate(load_example("geographic-city.response")),
        NumberPool.model_validate(national),  # every other visitor, on a short hold
    ]
    traffic = TrafficModel(
        visitors_per_hour=120,
        hours=6,
        pages_mean=6.0,
        dwell_median=90.0,
        dwell_sigma=1.4,
        call_share=0.3,
    )
    kwargs: dict[str, Any] = {"quantity": quantity, "policy": policy, "cooldown": cooldown}
    quick = simulate(pools, traffic, seed=11, **kwargs)
    exact = simulate(pools, traffic, seed=11, exact=True, **kwargs)
    assert quick.as_dict() == exact.as_dict()
    assert exact.pools[1].blocked_sessions > 0 or quantity > 10
    assert quick.visits == sum(len(s.views) for s in generate_sessions(traffic, seed=11))


def test_skipping_idle_page_views_changes_nothing_on_a_log_with_ties() -> None:
    # An access log has one-second times, so events often share a time.
    traffic = TrafficModel(visitors_per_hour=900, hours=3, pages_mean=4.0)
    replay = read_access_log(
        list(write_access_log(generate_sessions(traffic, seed=2))), call_share=0.2, seed=2
    )
    pools = [catch_all_pool(match_period=5)]
    quick = simulate(pools, replay, quantity=12, seed=2)
    exact = simulate(pools, replay, quantity=12, seed=2, exact=True)
    assert quick.as_dict() == exact.as_dict()
    assert quick.pools[0].blocked_sessions > 0


def test_different_seeds_agree_within_statistical_spread() -> None:
    pools = [catch_all_pool(match_period=30)]
    traffic = TrafficModel(visitors_per_hour=600, hours=24, call_share=0.1)
    shares = []
    sessions = []
    for seed in (1, 2, 3, 4):
        report = simulate(pools, traffic, quantity=150, seed=seed, warmup=3600).pools[0]
        shares.append(report.no_free_number_share)
        sessions.append(report.sessions)
    assert len(set(sessions)) > 1  # the seeds really differ
    mean = sum(shares) / len(shares)
    # Blocked sessions come in bursts, so allow ten binomial standard errors.
    spread = 10 * math.sqrt(max(mean * (1 - mean), 1e-4) / min(sessions))
    assert max(shares) - min(shares) <= 2 * spread


def test_more_numbers_never_hurt_accuracy_on_the_same_traffic() -> None:
    pools = [catch_all_pool(match_period=30)]
    traffic = TrafficModel(visitors_per_hour=400, hours=12, call_share=0.15)
    accuracy = [
        simulate(pools, traffic, quantity=q, seed=5).pools[0].accuracy for q in (10, 40, 120, 300)
    ]
    assert accuracy == sorted(accuracy)
    assert accuracy[0] < 0.9 < accuracy[-1]


def test_calls_are_classified_and_add_up() -> None:
    pools = [catch_all_pool(match_period=15)]
    result = simulate(
        pools,
        TrafficModel(visitors_per_hour=500, hours=12, call_share=0.2),
        quantity=60,
        policy="recycle",
        seed=9,
    )
    report = result.pools[0]
    assert report.calls > 300
    assert (
        report.correct
        + report.misattributed
        + report.unattributed_late
        + report.unattributed_no_number
        == report.calls
    )
    assert report.unattributed_late > 0  # some callers wait longer than the hold
    assert report.displacements > 0  # recycling under pressure
    assert report.misattributed > 0  # ...which costs some calls
    assert 0 < report.utilisation_p50 <= report.utilisation_p95 <= report.utilisation_peak <= 1


def test_only_matching_traffic_reaches_a_gclid_pool() -> None:
    pools = [NumberPool.model_validate(load_example("geographic-city.response"))]
    result = simulate(pools, busy_site(), quantity=200, seed=1)
    report = result.pools[0]
    assert 0 < report.sessions < result.sessions
    assert result.outcomes["bot"] > 0
    assert result.outcomes["no_match"] > 0
    assert report.no_free_number_share == 0.0
    assert report.accuracy > 0.9


def test_replay_of_an_access_log_runs_through_the_engine() -> None:
    traffic = TrafficModel(visitors_per_hour=300, hours=6)
    lines = list(write_access_log(generate_sessions(traffic, seed=4)))
    lines[10:10] = ["this is not a log line", '1.2.3.4 - - [bad] "GET / HTTP/1.1" 200 1 "-" "x"']
    replay = read_access_log(lines, call_share=0.2, seed=4)
    assert replay.skipped == {"malformed": 1, "bad time": 1}
    pools = [NumberPool.model_validate(load_example("geographic-city.response"))]
    result = simulate(pools, replay, quantity=20, seed=4)
    assert result.skipped_log_lines == {"malformed": 1, "bad time": 1}
    assert result.visits == replay.page_views
    assert result.pools[0].sessions > 0
    assert result.pools[0].calls > 0


def test_recommendation_is_the_smallest_quantity_that_meets_the_target() -> None:
    pools = [catch_all_pool(match_period=20)]
    traffic = TrafficModel(visitors_per_hour=300, hours=8, call_share=0.2)
    (advice,), runs = recommend(pools, traffic, metric="blocking", target=0.05, seed=2)
    assert advice.quantity is not None
    by_size = {r.quantity: r.pools[0] for r in runs}
    assert by_size[advice.quantity].no_free_number_share <= 0.05
    assert advice.quantity - 1 in by_size
    assert by_size[advice.quantity - 1].no_free_number_share > 0.05
    assert advice.erlang_b_quantity == pytest.approx(advice.quantity, abs=3)


def test_recommendation_over_given_quantities() -> None:
    pools = [catch_all_pool(match_period=20)]
    traffic = TrafficModel(visitors_per_hour=300, hours=8, call_share=0.3)
    (advice,), runs = recommend(pools, traffic, target=0.9, quantities=[150, 2, 60, 400], seed=2)
    assert [r.quantity for r in runs] == [2, 60, 150, 400]
    assert advice.quantity in (60, 150, 400)
    assert runs[0].pools[0].accuracy < 0.9
    assert advice.achieved is not None
    assert advice.achieved >= 0.9


def test_resized_pools_keep_real_numbers_and_add_valid_unique_ones() -> None:
    real = NumberPool.model_validate(load_example("geographic-city.response"))
    request = NumberPoolRequest.model_validate(load_example("tollfree.request"))
    other = NumberPool.model_validate(load_example("national.response"))
    grown = resize_pools([real, request, other], 25)
    assert [len(p.numbers) for p in grown] == [25, 25, 25]
    assert grown[0].e164_numbers[:3] == real.e164_numbers
    everything = [n for p in grown for n in p.e164_numbers]
    assert len(set(everything)) == len(everything)
    for number in everything:
        assert phonenumbers.region_code_for_number(phonenumbers.parse(number)) == "GB"
    assert resize_pools([real], 2)[0].e164_numbers == real.e164_numbers[:2]


def test_pools_without_numbers_need_a_quantity() -> None:
    request = NumberPoolRequest.model_validate(load_example("tollfree.request"))
    with pytest.raises(ConfigError, match="need a quantity"):
        simulate([request], busy_site())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", [5]), ("3..6", [3, 4, 5, 6]), ("8,2,4", [2, 4, 8]), ("1..2,10", [1, 2, 10])],
)
def test_quantities_are_read_from_ranges_and_lists(text: str, expected: list[int]) -> None:
    assert parse_quantities(text) == expected


@pytest.mark.parametrize("text", ["", "x", "0", "5..2", "1..2000"])
def test_bad_quantities_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="quantit"):
        parse_quantities(text)


def test_json_report_has_every_metric_under_plain_names() -> None:
    pools = [catch_all_pool()]
    data: dict[str, Any] = simulate(pools, busy_site(), quantity=30, seed=1).as_dict()
    pool = data["pools"][0]
    for name in (
        "offered_load_erlangs",
        "no_free_number_share",
        "erlang_b",
        "accuracy",
        "calls",
        "correct",
        "misattributed",
        "unattributed_late",
        "leases",
        "overflows",
        "displacements",
        "utilisation_peak",
        "utilisation_p95",
    ):
        assert name in pool
    json.dumps(data)


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_simulate_command_prints_tables_and_writes_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "sizing.png"
    code, out = run_cli(
        "simulate",
        str(EXAMPLES / "site" / "pools.json"),
        "--visitors-per-hour",
        "200",
        "--hours",
        "6",
        "--quantity",
        "2,6,20",
        "--plot",
        str(plot),
    )
    assert code == 0, out
    assert "Pool sizing" in out
    assert "Recommended pool sizes" in out
    assert "Google Ads" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_simulate_json_names_load_blocking_and_erlang_b_for_every_size() -> None:
    code, out = run_cli(
        "simulate",
        str(EXAMPLES / "pools" / "geographic-city.response.json"),
        "--hours",
        "4",
        "--quantity",
        "1..3",
        "--metric",
        "blocking",
        "--target",
        "0.05",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert sorted({run["quantity"] for run in data["runs"]}) == [1, 2, 3]
    assert len(data["runs"]) == 3 * data["replications"]
    for run in data["runs"]:
        pool = run["pools"][0]
        assert {"offered_load_erlangs", "no_free_number_share", "erlang_b"} <= set(pool)
    assert data["recommendations"][0]["metric"] == "blocking"


def test_simulate_replays_the_example_access_log() -> None:
    code, out = run_cli(
        "simulate",
        str(EXAMPLES / "site" / "pools.json"),
        "--access-log",
        str(EXAMPLES / "traffic" / "access.log"),
        "--quantity",
        "3",
        "--json",
    )
    assert code == 0, out
    run = json.loads(out)["runs"][0]
    assert run["visits"] > 1000
    assert sum(p["sessions"] for p in run["pools"]) > 100


def test_simulate_command_reports_bad_options_plainly(tmp_path: Path) -> None:
    pools = str(EXAMPLES / "site" / "pools.json")
    code, out = run_cli("simulate", pools, "--quantity", "0..3")
    assert code == 2  # a bad value: a usage error
    assert "quantities must be between 1 and 1000" in out
    code, out = run_cli("simulate", pools, "--visitors-per-hour", "5", "--access-log", pools)
    assert code == 2
    assert "not both" in out
    empty = tmp_path / "empty.log"
    empty.write_text("nonsense\n")
    code, out = run_cli("simulate", pools, "--access-log", str(empty))
    assert code == 1
    assert "no page views" in out


def test_write_access_log_makes_a_replayable_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    code, _ = run_cli(
        "simulate",
        str(EXAMPLES / "site" / "pools.json"),
        "--visitors-per-hour",
        "50",
        "--hours",
        "2",
        "--write-access-log",
        str(log),
    )
    assert code == 0
    replay = read_access_log(log.read_text().splitlines())
    assert replay.skipped_total == 0
    assert replay.page_views > 100


def test_peak_hour_load_shows_what_the_daily_average_hides() -> None:
    pools = [catch_all_pool(match_period=30)]
    day = TrafficModel(visitors_per_hour=hourly_profile(TYPICAL_DAY, 400), hours=24)
    report = simulate(pools, day, quantity=40, seed=3).pools[0]
    assert report.peak_hour_load_erlangs > 1.5 * report.offered_load_erlangs
    assert report.erlang_b_peak_hour > report.erlang_b
    (advice,), _ = recommend(pools, day, metric="blocking", target=0.02, quantities=[10, 400])
    assert advice.erlang_b_peak_hour_quantity > advice.erlang_b_quantity


# ---- the first-touch rule ---------------------------------------------------------

SITE_URL = "https://www.example.co.uk"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def small_ad_pool() -> NumberPool:
    """A gclid pool of one number on a one-minute hold."""
    data = load_example("geographic-city.response")
    data["numbers"] = data["numbers"][:1]
    data["quantity"] = 1
    data["match_period"] = 1
    return NumberPool.model_validate(data)


def other_catch_all() -> NumberPool:
    """Every other visitor (Any referrer, no triggers), in a pool of its own."""
    data = load_example("national.response")
    del data["replacement_configuration"]["tracking_sources"][0]["url_triggers"]
    data["match_period"] = 10
    return NumberPool.model_validate(data)


def ad_overflow_then_freed() -> LogReplay:
    """One ad visitor holds the only ad number; a second finds it taken, then free."""
    agent = FIREFOX
    ad_url = f"{SITE_URL}/pricing?gclid=Cj0KCQ1&utm_medium=cpc"
    sessions = [
        Session("first-ad", agent, "paid", [(0.0, ad_url, "https://www.google.co.uk/")]),
        Session("direct", agent, "direct", [(5.0, f"{SITE_URL}/", None)]),
        Session(
            "ad",
            agent,
            "paid",
            [
                (10.0, f"{SITE_URL}/?gclid=Cj0KCQ2", "https://www.google.co.uk/"),
                # The first ad visitor's lease lapsed at 60 s: the number is free.
                (100.0, f"{SITE_URL}/contact", f"{SITE_URL}/"),
            ],
            call_at=150.0,
        ),
    ]
    return LogReplay(sessions, site=SITE_URL)


@pytest.mark.parametrize("exact", [False, True])
def test_an_ad_visitor_who_overflowed_gets_the_ad_number_on_page_two(exact: bool) -> None:
    ad, other = small_ad_pool(), other_catch_all()
    result = simulate([ad, other], ad_overflow_then_freed(), exact=exact)
    ads, rest = result.pool(ad.key), result.pool(other.key)
    assert (ads.sessions, ads.blocked_sessions) == (2, 1)  # full on the landing page
    # Page 2 is matched on the ad landing, not as an internal page: it takes
    # the ad pool's freed number, and the call is tied to that lease.
    assert ads.leases == 2
    assert (ads.calls, ads.correct) == (1, 1)
    assert rest.leases == 1  # the direct visitor's only
    assert rest.calls == 0


def test_the_same_ad_visitor_goes_to_the_catch_all_once_the_context_lapsed() -> None:
    # With a one-minute window the ad landing has lapsed by page 2 (90 s on):
    # the page is a plain internal visit, which the catch-all pool takes.
    ad, other = small_ad_pool(), other_catch_all()
    result = simulate([ad, other], ad_overflow_then_freed(), attribution_window=1)
    assert result.pool(ad.key).leases == 1
    assert result.pool(other.key).leases == 2


def test_the_ad_number_is_what_the_engine_attributes_the_call_to() -> None:
    # The same visits through an engine as the web integration makes them.
    ad, other = small_ad_pool(), other_catch_all()
    clock = [0.0]
    engine = Engine([ad, other], MemoryStore(), clock=lambda: clock[0])
    landings: dict[str, Landing] = {}
    views = sorted(
        (at, s.visitor, url, referrer)
        for s in ad_overflow_then_freed().sessions
        for at, url, referrer in s.views
    )
    seen: dict[str, Decision] = {}
    for at, visitor, url, referrer in views:
        clock[0] = at
        landing = landings[visitor] = next_landing(
            landings.get(visitor),
            url,
            referrer,
            at,
            site_host="www.example.co.uk",
            params=engine.rules.param_names,
        )
        seen[visitor] = engine.visit(visitor, landing.url, landing.referrer, FIREFOX, at)
    assert seen["ad"].outcome == "new"
    assert seen["ad"].pool_key == ad.key
    clock[0] = 150.0
    call = engine.attribute_call(seen["ad"].number, 150.0)
    assert call.lease is not None
    assert (call.lease.pool_key, call.lease.visitor_id) == (ad.key, "ad")


@pytest.mark.parametrize(
    ("window", "policy"), [(2.0, "fallback"), (2.0, "overflow"), (90.0, "fallback")]
)
def test_skipping_idle_page_views_keeps_the_landing_context(window: float, policy: Policy) -> None:
    # A window shorter than the hold (contexts lapse inside a kept lease) or
    # longer than the dwell; a small ad pool so that ad visitors overflow and
    # retry on their landing.
    national = load_example("national.response")
    del national["replacement_configuration"]["tracking_sources"][0]["url_triggers"]
    national["match_period"] = 5
    pools = [small_ad_pool(), NumberPool.model_validate(national)]
    traffic = TrafficModel(
        visitors_per_hour=240,
        hours=4,
        pages_mean=5.0,
        dwell_median=100.0,
        dwell_sigma=1.3,
        call_share=0.3,
    )
    kwargs: dict[str, Any] = {"quantity": 3, "policy": policy, "attribution_window": window}
    quick = simulate(pools, traffic, seed=5, **kwargs)
    exact = simulate(pools, traffic, seed=5, exact=True, **kwargs)
    assert quick.as_dict() == exact.as_dict()
    assert quick.pools[0].blocked_sessions > 0


def test_a_replayed_visitor_keeps_their_landing_context_across_sessions() -> None:
    # The ad visitor comes back after 15 idle minutes: a new session of the
    # log, but inside a one-hour window their page is matched on the ad
    # landing of their first session.
    ad_url = f"{SITE_URL}/?gclid=Cj0KCQ2"
    google = "https://www.google.co.uk/"
    sessions = [
        Session("holder", FIREFOX, "paid", [(0.0, f"{SITE_URL}/?gclid=Cj0KCQ1", google)]),
        Session("ad", FIREFOX, "log", [(10.0, ad_url, google)]),
        Session("ad", FIREFOX, "log", [(910.0, f"{SITE_URL}/contact", f"{SITE_URL}/")]),
    ]
    ad, other = small_ad_pool(), other_catch_all()
    for window, ad_leases, other_leases in ((60, 2, 0), (10, 1, 1)):
        replay = LogReplay(sessions, site=SITE_URL)
        result = simulate([ad, other], replay, attribution_window=window)
        assert result.pool(ad.key).leases == ad_leases
        assert result.pool(other.key).leases == other_leases


def test_skipping_idle_page_views_changes_nothing_on_a_log_with_a_long_window() -> None:
    # Sessions split after 10 idle minutes, contexts last 60.
    traffic = TrafficModel(visitors_per_hour=600, hours=2, pages_mean=4.0, dwell_median=60.0)
    lines = list(write_access_log(generate_sessions(traffic, seed=3)))
    replay = read_access_log(lines, session_gap=600.0, call_share=0.3, seed=3)
    pools = [small_ad_pool(), other_catch_all()]
    kwargs: dict[str, Any] = {"quantity": 4, "attribution_window": 60}
    quick = simulate(pools, replay, seed=3, **kwargs)
    exact = simulate(pools, replay, seed=3, exact=True, **kwargs)
    assert quick.as_dict() == exact.as_dict()
    assert quick.visits == replay.page_views


# The compiled build turns a bool given for a float into that float at the call.
@pytest.mark.parametrize("window", [0, -1, math.nan, math.inf, *([] if COMPILED else [True])])
def test_a_bad_attribution_window_is_refused(window: float) -> None:
    with pytest.raises(ConfigError, match="attribution_window"):
        simulate([catch_all_pool()], busy_site(), quantity=2, attribution_window=window)


def test_simulate_command_takes_an_attribution_window() -> None:
    pools = str(EXAMPLES / "site" / "pools.json")
    args = ("simulate", pools, "--hours", "2", "--quantity", "3", "--json")
    code, out = run_cli(*args, "--attribution-window", "5")
    assert code == 0, out
    assert json.loads(out)["runs"][0]["visits"] > 0
    code, out = run_cli(*args, "--attribution-window", "0")
    assert code == 2


@pytest.mark.parametrize("window", [30.0, 45.0, 90.0])
def test_skipped_page_views_that_start_a_new_landing_still_count(window: float) -> None:
    # Visitors who come back mid-session from another site or an ad click
    # start a new landing context on a page the fast path may skip (it is
    # inside a live lease); the pages after their lease lapses are matched
    # on that new context, in both modes alike.
    traffic = TrafficModel(
        visitors_per_hour=300, hours=6, pages_mean=5.0, dwell_median=900.0, dwell_sigma=0.6
    )
    sessions = list(generate_sessions(traffic, seed=8))
    for serial, session in enumerate(sessions):
        views = session.views
        if len(views) >= 3 and serial % 3 == 0:
            at, url, _ = views[1]
            views[1] = (at, url, "https://l.facebook.com/")
        if len(views) >= 4 and serial % 5 == 0:
            at, url, referrer = views[2]
            views[2] = (at, f"{url}?gclid=back{serial}", referrer)
    pools = load_pools((EXAMPLES / "site" / "pools.json").read_bytes())
    kwargs: dict[str, Any] = {"quantity": 4, "attribution_window": window}
    replay = LogReplay(sessions, site=SITE_URL)
    quick = simulate(pools, replay, seed=8, **kwargs)
    exact = simulate(pools, replay, seed=8, exact=True, **kwargs)
    assert quick.as_dict() == exact.as_dict()
    assert sum(p.blocked_sessions for p in quick.pools) > 0


def test_a_replayed_log_knows_its_site() -> None:
    traffic = TrafficModel(visitors_per_hour=300, hours=2, site="https://shop.example.org")
    lines = list(write_access_log(generate_sessions(traffic, seed=1)))
    assert read_access_log(lines).site == "shop.example.org"  # where most later pages come from
    assert read_access_log(lines, site="example.org").site == "example.org"
    assert read_access_log(["nonsense"]).site is None


def test_simulate_command_takes_the_site_of_an_access_log() -> None:
    pools = str(EXAMPLES / "site" / "pools.json")
    log = str(EXAMPLES / "traffic" / "access.log")
    runs = []
    for site in ("www.example.co.uk", "elsewhere.example.org"):
        args = ("simulate", pools, "--access-log", log, "--site", site, "--quantity", "3")
        code, out = run_cli(*args, "--json")
        assert code == 0, out
        runs.append(json.loads(out)["runs"][0])
    # Taken for another site's, the log's internal referrers look external:
    # every page is a landing of its own, matched on its own referrer.
    assert runs[0]["visits"] == runs[1]["visits"]
    assert runs[0]["outcomes"] != runs[1]["outcomes"]
    code, out = run_cli("simulate", pools, "--site", "example.org")
    assert code == 2
    assert "--access-log" in out


@pytest.mark.parametrize(
    "referrer",
    [
        None,
        "https://www.google.co.uk/",
        "https://www.example.co.uk/pricing",  # the site's own: not external
        "https://shop.example.co.uk/",  # the same registrable domain
        "android-app://com.google.android.gm/",
        "https://" + "r" * 2000 + ".example/",  # cut to what a context keeps
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.co.uk/?gclid=G1&utm_source=google#top",
        "https://www.example.co.uk/p?"
        + "&".join(f"x{i}={'v' * 40}" for i in range(80))
        + "&gclid=G",
        "https://www.example.co.uk/" + "a/" * 1100 + "?utm_campaign=c",
    ],
)
def test_a_first_page_view_with_a_query_starts_the_context_landing_page_gives(
    url: str, referrer: str | None
) -> None:
    """A run starts such a view's context with :func:`landing_page`'s URL and referrer."""
    pools = load_pools((EXAMPLES / "site" / "pools.json").read_bytes())
    store = MemoryStore()
    clock = _Now()
    engine = Engine(pools, store, clock=clock)
    site = "www.example.co.uk"
    run = _Run(
        engine,
        clock,
        store,
        [],
        {},
        3600.0,
        0.0,
        elide=True,
        site_host=site,
        window=1800.0,
        carry=False,
        trim=True,
    )
    expected = landing_page(url, referrer, site_host=site, params=engine.rules.param_names)
    for serial in range(2):  # the referrer's answer found, then cached
        state = _SessionState(serial, Session("v", "Mozilla/5.0", "paid", [(5.0, url, referrer)]))
        run.land(state, url, referrer, 5.0)
        assert (state.url, state.referrer) == expected
        assert (state.landed, state.started, state.seen) == (True, 5.0, 5.0)
