"""Compiling pools: each tracking source parsed once, every way it can match ranked and filed.

A tracking source becomes a :class:`CompiledSource` (its referrer rule and
triggers parsed). Every way it can match (one per trigger, one without
triggers, one for ``track_organic``; see :meth:`CompiledSource.ways`) becomes
an *entry* whose ``rank`` is its place in the order of every entry's
:class:`~dni_engine.rules.precedence.Precedence`, so choosing a winner while
matching is comparing integers. Entries are then filed in an :class:`_Index`:
trigger entries by one of their conditions (literal ones in a dict keyed by
``(parameter, value)``, wildcard ones by ``(parameter, literal prefix)``,
presence ones by parameter), referrer-only entries by the referrer token they
need. Each bucket is sorted by rank once, here, so the matcher only walks.

A pool whose ``status`` is not ``active`` is compiled (so that ``explain`` and
``lint`` can talk about it) but gets no entry. :class:`Match`, what a visit
gets from an entry, lives here too, beside the entries it is made from.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from dni_engine._frozen import Frozen
from dni_engine.errors import ConfigError, Problem, format_path
from dni_engine.referrers import ReferrerRule, parse_referrer_domain
from dni_engine.rules.precedence import Precedence
from dni_engine.rules.visit import CLICK_IDS, _rule_token
from dni_engine.schema import AnyPool
from dni_engine.triggers import Condition, Glob, Trigger, parse_trigger

__all__ = ["CompiledSource", "Match", "Via", "pool_key"]

# The stacklevel that blames a deprecated property's caller: a compiled property
# runs in no frame of its own, so there the caller's frame is the first one.
_CALLER: Final = 2 if __file__.endswith(".py") else 1


def pool_key(pool: AnyPool) -> str:
    """A pool's key, its ``key``: ``str(id)`` for a :class:`NumberPool`, the name for a request."""
    return pool.key


@dataclass(frozen=True, slots=True)
class Match(Frozen):
    """The pool and tracking source that claim a visit, and why.

    ``pool_index`` indexes the sequence given to
    :func:`~dni_engine.rules.compile_pools`; ``referrer_domain`` is the
    winning source's ``referrer_domain`` as configured (not the visit's HTTP
    referrer); ``referrer_class`` is the catalogue name of the visit's
    referrer host (``'Google'``), ``None`` for other hosts and direct visits;
    ``trigger`` is the url_trigger that matched, ``None`` when the source has
    no triggers or matched through ``track_organic``; ``specificity`` is the
    number of conditions of that trigger (0 without one); ``paid`` says
    whether the visit is paid (SPEC section 4).
    """

    pool_index: int
    pool_key: str
    pool_name: str
    source_index: int
    referrer_domain: str
    referrer_class: str | None
    trigger: str | None
    specificity: int
    paid: bool

    @property
    def referrer(self) -> str:
        """Deprecated alias of :attr:`referrer_domain`, for one release."""
        warnings.warn(
            "Match.referrer is deprecated; use referrer_domain",
            DeprecationWarning,
            stacklevel=_CALLER,
        )
        return self.referrer_domain


class Via(enum.Enum):
    """How a tracking source can match a visit."""

    TRIGGER = "trigger"
    NO_TRIGGERS = "no url_triggers"
    ORGANIC = "track_organic"


@dataclass(frozen=True, slots=True)
class CompiledSource(Frozen):
    """A tracking source, parsed once: its referrer rule, triggers and flags."""

    pool_index: int
    source_index: int
    referrer_domain: str
    rule: ReferrerRule
    triggers: tuple[Trigger, ...]
    track_organic: bool

    @property
    def specific(self) -> bool:
        """True unless the referrer is ``Any`` (step 2 of precedence)."""
        return not self.rule.is_any

    def ways(self) -> list[tuple[Via, int, Trigger | None]]:
        """Every way this source can match a visit: ``(via, index of the way, trigger)``."""
        if not self.triggers:
            return [(Via.NO_TRIGGERS, 0, None)]
        ways: list[tuple[Via, int, Trigger | None]] = [
            (Via.TRIGGER, t, trigger) for t, trigger in enumerate(self.triggers)
        ]
        if self.track_organic:
            ways.append((Via.ORGANIC, len(self.triggers), None))
        return ways


