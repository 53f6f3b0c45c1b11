"""Attribution reports: which pools, sources, campaigns and days made the phone ring.

:meth:`Engine.report <dni_engine.engine.Engine.report>` builds a :class:`Report`
from the call log and the store's pool counters; :func:`build_report` does the
same from records and stats given to it. The terms, precisely:

* **attributed**: the call was tied to a visit (attribution kind ``lease``);
* **pool level**: the call belongs to a pool but to no visit: kind ``pool``
  (a tracking number called while no lease window held it) or ``overflow``
  (the pool's overflow number, shown when the pool was exhausted);
* **late**: kind ``pool``: a tracking number called after every lease window on
  it had ended (or before any began: a number copied or bookmarked), so a
  longer ``match_period`` would have caught it, where a bigger pool would not;
* **unattributed**: not a pool's number (``unknown``) or the store failed
  (``store_unavailable``).

Shares are of all calls in the report. The **confidence mix** counts the
attributed calls by confidence: ``1`` (one candidate lease), ``[0.5, 1)``
(two candidates) and ``< 0.5`` (three or more, or a caveat after lost state).
A **source** is the tracking source that took the lease (its pool, index,
configured referrer and trigger), a **campaign** the landing's
``utm_campaign``; calls tied to no visit have neither and are counted under
``(no visit)``. Days are calendar days of the call's start in ``time_zone``.

The **overflow share** of a pool is ``overflows / (new + recycled +
overflows)``: of the visits that needed a number (a new session, not one
keeping its lease), the share that found the pool exhausted. A pool whose
share is above a few percent is too small for its traffic. Visits turned away
by the per-client cap (``capped``: one client already held its share of the
pool's numbers) are counted apart and are not in the share: the pool had
numbers, the client had had its share of them, so a bigger pool would not
have served them. These counters
are the store's running totals since the pool's state was created, not
limited to ``[since, until)``.

The plot (:func:`plot_report`) needs matplotlib, the ``plot`` extra.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dni_engine.calls import CallRecord
from dni_engine.leases import PoolStats

__all__ = [
    "CONFIDENCE_BUCKETS",
    "CSV_HEADER",
    "NO_CAMPAIGN",
    "NO_POOL",
    "NO_VISIT",
    "Breakdown",
    "PoolOverflow",
    "Report",
    "build_report",
    "plot_report",
]

NO_VISIT: Final = "(no visit)"
"""The source and campaign label of calls tied to no visit."""
NO_CAMPAIGN: Final = "(none)"
"""The campaign label of attributed calls whose landing had no ``utm_campaign``."""
NO_POOL: Final = "(no pool)"
"""The pool label of calls to numbers of no pool."""
CONFIDENCE_BUCKETS: Final = ("1", "[0.5, 1)", "< 0.5")
"""The confidence mix's buckets, of attributed calls."""
CSV_HEADER: Final = (
    "section",
    "key",
    "label",
    "calls",
    "attributed",
    "pool_level",
    "late",
    "unattributed",
    "sessions",
    "overflows",
    "overflow_share",
    "capped",
)
"""The columns of :meth:`Report.csv_rows`."""


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The calls of one pool, source, campaign or day: how many, and how they were attributed."""

    key: str
    label: str
    calls: int = 0
    attributed: int = 0
    pool_level: int = 0
    late: int = 0
    unattributed: int = 0

    @property
    def attributed_share(self) -> float:
        """``attributed / calls`` (0.0 without calls)."""
        return self.attributed / self.calls if self.calls else 0.0

    def to_json(self) -> dict[str, object]:
        """The row as a JSON object."""
        return {
            "key": self.key,
            "label": self.label,
            "calls": self.calls,
            "attributed": self.attributed,
            "pool_level": self.pool_level,
            "late": self.late,
            "unattributed": self.unattributed,
        }


@dataclass(frozen=True, slots=True)
class PoolOverflow:
    """How often one pool was exhausted: ``overflows`` of ``sessions`` (see the module doc)."""

    pool_key: str
    name: str
    size: int
    sessions: int
    overflows: int
    recycled: int
    capped: int = 0

    @property
    def share(self) -> float:
        """``overflows / sessions`` (0.0 without sessions)."""
        return self.overflows / self.sessions if self.sessions else 0.0

    def to_json(self) -> dict[str, object]:
        """The pool's figures as a JSON object."""
        return {
            "pool_key": self.pool_key,
            "name": self.name,
            "size": self.size,
            "sessions": self.sessions,
            "overflows": self.overflows,
            "recycled": self.recycled,
            "overflow_share": self.share,
            "capped": self.capped,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Calls by pool, source, campaign and day, their attribution, and pool overflow.

    ``since``/``until`` bound the calls' start times (``None``: open);
    ``total`` sums every call; ``overflow_calls`` counts the pool-level
    calls to overflow numbers; ``confidence`` maps each of
    :data:`CONFIDENCE_BUCKETS` to its count of attributed calls;
    ``pools`` are the pools' overflow figures (empty when the store could
    not say); ``time_zone`` names the zone of ``by_day``.
    """

    since: float | None
    until: float | None
    total: Breakdown
    overflow_calls: int
    confidence: Mapping[str, int]
    by_pool: tuple[Breakdown, ...]
    by_source: tuple[Breakdown, ...]
    by_campaign: tuple[Breakdown, ...]
    by_day: tuple[Breakdown, ...]
    pools: tuple[PoolOverflow, ...]
    time_zone: str = "UTC"

    @property
    def calls(self) -> int:
        """How many calls the report counts."""
        return self.total.calls

    @property
    def attributed_share(self) -> float:
        """Share of calls tied to a visit."""
        return _share(self.total.attributed, self.total.calls)

    @property
    def pool_level_share(self) -> float:
        """Share of calls tied to a pool only (kinds ``pool`` and ``overflow``)."""
        return _share(self.total.pool_level, self.total.calls)

    @property
    def late_share(self) -> float:
        """Share of calls to a tracking number outside every lease window (kind ``pool``)."""
        return _share(self.total.late, self.total.calls)

    @property
    def unattributed_share(self) -> float:
        """Share of calls to no pool's number, or while the store failed."""
        return _share(self.total.unattributed, self.total.calls)

    @property
    def overflow_share(self) -> float:
        """Overflows over sessions, all pools together (see the module doc)."""
        sessions = sum(p.sessions for p in self.pools)
        return _share(sum(p.overflows for p in self.pools), sessions)

    def to_json(self) -> dict[str, object]:
        """The report as a JSON object (figures, shares and every breakdown)."""
        return {
            "since": self.since,
            "until": self.until,
            "time_zone": self.time_zone,
            "calls": self.total.calls,
            "attributed": self.total.attributed,
            "pool_level": self.total.pool_level,
            "late": self.total.late,
            "overflow_calls": self.overflow_calls,
            "unattributed": self.total.unattributed,
            "shares": {
                "attributed": self.attributed_share,
                "pool_level": self.pool_level_share,
                "late": self.late_share,
                "unattributed": self.unattributed_share,
                "overflow_of_sessions": self.overflow_share,
            },
            "confidence": dict(self.confidence),
            "by_pool": [row.to_json() for row in self.by_pool],
            "by_source": [row.to_json() for row in self.by_source],
            "by_campaign": [row.to_json() for row in self.by_campaign],
            "by_day": [row.to_json() for row in self.by_day],
            "pools": [pool.to_json() for pool in self.pools],
        }

    def to_json_text(self) -> str:
        """:meth:`to_json` as indented JSON text."""
        return json.dumps(self.to_json(), indent=2)

    def csv_rows(self) -> list[list[str]]:
        """The report as CSV rows: :data:`CSV_HEADER`, then one row per figure.

        Sections: ``total``, ``pool`` (with the pool's sessions, overflows,
        overflow share and capped visits), ``source``, ``campaign``, ``day``, ``confidence``
        (the count in ``calls``, of attributed calls).
        """
        rows = [list(CSV_HEADER)]
        overflow = {p.pool_key: p for p in self.pools}
        sessions = sum(p.sessions for p in self.pools)
        overflows = sum(p.overflows for p in self.pools)
        capped = sum(p.capped for p in self.pools)
        rows.append(
            _row(
                "total",
                self.total,
                [str(sessions), str(overflows), _ratio(self.overflow_share), str(capped)],
            )
        )
        for row in self.by_pool:
            pool = overflow.get(row.key)
            extra = (
                [str(pool.sessions), str(pool.overflows), _ratio(pool.share), str(pool.capped)]
                if pool is not None
                else ["", "", "", ""]
            )
            rows.append(_row("pool", row, extra))
        for section, group in (
            ("source", self.by_source),
            ("campaign", self.by_campaign),
            ("day", self.by_day),
        ):
            rows.extend(_row(section, row, ["", "", "", ""]) for row in group)
        for bucket in CONFIDENCE_BUCKETS:
            count = self.confidence.get(bucket, 0)
            rows.append(["confidence", bucket, f"confidence {bucket}", str(count)] + [""] * 8)
        return rows

    def to_csv(self) -> str:
        """:meth:`csv_rows` as CSV text (``\\r\\n`` line ends, as the csv module writes)."""
        out = io.StringIO()
        csv.writer(out).writerows(self.csv_rows())
        return out.getvalue()

    def __str__(self) -> str:
        """The report as plain-text tables, for a terminal."""
        total = self.total
        lines = [
            f"Calls {_span(self.since, self.until)}: {total.calls}",
            f"  attributed to a visit  {total.attributed:>7}  {_pct(self.attributed_share)}",
            f"  pool level             {total.pool_level:>7}  {_pct(self.pool_level_share)}"
            f"  (late {total.late}, {_pct(self.late_share)};"
            f" overflow number {self.overflow_calls})",
            f"  unattributed           {total.unattributed:>7}  {_pct(self.unattributed_share)}",
            "  confidence of attributed calls: "
            + ", ".join(f"{b}: {self.confidence.get(b, 0)}" for b in CONFIDENCE_BUCKETS),
            f"  sessions that found their pool exhausted: {_pct(self.overflow_share)}",
        ]
        capped = sum(p.capped for p in self.pools)
        if capped:
            lines.append(f"  visits over the per-client cap (not in that share): {capped}")
        for title, group in (
            ("pool", self.by_pool),
            ("source", self.by_source),
            ("campaign", self.by_campaign),
            (f"day ({self.time_zone})", self.by_day),
        ):
            lines.append("")
            lines.extend(_table(title, group))
        if self.pools:
            lines.append("")
            lines.append(
                f"{'pool':<28} {'size':>5} {'sessions':>9} {'overflows':>9} {'share':>7}"
                f" {'capped':>7}"
            )
            for pool in self.pools:
                lines.append(
                    f"{pool.name[:28]:<28} {pool.size:>5} {pool.sessions:>9} "
                    f"{pool.overflows:>9} {_pct(pool.share):>7} {pool.capped:>7}"
                )
        return "\n".join(lines)


