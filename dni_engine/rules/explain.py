"""Explaining one visit: every pool's and source's verdict, for a support ticket.

:func:`explain` (what :meth:`RuleSet.explain` returns) evaluates every source
of every pool directly, without the matcher's index, so it also cross-checks
:meth:`RuleSet.match`: the winner it finds is what ``match`` returns. For a
pool that lost, it names the precedence step that decided
(:meth:`Precedence.deciding_step`). ``str()`` of an :class:`Explanation` is a
plain-text report.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from dni_engine.bots import DEFAULT_CRAWLERS, Crawlers
from dni_engine.rules.compile import CompiledSource, Match, Via
from dni_engine.rules.precedence import STEP_NAMES, Precedence
from dni_engine.rules.visit import _Visit
from dni_engine.schema import status_warning
from dni_engine.triggers import Trigger

if TYPE_CHECKING:
    from dni_engine.rules.matcher import RuleSet

__all__ = ["Explanation", "PoolVerdict", "SourceVerdict", "explain"]

logger = logging.getLogger("dni_engine.rules")  # one logger for the whole package


@dataclass(frozen=True, slots=True)
class SourceVerdict:
    """How one tracking source fared on a visit.

    ``referrer_domain`` is the source's ``referrer_domain`` as configured;
    ``via`` says how it matched (``None`` if it did not); ``trigger`` and
    ``specificity`` describe the trigger that matched; ``reason`` is one plain
    sentence.
    """

    source_index: int
    referrer_domain: str
    matched: bool
    via: Via | None
    trigger: str | None
    specificity: int
    reason: str

    @property
    def referrer(self) -> str:
        """Deprecated alias of :attr:`referrer_domain`, for one release."""
        warnings.warn(
            "SourceVerdict.referrer is deprecated; use referrer_domain",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.referrer_domain


@dataclass(frozen=True, slots=True)
class PoolVerdict:
    """How one pool fared on a visit.

    ``outcome`` is ``'won'``, ``'lost'``, ``'no match'``, ``'bot'`` (it would
    have matched, but the visitor is a crawler) or ``'inactive'`` (its
    ``status`` is not ``active``: it never matches, and ``reason`` names the
    status and says whether it would have matched). For a lost pool,
    ``lost_to`` is the winner's key and ``step`` the precedence step (1-4)
    that decided. ``source_index`` is the pool's best matching source, if any.
    """

    pool_index: int
    pool_key: str
    pool_name: str
    priority: int
    outcome: str
    reason: str
    source_index: int | None
    lost_to: str | None
    step: int | None
    sources: tuple[SourceVerdict, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every pool's and source's verdict on one visit; ``str()`` is a plain-text report.

    ``match`` is what :meth:`RuleSet.match` returns for the visit. ``host`` and
    ``referrer_class`` are the normalised referrer host and its catalogue name;
    ``paid_reason`` says why the visit is paid (``None``: organic).
    """

    url: str
    referrer: str | None
    user_agent: str | None
    host: str | None
    referrer_class: str | None
    paid_reason: str | None
    bot: bool
    bots_checked: bool
    match: Match | None
    pools: tuple[PoolVerdict, ...] = field(default=())

    def __str__(self) -> str:
        if self.referrer:
            seen = self.host or "no usable host: treated as a direct visit"
            if self.referrer_class:
                seen += f" ({self.referrer_class})"
            referrer_line = f"{_show(self.referrer, 200)} -> {seen}"
        else:
            referrer_line = "none (direct visit)"
        if not self.bots_checked:
            agent_line = "not checked"
        elif self.user_agent is None or not self.user_agent.strip():
            agent_line = "missing (counts as a crawler)"
        else:
            agent_line = _show(self.user_agent, 200) + ("  [crawler]" if self.bot else "")
        paid = f"yes ({self.paid_reason})" if self.paid_reason else "no (organic)"
        lines = [
            "Visit",
            f"  URL:         {_show(self.url, 300)}",
            f"  Referrer:    {referrer_line}",
            f"  User agent:  {agent_line}",
            f"  Paid:        {paid}",
            "",
            f"Result: {self._result()}",
            "",
            f"Pools ({len(self.pools)}, in registration order)",
        ]
        for pool in self.pools:
            label = {
                "won": "WON",
                "lost": "lost",
                "no match": "no match",
                "bot": "crawler",
                "inactive": "not active",
            }[pool.outcome]
            extra = f", priority {pool.priority}" if pool.priority else ""
            lines.append(
                f"  [{pool.pool_index}] '{pool.pool_name}' (key {pool.pool_key}{extra}): {label}"
            )
            if pool.outcome in ("lost", "bot", "inactive"):
                lines.append(f"      {pool.reason}")
            for source in pool.sources:
                lines.append(
                    f"      source {source.source_index} ({source.referrer_domain}): "
                    f"{source.reason}"
                )
        return "\n".join(lines)

    def _result(self) -> str:
        if self.bot:
            would = next((p for p in self.pools if p.outcome == "bot"), None)
            tail = f"; otherwise a pool would match (best: '{would.pool_name}')" if would else ""
            return f"no number: the visitor is a crawler or sent no user agent{tail}"
        m = self.match
        if m is None:
            idle = next(
                (p for p in self.pools if p.outcome == "inactive" and p.source_index is not None),
                None,
            )
            if idle is not None:
                return (
                    f"no active pool matches this visit ('{idle.pool_name}' would, "
                    "but it is not active)"
                )
            return "no pool matches this visit"
        how = (
            f"trigger '{m.trigger}' ({_conditions(m.specificity)})"
            if m.trigger is not None
            else "track_organic (organic visit)"
            if any(
                s.via is Via.ORGANIC
                for p in self.pools
                if p.pool_index == m.pool_index
                for s in p.sources
                if s.source_index == m.source_index
            )
            else "no url_triggers"
        )
        return (
            f"pool '{m.pool_name}' (key {m.pool_key}), source {m.source_index} "
            f"({m.referrer_domain}), matched by {how}"
        )


