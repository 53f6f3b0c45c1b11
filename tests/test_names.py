"""Renamed public names: the new ones carry the values, the old ones still read and warn.

Each old name is kept for one release (``docs/decisions.md``, *Names*).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

import dni_engine
from dni_engine import Claim, Engine, load_pools
from dni_engine.cli import cli
from dni_engine.leases import Lease, PoolStats
from dni_engine.rules import compile_pools
from dni_engine.stores import MemoryStore
from tests.conftest import EXAMPLES

SITE = EXAMPLES / "site" / "pools.json"
AD = "https://shop.example/?gclid=abc"
GOOGLE = "https://www.google.co.uk/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


@contextmanager
def deprecated(old: str, new: str) -> Iterator[None]:
    """Expect exactly one DeprecationWarning naming ``old`` and ``new``, raised at the caller."""
    message = f"{old} is deprecated; use {new}"
    with pytest.warns(DeprecationWarning, match=f"^{re.escape(message)}$") as caught:
        yield
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert caught[0].filename == __file__  # in the compiled build too


def site_engine() -> Engine:
    return Engine(load_pools(SITE.read_text()), clock=lambda: 1_700_000_000.0)


def test_match_referrer_domain() -> None:
    found = compile_pools(load_pools(SITE.read_text())).match(AD, GOOGLE, BROWSER)
    assert found is not None
    assert (found.pool_name, found.referrer_domain, found.referrer_class) == (
        "Google Ads",
        "Any",
        "Google",
    )
    with deprecated("Match.referrer", "referrer_domain"):
        old = found.referrer
    assert old == found.referrer_domain


def test_decision_and_lease_referrer_domain() -> None:
    engine = site_engine()
    decision = engine.visit("alice", url=AD, referrer=GOOGLE, user_agent=BROWSER)
    assert decision.outcome == "new"
    assert decision.referrer_domain == "Any"
    assert decision._asdict()["referrer_domain"] == "Any"
    with deprecated("Decision.referrer", "referrer_domain"):
        assert decision.referrer == "Any"
    (lease,) = engine.store.leases(pool_key=decision.pool_key)
    assert isinstance(lease, Lease)
    assert lease.referrer_domain == "Any"
    with deprecated("Lease.referrer", "referrer_domain"):
        assert lease.referrer == "Any"


def test_claim_referrer_domain() -> None:
    claim = Claim("ads", specificity=1, referrer_domain="Google")
    assert claim.referrer_domain == "Google"
    assert Claim("ads").referrer_domain == "Any"
    with deprecated("Claim.referrer", "referrer_domain"):
        assert claim.referrer == "Google"


def test_old_keyword_is_no_constructor_argument() -> None:
    # Decided in docs/decisions.md (Names): the old name reads, but builds nothing.
    with pytest.raises(TypeError):
        Claim("ads", referrer="Google")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        dni_engine.Decision("alice", 0.0, "new", referrer="Any")  # type: ignore[call-arg]


def test_source_verdict_referrer_domain() -> None:
    explanation = compile_pools(load_pools(SITE.read_text())).explain(AD, GOOGLE, BROWSER)
    verdict = explanation.pools[0].sources[0]
    assert verdict.referrer_domain == "Any"
    assert explanation.referrer == GOOGLE  # the visit's HTTP referrer keeps its name
    with deprecated("SourceVerdict.referrer", "referrer_domain"):
        assert verdict.referrer == "Any"


def test_match_json_has_both_keys_for_one_release() -> None:
    result = CliRunner().invoke(cli, ["match", str(SITE), "--url", AD, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["referrer_domain"] == data["referrer"] == "Any"


def test_new_names_do_not_warn() -> None:
    engine = site_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        decision = engine.visit("bob", url=AD, referrer=GOOGLE, user_agent=BROWSER)
        assert decision.referrer_domain == "Any"
        assert [lease.referrer_domain for lease in engine.store.leases()] == ["Any"]


def test_pool_stats_size() -> None:
    engine = site_engine()
    decision = engine.visit("alice", url=AD, referrer=GOOGLE, user_agent=BROWSER)
    assert decision.pool_key is not None
    stats = engine.pool_stats(decision.pool_key)
    assert isinstance(stats, PoolStats)
    size = len(engine.terms[decision.pool_key].numbers)
    assert (stats.size, stats.live, stats.utilisation) == (size, 1, 1 / size)
    with deprecated("PoolStats.numbers", "size"):
        assert stats.numbers == size
    with pytest.raises(TypeError):
        PoolStats("p", 0.0, numbers=3, live=0, cooling=0, free=3)  # type: ignore[call-arg]


def test_store_footprint_numbers_total() -> None:
    store = MemoryStore()
    engine = Engine(load_pools(SITE.read_text()), store, clock=lambda: 1_700_000_000.0)
    footprint = store.footprint()
    total = sum(len(terms.numbers) for terms in engine.terms.values())
    assert footprint.numbers_total == total > 0
    with deprecated("StoreFootprint.numbers", "numbers_total"):
        assert footprint.numbers == total


def test_sizing_module_is_a_shim_of_sizing_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from dni_engine import sizing_report

    monkeypatch.delitem(sys.modules, "dni_engine.sizing", raising=False)
    with deprecated("dni_engine.sizing", "dni_engine.sizing_report"):
        import dni_engine.sizing as shim
    assert shim.__all__ == sizing_report.__all__
    for name in sizing_report.__all__:
        assert getattr(shim, name) is getattr(sizing_report, name)
