"""Pool sizing: how many numbers does a pool need? A simulation through the real engine.

:func:`simulate` plays traffic (a :class:`~dni_engine.traffic.TrafficModel` or a
replayed access log) through a real :class:`~dni_engine.engine.Engine` — the same
matcher, the same lease logic, the embedded store — on simulated time, with
every pool resized to the quantity under study. Page views and calls are
events in one time-ordered queue: each page view is an ``Engine.visit``; each
call dials the number its visitor last saw and goes through
``Engine.attribute_call``, so the report can say whether the engine tied it to
the right visit.

Each page view is matched as the web integration matches it: on its visitor's
landing context (:func:`~dni_engine.landing.next_landing`; the landing URL and
external referrer of the page view that started it), with the traffic's site
as the site, the pools' parameter names, and ``attribution_window`` minutes
(30, the integration's default). So an ad visitor who found the ad pool full
on the landing page tries the ad pool again on page 2, rather than taking the
catch-all pool's number there. A replayed visitor's context carries over to
their later sessions in the log.

Page views whose answer is already known are counted without being run: the
rest of a crawler's session, and the views a visitor makes inside a live
first-touch lease before it could lapse (all but the last of them only move
the lease's expiry forward, and the last one sets it; they still move the
landing context on). A view without a lease always runs: matched on its
landing again, it may take a number freed since. Under the ``recycle``
policy, which picks its victim by expiry, every view runs. ``exact=True``
runs every view; the tests check that both give the same result.

Each pool's report carries its offered load in Erlangs (matching sessions per
second times the mean hold, where hold = time on site + ``match_period`` +
cooldown) and the Erlang B blocking for that load next to the simulated share of
visitors who found no free number: a built-in check of the simulation against
queueing theory. :func:`recommend` searches the smallest quantity that meets an
attribution-accuracy or blocking target.
"""

from __future__ import annotations

import gc
import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import phonenumbers

from dni_engine._frozen import Frozen
from dni_engine.engine import Engine, PoolOptions
from dni_engine.erlang import erlang_b, servers_for
from dni_engine.errors import ConfigError, Problem
from dni_engine.landing import (
    DEFAULT_ATTRIBUTION_WINDOW,
    Landing,
    landing_page,
    landing_terms,
)
from dni_engine.leases import SECONDS_PER_MINUTE, Policy
from dni_engine.referrers import referrer_host
from dni_engine.replications import (
    DEFAULT_CONFIDENCE,
    Interval,
    RunDone,
    SimulationTask,
    SizeSummary,
    replication_seeds,
    run_tasks,
    summarize,
)
from dni_engine.schema import AnyPool, NumberPool, PoolNumber
from dni_engine.stores.memory import MemoryStore
from dni_engine.traffic import LogReplay, Session, TrafficModel, generate_sessions

__all__ = [
    "Metric",
    "PoolReport",
    "Progress",
    "Recommendation",
    "SimulatedCall",
    "SimulationResult",
    "meets",
    "parse_quantities",
    "recommend",
    "resize_pools",
    "simulate",
    "sweep",
]

Metric = Literal["accuracy", "blocking"]
Progress = Callable[[float], None]
"""Called now and then with the share of simulated time done (0.0 to 1.0)."""

# Ids given to pools made from requests (which have none), clear of real pool ids.
_REQUEST_IDS = 10**12
_SAMPLE_EVERY = 60.0  # seconds of simulated time between utilisation samples
_TRIM_EVERY = 3600.0  # seconds of simulated time between trims of the lease log
# How many (URL, referrer) pairs' landing terms a run keeps before starting afresh:
# more than a site's pages and referrers, so only one-off landing URLs (a click
# id each) make it start again.
_TERMS_KEPT = 4096
# The default attribution window, in minutes: the web integration's (30).
_WINDOW_MINUTES = DEFAULT_ATTRIBUTION_WINDOW / SECONDS_PER_MINUTE
# The event queue's heap functions, bound once (compiled, no look-up per event).
_heappop: Final = heapq.heappop
_heappush: Final = heapq.heappush


