"""Property tests: the compiled matcher agrees with the reference oracle on generated sites."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.rules import compile_pools, lint
from dni_engine.schema import NumberPool, NumberPoolRequest, TrackingSource
from dni_engine.testing import oracle
from dni_engine.testing import strategies as gen

HEAVY = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def priorities_for(pools: list[NumberPool]) -> st.SearchStrategy[dict[str, int]]:
    """Priorities for some of ``pools``, from a small range so that ties stay common."""
    keys = [str(p.id) for p in pools]
    return st.dictionaries(st.sampled_from(keys), st.integers(-1, 2), max_size=len(keys))


@st.composite
def sites_and_visits(draw: st.DrawFn) -> tuple[list[NumberPool], dict[str, int], list[gen.Visit]]:
    """A site, its priorities, and visits aimed at it: some matching a source, some just missing."""
    pools = draw(gen.pool_lists())
    priorities = draw(st.one_of(st.just({}), priorities_for(pools)))
    visits = [draw(gen.visits())]
    for _ in range(2):
        pool = draw(st.sampled_from(pools))
        source = draw(st.sampled_from(pool.replacement_configuration.tracking_sources))
        aim = draw(st.sampled_from([gen.visits_matching, gen.visits_missing]))
        visits.append(draw(aim(source)))
    return pools, priorities, visits


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=HEAVY)
@given(sites_and_visits())
def test_match_agrees_with_the_oracle(
    case: tuple[list[NumberPool], dict[str, int], list[gen.Visit]],
) -> None:
    pools, priorities, visits = case
    rules = compile_pools(pools, priorities)
    # Each visit also without its query string, and every answer asked twice
    # (the second time it may come from a memo).
    for visit in visits:
        for url in (visit.url, visit.url.partition("?")[0]):
            expected = oracle.match(
                pools, url, visit.referrer, visit.user_agent, priorities=priorities
            )
            assert rules.match(url, visit.referrer, visit.user_agent) == expected
            assert rules.match(url, visit.referrer, visit.user_agent) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=HEAVY)
@given(sites_and_visits())
def test_explain_agrees_with_match(
    case: tuple[list[NumberPool], dict[str, int], list[gen.Visit]],
) -> None:
    pools, priorities, visits = case
    rules = compile_pools(pools, priorities)
    for visit in visits:
        explanation = rules.explain(visit.url, visit.referrer, visit.user_agent)
        found = rules.match(visit.url, visit.referrer, visit.user_agent)
        assert explanation.match == found
        won = [p for p in explanation.pools if p.outcome == "won"]
        assert [p.pool_index for p in won] == ([found.pool_index] if found else [])
        assert str(explanation)


@settings(max_examples=300, deadline=None, suppress_health_check=HEAVY)
@given(st.data())
def test_visits_built_to_match_do_and_visits_built_to_miss_do_not(data: st.DataObject) -> None:
    source: TrackingSource = data.draw(gen.tracking_sources())
    hit = data.draw(gen.visits_matching(source))
    assert oracle.source_matches(source, hit.url, hit.referrer)
    assert not oracle.is_crawler(hit.user_agent)
    miss = data.draw(gen.visits_missing(source))
    assert oracle.is_crawler(miss.user_agent) or not oracle.source_matches(
        source, miss.url, miss.referrer
    )


@settings(max_examples=300, deadline=None, suppress_health_check=HEAVY)
@given(
    gen.pool_lists(max_size=3),
    st.text(max_size=60),
    st.one_of(st.none(), st.text(max_size=60)),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_arbitrary_text_never_raises_and_still_agrees(
    pools: list[NumberPool], url: str, referrer: str | None, user_agent: str | None
) -> None:
    rules = compile_pools(pools)
    for check_bots in (True, False):
        found = rules.match(url, referrer, user_agent, check_bots=check_bots)
        assert found == oracle.match(pools, url, referrer, user_agent, check_bots=check_bots)
    assert rules.explain(url, referrer, user_agent).match == rules.match(url, referrer, user_agent)


@settings(max_examples=200, deadline=None, suppress_health_check=HEAVY)
@given(gen.number_pool_requests())
def test_generated_pool_requests_round_trip_through_json(request: NumberPoolRequest) -> None:
    text = request.model_dump_json(by_alias=True)
    assert NumberPoolRequest.model_validate_json(text) == request


@settings(max_examples=100, deadline=None, suppress_health_check=HEAVY)
@given(gen.number_pools())
def test_generated_pools_round_trip_through_json(pool: NumberPool) -> None:
    assert pool.country in ("GB", "US")
    assert NumberPool.model_validate_json(pool.model_dump_json(by_alias=True)) == pool


def _source_at(path: str) -> tuple[int, int]:
    """``[2].replacement_configuration.tracking_sources[1]`` -> ``(2, 1)``."""
    pool, _, rest = path.removeprefix("[").partition("]")
    return int(pool), int(rest.rpartition("[")[2].rstrip("]"))


@settings(max_examples=200, deadline=None, suppress_health_check=HEAVY)
@given(st.data())
def test_lint_findings_hold_on_real_visits(data: st.DataObject) -> None:
    pools = data.draw(gen.pool_lists(min_size=2))
    priorities = data.draw(st.one_of(st.just({}), priorities_for(pools)))
    rules = compile_pools(pools, priorities)
    for warning in lint(pools, priorities):
        if warning.code == "unreachable-source":
            pool_index, source_index = _source_at(warning.path)
            source = pools[pool_index].replacement_configuration.tracking_sources[source_index]
            for _ in range(3):
                visit = data.draw(gen.visits_matching(source))
                found = rules.match(visit.url, visit.referrer, visit.user_agent)
                assert found is not None
                assert (found.pool_index, found.source_index) != (pool_index, source_index)
        elif warning.code == "order-tie":
            assert warning.visit is not None
            explanation = rules.explain(*warning.visit, check_bots=False)
            loser = _source_at(warning.path)[0]
            verdict = explanation.pools[loser]
            assert verdict.outcome == "lost"
            assert verdict.step == 4