def _precedence(source: CompiledSource, specificity: int, way: int, priority: int) -> Precedence:
    """The rank of one way ``source`` can match, for a pool of ``priority``."""
    return Precedence(
        specificity,
        int(source.specific),
        priority,
        -source.pool_index,
        -source.source_index,
        -way,
    )


@dataclass(frozen=True, slots=True)
class _Entry(Frozen):
    """One way a source can match, ranked against every other entry of the rule set."""

    rank: int
    source: CompiledSource
    via: Via
    trigger: Trigger | None
    specificity: int
    # Conditions still to check once the index has led to this entry.
    checks: tuple[Condition, ...]
    # The referrer test without re-parsing: a token looked up in the visit's
    # token set (Any, catalogue class, host and parent domains), or a glob.
    ref_token: str | None
    ref_glob: Glob | None
    pool_key: str
    pool_name: str


def _compile_sources(pool_index: int, pool: AnyPool) -> tuple[CompiledSource, ...]:
    compiled = []
    problems = []
    for j, source in enumerate(pool.replacement_configuration.tracking_sources):
        path = (pool_index, "replacement_configuration", "tracking_sources", j)
        try:
            rule = parse_referrer_domain(source.referrer_domain)
        except ValueError as exc:
            problems.append(Problem(format_path((*path, "referrer_domain")), str(exc)))
            continue
        triggers = []
        for t, text in enumerate(source.url_triggers or ()):
            try:
                triggers.append(parse_trigger(text))
            except ValueError as exc:
                problems.append(Problem(format_path((*path, "url_triggers", t)), str(exc)))
        compiled.append(
            CompiledSource(
                pool_index=pool_index,
                source_index=j,
                referrer_domain=source.referrer_domain,
                rule=rule,
                triggers=tuple(triggers),
                track_organic=source.track_organic,
            )
        )
    if problems:
        raise ConfigError(problems)
    return tuple(compiled)


def _ranked_entries(
    pools: Sequence[AnyPool],
    keys: Sequence[str],
    priorities: Mapping[str, int],
    active: Sequence[bool],
    sources: Sequence[Sequence[CompiledSource]],
) -> list[_Entry]:
    """Every way the active pools' sources can match, with ``rank`` 0 for the lowest."""
    drafts: list[tuple[Precedence, CompiledSource, Via, Trigger | None]] = []
    for pool_index, pool_sources in enumerate(sources):
        if not active[pool_index]:
            continue  # decided here, once: an inactive pool is in no index
        priority = priorities[keys[pool_index]]
        for source in pool_sources:
            for via, way, trigger in source.ways():
                specificity = trigger.specificity if trigger is not None else 0
                precedence = _precedence(source, specificity, way, priority)
                drafts.append((precedence, source, via, trigger))
    drafts.sort(key=lambda d: d[0])
    entries = []
    for rank, (_, source, via, trigger) in enumerate(drafts):
        pool = pools[source.pool_index]
        entries.append(
            _Entry(
                rank=rank,
                source=source,
                via=via,
                trigger=trigger,
                specificity=trigger.specificity if trigger is not None else 0,
                checks=trigger.conditions if trigger is not None else (),
                ref_token=_rule_token(source.rule),
                ref_glob=source.rule.glob,
                pool_key=keys[source.pool_index],
                pool_name=pool.name,
            )
        )
    return entries


@dataclass(frozen=True, slots=True)
class _Index(Frozen):
    """The buckets the matcher walks, each sorted by rank, best first.

    A trigger entry is filed under its most selective condition
    (:func:`_index_condition`): a literal value in ``trigger_static`` by
    ``(parameter, value)``, without that condition left to check; a wildcard
    value in ``trigger_prefix`` by ``(parameter, literal prefix)``, with the
    lengths of each parameter's prefixes in ``prefix_lengths``; a presence
    test in ``trigger_present`` by parameter. Entries that match on the
    referrer alone (no url_triggers; track_organic) are kept by the referrer
    token they need, only the best one per token, or in a list for host
    patterns. ``names`` are the only query parameters a match can depend on.
    """

    trigger_static: dict[tuple[str, str], tuple[_Entry, ...]]
    trigger_present: dict[str, tuple[_Entry, ...]]
    trigger_prefix: dict[tuple[str, str], tuple[_Entry, ...]]
    prefix_lengths: dict[str, tuple[int, ...]]
    plain_by_token: dict[str, _Entry]
    plain_patterns: tuple[_Entry, ...]
    organic_by_token: dict[str, _Entry]
    organic_patterns: tuple[_Entry, ...]
    names: frozenset[str]