@dataclass(slots=True)
class PoolReport:
    """What one pool did in one simulation run, at one quantity.

    ``sessions``: sessions whose first matching page view went to this pool;
    ``blocked_sessions``: those that found no free number then (``overflow`` or
    ``recycled``); ``no_free_number_share`` is their share, to compare with
    ``erlang_b``. Calls: ``calls`` by visitors of this pool; ``correct`` tied to
    the caller's own lease; ``misattributed`` tied to someone else's;
    ``unattributed_late`` reached a pool number after every window on it had
    closed (pool-level only); ``unattributed_no_number`` came from visitors who
    saw no tracking number on their last page (the pool was exhausted, or
    showed its overflow number).

    ``peak_hour_load_erlangs`` and ``erlang_b_peak_hour`` are the same for the
    busiest clock hour: traffic that varies over the day blocks more than its
    daily average load suggests, which is where rules of thumb under-size.

    ``accuracy`` is ``correct / (calls - unattributed_late)``: the share of the
    calls a pool of this size could have tied to their visit that it did. Late
    calls are left out because no pool size catches them (a longer
    ``match_period`` does); ``late_call_share`` and ``overall_accuracy``
    (``correct / calls``) report them.
    """

    pool_key: str
    name: str
    quantity: int
    sessions: int = 0
    visits: int = 0
    leases: int = 0
    overflows: int = 0
    displacements: int = 0
    blocked_sessions: int = 0
    calls: int = 0
    correct: int = 0
    misattributed: int = 0
    unattributed_late: int = 0
    unattributed_no_number: int = 0
    mean_hold_seconds: float = 0.0
    offered_load_erlangs: float = 0.0
    erlang_b: float = 0.0
    peak_hour_load_erlangs: float = 0.0
    erlang_b_peak_hour: float = 0.0
    utilisation_peak: float = 0.0
    utilisation_p50: float = 0.0
    utilisation_p95: float = 0.0
    utilisation_p99: float = 0.0

    @property
    def accuracy(self) -> float:
        """Share of calls that came within the hold and were tied to the caller's own visit.

        1.0 when there were no such calls.
        """
        timely = self.calls - self.unattributed_late
        return self.correct / timely if timely else 1.0

    @property
    def overall_accuracy(self) -> float:
        """Share of all this pool's calls tied to the caller's own visit (1.0 with no calls)."""
        return self.correct / self.calls if self.calls else 1.0

    @property
    def late_call_share(self) -> float:
        """Share of calls that came after every lease window on the number had closed."""
        return self.unattributed_late / self.calls if self.calls else 0.0

    @property
    def no_free_number_share(self) -> float:
        """Share of this pool's sessions that found no free number on arrival."""
        return self.blocked_sessions / self.sessions if self.sessions else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Every metric under a plain name, for ``--json``."""
        data = asdict(self)
        data["accuracy"] = self.accuracy
        data["overall_accuracy"] = self.overall_accuracy
        data["late_call_share"] = self.late_call_share
        data["no_free_number_share"] = self.no_free_number_share
        return data


@dataclass(frozen=True, slots=True)
class SimulatedCall(Frozen):
    """One call a run counted, and what the engine made of it then (``keep_calls=True``).

    ``at`` is the call's simulated time; ``number`` the number the caller
    dialled (``None``: the page showed no tracking number, so the site's
    own); ``pool_key`` the pool of the caller's session; ``lease_id`` the
    caller's own lease (the truth), ``None`` without one. ``verdict`` is how
    the run counted it: ``correct``, ``misattributed``, ``late``
    (``unattributed_late``) or ``no_number`` (``unattributed_no_number``).
    """

    at: float
    number: str | None
    pool_key: str
    lease_id: str | None
    verdict: str


@dataclass(slots=True)
class SimulationResult:
    """One run: the traffic totals and a :class:`PoolReport` per pool.

    ``sessions`` counts every session that arrived after the warm-up, whether
    or not a pool took it; ``visits`` every page view; ``outcomes`` the
    engine's answers to them by outcome. ``replication`` numbers the run among
    the replications of its size (:mod:`dni_engine.replications`).
    """

    quantity: int | None
    seed: int
    simulated_seconds: float
    sessions: int
    visits: int
    calls: int
    outcomes: dict[str, int]
    pools: list[PoolReport]
    wall_seconds: float = 0.0
    skipped_log_lines: dict[str, int] = field(default_factory=dict)
    replication: int = 0  # which of a size's replications this run is (0: the base seed)
    call_log: list[SimulatedCall] | None = None
    """With ``keep_calls=True``: every call counted, in time order."""
    engine: Engine | None = None
    """With ``keep_calls=True``: the run's engine, its lease log as the run left it
    (calls can be attributed again from it, or fed to a call webhook on it)."""

    @property
    def sessions_per_second(self) -> float:
        """Simulated sessions processed per second of wall time."""
        return self.sessions / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def pool(self, key_or_name: str) -> PoolReport:
        """The report of the pool with this key or name."""
        for report in self.pools:
            if key_or_name in (report.pool_key, report.name):
                return report
        raise KeyError(key_or_name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the run."""
        return {
            "quantity": self.quantity,
            "seed": self.seed,
            "replication": self.replication,
            "simulated_hours": self.simulated_seconds / 3600.0,
            "sessions": self.sessions,
            "visits": self.visits,
            "calls": self.calls,
            "outcomes": dict(self.outcomes),
            "skipped_log_lines": dict(self.skipped_log_lines),
            "pools": [p.as_dict() for p in self.pools],
        }


# ---- resizing pools ------------------------------------------------------------


class _NumberMint:
    """Makes unique, possible E.164 numbers for pools grown beyond their real numbers."""

    def __init__(self) -> None:
        self._serial = 0
        self._taken: set[str] = set()
        # (country code, national head, tail width) per (country, like): parsed once
        self._shapes: dict[tuple[str, str | None], tuple[str, str, int]] = {}

    def reserve(self, numbers: Iterable[str]) -> None:
        self._taken.update(numbers)

    def make(self, country: str, like: str | None) -> str:
        """A new number of ``country``, shaped like ``like`` (an E.164 number) if given."""
        shape = self._shapes.get((country, like))
        if shape is None:
            if like is not None:
                parsed = phonenumbers.parse(like, None)
            else:
                example = phonenumbers.example_number(country)
                if example is None:
                    raise ConfigError([Problem("quantity", f"cannot make numbers for {country}")])
                parsed = example
            national = str(parsed.national_number)
            head = national[: max(2, len(national) - 6)]
            shape = (f"{parsed.country_code}", head, len(national) - len(head))
            self._shapes[(country, like)] = shape
        code, head, width = shape
        while True:
            self._serial += 1
            tail = f"{self._serial % 10**width:0{width}d}"
            candidate = f"+{code}{head}{tail}"
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate


