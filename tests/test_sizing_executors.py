"""Sizing on executors: a process pool, a real Dask cluster and the command line's --jobs.

Every run carries its own seed, so wherever it runs the results are those of a
serial run: the tests compare whole JSON reports (wall time is not in them).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner

from dni_engine.cli import cli
from dni_engine.errors import ConfigError
from dni_engine.schema import AnyPool, load_pools
from dni_engine.simulate import SimulationResult, recommend, sweep
from dni_engine.traffic import TrafficModel
from tests.conftest import EXAMPLES

SITE = EXAMPLES / "site" / "pools.json"
TRAFFIC = TrafficModel(visitors_per_hour=40, hours=6, call_share=0.3)
SIZES = [2, 5, 9]


@pytest.fixture(scope="module")
def pools() -> list[AnyPool]:
    return load_pools(SITE.read_bytes())


@pytest.fixture(scope="module")
def process_pool() -> Iterator[Executor]:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        yield executor


def reports(runs: list[SimulationResult]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in runs]


@pytest.fixture(scope="module")
def serial(pools: list[AnyPool]) -> list[SimulationResult]:
    return sweep(pools, TRAFFIC, SIZES, seed=11, replications=3)


def test_a_process_pool_gives_the_serial_results(
    pools: list[AnyPool], serial: list[SimulationResult], process_pool: Executor
) -> None:
    seen: list[tuple[int, int]] = []
    shares: list[float] = []
    runs = sweep(
        pools,
        TRAFFIC,
        SIZES,
        seed=11,
        replications=3,
        executor=process_pool,
        on_run=lambda done, submitted: seen.append((done, submitted)),
        progress=shares.append,
    )
    assert reports(runs) == reports(serial)
    assert seen == [(i, 9) for i in range(1, 10)]  # one call per run, whichever worker
    assert shares[-1] == 1.0
    assert shares == sorted(shares)


def test_a_search_on_a_process_pool_recommends_what_a_serial_one_does(
    pools: list[AnyPool], process_pool: Executor
) -> None:
    here = recommend(pools, TRAFFIC, target=0.9, seed=2, replications=3)
    there = recommend(pools, TRAFFIC, target=0.9, seed=2, replications=3, executor=process_pool)
    assert [a.as_dict() for a in there[0]] == [a.as_dict() for a in here[0]]
    assert reports(there[1]) == reports(here[1])


def test_an_error_in_a_worker_is_raised_here(pools: list[AnyPool], process_pool: Executor) -> None:
    with pytest.raises(ConfigError, match="quantity"):
        sweep(pools, TRAFFIC, [3, 0], executor=process_pool)


def test_a_dask_cluster_gives_the_serial_results(
    pools: list[AnyPool], serial: list[SimulationResult]
) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        runs = sweep(pools, TRAFFIC, SIZES, seed=11, replications=3, executor=client.get_executor())
    assert reports(runs) == reports(serial)


def run_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["simulate", str(SITE), "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_the_command_gives_the_same_report_on_one_process_or_two() -> None:
    common = ("--visitors-per-hour", "40", "--hours", "4", "--quantity", "3,8")
    alone = run_json(*common, "--replications", "3", "--jobs", "1")
    spread = run_json(*common, "--replications", "3", "--jobs", "2")
    assert alone == spread
    assert alone["replications"] == 3
    assert [(r["quantity"], r["replication"]) for r in alone["runs"]] == [
        (q, i) for q in (3, 8) for i in range(3)
    ]
    size = alone["sizes"][0]
    assert size["replications"] == 3
    assert size["accuracy"]["low"] <= size["accuracy"]["mean"] <= size["accuracy"]["high"]
    advice = alone["recommendations"][0]
    assert {"low", "high", "replications", "confidence"} <= set(advice)


def test_the_command_prints_each_recommendation_with_its_interval() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(SITE),
            "--visitors-per-hour",
            "40",
            "--hours",
            "4",
            "--quantity",
            "4,12",
            "--replications",
            "4",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Google Ads: " in result.output
    assert "numbers: accuracy" in result.output
    assert "8 runs (4 per size) on 1 process" in result.output


@pytest.mark.parametrize(
    ("option", "value"), [("--jobs", "0"), ("--replications", "0"), ("--confidence", "1")]
)
def test_the_command_refuses_bad_sizing_options(option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", str(SITE), option, value])
    assert result.exit_code == 2
    assert option in result.output
