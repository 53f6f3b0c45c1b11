"""Pool-sizing simulation: checked against Erlang B, reproducible, and usable on logs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import CliRunner

from dni_engine.cli import cli
from dni_engine.erlang import erlang_b
from dni_engine.errors import ConfigError
from dni_engine.leases import Policy
from dni_engine.schema import NumberPool, NumberPoolRequest
from dni_engine.simulate import (
    parse_quantities,
    recommend,
    resize_pools,
    simulate,
)
from dni_engine.traffic import (
    TYPICAL_DAY,
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
    assert [run["quantity"] for run in data["runs"]] == [1, 2, 3]
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
