"""The Number Pool models: the vendor's examples, defaults, and every rejection."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from dni_engine.errors import ConfigError
from dni_engine.schema import (
    NumberPool,
    NumberPoolRequest,
    PoolNumber,
    Referrer,
    load_pools,
    parse_pool,
)
from dni_engine.testing.strategies import number_pool_requests, number_pools
from tests.conftest import load_example


def dump(model: NumberPool | NumberPoolRequest) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def test_seed_response_round_trips_exactly(seed_kind: str) -> None:
    seed = load_example(f"{seed_kind}.response")
    pool = NumberPool.model_validate(seed)
    assert dump(pool) == seed
    assert NumberPool.model_validate_json(pool.model_dump_json(by_alias=True)) == pool


def test_seed_request_becomes_the_seed_response(seed_kind: str) -> None:
    request = NumberPoolRequest.model_validate(load_example(f"{seed_kind}.request"))
    seed = load_example(f"{seed_kind}.response")
    numbers = [PoolNumber.model_validate(n) for n in seed["numbers"]]
    pool = request.to_pool(id=seed["id"], group_id=seed["group_id"], numbers=numbers)
    expected = dict(seed)
    # The vendor's toll-free example answers a request named "ABC Company 123" with
    # "ABC Company 126"; the echo of the request is what a pool must carry.
    expected["name"] = request.name
    assert dump(pool) == expected


def test_request_defaults_are_filled_in() -> None:
    request = NumberPoolRequest.model_validate(load_example("tollfree.request"))
    data = dump(request)
    assert data["replacement_configuration"]["replace_all_numbers"] is False
    assert data["replacement_configuration"]["tracking_sources"][0]["track_organic"] is False
    assert "sms_routes" not in data  # optional in a request, filled in by the response
    assert request.country == "GB"


def test_response_fills_sms_routes_default() -> None:
    seed = load_example("national.response")
    del seed["sms_routes"]
    assert dump(NumberPool.model_validate(seed))["sms_routes"] == {"route_type": "None"}


def test_route_type_is_case_insensitive_and_written_back_as_basic() -> None:
    seed = load_example("geographic-city.request")
    seed["call_routes"]["route_type"] = "basic"
    assert dump(NumberPoolRequest.model_validate(seed))["call_routes"]["route_type"] == "Basic"


def test_pool_country_comes_from_its_numbers() -> None:
    pool = NumberPool.model_validate(load_example("geographic-city.response"))
    assert pool.country == "GB"
    assert pool.e164_numbers == ("+441174090162", "+441174090163", "+441174090165")


def test_referrer_catalogue_item_uses_capital_id() -> None:
    item = Referrer.model_validate({"Id": 13, "name": "Any", "domain": "*"})
    assert item.id == 13
    assert item.model_dump(by_alias=True) == {"Id": 13, "name": "Any", "domain": "*"}


def test_vanity_numbers_are_accepted() -> None:
    seed = load_example("geographic-city.request")
    seed["phone_number_request"]["iso_country"] = "US"
    seed["call_routes"]["route"]["termination_number"] = "+12025550143"
    seed["replacement_configuration"]["numbers_to_replace"] = ["905219CARS", "4045553434"]
    assert NumberPoolRequest.model_validate(seed).country == "US"


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_pool(data)
    return {p.path: p.reason for p in info.value.problems}


def mutate(base: str, path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(load_example(base))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()

REJECTIONS = [
    ("request", ("name",), "   ", "name", "must not be empty"),
    ("request", ("name",), DELETE, "name", "required field is missing"),
    ("request", ("match_period",), 0, "match_period", "greater than or equal to 1"),
    ("request", ("match_period",), "30", "match_period", "whole number"),
    ("request", ("match_period",), 30.5, "match_period", "whole number"),
    ("request", ("match_period",), True, "match_period", "whole number"),
    ("request", ("match_period",), 10**6, "match_period", "less than or equal to 43200"),
    ("request", ("quantity",), 0, "quantity", "greater than or equal to 1"),
    ("request", ("quantity",), 5000, "quantity", "less than or equal to 1000"),
    (
        "request",
        ("phone_number_request", "iso_country"),
        "XX",
        "phone_number_request.iso_country",
        "not a country with known phone numbering",
    ),
    (
        "request",
        ("phone_number_request", "iso_country"),
        "GBR",
        "phone_number_request.iso_country",
        "ISO 3166 alpha-2",
    ),
    (
        "request",
        ("phone_number_request", "city"),
        DELETE,
        "phone_number_request",
        "needs a city or an area_code",
    ),
    (
        "request",
        ("phone_number_request", "match_type"),
        "mobile",
        "phone_number_request.match_type",
        "'mobile' is not allowed",
    ),
    (
        "request",
        ("phone_number_request", "number_type"),
        "domestic",
        "phone_number_request.number_type",
        "'domestic' is not allowed",
    ),
    (
        "request",
        ("replacement_configuration", "replace_all_numbers"),
        True,
        "replacement_configuration",
        "cannot be combined",
    ),
    (
        "request",
        ("replacement_configuration", "numbers_to_replace"),
        DELETE,
        "replacement_configuration",
        "list at least one number",
    ),
    (
        "request",
        ("replacement_configuration", "numbers_to_replace", 1),
        "12345",
        "replacement_configuration.numbers_to_replace[1]",
        "has 5 characters",
    ),
    (
        "request",
        ("replacement_configuration", "numbers_to_replace", 0),
        "0117 40 ##",
        "replacement_configuration.numbers_to_replace[0]",
        "only digits, vanity letters",
    ),
    (
        "request",
        ("replacement_configuration", "numbers_to_replace", 2),
        "0100000000000000",
        "replacement_configuration.numbers_to_replace[2]",
        "has 16 characters",
    ),
    (
        "request",
        ("replacement_configuration", "numbers_to_replace", 2),
        "0117409016299",
        "replacement_configuration.numbers_to_replace[2]",
        "not a possible phone number in GB",
    ),
    (
        "request",
        ("call_routes", "route", "termination_number"),
        "0117 000 000",
        "call_routes.route.termination_number",
        "not a valid, dialable phone number in GB",
    ),
    (
        "request",
        ("call_routes", "route_type"),
        "Advanced",
        "call_routes.route_type",
        "only 'Basic' routing",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "url_triggers", 0),
        "gclid=*&&x",
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "stray '&'",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "url_triggers", 0),
        "=abc",
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "no parameter name",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "url_triggers", 0),
        "utm_*=x",
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "wildcards are only allowed in the value",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "url_triggers", 0),
        "utm_campaign=" + "x" * 600,
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "the limit is 512",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "url_triggers", 0),
        "",
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "empty url_trigger",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "referrer_domain"),
        "Gogle",
        "replacement_configuration.tracking_sources[0].referrer_domain",
        "neither a known referrer",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "referrer_domain"),
        "https://example.org/page",
        "replacement_configuration.tracking_sources[0].referrer_domain",
        "write the host only",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources", 0, "track_organic"),
        "yes",
        "replacement_configuration.tracking_sources[0].track_organic",
        "true or false",
    ),
    (
        "request",
        ("replacement_configuration", "tracking_sources"),
        [],
        "replacement_configuration.tracking_sources",
        "at least one item",
    ),
    ("request", ("colour",), "blue", "colour", "unknown field"),
    (
        "response",
        ("numbers", 0, "phone_number"),
        "01174090162",
        "numbers[0].phone_number",
        "not in E.164 form",
    ),
    (
        "response",
        ("numbers", 1, "phone_number"),
        "+12025550143",
        "$",
        "must all be in one country",
    ),
    ("response", ("id",), -1, "id", "greater than or equal to 0"),
    (
        "response",
        ("sms_routes", "route_type"),
        "Fax",
        "sms_routes.route_type",
        "not supported",
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "where", "reason"),
    REJECTIONS,
    ids=[f"{r[3]}-{r[4][:24]}" for r in REJECTIONS],
)
def test_each_rejection_names_its_path_and_reason(
    kind: str, path: tuple[Any, ...], value: Any, where: str, reason: str
) -> None:
    base = "geographic-city.request" if kind == "request" else "geographic-city.response"
    problems = problems_of(mutate(base, path, value))
    assert where in problems, problems
    assert reason in problems[where], problems[where]


def test_every_problem_is_reported_at_once() -> None:
    data = load_example("geographic-city.request")
    data["match_period"] = 0
    data["phone_number_request"]["iso_country"] = "ZZ"
    data["replacement_configuration"]["tracking_sources"][0]["url_triggers"] = ["", "ok=1"]
    data["replacement_configuration"]["tracking_sources"][0]["referrer_domain"] = "nope"
    problems = problems_of(data)
    assert set(problems) == {
        "match_period",
        "phone_number_request.iso_country",
        "replacement_configuration.tracking_sources[0].url_triggers[0]",
        "replacement_configuration.tracking_sources[0].referrer_domain",
    }


def test_geographic_fields_are_rejected_on_other_match_types() -> None:
    data = load_example("tollfree.request")
    data["phone_number_request"]["city"] = "Bristol"
    assert "only apply to match_type 'geographic'" in problems_of(data)["phone_number_request"]


def test_national_termination_number_is_read_in_the_pool_country() -> None:
    data = load_example("geographic-city.request")
    data["call_routes"]["route"]["termination_number"] = "01274 792823"
    assert NumberPoolRequest.model_validate(data).call_routes.route.termination_number


def test_load_pools_reads_lists_and_reports_paths_per_pool() -> None:
    good = load_example("national.response")
    bad = load_example("tollfree.response")
    bad["quantity"] = 0
    with pytest.raises(ConfigError) as info:
        load_pools(json.dumps([good, bad]))
    assert [p.path for p in info.value.problems] == ["[1].quantity"]
    assert len(load_pools(json.dumps([good]))) == 1


def test_load_pools_rejects_duplicate_names() -> None:
    pool = load_example("national.response")
    other = dict(pool, id=1)
    with pytest.raises(ConfigError, match="used twice"):
        load_pools(json.dumps([pool, other]))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("42", "expected a pool object or a list"),
        ("[]", "holds no pools"),
        ("[1]", "must be a JSON object"),
        (b"\xff\xfe{", "not valid JSON"),
    ],
)
def test_load_pools_rejects_documents_of_the_wrong_shape(text: str | bytes, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_pools(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number_pool_requests())
def test_any_valid_request_survives_a_json_round_trip(request: NumberPoolRequest) -> None:
    text = request.model_dump_json(by_alias=True)
    again = NumberPoolRequest.model_validate_json(text)
    assert again == request
    assert again.model_dump(mode="json", by_alias=True) == json.loads(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number_pools())
def test_any_valid_pool_survives_a_json_round_trip(pool: NumberPool) -> None:
    data = pool.model_dump(mode="json", by_alias=True)
    assert NumberPool.model_validate(data) == pool
    assert load_pools(json.dumps([data]))[0] == pool
