"""Replications: their seeds, the interval a fresh run falls in, and sizes chosen on it."""

from __future__ import annotations

import math
import statistics

import pytest

from dni_engine.errors import ConfigError
from dni_engine.replications import (
    Interval,
    interval,
    replication_seeds,
    summarize,
    t_quantile,
)
from dni_engine.schema import NumberPool
from dni_engine.simulate import recommend, simulate, sweep
from dni_engine.traffic import TrafficModel
from tests.conftest import load_example


def catch_all_pool(match_period: int = 20) -> NumberPool:
    """The vendor's Bristol pool, taking every visitor."""
    data = load_example("geographic-city.response")
    del data["replacement_configuration"]["tracking_sources"][0]["url_triggers"]
    data["match_period"] = match_period
    return NumberPool.model_validate(data)


TRAFFIC = TrafficModel(visitors_per_hour=200, hours=4, call_share=0.3)


def test_replication_zero_is_the_seed_itself_and_the_others_are_distinct() -> None:
    seeds = replication_seeds(7, 10)
    assert seeds[0] == 7
    assert len(set(seeds)) == 10
    assert all(0 <= s < 2**63 for s in seeds)
    assert replication_seeds(7, 10) == seeds  # a function of the seed alone
    assert set(replication_seeds(8, 10)).isdisjoint(seeds)  # nearby studies share none
    assert replication_seeds(7, 3) == seeds[:3]
    with pytest.raises(ValueError, match="replications"):
        replication_seeds(7, 0)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 1, 12.706), (0.975, 9, 2.262), (0.95, 9, 1.833), (0.975, 29, 2.045), (0.5, 4, 0.0)],
)
def test_t_quantiles_match_the_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=5e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=5e-4)


def test_t_quantiles_tend_to_the_normal() -> None:
    assert t_quantile(0.975, 100_000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), 1e-4)


def test_interval_is_the_t_prediction_interval_for_one_more_run() -> None:
    values = [0.97, 0.98, 0.99, 0.96, 0.985]
    got = interval(values, 0.95)
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = 2.776445 * sd * math.sqrt(1 + 1 / 5)  # t(0.975, 4)
    assert got.mean == pytest.approx(mean)
    assert got.low == pytest.approx(mean - half, abs=1e-6)
    assert got.high == pytest.approx(min(1.0, mean + half), abs=1e-6)
    assert got.replications == 5
    assert interval(values, 0.99).low < got.low  # more confidence, a wider interval


def test_one_value_is_its_own_interval_and_shares_are_clipped() -> None:
    assert interval([0.9]) == Interval(0.9, 0.9, 0.9, 1, 0.95)
    assert str(interval([0.9])) == "90.0%"
    wide = interval([1.0, 0.5, 1.0])
    assert wide.high == 1.0
    assert 0.0 <= wide.low < wide.mean
    assert str(Interval(0.993, 0.989, 0.996, 10, 0.95)) == "99.3% [98.9, 99.6]"
    with pytest.raises(ValueError, match="at least one"):
        interval([])
    with pytest.raises(ValueError, match="confidence"):
        interval([0.5], 1.0)


def test_sweep_runs_every_size_on_the_same_replication_seeds() -> None:
    runs = sweep([catch_all_pool()], TRAFFIC, [8, 3], seed=5, replications=3)
    assert [(r.quantity, r.replication) for r in runs] == [(q, i) for q in (3, 8) for i in range(3)]
    seeds = replication_seeds(5, 3)
    assert [r.seed for r in runs] == seeds * 2
    # each run is the single simulation on its seed
    alone = simulate([catch_all_pool()], TRAFFIC, quantity=8, seed=seeds[2])
    assert runs[-1].as_dict() == {**alone.as_dict(), "replication": 2}
    (small, large) = summarize(runs)
    assert (small.quantity, large.quantity) == (3, 8)
    assert small.replications == large.replications == 3
    assert small.accuracy.mean == pytest.approx(
        statistics.fmean(r.pools[0].accuracy for r in runs[:3])
    )


def test_the_size_recommended_is_the_smallest_whose_fresh_run_interval_meets_the_target() -> None:
    pools = [catch_all_pool()]
    (advice,), runs = recommend(pools, TRAFFIC, target=0.9, replications=5, seed=3)
    assert advice.quantity is not None
    assert advice.replications == 5
    by_size = {s.quantity: s for s in summarize(runs)}
    assert set(by_size) == {r.quantity for r in runs}
    chosen = by_size[advice.quantity]
    assert advice.low == pytest.approx(chosen.accuracy.low)
    assert advice.achieved == pytest.approx(chosen.accuracy.mean)
    assert advice.low is not None
    assert advice.low >= 0.9
    assert advice.quantity - 1 in by_size  # the search looked just below
    assert all(s.accuracy.low < 0.9 for q, s in by_size.items() if q < advice.quantity)
    assert advice.summary().startswith(f"{pools[0].name}: {advice.quantity} numbers: accuracy ")
    assert "[" in advice.summary()


def test_replications_make_the_choice_more_cautious_than_one_run() -> None:
    pools = [catch_all_pool()]
    (single,), _ = recommend(pools, TRAFFIC, target=0.95, seed=3)
    (replicated,), _ = recommend(pools, TRAFFIC, target=0.95, seed=3, replications=8)
    assert single.quantity is not None
    assert replicated.quantity is not None
    assert replicated.quantity >= single.quantity


def test_bad_replications_and_confidence_are_refused() -> None:
    pools = [catch_all_pool()]
    with pytest.raises(ConfigError, match="replications"):
        recommend(pools, TRAFFIC, replications=0)
    with pytest.raises(ConfigError, match="confidence"):
        recommend(pools, TRAFFIC, confidence=1.5)
    with pytest.raises(ConfigError, match="replications"):
        sweep(pools, TRAFFIC, [3], replications=0)


def test_a_task_pickles_with_its_traffic_and_runs_the_same_elsewhere() -> None:
    import pickle

    from dni_engine.replications import SimulationTask

    traffic = TrafficModel(visitors_per_hour=(10.0,) * 12 + (60.0,) * 12, hours=6, call_share=0.3)
    task = SimulationTask((catch_all_pool(),), traffic, quantity=4, seed=9, replication=2)
    again = pickle.loads(pickle.dumps(task))
    assert again == task
    assert again.run().as_dict() == task.run().as_dict()
    assert task.run().replication == 2