class _Best(NamedTuple):
    """A pool's best way of matching a visit, with its rank."""

    precedence: Precedence
    source: CompiledSource
    via: Via
    trigger: Trigger | None


def explain(
    rules: RuleSet,
    url: object,
    referrer: object = None,
    user_agent: object = None,
    *,
    check_bots: bool = True,
    crawlers: Crawlers | None = None,
) -> Explanation:
    """Why each pool and source of ``rules`` matched, lost or did not match one visit.

    The arguments are those of :meth:`RuleSet.match`, whose answer the
    result's ``match`` is. Every source is judged directly, without the index;
    inactive pools are judged too but never win. Never raises for malformed
    input: a visit that cannot be read is judged as a direct visit without a
    query. ``crawlers`` is who counts as a crawler (the default policy if ``None``).
    """
    url_text = url if isinstance(url, str) else repr(url)
    try:
        visit = _Visit.read(url_text, referrer)
    except Exception:
        logger.debug("explain could not read the visit", exc_info=True)
        visit = _Visit({}, None)
    bot = check_bots and (crawlers or DEFAULT_CRAWLERS).is_bot(user_agent)
    best_per_pool: list[_Best | None] = []
    verdicts: list[list[SourceVerdict]] = []
    for sources in rules.sources:
        pool_best: _Best | None = None
        source_verdicts = []
        for source in sources:
            verdict, way = _judge_source(source, visit)
            source_verdicts.append(verdict)
            if way is not None:
                via, index, trigger = way
                spec = trigger.specificity if trigger is not None else 0
                rank = rules.precedence(source, spec, index)
                if pool_best is None or rank > pool_best.precedence:
                    pool_best = _Best(rank, source, via, trigger)
        best_per_pool.append(pool_best)
        verdicts.append(source_verdicts)
    candidates = [b for i, b in enumerate(best_per_pool) if b is not None and rules.active[i]]
    winner = max(candidates, key=lambda b: b.precedence) if candidates else None
    match = None
    if winner is not None and not bot:
        source, trigger = winner.source, winner.trigger
        match = Match(
            pool_index=source.pool_index,
            pool_key=rules.pool_keys[source.pool_index],
            pool_name=rules.pools[source.pool_index].name,
            source_index=source.source_index,
            referrer_domain=source.referrer_domain,
            referrer_class=visit.referrer_class,
            trigger=trigger.text if trigger is not None else None,
            specificity=trigger.specificity if trigger is not None else 0,
            paid=visit.paid_reason is not None,
        )
    pools = []
    for index, (pool, key) in enumerate(zip(rules.pools, rules.pool_keys, strict=True)):
        best = best_per_pool[index]
        sources_out = tuple(verdicts[index])
        priority = rules.priorities[key]
        if not rules.active[index]:
            why = status_warning(pool) or "the pool is not active"
            if best is not None:
                why += f"; source {best.source.source_index} would match this visit"
            pools.append(
                PoolVerdict(
                    pool_index=index,
                    pool_key=key,
                    pool_name=pool.name,
                    priority=priority,
                    outcome="inactive",
                    reason=why,
                    source_index=best.source.source_index if best is not None else None,
                    lost_to=None,
                    step=None,
                    sources=sources_out,
                )
            )
            continue
        if best is None:
            pools.append(
                PoolVerdict(
                    pool_index=index,
                    pool_key=key,
                    pool_name=pool.name,
                    priority=priority,
                    outcome="no match",
                    reason="no tracking source matched",
                    source_index=None,
                    lost_to=None,
                    step=None,
                    sources=sources_out,
                )
            )
            continue
        lost_to: str | None = None
        step: int | None = None
        if bot:
            outcome, reason = "bot", "would match, but crawlers never take a number"
        elif winner is not None and winner.source.pool_index == index:
            outcome, reason = "won", f"won with source {best.source.source_index}"
        else:
            assert winner is not None
            step = best.precedence.deciding_step(winner.precedence)
            assert step is not None  # two pools always differ at step 4
            lost_to = rules.pool_keys[winner.source.pool_index]
            reason = _lost_reason(rules, best, winner, step)
            outcome = "lost"
        pools.append(
            PoolVerdict(
                pool_index=index,
                pool_key=key,
                pool_name=pool.name,
                priority=priority,
                outcome=outcome,
                reason=reason,
                source_index=best.source.source_index,
                lost_to=lost_to,
                step=step,
                sources=sources_out,
            )
        )
    return Explanation(
        url=url_text,
        referrer=referrer if isinstance(referrer, str) else None,
        user_agent=user_agent if isinstance(user_agent, str) else None,
        host=visit.host,
        referrer_class=visit.referrer_class,
        paid_reason=visit.paid_reason,
        bot=bot,
        bots_checked=check_bots,
        match=match,
        pools=tuple(pools),
    )