def build_report(
    records: Iterable[CallRecord],
    stats: Sequence[PoolStats] = (),
    *,
    names: Mapping[str, str] | None = None,
    sources: Mapping[tuple[str, int], str] | None = None,
    since: float | None = None,
    until: float | None = None,
    time_zone: str = "UTC",
) -> Report:
    """The report of ``records`` (calls from the log) and the pools' ``stats``.

    ``names`` maps pool keys to names (the key is shown otherwise);
    ``sources`` maps ``(pool key, source index)`` to a label. ``time_zone`` is
    an IANA zone name for the days (``ValueError`` naming it when unknown).
    """
    zone = _zone(time_zone)
    pool_names = dict(names or {})
    source_names = dict(sources or {})
    totals = _Counts("all", "all calls")
    by_pool: dict[str, _Counts] = {}
    by_source: dict[str, _Counts] = {}
    by_campaign: dict[str, _Counts] = {}
    by_day: dict[str, _Counts] = {}
    confidence = dict.fromkeys(CONFIDENCE_BUCKETS, 0)
    overflow_calls = 0
    for record in records:
        attribution = record.attribution
        kind = attribution.kind
        pool_key = attribution.pool_key
        if pool_key is None:
            pool_row = ("-", NO_POOL)
        else:
            pool_row = (pool_key, pool_names.get(pool_key, pool_key))
        lease = attribution.lease
        if kind == "lease" and lease is not None:
            index = (lease.pool_key, lease.source_index)
            label = source_names.get(index) or _source_label(
                pool_names.get(lease.pool_key, lease.pool_key),
                lease.source_index,
                lease.referrer_domain,
                lease.trigger,
            )
            source_row = (f"{lease.pool_key}/{lease.source_index}", label)
            campaign = lease.facts.utm_value("campaign") if lease.facts is not None else None
            campaign_row = (campaign, campaign) if campaign else (NO_CAMPAIGN, NO_CAMPAIGN)
            confidence[_bucket(attribution.confidence)] += 1
        else:
            source_row = campaign_row = (NO_VISIT, NO_VISIT)
        if kind == "overflow":
            overflow_calls += 1
        day = datetime.fromtimestamp(record.call.started, zone).date().isoformat()
        for table, (key, label) in (
            (by_pool, pool_row),
            (by_source, source_row),
            (by_campaign, campaign_row),
            (by_day, (day, day)),
        ):
            counts = table.get(key)
            if counts is None:
                counts = table[key] = _Counts(key, label)
            counts.add(kind)
        totals.add(kind)
    overflow = tuple(
        PoolOverflow(
            s.pool_key,
            pool_names.get(s.pool_key, s.pool_key),
            s.size,
            s.new + s.recycled + s.overflows,
            s.overflows,
            s.recycled,
            s.capped,
        )
        for s in stats
    )
    return Report(
        since=since,
        until=until,
        total=totals.row(),
        overflow_calls=overflow_calls,
        confidence=confidence,
        by_pool=_rows(by_pool),
        by_source=_rows(by_source),
        by_campaign=_rows(by_campaign),
        by_day=tuple(by_day[key].row() for key in sorted(by_day)),
        pools=overflow,
        time_zone=time_zone,
    )


