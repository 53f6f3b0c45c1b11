"""The Number Pool models: the vendor's examples, defaults, and every rejection."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.errors import ConfigError
from dni_engine.schema import (
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    NumberPool,
    NumberPoolRequest,
    PoolNumber,
    Referrer,
    check_pool_set,
    load_pools,
    parse_pool,
    status_warning,
)
from dni_engine.testing.strategies import number_pool_requests, number_pools
from tests.conftest import EXAMPLES, load_example


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


# ---- hostile documents -----------------------------------------------------------------------

SITE_FILE = load_example("national.response")  # any valid response


def only_problem(text: str | bytes) -> Any:
    with pytest.raises(ConfigError) as info:
        load_pools(text)
    assert len(info.value.problems) == 1, info.value
    return info.value.problems[0]


def test_a_hundred_thousand_open_brackets_are_one_problem_at_the_depth_limit() -> None:
    problem = only_problem("[" * 100_000)
    assert problem.path == "[0]" * MAX_JSON_DEPTH
    assert f"nested more than {MAX_JSON_DEPTH} levels deep" in problem.reason


def test_objects_nested_two_thousand_deep_are_one_problem_with_their_path() -> None:
    text = '{"a": ' * 2000 + "1" + "}" * 2000
    problem = only_problem(text)
    assert problem.path == ".".join(["a"] * MAX_JSON_DEPTH)
    assert "levels deep" in problem.reason
    # the same as bytes, and between the limit and what the parser itself could read
    assert only_problem(text.encode()).path == problem.path
    assert only_problem('{"a": ' * 100 + "1" + "}" * 100).path == problem.path


def test_nesting_up_to_the_limit_is_read_and_validated() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert only_problem(at_limit).reason == "a pool must be a JSON object"
    past = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert "levels deep" in only_problem(past).reason
    # brackets inside strings are text, not nesting
    pool = dict(SITE_FILE, name="[" * 100 + "{" * 100)
    assert load_pools(json.dumps(pool))[0].name == pool["name"]


def test_a_five_thousand_digit_integer_is_a_problem_at_its_field() -> None:
    text = json.dumps(SITE_FILE).replace('"match_period": 30', '"match_period": 1' + "0" * 5000)
    assert '"match_period": 1000' in text
    problem = only_problem(text)
    assert problem.path == "match_period"
    assert "5,001 digits" in problem.reason
    assert f"at most {MAX_JSON_INT_DIGITS}" in problem.reason


def test_huge_integers_in_a_list_of_pools_are_reported_with_every_other_problem() -> None:
    bad = dict(SITE_FILE, id=2, name="Other", quantity=0, numbers=[])
    text = json.dumps([SITE_FILE, bad]).replace('"id": 2,', '"id": -' + "9" * 5000 + ",")
    with pytest.raises(ConfigError) as info:
        load_pools(text)
    paths = [p.path for p in info.value.problems]
    assert paths == ["[1].id", "[1].quantity"]
    assert "5,000 digits" in info.value.problems[0].reason


def test_a_huge_integer_as_the_document_or_in_an_unknown_field() -> None:
    assert only_problem("1" + "0" * 5000).path == "$"
    text = json.dumps(dict(SITE_FILE, extra=1))[:-1].replace('"extra": 1', '"extra": ' + "7" * 50)
    with pytest.raises(ConfigError) as info:
        load_pools(text + "}")
    reasons = {p.reason for p in info.value.problems if p.path == "extra"}
    assert any("50 digits" in r for r in reasons)
    assert any("unknown field" in r for r in reasons)


def test_integers_up_to_the_digit_limit_are_read() -> None:
    biggest = int("9" * MAX_JSON_INT_DIGITS)
    assert load_pools(json.dumps(dict(SITE_FILE, id=biggest)))[0].id == biggest  # type: ignore[union-attr]
    problem = only_problem(json.dumps(dict(SITE_FILE, id=biggest * 10 + 9)))
    assert problem.path == "id"


def test_bytes_in_any_json_encoding_are_read() -> None:
    assert load_pools(json.dumps(SITE_FILE).encode("utf-16"))[0].name == SITE_FILE["name"]


# ---- rules between pools -------------------------------------------------------------------------

SITE_POOLS: list[Any] = json.loads((EXAMPLES / "site" / "pools.json").read_text())


def site(*changes: tuple[int, dict[str, Any]]) -> list[Any]:
    pools = copy.deepcopy(SITE_POOLS)
    for index, change in changes:
        pools[index].update(change)
    return pools


def problems_in(pools: list[Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_pools(json.dumps(pools))
    return {p.path: p.reason for p in info.value.problems}


def test_a_duplicate_name_is_reported_with_the_other_problems() -> None:
    pools = site((1, {"name": " google ADS ", "quantity": 0}), (3, {"match_period": 0}))
    found = problems_in(pools)
    assert list(found) == ["[1].quantity", "[1].name", "[3].match_period"]
    assert "used twice (also by pool [0] in group 12462615)" in found["[1].name"]


def test_the_pool_set_is_checked_on_the_readable_parts_of_invalid_pools() -> None:
    pools = site((0, {"quantity": 0}), (2, {"name": "Microsoft Ads", "quantity": 0}))
    found = problems_in(pools)
    assert list(found) == ["[0].quantity", "[2].quantity", "[2].name"]
    assert "(also by pool [1]" in found["[2].name"]


def test_names_are_unique_per_group() -> None:
    other_group = site((1, {"name": "Google Ads", "group_id": 7}))
    assert len(load_pools(json.dumps(other_group))) == 6
    request = load_example("national.request")
    found = problems_in([*SITE_POOLS, dict(request, name="Google Ads")])
    assert list(found) == ["[6].name"]  # a request's group is not known: its name is unique


def test_two_pools_with_one_id_are_refused() -> None:
    found = problems_in(site((4, {"id": 41002})))
    assert list(found) == ["[4].id"]
    assert found["[4].id"] == (
        "pool 'Social referrals' has the id 41002, as pool [1] 'Microsoft Ads' does; "
        "pool ids are unique"
    )


def test_a_request_named_like_a_pool_id_is_refused() -> None:
    request = dict(load_example("national.request"), name="41003")
    found = problems_in([*SITE_POOLS, request])
    assert list(found) == ["[6].name"]
    assert "[2] 'Winter tyres campaign'" in found["[6].name"]


def test_a_tracking_number_belongs_to_one_pool() -> None:
    pools = site()
    pools[5]["numbers"][1]["phone_number"] = "+441174960102"
    pools[4]["numbers"][0]["id"] = 9571060
    found = problems_in(pools)
    assert list(found) == ["[5].numbers[0].id", "[5].numbers[1].phone_number"]
    assert (
        "+441174960102, already a tracking number of pool [0] 'Google Ads'"
        in (found["[5].numbers[1].phone_number"])
    )
    assert (
        "number id 9571060, already used by pool [4] 'Social referrals'"
        in (found["[5].numbers[0].id"])
    )


def test_check_pool_set_is_empty_for_a_sound_site() -> None:
    assert check_pool_set(load_pools(json.dumps(SITE_POOLS))) == []
    assert check_pool_set([]) == []


def test_check_pool_set_names_the_pools_at_fault() -> None:
    pools = load_pools(json.dumps(SITE_POOLS))
    twins = [pools[0], pools[1], pools[0]]
    numbers = [f"[2].numbers[{k}].phone_number" for k in range(len(pools[0].numbers))]  # type: ignore[union-attr]
    problems = check_pool_set(twins)
    assert [p.path for p in problems] == ["[2].id", *numbers]
    assert all(p.reason.startswith("pool 'Google Ads' ") for p in problems)
    assert all("pool [0] 'Google Ads'" in p.reason for p in problems)
    named = check_pool_set(twins, names=True)
    assert [p.path for p in named] == ["[2].name", "[2].id", *numbers]


def test_check_pool_set_leaves_names_to_documents_unless_asked() -> None:
    # The vendor's separate examples name two pools of one group 'ABC Company 123'.
    kinds = ("geographic-city", "geographic-area-code", "national", "tollfree")
    examples = [NumberPool.model_validate(load_example(f"{k}.response")) for k in kinds]
    assert check_pool_set(examples) == []
    assert [p.path for p in check_pool_set(examples, names=True)] == ["[1].name"]
    requests = [NumberPoolRequest.model_validate(load_example("national.request"))] * 2
    (clash,) = check_pool_set(requests)  # a request's name is its key
    assert clash.path == "[1].name"
    assert "the key of the request [0] 'ABC Company 127'" in clash.reason
    (clash,) = check_pool_set(requests, names=True)
    assert "used twice" in clash.reason


def test_check_pool_set_checks_overflow_numbers() -> None:
    pools = load_pools(json.dumps(SITE_POOLS[:2]))
    problems = check_pool_set(pools, overflow_numbers=[None, "+441174960101"])
    assert [(p.path, "pool [0] 'Google Ads''s" in p.reason) for p in problems] == [
        ("[1].overflow_number", True)
    ]
    own = check_pool_set(pools, overflow_numbers=["+441174960102"])
    assert [p.path for p in own] == ["[0].overflow_number"]
    assert "its own tracking numbers" in own[0].reason
    assert check_pool_set(pools, overflow_numbers=["+441174969999", "+441174969999"]) == []
    with pytest.raises(ValueError, match="3 overflow numbers"):
        check_pool_set(pools, overflow_numbers=[None, None, None])


def test_check_pool_set_reports_entries_that_are_not_pools() -> None:
    pools: list[Any] = [*load_pools(json.dumps(SITE_POOLS[:1])), {"name": "x"}]
    assert [str(p) for p in check_pool_set(pools)] == [
        "[1]: expected a NumberPool or NumberPoolRequest, got dict"
    ]


def test_status_decides_whether_a_pool_is_active() -> None:
    for status, active in (("active", True), (" Active ", True), ("deleted", False), ("x", False)):
        pool = NumberPool.model_validate(dict(SITE_FILE, status=status))
        assert pool.is_active is active
        assert (status_warning(pool) is None) is active
    pool = NumberPool.model_validate(dict(SITE_FILE, status="deleted"))
    assert status_warning(pool) == "status 'deleted' is not 'active': the pool leases no numbers"
    request = NumberPoolRequest.model_validate(load_example("national.request"))
    assert request.is_active
    assert status_warning(request) is None


# Each fault breaks one thing of one pool of the example site; any mix of them is reported
# all at once, each at its path (the pool set's rules included, also on invalid pools).
FAULTS: dict[str, tuple[int, str, Any]] = {
    "[0].quantity": (0, "quantity", 0),
    "[1].quantity": (1, "quantity", 0),
    "[1].name": (1, "name", "Google Ads"),
    "[2].id": (2, "id", 41001),
    "[2].sms_route": (2, "sms_routes", {"route_type": "Fax"}),
    "[3].numbers[0].phone_number": (3, "numbers", [{"id": 1, "phone_number": "+441174960101"}]),
    "[4].match_period": (4, "match_period", "HUGE"),
    "[4].track_organics": (4, "track_organics", True),
    "[5].call_routes.route.termination_number": (
        5,
        "call_routes",
        {"route_type": "Basic", "route": {"termination_number": "12"}},
    ),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(sorted(FAULTS))))
def test_every_problem_is_listed_at_once(chosen: set[str]) -> None:
    pools = copy.deepcopy(SITE_POOLS)
    for name in chosen:
        index, field, value = FAULTS[name]
        pools[index][field] = value
    pools[3]["quantity"] = len(pools[3]["numbers"])
    text = json.dumps(pools).replace('"HUGE"', "4" * 4400)
    expected = {"[2].sms_routes.route_type" if n == "[2].sms_route" else n for n in chosen}
    if not expected:
        assert len(load_pools(text)) == 6
        return
    with pytest.raises(ConfigError) as info:
        load_pools(text)
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == sorted(expected)
    assert paths == sorted(paths, key=lambda p: int(p[1]))  # listed pool by pool


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200) | JSON_VALUES.map(json.dumps))
def test_load_pools_raises_only_config_errors(text: str | bytes) -> None:
    problems: tuple[Any, ...] = ()
    try:
        load_pools(text)
    except ConfigError as exc:
        problems = exc.problems or (None,)
    assert all(p is not None and p.path and p.reason for p in problems)
