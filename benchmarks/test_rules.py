"""``RuleSet.match`` against the reference oracle, for sites of 1, 100 and 10,000 pools.

Every benchmark runs the same 40 visits (paid, campaign, organic, referral,
direct and crawler visits) once per round. Groups, each with its baseline
measured in the same run:

- ``rules-1-pool``, ``rules-100-pools``, ``rules-10000-pools``: the oracle
  (baseline) against the compiled matcher (targets: at least 4x faster on one
  pool, at least 200x on 10,000 pools);
- ``rules-1-pool-no-bot-check``: the same with ``check_bots=False``, so the
  crawler list (searched pattern by pattern by the oracle) does not dominate;
- ``rules-scaling``: the compiled matcher on 1 pool (baseline) against 100 and
  10,000 pools (target: 10,000 pools at most 5x slower than 1).

The site is realistic: most pools are keyed by their own ``utm_campaign`` (some
with a wildcard), or by ``gclid`` plus a campaign; some by referrer only (a
partner's domain, Google with ``track_organic``, Bing, Facebook); one catch-all
``Any``. The oracle on 10,000 pools is slow, so it runs only a few rounds.
The last test prints every ratio (median times) and marks the targets missed (it
never fails on timing);
``benchmarks/report.py`` prints the same ratios from pytest-benchmark's JSON.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from dni_engine.rules import Match, RuleSet, compile_pools
from dni_engine.schema import NumberPool
from dni_engine.testing import build_pool, oracle, source

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
SIZES = (1, 100, 10_000)
SHOP = "https://shop.example/tyres/winter"

Visit = tuple[str, str | None, str]
_medians: dict[tuple[str, str], float] = {}


def _pool(index: int, name: str, sources: list[dict[str, Any]]) -> NumberPool:
    """Pool ``index`` of a site: one number, ``+4411749`` and the index in five digits."""
    return build_pool(
        id=50_000 + index,
        name=name,
        group_id=12462615,
        numbers=[f"+4411749{index:05d}"],
        first_number_id=9_000_000 + index,
        sources=sources,
        numbers_to_replace=["0117 496 0000"],
        termination_number="+441174960000",
    )


def _campaign_pool(i: int) -> NumberPool:
    kind = i % 10
    if kind < 5:
        return _pool(i, f"Campaign {i}", [source("Any", [f"utm_campaign=camp{i}"])])
    if kind == 5:
        return _pool(i, f"Spring {i}", [source("Any", [f"utm_campaign=spring{i}-*"])])
    if kind < 8:
        return _pool(i, f"Ads {i}", [source("Any", [f"gclid=*&utm_campaign=ads{i}"])])
    return _pool(i, f"Partner {i}", [source(f"partner{i}.example.com")])


def site(size: int) -> list[NumberPool]:
    """A site of ``size`` pools (one pool: a plain Google Ads pool)."""
    if size == 1:
        return [_pool(0, "Google Ads", [source("Any", ["gclid=*"])])]
    fixed = [
        _pool(
            size - 4,
            "Google organic",
            [source("Google", ["utm_medium=organic"], track_organic=True)],
        ),
        _pool(size - 3, "Bing", [source("Bing")]),
        _pool(size - 2, "Social", [source("Facebook"), source("Instagram")]),
        _pool(size - 1, "Everyone else", [source("Any")]),
    ]
    return [_campaign_pool(i) for i in range(size - len(fixed))] + fixed


def visits() -> list[Visit]:
    """40 visits: 12 paid, 10 campaign, 6 organic, 4 referral, 4 direct, 4 crawler."""
    out: list[Visit] = []
    for i in (6, 7, 16, 17, 26, 27, 36, 37, 46, 47):  # gclid + campaign pools
        url = f"{SHOP}?gclid=Cj0KCQiA{i}xyz&utm_campaign=ads{i}&utm_medium=cpc"
        out.append((url, "https://www.google.co.uk/", BROWSER))
    out.append((f"{SHOP}?msclkid=9f8e7d6c5b&utm_source=bing", "https://www.bing.com/", BROWSER))
    out.append((f"{SHOP}?gclid=unknown-campaign", "https://www.google.com/", IPHONE))
    for i in (0, 1, 2, 3, 10, 21, 42):
        out.append(
            (f"{SHOP}?utm_source=newsletter&utm_medium=email&utm_campaign=camp{i}", None, BROWSER)
        )
    for i in (5, 15, 25):
        out.append((f"{SHOP}?utm_campaign=spring{i}-sale&utm_source=flyer", None, IPHONE))
    out += [
        (SHOP, "https://www.google.com/", BROWSER),
        (f"{SHOP}?page=2", "https://www.google.co.uk/search?q=winter+tyres", IPHONE),
        (SHOP, "https://www.bing.com/search?q=tyres", BROWSER),
        (f"{SHOP}?utm_medium=organic&utm_source=google", "https://www.google.de/", BROWSER),
        (SHOP, "https://duckduckgo.com/", BROWSER),
        (SHOP, "https://search.yahoo.co.jp/", IPHONE),
    ]
    out += [
        (SHOP, "https://partner8.example.com/blog/best-tyres", BROWSER),
        (SHOP, "https://www.partner19.example.com/", IPHONE),
        (SHOP, "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example", IPHONE),
        (SHOP, "https://l.instagram.com/", IPHONE),
    ]
    out += [
        ("https://shop.example/", None, BROWSER),
        (SHOP, None, IPHONE),
        (f"{SHOP}?utm_campaign=unknown", "", BROWSER),
        ("https://shop.example/#contact", None, BROWSER),
    ]
    out += [
        (f"{SHOP}?gclid=abc", None, GOOGLEBOT),
        (SHOP, "https://www.bing.com/", BINGBOT),
        (SHOP, None, "curl/8.4.0"),
        (SHOP, None, ""),
    ]
    assert len(out) == 40
    return out


VISITS = visits()


@pytest.fixture(scope="module")
def sites() -> dict[int, tuple[list[NumberPool], RuleSet]]:
    built = {size: site(size) for size in SIZES}
    compiled = {size: (pools, compile_pools(pools)) for size, pools in built.items()}
    gc.collect()
    gc.freeze()  # the pools live as long as the run: keep them out of every collection
    return compiled


def _compiled(rules: RuleSet, check_bots: bool = True) -> Callable[[], list[Match | None]]:
    def run() -> list[Match | None]:
        return [rules.match(url, ref, ua, check_bots=check_bots) for url, ref, ua in VISITS]

    return run


def _oracle(pools: list[NumberPool], check_bots: bool = True) -> Callable[[], list[Match | None]]:
    def run() -> list[Match | None]:
        return [oracle.match(pools, url, ref, ua, check_bots=check_bots) for url, ref, ua in VISITS]

    return run


def _record(benchmark: BenchmarkFixture, group: str, role: str, name: str) -> None:
    benchmark.extra_info["role"] = role
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, name] = stats.stats.median


def _group(size: int) -> str:
    return "rules-1-pool" if size == 1 else f"rules-{size}-pools"


_ORACLE_ROUNDS = {1: 20, 100: 5, 10_000: 2}


@pytest.mark.parametrize("size", SIZES)
def test_oracle(
    benchmark: BenchmarkFixture, sites: dict[int, tuple[list[NumberPool], RuleSet]], size: int
) -> None:
    benchmark.group = _group(size)
    pools, rules = sites[size]
    results = benchmark.pedantic(_oracle(pools), rounds=_ORACLE_ROUNDS[size], iterations=1)
    assert results == _compiled(rules)()
    _record(benchmark, _group(size), "baseline", "oracle")


@pytest.mark.parametrize("size", SIZES)
def test_compiled(
    benchmark: BenchmarkFixture, sites: dict[int, tuple[list[NumberPool], RuleSet]], size: int
) -> None:
    benchmark.group = _group(size)
    _, rules = sites[size]
    results = benchmark(_compiled(rules))
    matched = sum(r is not None for r in results)
    assert matched == (11 if size == 1 else 36)  # one pool: the gclid visits; else all but crawlers
    _record(benchmark, _group(size), "candidate", "compiled")


@pytest.mark.benchmark(group="rules-1-pool-no-bot-check")
def test_oracle_no_bot_check(
    benchmark: BenchmarkFixture, sites: dict[int, tuple[list[NumberPool], RuleSet]]
) -> None:
    pools, rules = sites[1]
    results = benchmark.pedantic(_oracle(pools, check_bots=False), rounds=50, iterations=1)
    assert results == _compiled(rules, check_bots=False)()
    _record(benchmark, "rules-1-pool-no-bot-check", "baseline", "oracle")


@pytest.mark.benchmark(group="rules-1-pool-no-bot-check")
def test_compiled_no_bot_check(
    benchmark: BenchmarkFixture, sites: dict[int, tuple[list[NumberPool], RuleSet]]
) -> None:
    _, rules = sites[1]
    benchmark(_compiled(rules, check_bots=False))
    _record(benchmark, "rules-1-pool-no-bot-check", "candidate", "compiled")


@pytest.mark.parametrize("size", SIZES)
def test_scaling(
    benchmark: BenchmarkFixture, sites: dict[int, tuple[list[NumberPool], RuleSet]], size: int
) -> None:
    benchmark.group = "rules-scaling"
    _, rules = sites[size]
    benchmark(_compiled(rules))
    name = "1 pool" if size == 1 else f"{size} pools"
    _record(benchmark, "rules-scaling", "baseline" if size == 1 else "candidate", name)


# (group, candidate, baseline, bound): candidate time / baseline time must stay at or below bound
TARGETS = [
    ("rules-1-pool", "compiled", "oracle", 1 / 4),
    ("rules-10000-pools", "compiled", "oracle", 1 / 200),
    ("rules-scaling", "10000 pools", "1 pool", 5.0),
]


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print every group's ratios (median times) next to the targets; never fails on timing."""
    lines = []
    groups = sorted({group for group, _ in _medians})
    for group in groups:
        names = [name for g, name in _medians if g == group]
        baseline = "oracle" if "oracle" in names else "1 pool"
        for name in names:
            if name == baseline:
                continue
            ratio = _medians[group, name] / _medians[group, baseline]
            per_visit = _medians[group, name] / len(VISITS) * 1e6
            words = f"{1 / ratio:,.1f}x faster" if ratio <= 1 else f"{ratio:.2f}x slower"
            lines.append(
                f"{group}: {name} / {baseline} = {ratio:.4g} ({words}); "
                f"{per_visit:.2f} us per visit"
            )
    for group, candidate, baseline, bound in TARGETS:
        ratio = None
        if (group, candidate) in _medians and (group, baseline) in _medians:
            ratio = _medians[group, candidate] / _medians[group, baseline]
        note = goals.ratio(group, f"{candidate} / {baseline}", ratio, bound)
        if note:
            lines.append(f"{group}: {candidate}/{baseline} = {ratio:.4g}{note}")
    with capsys.disabled():
        print("\n" + ("\n".join(lines) or "rules benchmarks not measured (disabled or deselected)"))