def _lost_reason(rules: RuleSet, mine: _Best, theirs: _Best, step: int) -> str:
    other_index = theirs.source.pool_index
    other, other_key = rules.pools[other_index], rules.pool_keys[other_index]
    head = f"lost to '{other.name}' (key {other_key}) at step {step}, {STEP_NAMES[step]}"
    if step == 1:
        return (
            f"{head}: {mine.precedence.conditions} condition(s) "
            f"against {theirs.precedence.conditions}"
        )
    if step == 2:
        return f"{head}: this source uses Any, the winner's uses {theirs.source.referrer_domain}"
    if step == 3:
        return f"{head}: priority {mine.precedence.priority} against {theirs.precedence.priority}"
    return f"{head}: the winner is listed earlier (pool {other_index})"


def _conditions(count: int) -> str:
    return f"{count} condition" + ("" if count == 1 else "s")


def _show(text: str, limit: int = 40) -> str:
    """``text`` made printable and cut to ``limit`` characters for a report."""
    printable = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text[: limit + 1])
    if len(text) > limit:
        return printable[:limit] + f"... ({len(text)} characters)"
    return printable


def _visit_referrer(visit: _Visit) -> str:
    if visit.host is None:
        return "a direct visit (no referrer host)"
    if visit.referrer_class:
        return f"{visit.host} ({visit.referrer_class})"
    return visit.host


def _why_not(trigger: Trigger, params: Mapping[str, Sequence[str]]) -> str:
    for condition in trigger.conditions:
        if condition.holds(params):
            continue
        values = params.get(condition.name)
        if values is None:
            return f"no '{condition.name}' parameter"
        shown = ", ".join(repr(_show(v)) for v in values[:3])
        more = f" and {len(values) - 3} more" if len(values) > 3 else ""
        return f"'{condition.name}' is {shown}{more}, not {condition.written!r}"
    return "matched"  # unreachable for a trigger that did not match


def _judge_source(
    source: CompiledSource, visit: _Visit
) -> tuple[SourceVerdict, tuple[Via, int, Trigger | None] | None]:
    """One source against one visit, by direct evaluation (no index).

    The verdict, and the way the source matched (as in
    :meth:`CompiledSource.ways`), or ``None`` if it did not.
    """

    def verdict(
        matched: bool, via: Via | None, trigger: Trigger | None, reason: str
    ) -> SourceVerdict:
        return SourceVerdict(
            source.source_index,
            source.referrer_domain,
            matched,
            via,
            trigger.text if trigger is not None else None,
            trigger.specificity if trigger is not None else 0,
            reason,
        )

    if not source.rule.matches(visit.host, visit.referrer_class):
        reason = (
            f"referrer did not match: {_visit_referrer(visit)} is not {source.rule.description}"
        )
        return verdict(False, None, None, reason), None
    if not source.triggers:
        reason = "matched: it has no url_triggers, so every visit from this referrer matches"
        return verdict(True, Via.NO_TRIGGERS, None, reason), (Via.NO_TRIGGERS, 0, None)
    best: tuple[int, Trigger] | None = None
    misses = []
    for t, trigger in enumerate(source.triggers):
        if trigger.matches(visit.params):
            if best is None or trigger.specificity > best[1].specificity:
                best = (t, trigger)
        else:
            misses.append(f"'{trigger.text}': {_why_not(trigger, visit.params)}")
    if best is not None:
        t, trigger = best
        reason = f"matched: trigger '{trigger.text}' ({_conditions(trigger.specificity)})"
        return verdict(True, Via.TRIGGER, trigger, reason), (Via.TRIGGER, t, trigger)
    if source.track_organic and visit.paid_reason is None:
        reason = "matched: no trigger matched, but track_organic is on and the visit is organic"
        return verdict(True, Via.ORGANIC, None, reason), (Via.ORGANIC, len(source.triggers), None)
    reason = "no trigger matched (" + "; ".join(misses) + ")"
    if source.track_organic:
        reason += f"; track_organic does not apply: the visit is paid ({visit.paid_reason})"
    return verdict(False, None, None, reason), None