class _Counts:
    __slots__ = ("attributed", "calls", "key", "label", "late", "pool_level", "unattributed")

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.calls = self.attributed = self.pool_level = self.late = self.unattributed = 0

    def add(self, kind: str) -> None:
        self.calls += 1
        if kind == "lease":
            self.attributed += 1
        elif kind == "pool":
            self.pool_level += 1
            self.late += 1
        elif kind == "overflow":
            self.pool_level += 1
        else:
            self.unattributed += 1

    def row(self) -> Breakdown:
        return Breakdown(
            self.key,
            self.label,
            self.calls,
            self.attributed,
            self.pool_level,
            self.late,
            self.unattributed,
        )


def _rows(table: Mapping[str, _Counts]) -> tuple[Breakdown, ...]:
    """Rows by calls, most first (ties by key)."""
    rows = [counts.row() for counts in table.values()]
    rows.sort(key=lambda row: (-row.calls, row.key))
    return tuple(rows)


def _bucket(confidence: float) -> str:
    if confidence >= 1.0:
        return CONFIDENCE_BUCKETS[0]
    if confidence >= 0.5:
        return CONFIDENCE_BUCKETS[1]
    return CONFIDENCE_BUCKETS[2]


def _source_label(pool: str, index: int, referrer: str, trigger: str | None) -> str:
    label = f"{pool} #{index}: {referrer or 'Any'}"
    return f"{label} [{trigger}]" if trigger else label


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time_zone: {name!r} is not a known IANA time zone") from exc


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ratio(value: float) -> str:
    return f"{value:.4f}"


