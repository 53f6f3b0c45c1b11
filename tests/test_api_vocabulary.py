"""The vendor API's vocabulary has one home, ``schema``, and a pool has one key.

The client and the emulator both take the API's models, key order and header
names from :mod:`dni_engine.schema`, so neither depends on the other; and the
rules, the engine and the simulation all key a pool by its ``key`` property.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dni_engine import client, schema
from dni_engine.engine import Engine
from dni_engine.rules import compile_pools
from dni_engine.schema import NumberPool, NumberPoolRequest
from dni_engine.simulate import resize_pools, simulate
from dni_engine.traffic import TrafficModel
from tests.conftest import SEED_KINDS, load_example


def test_the_client_still_offers_the_names_that_moved_to_schema() -> None:
    assert client.TOKEN_HEADER == schema.TOKEN_HEADER == "x-organization-token"
    assert client.PoolNumbersRequest is schema.PoolNumbersRequest
    assert client.pool_json is schema.pool_json


def test_the_emulator_does_not_import_the_client() -> None:
    code = "import sys, dni_engine.emulator; print('dni_engine.client' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "False"


@pytest.mark.parametrize("kind", SEED_KINDS)
def test_a_pool_is_keyed_by_its_id_and_a_request_by_its_name(kind: str) -> None:
    pool = NumberPool.model_validate(load_example(f"{kind}.response"))
    request = NumberPoolRequest.model_validate(load_example(f"{kind}.request"))
    assert pool.key == str(pool.id)
    assert request.key == request.name
    assert "key" not in pool.model_dump(mode="json", by_alias=True)  # not a vendor field


def _site() -> list[Any]:
    pools: list[Any] = [
        NumberPool.model_validate(load_example(f"{kind}.response")) for kind in SEED_KINDS
    ]
    request = load_example("tollfree.request")
    request["name"] = "A request of its own"
    return [*pools, NumberPoolRequest.model_validate(request)]


def test_rules_engine_and_simulation_use_the_same_key() -> None:
    pools = _site()
    keys = tuple(pool.key for pool in pools)
    assert compile_pools(pools).pool_keys == keys
    assert tuple(Engine(pools).pools) == keys
    traffic = TrafficModel(visitors_per_hour=1.0, hours=1.0)
    as_they_are = simulate(pools[:-1], traffic)
    assert tuple(report.pool_key for report in as_they_are.pools) == keys[:-1]
    # Resized, a request becomes a pool with a made-up id, and is reported under it.
    resized = simulate(pools, traffic, quantity=2)
    made_up = resize_pools(pools, 2)[-1].key
    assert tuple(report.pool_key for report in resized.pools) == (*keys[:-1], made_up)
