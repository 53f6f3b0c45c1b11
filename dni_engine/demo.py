"""``make demo``: the main job on the example pools, with the embedded store.

It validates the vendor's example pools (and the example site's pools when
``examples/site/pools.json`` is there), then plays a short, fixed stream of
visits and calls through an :class:`~dni_engine.engine.Engine` on simulated
time, printing every decision, every call's attribution and the pools' stats.
Then the main job: a day of the example site's traffic (the access log in
``examples/traffic/``) replayed through the engine, and a pool-sizing search on
a synthetic business day, with the plot written to ``out/sizing.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dni_engine.engine import Engine, PoolOptions
from dni_engine.leases import Attribution, Decision, SimulatedClock
from dni_engine.schema import AnyPool, NumberPool, load_pools
from dni_engine.simulate import recommend, simulate
from dni_engine.sizing_report import (
    PlotUnavailable,
    plot_sizing,
    recommendations_table,
    results_table,
)
from dni_engine.traffic import TYPICAL_DAY, TrafficModel, hourly_profile, read_access_log

__all__ = ["main"]


def _examples() -> Path:
    """The checkout's ``examples`` folder: under the working directory, else beside the package.

    The second is where a source checkout keeps it; an installed or compiled
    copy of the package elsewhere finds it through the working directory.
    """
    for candidate in (Path.cwd() / "examples", Path(__file__).resolve().parent.parent / "examples"):
        if any((candidate / "pools").glob("*.response.json")):
            return candidate
    raise SystemExit("the demo needs the checkout's examples/ folder: run it from the checkout")


START = 1_767_261_600.0  # a Thursday morning; only differences from it are shown

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SHOP = "https://shop.example/tyres"
GOOGLE = "https://www.google.co.uk/"


@dataclass(frozen=True, slots=True)
class Visit:
    """One scripted page view, ``after`` seconds after the previous step."""

    after: float
    visitor: str
    url: str
    referrer: str | None = None
    user_agent: str = BROWSER
    note: str = ""


@dataclass(frozen=True, slots=True)
class Call:
    """One scripted call, ``after`` seconds after the previous step, by visitor ``caller``.

    The caller dials the number their last visit showed them, written the way
    a person would read it off the page.
    """

    after: float
    caller: str
    note: str = ""


Step = Visit | Call


def _clock_text(at: float) -> str:
    minutes, seconds = divmod(int(at - START), 60)
    return f"+{minutes}:{seconds:02d}"


def _pools_table(title: str, pools: Sequence[AnyPool]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("key", "name", "numbers", "hold", "tracking sources"):
        table.add_column(column)
    for pool in pools:
        key = str(pool.id) if isinstance(pool, NumberPool) else pool.name
        count = len(pool.numbers) if isinstance(pool, NumberPool) else 0
        sources = "; ".join(
            source.referrer_domain
            + (" + " + " or ".join(source.url_triggers) if source.url_triggers else "")
            + (" (or organic)" if source.track_organic else "")
            for source in pool.replacement_configuration.tracking_sources
        )
        table.add_row(key, pool.name, str(count), f"{pool.match_period} min", sources)
    return table


def play(engine: Engine, clock: SimulatedClock, steps: Sequence[Step]) -> tuple[Table, Table]:
    """Run ``steps`` through ``engine``; return the decisions and attributions as tables."""
    decisions = Table(title="Visits", title_justify="left")
    for column in ("time", "visitor", "visit", "outcome", "number", "pool", "why", "lease"):
        decisions.add_column(column)
    calls = Table(title="Calls", title_justify="left")
    for column in ("time", "number", "attributed to", "confidence", "note"):
        calls.add_column(column)
    shown: dict[str, str] = {}
    for step in steps:
        clock.advance(step.after)
        if isinstance(step, Visit):
            d = engine.visit(step.visitor, step.url, step.referrer, step.user_agent)
            decisions.add_row(*_decision_row(d, step))
            if d.number is not None:
                shown[d.visitor_id] = d.number
        elif step.caller in shown:
            dialled = "0" + shown[step.caller].removeprefix("+44")  # as printed on a UK page
            calls.add_row(*_call_row(engine.attribute_call(dialled), step))
    return decisions, calls


def _decision_row(d: Decision, step: Visit) -> list[str]:
    why = ""
    if d.pool_key is not None:
        why = f"source {d.source_index} ({d.referrer_domain}" + (
            f", {d.trigger})" if d.trigger else ")"
        )
    lease = ""
    if d.lease_id is not None and d.expires is not None:
        lease = f"#{d.lease_id} until {_clock_text(d.expires)}"
    if d.displaced:
        lease += f", displaced #{d.displaced}"
    if d.switched_from:
        lease += f", ended #{d.switched_from}"
    return [
        _clock_text(d.at),
        d.visitor_id,
        step.note,
        d.outcome,
        d.number or "-",
        d.pool_name or "-",
        why,
        lease,
    ]


def _call_row(call: Attribution, step: Call) -> list[str]:
    if call.lease is not None:
        who = ", ".join(f"{c.visitor_id} (#{c.lease_id})" for c in call.candidates)
    elif call.kind == "pool":
        who = f"pool {call.pool_key} only (no lease covers the call)"
    elif call.kind == "overflow":
        who = f"pool {call.pool_key} only (its overflow number)"
    else:
        who = call.kind
    confidence = f"{call.confidence:.2f}" if call.lease is not None else "-"
    return [_clock_text(call.at), call.number, who, confidence, step.note]


def _stats_table(engine: Engine) -> Table:
    stats = engine.stats()
    table = Table(
        title=f"Pools after {stats.visits} visits: "
        + ", ".join(f"{n} {o}" for o, n in stats.outcomes.items() if n),
        title_justify="left",
    )
    for column in ("pool", "live", "new", "kept", "overflows", "recycled", "capped", "utilisation"):
        table.add_column(column)
    for pool in stats.pools:
        table.add_row(
            engine.pool(pool.pool_key).name,
            f"{pool.live}/{pool.size}",
            str(pool.new),
            str(pool.kept),
            str(pool.overflows),
            str(pool.recycled),
            str(pool.capped),
            f"{pool.utilisation:.0%}",
        )
    return table


def vendor_script() -> list[Step]:
    """Ad clicks exhaust the 3-number Bristol pool; a session runs out; calls in and after."""
    ad = f"{SHOP}?gclid=EAIaIQobChMI"
    return [
        Visit(0, "alice", ad, GOOGLE, note="Google ad click"),
        Visit(20, "bob", ad + "2", GOOGLE, PHONE, note="Google ad click"),
        Visit(40, "carol", ad + "3", None, note="ad link, no referrer"),
        Visit(30, "dave", ad + "4", GOOGLE, note="ad click, pool exhausted"),
        Visit(5, "crawler", ad, None, CRAWLER, note="Googlebot"),
        Visit(60, "erin", SHOP, GOOGLE, note="organic: no gclid"),
        Visit(600, "alice", f"{SHOP}/winter", SHOP, note="alice browses on"),
        Call(300, "bob", note="bob calls inside his hold"),
        Call(1200, "alice", note="alice calls: her hold slid past +30:00"),
        Visit(300, "frank", ad + "5", GOOGLE, note="bob's and carol's holds ended"),
        Call(60, "carol", note="carol calls after hers ended"),
    ]


def site_script() -> list[Step]:
    """The example site: each source finds its pool; recycling; a last-touch switch."""
    return [
        Visit(0, "gina", f"{SHOP}?gclid=Cj0KCQ&utm_medium=cpc", GOOGLE, note="Google Ads"),
        Visit(15, "hugo", f"{SHOP}?msclkid=9f8e7d", "https://www.bing.com/", note="Microsoft Ads"),
        Visit(15, "ivy", f"{SHOP}?utm_campaign=wintertires", None, note="winter campaign"),
        Visit(15, "jack", SHOP, "https://www.google.com/search?q=tyres", note="Google organic"),
        Visit(15, "kim", SHOP, "https://l.facebook.com/", PHONE, note="Facebook"),
        Visit(15, "liam", SHOP, "https://l.instagram.com/", PHONE, note="Instagram"),
        Visit(15, "mia", SHOP, "https://www.facebook.com/", note="Facebook, pool exhausted"),
        Call(5, "kim", note="kim calls the number mia now holds"),
        Visit(15, "noah", "https://shop.example/", None, note="direct"),
        Visit(60, "noah", f"{SHOP}?gclid=Xy12&utm_medium=cpc", GOOGLE, note="noah clicks an ad"),
        Visit(120, "gina", f"{SHOP}/checkout", None, note="gina returns"),
    ]


def main() -> None:
    """Validate the example pools, then play visits and calls through the engine."""
    console = Console()
    if console.width < 160:  # piped output: wide enough for the tables not to wrap
        console = Console(width=160)
    examples = _examples()
    files = sorted((examples / "pools").glob("*.response.json"))
    vendor = [pool for path in files for pool in load_pools(path.read_bytes(), source=str(path))]
    console.print(_pools_table(f"{len(vendor)} example pools validated", vendor))

    clock = SimulatedClock(START)
    engine = Engine(vendor, clock=clock)  # the embedded memory store, policy fallback
    console.print(
        "\n[bold]Vendor examples[/bold]: all four pools want the same visits (Any + gclid); "
        "the first registered wins each one"
    )
    for table in play(engine, clock, vendor_script()):
        console.print(table)
    console.print(_stats_table(engine))

    site_file = examples / "site" / "pools.json"
    if not site_file.exists():
        return
    site = load_pools(site_file.read_bytes(), source=str(site_file))
    console.print()
    console.print(_pools_table(f"Example site ({site_file.name}): {len(site)} pools", site))
    social = next((p for p in site if "Social" in p.name), None)
    everyone = site[-1]
    options = {everyone.name: PoolOptions(touch="last_touch")}
    if social is not None:
        options[social.name] = PoolOptions(policy="recycle")
    clock = SimulatedClock(START)
    engine = Engine(site, clock=clock, options=options)
    console.print(
        f"\n[bold]Example site[/bold]: {social.name if social else 'no social pool'} recycles; "
        f"{everyone.name!r} is last touch (a later, more specific match moves the visitor)"
    )
    for table in play(engine, clock, site_script()):
        console.print(table)
    console.print(_stats_table(engine))
    size_pools(console, site)


def size_pools(console: Console, site: Sequence[AnyPool]) -> None:
    """The main job: a day of traffic through the engine, attribution, and pool sizes.

    First the example access log is replayed at the pools' real sizes; then a
    synthetic day shaped like a business day finds, per pool, the fewest
    numbers that tie 99% of timely calls to the right visit, and the plot of
    accuracy and blocking against size is written to ``out/sizing.png``.
    """
    log_file = _examples() / "traffic" / "access.log"
    with log_file.open(encoding="utf-8") as handle:
        replay = read_access_log(handle, call_share=0.2, seed=1)
    as_bought = simulate(site, replay, seed=1)
    console.print(
        f"\n[bold]A day of the site's traffic[/bold] ({log_file.name}: {replay.lines:,} lines, "
        f"{replay.page_views:,} page views, {len(replay.sessions):,} sessions) through the "
        "engine at the pools' real sizes"
    )
    console.print(results_table([as_bought]))

    day = TrafficModel(
        visitors_per_hour=hourly_profile(TYPICAL_DAY, 300.0), hours=24.0, call_share=0.08
    )
    console.print(
        "\n[bold]Sizing[/bold]: a busier synthetic day (peak 300 visitors an hour), "
        "searching the fewest numbers per pool for 99% accuracy"
    )
    advice, runs = recommend(site, day, metric="accuracy", target=0.99, seed=1)
    console.print(recommendations_table(advice))
    speed = sum(r.sessions for r in runs) / max(sum(r.wall_seconds for r in runs), 1e-9)
    console.print(
        f"{len(runs)} simulated days, {speed:,.0f} sessions per second through the engine"
    )
    target = Path("out") / "sizing.png"
    target.parent.mkdir(exist_ok=True)
    try:
        console.print(
            f"plot of accuracy and blocking against pool size: {plot_sizing(runs, target)}"
        )
    except PlotUnavailable as exc:
        console.print(f"no plot: {exc}")


if __name__ == "__main__":
    main()