def resize_pools(pools: Sequence[AnyPool], quantity: int) -> list[NumberPool]:
    """Each pool as a :class:`NumberPool` of exactly ``quantity`` numbers.

    Real numbers are kept (the first ``quantity`` of them); missing ones are made
    up in the pool's country, shaped like its first number, unique across all
    pools. A request (no numbers yet) becomes a pool of made-up numbers. The
    pools keep their ids (a request gets a fixed made-up id), so reports line up
    across quantities.
    """
    if quantity < 1:
        raise ConfigError([Problem("quantity", "must be >= 1")])
    mint = _NumberMint()
    for pool in pools:
        if isinstance(pool, NumberPool):
            mint.reserve(pool.e164_numbers)
    resized: list[NumberPool] = []
    for index, pool in enumerate(pools):
        real = pool.e164_numbers[:quantity] if isinstance(pool, NumberPool) else ()
        country = pool.country or "GB"
        like = real[0] if real else None
        made = [mint.make(country, like) for _ in range(quantity - len(real))]
        ids = range(9_000_000 + index * 10_000, 9_000_000 + index * 10_000 + quantity)
        if isinstance(pool, NumberPool):
            # Validated once, with the pool (each number's check parses it).
            data = pool.model_dump(mode="json", by_alias=True)
            data["numbers"] = [
                {"id": i, "phone_number": n} for i, n in zip(ids, [*real, *made], strict=True)
            ]
            data["quantity"] = quantity
            resized.append(NumberPool.model_validate(data))
        else:
            numbers = [PoolNumber(id=i, phone_number=n) for i, n in zip(ids, made, strict=True)]
            request = pool.model_copy(update={"quantity": quantity})
            made_pool = request.to_pool(id=_REQUEST_IDS + index, group_id=0, numbers=numbers)
            resized.append(made_pool)
    return resized


def _overflow_numbers(pools: Sequence[NumberPool]) -> dict[str, PoolOptions]:
    """A made-up overflow number per pool, for simulating the ``overflow`` policy."""
    mint = _NumberMint()
    for pool in pools:
        mint.reserve(pool.e164_numbers)
    return {
        str(pool.id): PoolOptions(
            overflow_number=mint.make(
                pool.country or "GB", pool.e164_numbers[0] if pool.numbers else None
            )
        )
        for pool in pools
    }


# ---- one run -------------------------------------------------------------------


class _Now:
    """The engine's clock in a run: the simulated time of the event being played.

    The run sets :attr:`now` before each engine call (an attribute store, so the
    loop stays cheap), and the times it passes are then never ahead of the clock.
    """

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _SessionState:
    """What the simulator remembers of one session while it is running.

    Its landing context (see :mod:`dni_engine.landing`) is held field by field
    (``url``, ``referrer``, ``started``, ``seen``; ``landed`` false while it
    has none), so a page view continuing it moves ``seen`` on instead of
    making a new :class:`~dni_engine.landing.Landing`.
    """

    __slots__ = (
        "blocked",
        "landed",
        "lease_id",
        "number",
        "pool_key",
        "referrer",
        "seen",
        "serial",
        "session",
        "started",
        "tried",
        "url",
    )

    def __init__(self, serial: int, session: Session, landing: Landing | None = None) -> None:
        self.serial = serial
        self.session = session
        self.pool_key: str | None = None
        self.tried = False
        self.blocked = False
        self.number: str | None = None
        self.lease_id: str | None = None
        # the landing context its page views are matched on
        self.landed = landing is not None
        self.url = ""
        self.referrer: str | None = None
        self.started = 0.0
        self.seen = 0.0
        if landing is not None:
            self.url = landing.url
            self.referrer = landing.referrer
            self.started = landing.started
            self.seen = landing.seen

    def landing(self) -> Landing:
        """The landing context as a :class:`~dni_engine.landing.Landing` (one is held)."""
        return Landing(self.url, self.referrer, self.started, self.seen)


def _sessions_of(traffic: TrafficModel | LogReplay, seed: int) -> Iterator[Session]:
    if isinstance(traffic, LogReplay):
        return iter(traffic.sessions)
    return generate_sessions(traffic, seed)


def _site_host(traffic: TrafficModel | LogReplay) -> str | None:
    """The host of the traffic's site: referrers from it are internal page views."""
    return referrer_host(traffic.site)


def _window_seconds(attribution_window: float) -> float:
    """``attribution_window`` (minutes) in seconds, or a :class:`ConfigError`."""
    if (
        type(attribution_window) is bool
        or not isinstance(attribution_window, int | float)
        or not math.isfinite(attribution_window)
        or attribution_window <= 0
    ):
        raise ConfigError(
            [Problem("attribution_window", f"{attribution_window!r} is not minutes > 0")]
        )
    return float(attribution_window) * SECONDS_PER_MINUTE


def _duration(traffic: TrafficModel | LogReplay) -> float:
    if isinstance(traffic, LogReplay):
        if not traffic.sessions:
            return 0.0
        return max(s.last_activity for s in traffic.sessions)
    return traffic.hours * 3600.0