def _build_index(entries: list[_Entry]) -> _Index:
    """File ``entries`` (see :class:`_Index`)."""
    static: dict[tuple[str, str], list[_Entry]] = {}
    present: dict[str, list[_Entry]] = {}
    prefixed: dict[tuple[str, str], list[_Entry]] = {}
    plain_by_token: dict[str, _Entry] = {}
    organic_by_token: dict[str, _Entry] = {}
    plain_patterns: list[_Entry] = []
    organic_patterns: list[_Entry] = []
    for entry in entries:
        if entry.via is Via.TRIGGER:
            assert entry.trigger is not None
            key = _index_condition(entry.trigger)
            if key.glob is None:
                present.setdefault(key.name, []).append(_without(entry, key))
            elif key.glob.is_literal:
                static.setdefault((key.name, key.glob.prefix), []).append(_without(entry, key))
            else:
                # the prefix only narrows the bucket: the glob is still checked
                prefixed.setdefault((key.name, key.glob.prefix), []).append(entry)
            continue
        by_token = plain_by_token if entry.via is Via.NO_TRIGGERS else organic_by_token
        patterns = plain_patterns if entry.via is Via.NO_TRIGGERS else organic_patterns
        if entry.ref_token is None:
            patterns.append(entry)
        else:
            # every entry under a token matches alike: only the best one can win
            current = by_token.get(entry.ref_token)
            if current is None or entry.rank > current.rank:
                by_token[entry.ref_token] = entry
    lengths: dict[str, set[int]] = {}
    for name, prefix in prefixed:
        lengths.setdefault(name, set()).add(len(prefix))
    return _Index(
        trigger_static={k: _sorted_by_rank(v) for k, v in static.items()},
        trigger_present={k: _sorted_by_rank(v) for k, v in present.items()},
        trigger_prefix={k: _sorted_by_rank(v) for k, v in prefixed.items()},
        prefix_lengths={k: tuple(sorted(v)) for k, v in lengths.items()},
        plain_by_token=plain_by_token,
        plain_patterns=_sorted_by_rank(plain_patterns),
        organic_by_token=organic_by_token,
        organic_patterns=_sorted_by_rank(organic_patterns),
        names=frozenset(
            {c.name for e in entries if e.trigger is not None for c in e.trigger.conditions}
            | CLICK_IDS
            | {"utm_medium"}
        ),
    )


def _sorted_by_rank(entries: Iterable[_Entry]) -> tuple[_Entry, ...]:
    return tuple(sorted(entries, key=lambda e: e.rank, reverse=True))


def _index_condition(trigger: Trigger) -> Condition:
    """The condition a trigger is filed under: the most selective one.

    A literal value beats a wildcard one with a literal prefix (longest
    first), which beats a bare presence test or a pattern starting with a
    wildcard.
    """

    def selectivity(condition: Condition) -> tuple[int, int]:
        glob = condition.glob
        if glob is None:
            return (0, 0)
        if glob.is_literal:
            return (3, len(glob.prefix))
        if glob.prefix:
            return (2, len(glob.prefix))
        return (1, 0)

    return max(trigger.conditions, key=selectivity)


def _without(entry: _Entry, condition: Condition) -> _Entry:
    """``entry`` minus the condition its index key already guarantees."""
    rest = tuple(c for c in entry.checks if c != condition)
    return _Entry(
        rank=entry.rank,
        source=entry.source,
        via=entry.via,
        trigger=entry.trigger,
        specificity=entry.specificity,
        checks=rest,
        ref_token=entry.ref_token,
        ref_glob=entry.ref_glob,
        pool_key=entry.pool_key,
        pool_name=entry.pool_name,
    )
