"""Replicated sizing runs: independent seeds, intervals over them, and runs on any executor.

One simulated day of traffic is one sample: a size that just meets a target on
one seed may miss it on the next day's traffic. So each size is run over
several *replications*, each on its own seed (:func:`replication_seeds`), and a
metric is summarised by :func:`interval` as its mean with a ``confidence``
interval for **one fresh run** (a Student-t prediction interval over the
replications; see docs/decisions.md for why this one).

Runs are :class:`SimulationTask` objects, picklable, each carrying its own
seed, so they give the same results wherever they run: :func:`run_tasks` runs
them in this process, or on any :class:`concurrent.futures.Executor` (a
``ProcessPoolExecutor`` over the machine's cores, a Dask cluster's
``Client.get_executor()``), reporting progress as each run finishes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dni_engine.leases import Policy
    from dni_engine.schema import AnyPool
    from dni_engine.simulate import PoolReport, SimulationResult
    from dni_engine.traffic import LogReplay, TrafficModel

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_REPLICATIONS",
    "Interval",
    "RunDone",
    "SimulationTask",
    "SizeSummary",
    "interval",
    "replication_seeds",
    "run_tasks",
    "summarize",
    "t_quantile",
]

DEFAULT_REPLICATIONS = 10
"""Replications per size the command line runs (docs/decisions.md: why ten)."""
DEFAULT_CONFIDENCE = 0.95

RunDone = Callable[[int, int], None]
"""Called as each run finishes with (runs finished, runs submitted so far)."""


# ---- seeds -------------------------------------------------------------------------


def replication_seeds(seed: int, replications: int) -> list[int]:
    """The seeds of ``replications`` independent runs made from ``seed``.

    Replication 0 runs on ``seed`` itself, so one replication is the single
    run it always was; replication ``r > 0`` runs on a seed hashed from
    ``(seed, r)`` (63 bits), so studies on nearby base seeds share no
    replication. Raises ``ValueError`` unless ``replications >= 1``.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    seeds = [seed]
    for index in range(1, replications):
        digest = hashlib.blake2b(f"dni-engine/{seed}/{index}".encode(), digest_size=8).digest()
        seeds.append(int.from_bytes(digest, "big") >> 1)
    return seeds


# ---- statistics ----------------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        for term in (even, -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + term * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + term / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def _regularised_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _regularised_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``0 < p < 1``).

    Computed by bisection on the exact distribution function to 1e-10; for
    example ``t_quantile(0.975, 9)`` is 2.262.
    """
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2.0
    while high - low > 1e-10:
        middle = (low + high) / 2.0
        if _t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


@dataclass(frozen=True, slots=True)
class Interval:
    """A share over replications: its mean, and where one fresh run will fall.

    ``low`` and ``high`` bound one more run's value at ``confidence`` (a
    two-sided Student-t prediction interval, clipped to [0, 1]); with one
    replication there is no spread to go on and both are the value itself.
    """

    mean: float
    low: float
    high: float
    replications: int
    confidence: float

    def __str__(self) -> str:
        """``99.3% [98.9, 99.6]`` (just ``99.3%`` for a single run)."""
        if self.replications < 2:
            return f"{self.mean * 100:.1f}%"
        return f"{self.mean * 100:.1f}% [{self.low * 100:.1f}, {self.high * 100:.1f}]"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "replications": self.replications,
            "confidence": self.confidence,
        }


def interval(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """The mean of ``values`` (one per replication) and a prediction interval for one more.

    ``mean +- t * s * sqrt(1 + 1/n)``, with ``s`` the sample standard deviation
    and ``t`` Student's quantile at ``(1 + confidence) / 2`` with ``n - 1``
    degrees of freedom; clipped to [0, 1] (the values are shares). Raises
    ``ValueError`` on no values or a confidence outside (0, 1).
    """
    if not values:
        raise ValueError("an interval needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, mean, mean, n, confidence)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile((1.0 + confidence) / 2.0, n - 1) * spread * math.sqrt(1.0 + 1.0 / n)
    return Interval(mean, max(0.0, mean - half), min(1.0, mean + half), n, confidence)


# ---- one pool at one size over its replications ---------------------------------------


@dataclass(slots=True)
class SizeSummary:
    """One pool at one size over every replication: the runs and their intervals.

    ``accuracy`` and ``blocking`` (the share of sessions finding no free
    number) are :class:`Interval` values over the replications' reports.
    """

    pool_key: str
    name: str
    quantity: int
    reports: list[PoolReport]
    accuracy: Interval
    blocking: Interval

    @property
    def replications(self) -> int:
        """How many runs this summary is over."""
        return len(self.reports)

    def mean(self, attribute: str) -> float:
        """The mean of a numeric :class:`PoolReport` field or property over the runs."""
        values = [float(getattr(report, attribute)) for report in self.reports]
        return math.fsum(values) / len(values)

    def meets(self, metric: str, target: float) -> bool:
        """Whether a fresh run meets the target at the interval's confidence.

        Accuracy: the interval's low end >= target; blocking: its high end <=
        target. With one replication, the run's own value decides.
        """
        if metric == "accuracy":
            return self.accuracy.low >= target
        return self.blocking.high <= target

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the intervals and the mean of every count."""
        return {
            "pool_key": self.pool_key,
            "name": self.name,
            "quantity": self.quantity,
            "replications": self.replications,
            "accuracy": self.accuracy.as_dict(),
            "no_free_number_share": self.blocking.as_dict(),
            "mean_sessions": self.mean("sessions"),
            "mean_calls": self.mean("calls"),
            "offered_load_erlangs": self.mean("offered_load_erlangs"),
            "erlang_b": self.mean("erlang_b"),
        }