def simulate(
    pools: Sequence[AnyPool],
    traffic: TrafficModel | LogReplay,
    *,
    quantity: int | None = None,
    policy: Policy = "fallback",
    cooldown: float = 0.0,
    seed: int = 0,
    warmup: float = 0.0,
    progress: Progress | None = None,
    exact: bool = False,
    attribution_window: float = _WINDOW_MINUTES,
    keep_calls: bool = False,
) -> SimulationResult:
    """Run ``traffic`` through a real engine over ``pools`` and report per pool.

    ``quantity`` resizes every pool (``None``: pools as they are; requests then
    need a quantity). ``policy`` and ``cooldown`` (minutes) apply to every pool.
    Sessions arriving before ``warmup`` seconds still run but are left out of
    the session, blocking and call counts, so an empty start does not flatter
    the figures. The same ``seed`` gives the same result. ``exact`` runs every
    page view through the engine, even those whose answer is known (see the
    module notes); the result is the same, only slower. Each page view is
    matched on its visitor's landing context (see the module notes), which
    lapses ``attribution_window`` minutes after its last page view.
    ``keep_calls`` keeps every counted call with its verdict and the run's
    engine in the result (:attr:`SimulationResult.call_log`, ``engine``).
    """
    started_wall = time.perf_counter()
    window = _window_seconds(attribution_window)
    if quantity is None:
        if any(not isinstance(p, NumberPool) or not p.numbers for p in pools):
            raise ConfigError([Problem("quantity", "pools without numbers need a quantity")])
        sized = [p for p in pools if isinstance(p, NumberPool)]
    else:
        sized = resize_pools(pools, quantity)
    keys = [s.key for s in sized]  # a request is reported under its made-up pool's id
    store = MemoryStore(log_capacity=1_000_000)
    clock = _Now()
    engine = Engine(
        sized,
        store,
        policy=policy,
        cooldown=cooldown,
        options=_overflow_numbers(sized) if policy == "overflow" else None,
        clock=clock,
    )
    reports = {
        key: PoolReport(key, pool.name, len(pool.numbers))
        for key, pool in zip(keys, sized, strict=True)
    }
    duration = _duration(traffic)
    run = _Run(
        engine,
        clock,
        store,
        keys,
        reports,
        duration,
        warmup,
        elide=not exact and policy != "recycle",
        site_host=_site_host(traffic),
        window=window,
        carry=isinstance(traffic, LogReplay),
        trim=not keep_calls,
    )
    if keep_calls:
        run.call_log = []
    # The run allocates millions of short-lived, cycle-free objects; the cyclic
    # collector would rescan the growing heap over and over for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        run.play(_sessions_of(traffic, seed), progress)
    finally:
        if collecting:
            gc.enable()
    if progress is not None:
        progress(1.0)

    end = duration
    clock.now = max(clock.now, end)
    for key, pool in zip(keys, sized, strict=True):
        report = reports[key]
        stats = engine.pool_stats(key, end)
        report.leases = stats.leases_started
        report.overflows = stats.overflows
        report.displacements = stats.displacements
        hold = pool.match_period * SECONDS_PER_MINUTE + cooldown * SECONDS_PER_MINUTE
        tally = run.tallies[key]
        seconds = tally.on_site
        report.mean_hold_seconds = hold + (seconds / report.sessions if report.sessions else 0.0)
        window = max(duration - warmup, 1e-9)
        report.offered_load_erlangs = report.sessions / window * report.mean_hold_seconds
        report.erlang_b = erlang_b(report.offered_load_erlangs, report.quantity)
        if duration - warmup >= 2 * 3600:  # an hourly peak needs more than one hour
            busiest = max(tally.hourly.values(), default=0)
            report.peak_hour_load_erlangs = busiest / 3600 * report.mean_hold_seconds
        else:
            report.peak_hour_load_erlangs = report.offered_load_erlangs
        report.erlang_b_peak_hour = erlang_b(report.peak_hour_load_erlangs, report.quantity)
        _fill_utilisation(report, run.samples[key])
    outcomes = dict(engine.stats().outcomes)
    outcomes["kept"] += run.elided
    outcomes["bot"] += run.bots
    return SimulationResult(
        quantity=quantity,
        seed=seed,
        simulated_seconds=duration,
        sessions=run.arrived,
        visits=run.visits,
        calls=run.calls,
        outcomes=outcomes,
        pools=list(reports.values()),
        wall_seconds=time.perf_counter() - started_wall,
        skipped_log_lines=dict(traffic.skipped) if isinstance(traffic, LogReplay) else {},
        call_log=run.call_log,
        engine=engine if keep_calls else None,
    )


class _Tally:
    """A pool's session tallies in a run, beside its report: time on site, sessions per hour."""

    __slots__ = ("hourly", "on_site", "report")

    def __init__(self, report: PoolReport) -> None:
        self.report = report
        self.on_site = 0.0  # seconds, summed over its sessions
        self.hourly: dict[int, int] = {}  # sessions arriving in each clock hour, by hour