def _row(section: str, row: Breakdown, extra: list[str]) -> list[str]:
    return [
        section,
        row.key,
        row.label,
        str(row.calls),
        str(row.attributed),
        str(row.pool_level),
        str(row.late),
        str(row.unattributed),
        *extra,
    ]


def _span(since: float | None, until: float | None) -> str:
    def moment(value: float | None, open_end: str) -> str:
        if value is None or not math.isfinite(value):
            return open_end
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return f"from {moment(since, 'the start')} until {moment(until, 'now')}"


def _table(title: str, rows: Sequence[Breakdown]) -> list[str]:
    lines = [
        f"{title:<40} {'calls':>6} {'attrib':>6} {'pool':>6} {'late':>6} {'unattr':>6} {'share':>7}"
    ]
    for row in rows:
        lines.append(
            f"{row.label[:40]:<40} {row.calls:>6} {row.attributed:>6} {row.pool_level:>6} "
            f"{row.late:>6} {row.unattributed:>6} {_pct(row.attributed_share):>7}"
        )
    if not rows:
        lines.append("(no calls)")
    return lines


def plot_report(report: Report, path: str | Path) -> Path:
    """Write a PNG of the report: calls by day and by pool, confidence, and pool overflow.

    Raises :class:`~dni_engine.sizing_report.PlotUnavailable` (a
    :class:`~dni_engine.extras.MissingExtra`) when matplotlib is not installed.
    """
    from dni_engine.sizing_report import PlotUnavailable

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("plotting", "plot", exc.name) from exc
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    days, pools, mix, overflow = axes[0][0], axes[0][1], axes[1][0], axes[1][1]
    labels = [row.key for row in report.by_day]
    _stacked(days, labels, report.by_day)
    days.set_title(f"Calls by day ({report.time_zone})")
    days.tick_params(axis="x", labelrotation=45)
    _stacked(pools, [row.label[:20] for row in report.by_pool], report.by_pool)
    pools.set_title("Calls by pool")
    pools.legend(fontsize="small")
    mix.bar(list(CONFIDENCE_BUCKETS), [report.confidence.get(b, 0) for b in CONFIDENCE_BUCKETS])
    mix.set_title("Confidence of attributed calls")
    mix.set_xlabel("confidence")
    overflow.bar([p.name[:20] for p in report.pools], [p.share * 100 for p in report.pools])
    overflow.set_title("Sessions that found the pool exhausted")
    overflow.set_ylabel("overflow (%)")
    for axis in (days, pools, mix, overflow):
        axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _stacked(axis: object, labels: list[str], rows: Sequence[Breakdown]) -> None:
    from matplotlib.axes import Axes

    assert isinstance(axis, Axes)
    attributed = [row.attributed for row in rows]
    pool_level = [row.pool_level for row in rows]
    unattributed = [row.unattributed for row in rows]
    axis.bar(labels, attributed, label="attributed")
    axis.bar(labels, pool_level, bottom=attributed, label="pool level")
    axis.bar(
        labels,
        unattributed,
        bottom=[a + p for a, p in zip(attributed, pool_level, strict=True)],
        label="unattributed",
    )
    axis.set_ylabel("calls")