def summarize(
    results: Sequence[SimulationResult], confidence: float = DEFAULT_CONFIDENCE
) -> list[SizeSummary]:
    """Group runs by pool and size: one :class:`SizeSummary` per pool and quantity.

    Pools come in the order of the first run, sizes in ascending order; every
    run of a size counts as one replication. Runs without a quantity (the
    pools' own sizes) are grouped under each pool's own size.
    """
    grouped: dict[tuple[str, int], list[PoolReport]] = {}
    order: list[str] = []
    for result in results:
        for report in result.pools:
            if report.pool_key not in order:
                order.append(report.pool_key)
            grouped.setdefault((report.pool_key, report.quantity), []).append(report)
    summaries = []
    for key in order:
        for (pool_key, quantity), reports in sorted(grouped.items(), key=lambda i: i[0][1]):
            if pool_key != key:
                continue
            summaries.append(
                SizeSummary(
                    pool_key=pool_key,
                    name=reports[0].name,
                    quantity=quantity,
                    reports=reports,
                    accuracy=interval([r.accuracy for r in reports], confidence),
                    blocking=interval([r.no_free_number_share for r in reports], confidence),
                )
            )
    return summaries


# ---- running on an executor ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulationTask:
    """One simulation run, picklable: everything :func:`~dni_engine.simulate.simulate` needs.

    The seed is the task's own, so the run's result does not depend on where
    or in what order it runs.
    """

    pools: tuple[AnyPool, ...]
    traffic: TrafficModel | LogReplay
    quantity: int | None
    seed: int
    replication: int = 0
    policy: Policy = "fallback"
    cooldown: float = 0.0
    warmup: float = 0.0
    attribution_window: float = 30.0

    def run(self, progress: Callable[[float], None] | None = None) -> SimulationResult:
        """Run the simulation (here, in this process) and label it with its replication."""
        from dni_engine.simulate import simulate

        result = simulate(
            self.pools,
            self.traffic,
            quantity=self.quantity,
            policy=self.policy,
            cooldown=self.cooldown,
            seed=self.seed,
            warmup=self.warmup,
            progress=progress,
            attribution_window=self.attribution_window,
        )
        result.replication = self.replication
        return result

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle the traffic model as its fields (see :func:`_fields_of`)."""
        return (
            _rebuild_task,
            (
                self.pools,
                _fields_of(self.traffic),
                self.quantity,
                self.seed,
                self.replication,
                self.policy,
                self.cooldown,
                self.warmup,
                self.attribution_window,
            ),
        )


@dataclass(frozen=True, slots=True)
class _Fields:
    """A frozen dataclass as its class and the values of its fields, to build it again."""

    kind: type
    values: tuple[tuple[str, Any], ...]


def _fields_of(value: Any) -> Any:
    """A frozen dataclass (a traffic model and its source mix) as :class:`_Fields`, nested.

    In the compiled build these classes are native: their pickling sets each field on
    a new instance, which a frozen dataclass refuses. Built again from their fields
    they go through their own constructor (and its checks) instead. Anything else
    (a replayed log) is left to pickle as it is.
    """
    params = getattr(type(value), "__dataclass_params__", None)
    if params is None or not params.frozen:
        return value
    return _Fields(
        type(value),
        tuple(
            (f.name, _fields_of(getattr(value, f.name)))
            for f in dataclasses.fields(value)
            if f.init
        ),
    )


def _built(value: Any) -> Any:
    if isinstance(value, _Fields):
        return value.kind(**{name: _built(item) for name, item in value.values})
    return value


def _rebuild_task(pools: tuple[AnyPool, ...], traffic: Any, *rest: Any) -> SimulationTask:
    """A :class:`SimulationTask` back from its pickled parts."""
    return SimulationTask(pools, _built(traffic), *rest)


def _run_task(task: SimulationTask) -> SimulationResult:
    """What a worker runs: one task (a module-level function, so it pickles by name)."""
    return task.run()


def run_tasks(
    tasks: Sequence[SimulationTask],
    executor: Executor | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    on_run: RunDone | None = None,
    submitted_before: int = 0,
    finished_before: int = 0,
) -> list[SimulationResult]:
    """Run every task and return their results in the tasks' order.

    Without an executor the tasks run here one after another (``progress``
    then also moves within each run); with one, all are submitted at once and
    ``progress`` (share of the tasks done) and ``on_run`` are called as each
    result arrives, whichever worker it comes from. ``on_run`` gets (runs
    finished, runs submitted), counting ``finished_before`` and
    ``submitted_before`` runs of earlier batches of the same search. A task
    that raises cancels the tasks not started yet, and its error is raised
    here. The results are the same either way: every task carries its seed.
    """
    total = len(tasks)
    submitted = submitted_before + total
    results: list[SimulationResult | None] = [None] * total
    if executor is None:
        for index, task in enumerate(tasks):
            inner = None
            if progress is not None:

                def inner(done: float, index: int = index) -> None:
                    progress((index + done) / total)

            results[index] = task.run(inner)
            if on_run is not None:
                on_run(finished_before + index + 1, submitted)
    else:
        futures: dict[Future[SimulationResult], int] = {}
        try:
            for index, task in enumerate(tasks):
                futures[executor.submit(_run_task, task)] = index
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done / total)
                if on_run is not None:
                    on_run(finished_before + done, submitted)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [r for r in results if r is not None]