class _Run:
    """One simulation run: the event queue, the engine calls, and the tallies.

    Events are ``(time, session serial, index, state)``: ``index`` is a page
    view's, or the session's number of page views for its call, so events at
    the same time run in session order, then page order (the call last),
    whichever way they were queued. A session has one event queued at a
    time, so no two events tie on serial and index. A session's first page
    view is not queued:
    sessions arrive in time order, so once every event up to an arrival has
    run, its first view is next.
    """

    def __init__(
        self,
        engine: Engine,
        clock: _Now,
        store: MemoryStore,
        keys: list[str],
        reports: dict[str, PoolReport],
        duration: float,
        warmup: float,
        *,
        elide: bool,
        site_host: str | None,
        window: float,
        carry: bool,
        trim: bool,
    ) -> None:
        self.engine = engine
        self.clock = clock  # the engine's: set to each event's time before it runs
        self.store = store  # the engine's, read for occupancy samples
        self.keys = keys
        self.reports = reports
        self.duration = duration
        self.warmup = warmup
        # Page views a visitor makes inside a live first-touch lease, before
        # that lease could lapse, only move its expiry forward: all but the
        # last of them are counted, not run (see the module notes).
        self.elide = elide
        # The first-touch rule, as the web integration plays it: each page
        # view is matched on its visitor's landing context.
        self.site_host = site_host
        self.window = window
        self.params = engine.rules.param_names
        # Replayed visitors come back in later sessions, and their context
        # may still be live then; generated sessions are one visitor each.
        self.landings: dict[str, Landing] | None = {} if carry else None
        # landing_terms per (URL, referrer) pair seen, dropped when there are many
        # (by URL, then referrer: no pair made per page view)
        self.terms: dict[str, dict[str | None, tuple[bool, str, str | None]]] = {}
        self.terms_kept = 0  # pairs in terms
        self.queue: list[tuple[float, int, int, _SessionState]] = []
        self.arrived = 0  # sessions after the warm-up
        self.visits = 0
        self.calls = 0
        self.elided = 0  # kept visits counted without running them
        self.bots = 0  # bot visits counted without running them
        self.tallies = {key: _Tally(reports[key]) for key in keys}
        self.samples: dict[str, list[int]] = {key: [] for key in keys}  # live leases
        self.next_sample = _SAMPLE_EVERY
        # Without the engine in the result, no one reads the lease log but this
        # run's calls, which come in time order: every _TRIM_EVERY seconds the
        # leases whose windows have closed leave it (MemoryStore._drop_closed),
        # so the run holds about an hour of leases, not all of them.
        self.trim = trim
        self.next_trim = _TRIM_EVERY
        self.call_log: list[SimulatedCall] | None = None  # kept with keep_calls

    def play(self, sessions: Iterable[Session], progress: Progress | None) -> None:
        """Run every session and every event they make, in time order."""
        duration = self.duration
        next_progress = 0.0
        for serial, session in enumerate(sessions):
            arrival = session.arrival
            queue = self.queue
            if queue and queue[0][0] <= arrival:
                self.drain(arrival)
            if arrival >= self.next_sample:
                self.sample_until(arrival)
            landings = self.landings
            previous = landings.get(session.visitor) if landings is not None else None
            self.view(arrival, session, _SessionState(serial, session, previous), 0)
            if arrival >= self.warmup:
                self.arrived += 1
            if progress is not None and duration > 0 and arrival >= next_progress:
                progress(min(1.0, arrival / duration))
                next_progress = arrival + duration / 100
        self.drain(math.inf)
        self.sample_until(duration)

    def drain(self, until: float) -> None:
        """Run the queued events up to ``until``, in order."""
        queue = self.queue
        while queue and queue[0][0] <= until:
            at, _, index, state = _heappop(queue)
            if at >= self.next_sample:
                self.sample_until(at)
            session = state.session
            if index < len(session.views):
                self.view(at, session, state, index)
            else:
                self.call(at, session, state)

    def view(self, at: float, session: Session, state: _SessionState, index: int) -> None:
        """Page view ``index`` of ``session``; queue what the session does next."""
        self.visits += 1
        views = session.views
        _, url, referrer = views[index]
        self.land(state, url, referrer, at)
        self.clock.now = at
        decision = self.engine.visit(
            session.visitor, state.url, state.referrer, session.user_agent, at
        )
        # one unpacking instead of a named look-up per field
        _, _, outcome, number, key, _, _, _, _, lease_id, _, expires, displaced, _ = decision
        report = None
        if key is not None:
            if not state.tried and outcome != "kept":
                state.tried = True
                state.pool_key = key
                state.blocked = outcome == "overflow" or (
                    outcome == "recycled" and displaced is not None
                )
            report = self.reports.get(key)
            if report is not None:
                report.visits += 1
        # A caller dials the number on the last page they saw: the tracking
        # number of their lease, the overflow number, or the site's own.
        state.number = number
        state.lease_id = lease_id
        index += 1
        last = len(views) - 1
        if index > last:
            if (
                session.call_at is not None
                and state.pool_key is not None
                and session.arrival >= self.warmup
            ):
                # Only a call that counts is queued: one that would not
                # touches neither the engine nor a tally (see call).
                _heappush(self.queue, (session.call_at, state.serial, index, state))
            if self.landings is not None:
                self.landings[session.visitor] = state.landing()
            self.finish(session, state)
            return
        if self.elide:
            if outcome == "bot":
                # The same user agent on every page: the rest of the session
                # is bot visits too, which touch no lease and make no call
                # (and whose landing context no later visit of theirs needs:
                # a replayed visitor is an address and a user agent).
                skipped = last + 1 - index
                self.visits += skipped
                self.bots += skipped
                return
            if expires is not None and index < last and views[index][0] < expires:
                # Skip to the last view before the lease would lapse (at the
                # latest the session's last view), counting the skipped ones
                # as the kept visits they would have been. A live lease is
                # kept whatever a view matches (every pool is first touch
                # here), but the skipped views still move the landing
                # context on, which views after the lease lapses are matched
                # on. A view without a lease (no match, or an exhausted pool)
                # is never skipped: matched on its landing again, it may take
                # a number freed since.
                ahead = index
                while ahead < last and views[ahead + 1][0] < expires:
                    ahead += 1
                skipped = ahead - index
                if skipped:
                    self.visits += skipped
                    self.elided += skipped
                    if report is not None:
                        report.visits += skipped
                    for skip in range(index, ahead):
                        seen, page, came_from = views[skip]
                        self.land(state, page, came_from, seen)
                    index = ahead
        _heappush(self.queue, (views[index][0], state.serial, index, state))

    def land(self, state: _SessionState, url: str, referrer: str | None, at: float) -> None:
        """Move the session's landing context on by a page view at ``at``.

        :func:`~dni_engine.landing.next_landing` on the state's fields: its
        :func:`~dni_engine.landing.landing_terms`, a pure function of the URL
        and referrer, are kept per pair seen (the few internal pages and
        referrers of a site recur on every session). A session without a
        context yet needs no ``starts`` term: on its first page view a pair
        not kept whose URL has a query (a landing URL seldom seen twice: a
        click id each) gets only the other two
        (:func:`~dni_engine.landing.landing_page`), and is not kept.
        """
        by_referrer = self.terms.get(url)
        known = by_referrer.get(referrer) if by_referrer is not None else None
        if known is None:
            if not state.landed and "?" in url:
                page, external = landing_page(
                    url, referrer, site_host=self.site_host, params=self.params
                )
                state.landed = True
                state.url = page
                state.referrer = external
                state.started = at
                state.seen = at
                return
            if self.terms_kept >= _TERMS_KEPT:
                self.terms.clear()
                self.terms_kept = 0
                by_referrer = None
            if by_referrer is None:
                by_referrer = self.terms[url] = {}
            known = landing_terms(url, referrer, site_host=self.site_host, params=self.params)
            by_referrer[referrer] = known
            self.terms_kept += 1
        starts, page, external = known
        if state.landed and not starts and at - state.seen <= self.window:
            if at >= state.seen:  # max(at, seen), as next_landing keeps it
                state.seen = at
            return
        state.landed = True
        state.url = page
        state.referrer = external
        state.started = at
        state.seen = at

    def finish(self, session: Session, state: _SessionState) -> None:
        """The session's last page view has run: count it with its pool."""
        key = state.pool_key
        arrival = session.arrival
        if key is None or arrival < self.warmup:
            return
        tally = self.tallies[key]
        report = tally.report
        report.sessions += 1
        report.blocked_sessions += state.blocked
        tally.on_site += session.last_activity - arrival
        per_hour = tally.hourly
        hour = int(arrival // 3600)
        per_hour[hour] = per_hour.get(hour, 0) + 1

    def call(self, at: float, session: Session, state: _SessionState) -> None:
        """A call to the number the session last saw; counted if its session went to a pool."""
        key = state.pool_key
        if key is None or session.arrival < self.warmup:
            return
        report = self.reports[key]
        self.calls += 1
        report.calls += 1
        if state.lease_id is None or state.number is None:
            report.unattributed_no_number += 1
            verdict = "no_number"
        else:
            self.clock.now = at
            lease = self.engine.attribute_call(state.number, at).lease
            if lease is None:
                report.unattributed_late += 1
                verdict = "late"
            elif lease.lease_id == state.lease_id:
                report.correct += 1
                verdict = "correct"
            else:
                report.misattributed += 1
                verdict = "misattributed"
        if self.call_log is not None:
            self.call_log.append(SimulatedCall(at, state.number, key, state.lease_id, verdict))

    def sample_until(self, now: float) -> None:
        """Sample every pool's live leases at each grid point up to ``now``.

        The grid covers the traffic's own time span, and each point is sampled
        before any event at or after it: the same points however many events
        there are.
        """
        while now >= self.next_sample:
            at = self.next_sample
            if at >= self.duration:
                self.next_sample = math.inf
                return
            for key in self.keys:
                self.samples[key].append(self.store.live_leases(key, at))
            if self.trim and at >= self.next_trim:
                # Every event before ``at`` has run, and calls come in time order.
                self.store._drop_closed(at)
                self.next_trim = at + _TRIM_EVERY
            self.next_sample = at + _SAMPLE_EVERY


def _fill_utilisation(report: PoolReport, live: list[int]) -> None:
    if not live or report.quantity == 0:
        return
    ordered = sorted(live)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / report.quantity

    report.utilisation_peak = ordered[-1] / report.quantity
    report.utilisation_p50 = quantile(0.50)
    report.utilisation_p95 = quantile(0.95)
    report.utilisation_p99 = quantile(0.99)


# ---- sweeps and recommendations ---------------------------------------------------


@dataclass(slots=True)
class Recommendation:
    """The smallest quantity meeting the target for one pool, with the evidence.

    ``achieved`` is the metric's mean over the ``replications`` runs at that
    quantity, and ``low``/``high`` the interval where one fresh run falls at
    ``confidence`` (:func:`~dni_engine.replications.interval`); the quantity
    was chosen on ``low`` (accuracy) or ``high`` (blocking). With one
    replication the three are the single run's value.
    """

    pool_key: str
    name: str
    metric: Metric
    target: float
    quantity: int | None  # None: no quantity tried met the target
    achieved: float | None
    offered_load_erlangs: float
    erlang_b_at_quantity: float | None
    erlang_b_quantity: int  # the fewest numbers Erlang B says give the target blocking
    peak_hour_load_erlangs: float = 0.0
    erlang_b_peak_hour_quantity: int = 0  # the same for the busiest hour's load
    replications: int = 1
    confidence: float = DEFAULT_CONFIDENCE
    low: float | None = None
    high: float | None = None

    def summary(self) -> str:
        """One line: ``Google Ads: 51 numbers: accuracy 99.3% [98.9, 99.6]``."""
        if self.quantity is None or self.achieved is None:
            return f"{self.name}: target not reached with the sizes tried"
        value = Interval(
            self.achieved,
            self.low if self.low is not None else self.achieved,
            self.high if self.high is not None else self.achieved,
            self.replications,
            self.confidence,
        )
        return f"{self.name}: {self.quantity} numbers: {self.metric} {value}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def meets(report: PoolReport, metric: Metric, target: float) -> bool:
    """Whether ``report`` meets the target: accuracy >= target, or blocking <= target."""
    if metric == "accuracy":
        return report.accuracy >= target
    return report.no_free_number_share <= target


def _tasks(
    pools: Sequence[AnyPool],
    traffic: TrafficModel | LogReplay,
    sizes: Iterable[int],
    seeds: Sequence[int],
    *,
    policy: Policy,
    cooldown: float,
    warmup: float,
    attribution_window: float,
) -> list[SimulationTask]:
    """One task per size and replication, sizes first: the order results come back in."""
    frozen = tuple(pools)
    return [
        SimulationTask(
            pools=frozen,
            traffic=traffic,
            quantity=size,
            seed=replica_seed,
            replication=index,
            policy=policy,
            cooldown=cooldown,
            warmup=warmup,
            attribution_window=attribution_window,
        )
        for size in sizes
        for index, replica_seed in enumerate(seeds)
    ]


def sweep(
    pools: Sequence[AnyPool],
    traffic: TrafficModel | LogReplay,
    quantities: Iterable[int],
    *,
    policy: Policy = "fallback",
    cooldown: float = 0.0,
    seed: int = 0,
    warmup: float = 0.0,
    progress: Progress | None = None,
    attribution_window: float = _WINDOW_MINUTES,
    replications: int = 1,
    executor: Executor | None = None,
    on_run: RunDone | None = None,
) -> list[SimulationResult]:
    """:func:`simulate` at each quantity, ``replications`` times, on the same seeds for every size.

    Replication ``r`` of every size runs on the same seed
    (:func:`~dni_engine.replications.replication_seeds` of ``seed``; common
    random numbers, so sizes differ by their size, not their traffic). The
    runs are ordered by quantity, then replication. They run here one after
    another, or on ``executor`` (any :class:`concurrent.futures.Executor`:
    a process pool, a Dask ``Client.get_executor()``), with the same results
    either way. ``progress`` gets the share of runs done; ``on_run`` (runs
    finished, runs submitted) as each run finishes.
    """
    if replications < 1:
        raise ConfigError([Problem("replications", "must be >= 1")])
    _window_seconds(attribution_window)  # a bad window fails before any run
    tasks = _tasks(
        pools,
        traffic,
        sorted(set(quantities)),
        replication_seeds(seed, replications),
        policy=policy,
        cooldown=cooldown,
        warmup=warmup,
        attribution_window=attribution_window,
    )
    return run_tasks(tasks, executor, progress=progress, on_run=on_run)


def recommend(
    pools: Sequence[AnyPool],
    traffic: TrafficModel | LogReplay,
    *,
    metric: Metric = "accuracy",
    target: float = 0.99,
    quantities: Sequence[int] | None = None,
    policy: Policy = "fallback",
    cooldown: float = 0.0,
    seed: int = 0,
    results: Sequence[SimulationResult] | None = None,
    attribution_window: float = _WINDOW_MINUTES,
    replications: int = 1,
    confidence: float = DEFAULT_CONFIDENCE,
    executor: Executor | None = None,
    on_run: RunDone | None = None,
) -> tuple[list[Recommendation], list[SimulationResult]]:
    """The smallest quantity per pool that meets ``target`` on ``metric`` in a fresh run.

    ``accuracy``: share of calls tied to the right visit >= target; ``blocking``:
    share of sessions finding no free number <= target. Each size runs
    ``replications`` times (on the seeds :func:`sweep` uses), and a size meets
    the target when the ``confidence`` interval of one fresh run
    (:func:`~dni_engine.replications.interval`) does: its low end for
    accuracy, its high end for blocking. With one replication the run itself
    decides. :data:`~dni_engine.replications.DEFAULT_REPLICATIONS` (10) is
    what the command line runs: one seed is one sample of traffic, and a size
    chosen on it can miss the target on the next.

    With ``quantities`` (or precomputed ``results``, whose runs of a size are
    its replications) the answer is the smallest of those that meets the
    target; otherwise a search doubles the quantity from 1 until every pool
    meets the target (up to 1000) and then bisects, every pool's next size at
    once. Runs go to ``executor`` as :func:`sweep`'s do (each step's
    replications and sizes at once), with the same results as serially.
    Every run is returned too, by quantity then replication. Erlang B's answer
    for the same offered load is given alongside. ``attribution_window``
    (minutes) is :func:`simulate`'s.
    """
    if metric == "accuracy" and not 0 < target <= 1:
        raise ConfigError([Problem("target", "an accuracy target is in (0, 1]")])
    if metric == "blocking" and not 0 < target < 1:
        raise ConfigError([Problem("target", "a blocking target is in (0, 1)")])
    if replications < 1:
        raise ConfigError([Problem("replications", "must be >= 1")])
    if not 0 < confidence < 1:
        raise ConfigError([Problem("confidence", "must be in (0, 1)")])

    _window_seconds(attribution_window)  # a bad window fails before any run
    seeds = replication_seeds(seed, replications)
    by_size: dict[int, list[SimulationResult]] = {}
    counts = [0, 0]  # runs finished, runs submitted, over the whole search

    def run(sizes: Iterable[int]) -> None:
        tasks = _tasks(
            pools,
            traffic,
            sorted(set(sizes)),
            seeds,
            policy=policy,
            cooldown=cooldown,
            warmup=0.0,
            attribution_window=attribution_window,
        )
        done = run_tasks(
            tasks,
            executor,
            on_run=on_run,
            submitted_before=counts[1],
            finished_before=counts[0],
        )
        counts[0] += len(done)
        counts[1] += len(done)
        for result in done:
            if result.quantity is not None:
                by_size.setdefault(result.quantity, []).append(result)

    def passes(size: int, key: str) -> bool:
        return _summary(by_size[size], key, confidence).meets(metric, target)

    if results is not None:
        for result in results:
            if result.quantity is not None:
                by_size.setdefault(result.quantity, []).append(result)
    elif quantities is not None:
        run(quantities)
    else:
        size = 1
        while True:
            run([size])
            keys = [p.pool_key for p in by_size[size][0].pools]
            if all(passes(size, key) for key in keys) or size >= 1000:
                break
            size = min(size * 2, 1000)
        bounds: dict[str, tuple[int, int]] = {}
        for key in keys:
            passing = [s for s in by_size if passes(s, key)]
            if not passing:
                continue
            high = min(passing)
            low = max((s for s in by_size if s < high and not passes(s, key)), default=0)
            bounds[key] = (low, high)
        while True:
            # Every pool's next size to try, all at once (sizes bisected for one
            # pool serve the others too).
            wanted = {
                (low + high) // 2
                for low, high in bounds.values()
                if high - low > 1 and (low + high) // 2 not in by_size
            }
            if wanted:
                run(wanted)
            moved = False
            for key, (low, high) in bounds.items():
                if high - low <= 1:
                    continue
                middle = (low + high) // 2
                bounds[key] = (low, middle) if passes(middle, key) else (middle, high)
                moved = True
            if not moved:
                break
    ordered = [by_size[s] for s in sorted(by_size)]
    recommendations = []
    for base in ordered[0][0].pools:
        key = base.pool_key
        summaries = [_summary(runs, key, confidence) for runs in ordered]
        chosen = next((s for s in summaries if s.meets(metric, target)), None)
        reference = chosen or summaries[-1]
        load = reference.mean("offered_load_erlangs")
        peak = reference.mean("peak_hour_load_erlangs")
        blocking_target = target if metric == "blocking" else max(1e-6, 1 - target)
        value = None
        if chosen is not None:
            value = chosen.accuracy if metric == "accuracy" else chosen.blocking
        recommendations.append(
            Recommendation(
                pool_key=key,
                name=base.name,
                metric=metric,
                target=target,
                quantity=chosen.quantity if chosen else None,
                achieved=value.mean if value else None,
                offered_load_erlangs=load,
                erlang_b_at_quantity=chosen.mean("erlang_b") if chosen else None,
                erlang_b_quantity=servers_for(load, blocking_target),
                peak_hour_load_erlangs=peak,
                erlang_b_peak_hour_quantity=servers_for(peak, blocking_target),
                replications=reference.replications,
                confidence=confidence,
                low=value.low if value else None,
                high=value.high if value else None,
            )
        )
    flat = [r for runs in ordered for r in sorted(runs, key=lambda r: r.replication)]
    return recommendations, flat


def _summary(runs: Sequence[SimulationResult], key: str, confidence: float) -> SizeSummary:
    """The summary of pool ``key`` over the replications of one size."""
    (summary,) = [s for s in summarize(runs, confidence) if s.pool_key == key]
    return summary


def parse_quantities(text: str) -> list[int]:
    """Read ``'5'``, ``'3..12'`` or ``'2,4,8'`` into a sorted list of quantities >= 1."""
    values: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if ".." in part:
                low, high = (int(x) for x in part.split("..", 1))
                if low > high:
                    raise ValueError
                values.update(range(low, high + 1))
            else:
                values.add(int(part))
    except ValueError:
        raise ConfigError(
            [Problem("quantity", f"{text!r} is not a quantity, a range a..b, or a list a,b,c")]
        ) from None
    if not values or min(values) < 1 or max(values) > 1000:
        raise ConfigError([Problem("quantity", "quantities must be between 1 and 1000")])
    return sorted(values)
