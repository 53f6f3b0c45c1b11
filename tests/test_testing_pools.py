"""The public pool builders: documents that validate, their defaults, overrides and errors."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import given

import dni_engine
import dni_engine.testing
from dni_engine import Engine
from dni_engine.errors import ConfigError
from dni_engine.schema import NumberPool, TrackingSource, check_pool_set, load_pools, pool_json
from dni_engine.testing import (
    EXAMPLE_COUNTRIES,
    PoolArguments,
    build_pool,
    example_numbers,
    pool_document,
    source,
    strategies,
)
from dni_engine.testing import pools as pools_module
from tests.conftest import SEED_KINDS, load_example

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def test_the_default_document() -> None:
    assert pool_document() == {
        "id": 1,
        "name": "Pool 1",
        "group_id": 1,
        "status": "active",
        "match_period": 30,
        "quantity": 1,
        "numbers": [{"id": 441174960001, "phone_number": "+441174960001"}],
        "replacement_configuration": {
            "numbers_to_replace": ["0117 496 0999"],
            "tracking_sources": [{"referrer_domain": "Any", "track_organic": False}],
            "replace_all_numbers": False,
        },
        "sms_routes": {"route_type": "None"},
        "call_routes": {"route_type": "Basic", "route": {"termination_number": "+441174960999"}},
    }


def test_the_default_pool_validates_and_takes_every_visit() -> None:
    pool = build_pool()
    assert isinstance(pool, NumberPool)
    assert (pool.key, pool.name, pool.country, pool.e164_numbers) == (
        "1",
        "Pool 1",
        "GB",
        ("+441174960001",),
    )
    decision = Engine([pool]).visit("v", url="https://shop.example/", user_agent=BROWSER)
    assert (decision.outcome, decision.number) == ("new", "+441174960001")


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"id": 7, "numbers": 4, "match_period": 5},
        {"country": "US", "numbers": 3},
        {"numbers": ["+12025550150"], "replace_all_numbers": True},
        {"sources": [source("Google", ["gclid=*", "utm_medium=cpc"], track_organic=True)]},
        {"numbers": 0},
        {"status": "deleted", "group_id": 12462615, "name": "Old ads"},
    ],
)
def test_documents_are_the_api_response_exactly(arguments: PoolArguments) -> None:
    document = pool_document(**arguments)
    pool = build_pool(**arguments)
    assert pool == NumberPool.model_validate(document)
    assert pool_json(pool) == document
    (loaded,) = load_pools(json.dumps(document))
    assert loaded == pool
    # The vendor's key order, as in its example responses.
    vendor = load_example("national.response")
    assert list(document) == list(vendor)
    assert list(document["replacement_configuration"]) == [
        key
        for key in vendor["replacement_configuration"]
        if key in document["replacement_configuration"]
    ]


@pytest.mark.parametrize("kind", SEED_KINDS)
def test_the_vendors_examples_are_pool_documents(kind: str) -> None:
    vendor = load_example(f"{kind}.response")
    configuration = vendor["replacement_configuration"]
    document = pool_document(
        id=vendor["id"],
        name=vendor["name"],
        group_id=vendor["group_id"],
        status=vendor["status"],
        match_period=vendor["match_period"],
        quantity=vendor["quantity"],
        numbers=[n["phone_number"] for n in vendor["numbers"]],
        first_number_id=vendor["numbers"][0]["id"],
        sources=[source(**s) for s in configuration["tracking_sources"]],
        numbers_to_replace=configuration.get("numbers_to_replace"),
        replace_all_numbers=configuration["replace_all_numbers"],
        termination_number=vendor["call_routes"]["route"]["termination_number"],
    )
    # The same JSON text: the same values in the vendor's key order.
    assert json.dumps(document) == json.dumps(vendor)


def test_a_count_of_numbers_is_the_pools_slice_of_the_example_range() -> None:
    assert build_pool(id=2, numbers=3).e164_numbers == example_numbers(3, start=6)
    assert build_pool(id=0, numbers=2, country="US").e164_numbers == (
        "+12025550100",
        "+12025550101",
    )
    # Past the end of the range the slice wraps round to the start.
    assert build_pool(id=500, numbers=2).e164_numbers == ("+441174960001", "+441174960002")
    # Pools of the same size with different ids below 999 // size never share a number.
    site = [build_pool(id=i, numbers=3) for i in range(333)]
    assert check_pool_set(site) == []
    assert len({n for pool in site for n in pool.e164_numbers}) == 999


def test_a_pool_may_have_no_numbers_yet() -> None:
    pool = build_pool(numbers=0)
    assert (pool.e164_numbers, pool.quantity) == ((), 1)
    assert build_pool(numbers=[], quantity=5).quantity == 5


def test_number_ids_are_the_numbers_digits_or_consecutive() -> None:
    document = pool_document(numbers=["+441174090001", "+12025550100"])
    assert [n["id"] for n in document["numbers"]] == [441174090001, 12025550100]
    numbered = pool_document(numbers=2, first_number_id=9_000_000)
    assert [n["id"] for n in numbered["numbers"]] == [9_000_000, 9_000_001]
    # Distinct numbers in different pools have distinct ids, so a site of pools is valid.
    site = [build_pool(id=1, numbers=2), build_pool(id=2, numbers=2, sources=[source("Bing")])]
    assert check_pool_set(site) == []
    Engine(site)


def test_the_country_follows_the_numbers() -> None:
    us = build_pool(numbers=["+12025550150", "+12025550151"])
    assert us.country == "US"
    assert us.replacement_configuration.numbers_to_replace == ["(202) 555-0199"]
    assert us.call_routes.route.termination_number == "+12025550199"
    assert build_pool(country="us").e164_numbers == ("+12025550101",)


def test_replace_all_numbers_drops_the_numbers_to_replace() -> None:
    document = pool_document(replace_all_numbers=True)
    assert document["replacement_configuration"] == {
        "tracking_sources": [{"referrer_domain": "Any", "track_organic": False}],
        "replace_all_numbers": True,
    }
    assert build_pool(replace_all_numbers=True).replacement_configuration.replace_all_numbers


def test_sources_are_written_as_the_api_writes_them() -> None:
    assert source() == {"referrer_domain": "Any", "track_organic": False}
    assert source("Google", ["gclid=*"], track_organic=True) == {
        "referrer_domain": "Google",
        "url_triggers": ["gclid=*"],
        "track_organic": True,
    }
    assert source("Bing", [])["url_triggers"] == []
    model = TrackingSource.model_validate({"referrer_domain": "Facebook", "url_triggers": ["a"]})
    document = pool_document(sources=[model, {"referrer_domain": "Yahoo"}])
    assert document["replacement_configuration"]["tracking_sources"] == [
        {"referrer_domain": "Facebook", "url_triggers": ["a"], "track_organic": False},
        {"referrer_domain": "Yahoo"},
    ]
    assert build_pool(sources=[model]).replacement_configuration.tracking_sources == [model]


def test_example_numbers_are_fictional_and_deterministic() -> None:
    assert example_numbers(3) == ("+441174960000", "+441174960001", "+441174960002")
    assert example_numbers(2, start=97, country="US") == ("+12025550197", "+12025550198")
    assert example_numbers(0) == ()
    assert EXAMPLE_COUNTRIES == ("GB", "US")
    for country, size in (("GB", 999), ("US", 99)):
        numbers = example_numbers(size, country=country)
        assert len(set(numbers)) == size
        parsed = [phonenumbers.parse(n, None) for n in numbers]
        assert all(phonenumbers.is_valid_number(p) for p in parsed)
        assert {phonenumbers.region_code_for_number(p) for p in parsed} == {country}
        # The site's own number is never a tracking number.
        site = pool_document(country=country)["call_routes"]["route"]["termination_number"]
        assert site not in numbers


def test_pool_document_does_not_validate() -> None:
    document = pool_document(match_period=0, sources=[], status="")
    assert (document["match_period"], document["status"]) == (0, "")
    assert document["replacement_configuration"]["tracking_sources"] == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"numbers": "+441174960001"}, "numbers must be a list of strings, not a single string"),
        ({"numbers_to_replace": "0117 496 0999"}, "numbers_to_replace must be a list"),
        ({"sources": ["Google"]}, r"not str \(build one with source\(\.\.\.\)"),
        ({"sources": "Google"}, "not str"),
        ({"numbers": 1.5}, "numbers must be a list of strings, not float"),
        ({"numbers": 2, "id": "1"}, "id with a count of numbers must be an int, not str"),
        ({"first_number_id": 1.0}, "first_number_id must be an int"),
    ],
)
def test_wrong_types_are_type_errors(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        pool_document(**arguments)
    with pytest.raises(TypeError, match=message):
        build_pool(**arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"numbers": -1}, "a count of 0 or more"),
        ({"numbers": 1000}, "GB has 999 example numbers; 1000 were asked for"),
        ({"numbers": 100, "country": "US"}, "US has 99 example numbers"),
        ({"country": "FR"}, "no example numbers for country 'FR'"),
        ({"numbers": ["+33123456789"]}, "no example numbers for country 'FR'"),
        ({"numbers": ["0117 496 0001"]}, "is not '\\+' and digits.*pass first_number_id"),
    ],
)
def test_bad_values_are_value_errors(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pool_document(**arguments)


def test_a_country_without_examples_needs_its_own_numbers() -> None:
    french = build_pool(
        numbers=["+33123456789"],
        numbers_to_replace=["01 23 45 67 00"],
        termination_number="+33123456700",
    )
    assert french.country == "FR"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: example_numbers(-1), "0 or more"),
        (lambda: example_numbers(1, start=999), "GB has 999 example numbers; numbers 999 to 999"),
        (lambda: example_numbers(1, country="DE"), "no example numbers for country 'DE'"),
    ],
)
def test_example_numbers_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
    with pytest.raises(TypeError, match="count must be an int"):
        example_numbers("3")  # type: ignore[arg-type]


def test_source_errors() -> None:
    with pytest.raises(TypeError, match="url_triggers must be a list of strings"):
        source("Any", "gclid=*")


def test_build_pool_reports_what_the_schema_refuses() -> None:
    with pytest.raises(ConfigError) as caught:
        build_pool(match_period=0, sources=[], numbers=["+441174960001", "+441174960001"])
    paths = [problem.path for problem in caught.value.problems]
    assert "match_period" in paths
    assert "replacement_configuration.tracking_sources" in paths
    with pytest.raises(ConfigError, match="url_triggers"):
        build_pool(sources=[source("Any", ["=x"])])


def test_pool_arguments_name_every_argument_of_pool_document() -> None:
    parameters = inspect.signature(pool_document).parameters
    assert list(PoolArguments.__annotations__) == list(parameters)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())


def test_the_builders_are_exported_from_dni_engine_testing() -> None:
    assert set(pools_module.__all__) <= set(dni_engine.testing.__all__)
    for name in pools_module.__all__:
        assert getattr(dni_engine.testing, name) is getattr(pools_module, name)


def test_the_builders_need_no_hypothesis(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # importing hypothesis now fails
        from dni_engine.testing import build_pool, pool_document, source
        pool = build_pool(id=2, numbers=2, sources=[source("Google", ["gclid=*"])])
        print(pool.e164_numbers)
        """
    )
    # The build of dni_engine under test, whichever it is, from an empty directory.
    env = {**os.environ, "PYTHONPATH": str(Path(dni_engine.__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('+441174960004', '+441174960005')"


@given(strategies.number_pools())
def test_every_drawn_pool_is_a_pool_document(pool: NumberPool) -> None:
    configuration = pool.replacement_configuration
    rebuilt = build_pool(
        id=pool.id,
        name=pool.name,
        group_id=pool.group_id,
        status=pool.status,
        match_period=pool.match_period,
        quantity=pool.quantity,
        numbers=list(pool.e164_numbers),
        first_number_id=pool.numbers[0].id,
        sources=configuration.tracking_sources,
        numbers_to_replace=configuration.numbers_to_replace,
        replace_all_numbers=configuration.replace_all_numbers,
        termination_number=pool.call_routes.route.termination_number,
    )
    assert rebuilt == pool
