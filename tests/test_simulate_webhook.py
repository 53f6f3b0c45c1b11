"""A simulation's calls, fed through the call webhook, give the report the simulation's counts.

The simulation counts each call as it happens: ``correct`` (tied to the
caller's own lease), ``misattributed`` (to someone else's) or ``late`` (no
lease window held it). Here every call it counted is posted afterwards to
the generic webhook of a site (Starlette, through its test client) running
on the simulation's own engine, and the call log and :meth:`Engine.report`
must say the same: the log's leases are the callers' exactly as often, and
the report's attributed and late figures are the simulation's.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dni_engine.schema import load_pools
from dni_engine.simulate import simulate
from dni_engine.traffic import TrafficModel
from dni_engine.web import ASGIMiddleware
from dni_engine.web.calls import sign
from tests.conftest import EXAMPLES

CALL_SECRET = "the webhook's own secret, 32 by."


@pytest.mark.parametrize(("quantity", "policy"), [(2, "fallback"), (3, "recycle")])
def test_report_counts_equal_the_simulations(quantity: int, policy: Any) -> None:
    pools = load_pools((EXAMPLES / "site" / "pools.json").read_bytes())
    # Calls often come long after the visit: some after every lease window (late).
    traffic = TrafficModel(
        visitors_per_hour=90.0, hours=6.0, call_share=0.2, call_delay_median=900.0
    )
    result = simulate(pools, traffic, quantity=quantity, policy=policy, seed=5, keep_calls=True)
    assert result.engine is not None
    assert result.call_log is not None
    truth = Counter(call.verdict for call in result.call_log)
    assert truth["correct"] == sum(p.correct for p in result.pools)
    assert truth["misattributed"] == sum(p.misattributed for p in result.pools)
    assert truth["late"] == sum(p.unattributed_late for p in result.pools)
    # The run must exercise every verdict the report is checked on.
    assert truth["correct"] > 10
    assert truth["misattributed"] > 0 or policy == "fallback"
    assert truth["late"] > 0

    engine = result.engine
    site = TestClient(
        ASGIMiddleware(
            Starlette(), engine, secret="the site's cookie secret, 32 b..", call_secret=CALL_SECRET
        )
    )
    posted: dict[str, str | None] = {}
    for index, call in enumerate(result.call_log):
        if call.number is None:  # the page showed the site's own number: no tracked call
            continue
        call_id = f"sim-{index}"
        body = json.dumps(
            {"call_id": call_id, "number": call.number, "started": call.at, "duration": 60}
        ).encode()
        answer = site.post(
            "/_dni/calls",
            content=body,
            headers={"X-DNI-Signature": sign(CALL_SECRET.encode(), body)},
        )
        assert answer.status_code == 200, answer.text
        posted[call_id] = call.lease_id
    records = engine.calls()
    assert len(records) == len(posted)
    seen: Counter[str] = Counter()
    for record in records:
        own = posted[record.call.call_id]
        lease = record.attribution.lease
        if own is None:
            seen["no_number"] += 1
        elif lease is None:
            seen["late"] += 1
        elif lease.lease_id == own:
            seen["correct"] += 1
        else:
            seen["misattributed"] += 1
    for verdict in ("correct", "misattributed", "late"):
        assert seen[verdict] == truth[verdict], verdict
    report = engine.report()
    assert report.calls == len(posted)
    assert report.total.attributed == truth["correct"] + truth["misattributed"]
    assert report.total.late == truth["late"]
    assert report.total.unattributed == 0
    by_pool = {row.key: row for row in report.by_pool}
    for pool in result.pools:
        counted = pool.correct + pool.misattributed
        if pool.calls:
            assert by_pool[pool.pool_key].attributed == counted, pool.name
            assert by_pool[pool.pool_key].late == pool.unattributed_late, pool.name
