"""Which pool, and which of its tracking sources, claims a visit.

:func:`compile_pools` turns every pool of a site into a :class:`RuleSet` once;
:meth:`RuleSet.match` then decides each visit (SPEC sections 2-4):

* a source matches when its referrer matches and it has no ``url_triggers``,
  or one of its triggers matches, or it has ``track_organic`` and the visit is
  organic (carries no ad click id and no paid ``utm_medium``);
* between matching pools the most specific wins: more trigger conditions, then
  a specific referrer over ``Any``, then the embedding application's priority,
  then registration order.

The shape follows a URL router. Every way a source can match is an *entry*
with a precomputed rank (higher wins), so choosing a winner is comparing
integers. Trigger entries are indexed by one of their conditions: literal ones
in a dict keyed by ``(parameter, value)``, wildcard ones by ``(parameter,
literal prefix)``, presence ones by parameter; referrer-only entries are
indexed by what the referrer is (``Any``, a catalogue name, a domain). A visit
parses its URL once, classifies its referrer once, and looks only at entries
reachable from the parameters it carries and the referrer it has; each index
bucket is sorted by rank, so a walk stops at its first match or as soon as
nothing left in it could beat the best match so far. Query parameters that no
rule names are skipped undecoded; answers that depend on the referrer alone,
and the :class:`Match` objects returned, are memoised in bounded tables.

:meth:`RuleSet.explain` says, for one visit, why each pool and source matched
or lost; :func:`lint` finds configurations that cannot work as written.

A pool whose ``status`` is not ``active`` is compiled (so that ``explain`` and
``lint`` can talk about it) but gets no index entry: ``match`` never returns it,
and costs nothing more per visit for it.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from bisect import bisect_left
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote

from dni_engine.bots import is_bot
from dni_engine.errors import ConfigError, Problem, format_path
from dni_engine.phone import e164, letters_to_digits, parse_number, strip_formatting
from dni_engine.referrers import (
    CATALOGUE,
    ReferrerRule,
    RuleKind,
    catalogue_entry,
    classify_host,
    parse_referrer_domain,
    referrer_host,
)
from dni_engine.schema import AnyPool, NumberPool, NumberPoolRequest, status_warning
from dni_engine.triggers import Condition, Glob, Trigger, parse_query, parse_trigger, query_of

__all__ = [
    "CLICK_IDS",
    "PAID_MEDIA",
    "Explanation",
    "LintWarning",
    "Match",
    "PoolVerdict",
    "RuleSet",
    "SourceVerdict",
    "compile_pools",
    "lint",
    "paid_reason",
    "pool_key",
]

logger = logging.getLogger(__name__)

#: Query parameters that carry an ad network's click id: their presence makes a visit paid.
CLICK_IDS = frozenset(
    {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid", "ttclid", "li_fat_id", "twclid"}
)
#: ``utm_medium`` values (lower-cased) that make a visit paid.
PAID_MEDIA = frozenset(
    {"cpc", "ppc", "paid", "paidsearch", "paid_search", "paid_social", "cpm", "display"}
)

#: The precedence steps that decide between pools, by number (see :class:`Precedence`).
STEP_NAMES = {
    1: "trigger conditions",
    2: "specific referrer beats Any",
    3: "priority",
    4: "registration order",
}


class Precedence(NamedTuple):
    """How one way of matching a visit ranks: compared as a tuple, the higher wins.

    The first four fields are the precedence steps between pools, in order
    (:data:`STEP_NAMES`): the trigger's conditions, a specific referrer (1)
    over ``Any`` (0), the pool's priority, then registration order as the
    negated pool index, so that an earlier pool ranks higher. The last two,
    the negated source index and the negated index of the way among the
    source's ways, only order one pool's own ways. Ranks are built when the
    rules are compiled; matching compares the integers they are sorted into.
    """

    conditions: int
    specific_referrer: int
    priority: int
    earlier_pool: int
    earlier_source: int
    earlier_way: int

    @property
    def steps(self) -> tuple[int, int, int, int]:
        """The four fields that decide between pools (steps 1-4), in order."""
        return (self.conditions, self.specific_referrer, self.priority, self.earlier_pool)

    def deciding_step(self, other: Precedence) -> int | None:
        """The first step (1-4) on which ``self`` and ``other`` differ.

        ``None`` when they agree on all four, which only two ways of one pool do.
        """
        for step, (mine, theirs) in enumerate(zip(self.steps, other.steps, strict=True), 1):
            if mine != theirs:
                return step
        return None


def paid_reason(params: Mapping[str, Sequence[str]]) -> str | None:
    """Why a visit with decoded, lower-cased query ``params`` is paid, or ``None`` if organic.

    The first click id present (``'gclid'``), else ``'utm_medium=cpc'``-style text.
    A click id counts whatever its value, even empty.
    """
    if not CLICK_IDS.isdisjoint(params):
        return next(name for name in params if name in CLICK_IDS)
    for medium in params.get("utm_medium", ()):
        if medium in PAID_MEDIA:
            return f"utm_medium={medium}"
    return None


def pool_key(pool: AnyPool) -> str:
    """A pool's key: ``str(id)`` for a :class:`NumberPool`, the name for a request."""
    return str(pool.id) if isinstance(pool, NumberPool) else pool.name


@dataclass(frozen=True, slots=True)
class Match:
    """The pool and tracking source that claim a visit, and why.

    ``pool_index`` indexes the sequence given to :func:`compile_pools`;
    ``referrer`` is the winning source's ``referrer_domain`` as configured;
    ``referrer_class`` is the catalogue name of the visit's referrer host
    (``'Google'``), ``None`` for other hosts and direct visits; ``trigger`` is
    the url_trigger that matched, ``None`` when the source has no triggers or
    matched through ``track_organic``; ``specificity`` is the number of
    conditions of that trigger (0 without one); ``paid`` says whether the visit
    is paid (SPEC section 4).
    """

    pool_index: int
    pool_key: str
    pool_name: str
    source_index: int
    referrer: str
    referrer_class: str | None
    trigger: str | None
    specificity: int
    paid: bool


class Via(enum.Enum):
    """How a tracking source can match a visit."""

    TRIGGER = "trigger"
    NO_TRIGGERS = "no url_triggers"
    ORGANIC = "track_organic"


@dataclass(frozen=True, slots=True)
class CompiledSource:
    """A tracking source, parsed once: its referrer rule, triggers and flags."""

    pool_index: int
    source_index: int
    referrer: str
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


@dataclass(frozen=True, slots=True)
class _Entry:
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


_ANY_TOKEN = "*"
# Distinct Match objects kept for reuse; the cache is simply emptied when full.
_MATCH_CACHE_SIZE = 4096
# Referrer-only answers kept per (host, organic); emptied when full.
_REFERRER_CACHE_SIZE = 4096
# Longer referrers are not remembered as they are sent (a memo key, not a limit on matching).
_MAX_REMEMBERED_REFERRER = 1024


def _rule_token(rule: ReferrerRule) -> str | None:
    if rule.kind is RuleKind.ANY:
        return _ANY_TOKEN
    if rule.kind is RuleKind.CATALOGUE:
        return "c:" + rule.value
    if rule.kind is RuleKind.DOMAIN:
        return "d:" + rule.value
    return None


def _visit_tokens(host: str | None) -> frozenset[str]:
    """What a visit from ``host`` satisfies: Any, its catalogue class, itself and parent domains."""
    if host is None:
        return frozenset((_ANY_TOKEN,))
    tokens = {_ANY_TOKEN}
    referrer_class = classify_host(host)
    if referrer_class is not None:
        tokens.add("c:" + referrer_class)
    labels = host.split(".")
    for i in range(len(labels) - 1):  # a lone TLD is never a configured domain
        tokens.add("d:" + ".".join(labels[i:]))
    return frozenset(tokens)


def _sorted_by_rank(entries: Iterable[_Entry]) -> tuple[_Entry, ...]:
    return tuple(sorted(entries, key=lambda e: e.rank, reverse=True))


def _first_match(
    entries: Sequence[_Entry],
    floor: int,
    params: Mapping[str, Sequence[str]],
    host: str | None,
    tokens: frozenset[str],
) -> _Entry | None:
    """The best entry of a rank-sorted bucket that holds and outranks ``floor``."""
    # The hot loop of matching: the entry's tests are inlined on purpose.
    for entry in entries:
        if entry.rank <= floor:
            return None
        token = entry.ref_token
        if token is not None:
            if token not in tokens:
                continue
        elif host is None or entry.ref_glob is None or not entry.ref_glob.matches(host):
            continue
        for condition in entry.checks:
            if not condition.holds(params):
                break
        else:
            return entry
    return None


class _Visit:
    """A visit as the matcher sees it: parsed once.

    A plain slotted class rather than a frozen dataclass: it is built on every
    page view, and frozen dataclasses pay for their immutability on creation.
    """

    __slots__ = ("host", "paid_reason", "params", "referrer_class", "tokens")

    def __init__(self, params: dict[str, list[str]], host: str | None) -> None:
        self.params = params
        self.host = host
        self.referrer_class, self.tokens = _host_facts(host)
        self.paid_reason = paid_reason(params)

    @classmethod
    def read(cls, url: str, referrer: object, names: Container[str] | None = None) -> _Visit:
        """Parse a visit; with ``names``, only those query parameters are kept."""
        return cls(parse_query(query_of(url), names), referrer_host(referrer))


@functools.lru_cache(maxsize=4096)
def _host_facts(host: str | None) -> tuple[str | None, frozenset[str]]:
    """A referrer host's catalogue class and token set, cached (bounded)."""
    return classify_host(host), _visit_tokens(host)


class RuleSet:
    """Every pool of a site, compiled for matching visits.

    Build it with :func:`compile_pools`. ``pools`` are the original pool
    objects in registration order, ``pool_keys`` their keys (see
    :func:`pool_key`), ``priorities`` the priority of each key (0 unless set),
    ``active`` whether each pool hands out numbers (a request, or a pool
    whose ``status`` is ``active``); inactive pools never match.
    A rule set never changes once compiled and is safe to share between
    threads; its only mutable state is three bounded memo tables (answers
    for visits without a query string, by referrer as sent; answers that
    depend on the referrer host alone; and :class:`Match` objects), whose
    dictionary operations are atomic.
    """

    def __init__(
        self, pools: Sequence[AnyPool], keys: Sequence[str], priorities: Mapping[str, int]
    ) -> None:
        self.pools: tuple[AnyPool, ...] = tuple(pools)
        self.pool_keys: tuple[str, ...] = tuple(keys)
        self.priorities: dict[str, int] = {k: priorities.get(k, 0) for k in keys}
        self.active: tuple[bool, ...] = tuple(pool.is_active for pool in self.pools)
        self.sources: tuple[tuple[CompiledSource, ...], ...] = tuple(
            _compile_sources(index, pool) for index, pool in enumerate(self.pools)
        )
        entries = self._entries()
        self._trigger_static: dict[tuple[str, str], tuple[_Entry, ...]] = {}
        self._trigger_present: dict[str, tuple[_Entry, ...]] = {}
        self._trigger_prefix: dict[tuple[str, str], tuple[_Entry, ...]] = {}
        self._prefix_lengths: dict[str, tuple[int, ...]] = {}
        self._plain_by_token: dict[str, _Entry] = {}
        self._plain_patterns: tuple[_Entry, ...] = ()
        self._organic_by_token: dict[str, _Entry] = {}
        self._organic_patterns: tuple[_Entry, ...] = ()
        self._index(entries)
        self._matches: dict[tuple[int, str | None, bool], Match] = {}
        self._by_referrer: dict[tuple[str | None, bool], _Entry | None] = {}
        self._by_raw_referrer: dict[str | None, Match | None] = {}
        # the only query parameters a visit's match can depend on
        self._names = frozenset(
            {c.name for e in entries if e.trigger is not None for c in e.trigger.conditions}
            | CLICK_IDS
            | {"utm_medium"}
        )

    def __len__(self) -> int:
        return len(self.pools)

    def __repr__(self) -> str:
        return f"<RuleSet of {len(self.pools)} pools>"

    # ---- compiling ------------------------------------------------------------

    def precedence(self, source: CompiledSource, specificity: int, way: int = 0) -> Precedence:
        """The rank of one way ``source`` (one of :attr:`sources`) can match.

        ``specificity`` is the number of conditions of the way's trigger (0
        without one); ``way`` is the way's index in :meth:`CompiledSource.ways`,
        which only orders one source's own ways: the steps between pools
        (:attr:`Precedence.steps`) do not depend on it.
        """
        return Precedence(
            specificity,
            int(source.specific),
            self.priorities[self.pool_keys[source.pool_index]],
            -source.pool_index,
            -source.source_index,
            -way,
        )

    def _entries(self) -> list[_Entry]:
        drafts: list[tuple[Precedence, CompiledSource, Via, Trigger | None]] = []
        for pool_index, sources in enumerate(self.sources):
            if not self.active[pool_index]:
                continue  # decided here, once: an inactive pool is in no index
            for source in sources:
                for via, way, trigger in source.ways():
                    specificity = trigger.specificity if trigger is not None else 0
                    precedence = self.precedence(source, specificity, way)
                    drafts.append((precedence, source, via, trigger))
        drafts.sort(key=lambda d: d[0])
        entries = []
        for rank, (_, source, via, trigger) in enumerate(drafts):
            pool = self.pools[source.pool_index]
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
                    pool_key=self.pool_keys[source.pool_index],
                    pool_name=pool.name,
                )
            )
        return entries

    def _index(self, entries: list[_Entry]) -> None:
        static: dict[tuple[str, str], list[_Entry]] = {}
        present: dict[str, list[_Entry]] = {}
        prefixed: dict[tuple[str, str], list[_Entry]] = {}
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
            by_token = (
                self._plain_by_token if entry.via is Via.NO_TRIGGERS else self._organic_by_token
            )
            patterns = plain_patterns if entry.via is Via.NO_TRIGGERS else organic_patterns
            if entry.ref_token is None:
                patterns.append(entry)
            else:
                # every entry under a token matches alike: only the best one can win
                current = by_token.get(entry.ref_token)
                if current is None or entry.rank > current.rank:
                    by_token[entry.ref_token] = entry
        self._trigger_static = {k: _sorted_by_rank(v) for k, v in static.items()}
        self._trigger_present = {k: _sorted_by_rank(v) for k, v in present.items()}
        self._trigger_prefix = {k: _sorted_by_rank(v) for k, v in prefixed.items()}
        lengths: dict[str, set[int]] = {}
        for name, prefix in prefixed:
            lengths.setdefault(name, set()).add(len(prefix))
        self._prefix_lengths = {k: tuple(sorted(v)) for k, v in lengths.items()}
        self._plain_patterns = _sorted_by_rank(plain_patterns)
        self._organic_patterns = _sorted_by_rank(organic_patterns)

    # ---- matching -------------------------------------------------------------

    def match(
        self,
        url: object,
        referrer: object = None,
        user_agent: object = None,
        *,
        check_bots: bool = True,
    ) -> Match | None:
        """The pool and source that claim a visit, or ``None``.

        ``url`` is the landing URL (only its query string is read; the fragment
        is ignored; anything but a string never matches), ``referrer`` the
        HTTP referrer (a URL or a bare host; empty, ``None`` or unreadable
        for a direct visit). With ``check_bots`` (the default) a crawler user
        agent, or a missing or blank one, never matches: pass the visitor's
        user agent, or ``check_bots=False`` when there is none to check.
        Never raises: malformed input simply does not match.
        """
        try:
            if not isinstance(url, str) or (check_bots and is_bot(user_agent)):
                return None
            # Without a query string the answer depends on the referrer alone,
            # and most page views (every internal page) have none: remember it
            # per referrer as sent.
            by_referrer = self._by_raw_referrer
            memo: str | None = None
            plain = False
            if "?" not in url:
                if type(referrer) is str:
                    memo, plain = referrer, len(referrer) <= _MAX_REMEMBERED_REFERRER
                else:
                    plain = referrer is None
            if plain and memo in by_referrer:
                return by_referrer[memo]
            visit = _Visit.read(url, referrer, self._names)
            entry = self._best(visit)
        except Exception:  # the per-visit path must never break the host application
            logger.debug("match failed on malformed input", exc_info=True)
            return None
        found = None
        if entry is not None:
            # Matches are immutable and a site has few distinct ones: reuse them
            # rather than build a dataclass per page view.
            key = (entry.rank, visit.referrer_class, visit.paid_reason is None)
            found = self._matches.get(key)
            if found is None:
                if len(self._matches) >= _MATCH_CACHE_SIZE:
                    self._matches.clear()
                found = self._matches[key] = _to_match(entry, visit)
        if plain:
            if len(by_referrer) >= _REFERRER_CACHE_SIZE:
                by_referrer.clear()
            by_referrer[memo] = found
        return found

    def _best(self, visit: _Visit) -> _Entry | None:
        params, host, tokens = visit.params, visit.host, visit.tokens
        best: _Entry | None = None
        floor = -1
        if self._trigger_static or self._trigger_present or self._trigger_prefix:
            static, present = self._trigger_static, self._trigger_present
            prefixed, lengths = self._trigger_prefix, self._prefix_lengths
            for name, values in params.items():
                bucket = present.get(name)
                if bucket is not None:
                    found = _first_match(bucket, floor, params, host, tokens)
                    if found is not None:
                        best, floor = found, found.rank
                for value in values:
                    bucket = static.get((name, value))
                    if bucket is not None:
                        found = _first_match(bucket, floor, params, host, tokens)
                        if found is not None:
                            best, floor = found, found.rank
                sizes = lengths.get(name)
                if sizes is None:
                    continue
                for value in values:
                    for size in sizes:
                        if size > len(value):
                            break
                        bucket = prefixed.get((name, value[:size]))
                        if bucket is not None:
                            found = _first_match(bucket, floor, params, host, tokens)
                            if found is not None:
                                best, floor = found, found.rank
            if best is not None:
                return best  # a trigger match (1+ conditions) outranks every referrer-only entry
        # Without a trigger match, the answer depends only on the referrer host
        # and on whether the visit is organic: remember it per (host, organic).
        key = (host, visit.paid_reason is None)
        cache = self._by_referrer
        if key in cache:
            return cache[key]
        if len(cache) >= _REFERRER_CACHE_SIZE:
            cache.clear()
        found = cache[key] = self._best_by_referrer(host, tokens, key[1])
        return found

    def _best_by_referrer(
        self, host: str | None, tokens: frozenset[str], organic: bool
    ) -> _Entry | None:
        """The best entry that matches on the referrer alone (no trigger)."""
        best: _Entry | None = None
        floor = -1
        plain, organic_by_token = self._plain_by_token, self._organic_by_token
        for token in tokens:
            candidate = plain.get(token)
            if candidate is not None and candidate.rank > floor:
                best, floor = candidate, candidate.rank
            if organic:
                candidate = organic_by_token.get(token)
                if candidate is not None and candidate.rank > floor:
                    best, floor = candidate, candidate.rank
        if host is not None:
            found = _first_match(self._plain_patterns, floor, {}, host, tokens)
            if found is not None:
                best, floor = found, found.rank
            if organic:
                found = _first_match(self._organic_patterns, floor, {}, host, tokens)
                if found is not None:
                    best, floor = found, found.rank
        return best

    # ---- explaining -----------------------------------------------------------

    def explain(
        self,
        url: object,
        referrer: object = None,
        user_agent: object = None,
        *,
        check_bots: bool = True,
    ) -> Explanation:
        """Why each pool and source matched, lost or did not match one visit.

        Evaluates every source directly (no index), so it also cross-checks
        :meth:`match`. ``str()`` of the result is a plain-text report. Never
        raises for malformed input.
        """
        url_text = url if isinstance(url, str) else repr(url)
        try:
            visit = _Visit.read(url_text, referrer)
        except Exception:
            logger.debug("explain could not read the visit", exc_info=True)
            visit = _Visit({}, None)
        bot = check_bots and is_bot(user_agent)
        best_per_pool: list[tuple[Precedence, CompiledSource, Via, Trigger | None] | None] = []
        verdicts: list[list[SourceVerdict]] = []
        for sources in self.sources:
            pool_best: tuple[Precedence, CompiledSource, Via, Trigger | None] | None = None
            source_verdicts = []
            for source in sources:
                verdict, way = _judge_source(source, visit)
                source_verdicts.append(verdict)
                if way is not None:
                    via, index, trigger = way
                    spec = trigger.specificity if trigger is not None else 0
                    rank_key = self.precedence(source, spec, index)
                    if pool_best is None or rank_key > pool_best[0]:
                        pool_best = (rank_key, source, via, trigger)
            best_per_pool.append(pool_best)
            verdicts.append(source_verdicts)
        candidates = [b for i, b in enumerate(best_per_pool) if b is not None and self.active[i]]
        winner = max(candidates, key=lambda b: b[0]) if candidates else None
        match = None
        if winner is not None and not bot:
            _, source, via, trigger = winner
            match = Match(
                pool_index=source.pool_index,
                pool_key=self.pool_keys[source.pool_index],
                pool_name=self.pools[source.pool_index].name,
                source_index=source.source_index,
                referrer=source.referrer,
                referrer_class=visit.referrer_class,
                trigger=trigger.text if trigger is not None else None,
                specificity=trigger.specificity if trigger is not None else 0,
                paid=visit.paid_reason is not None,
            )
        pools = []
        for index, (pool, key) in enumerate(zip(self.pools, self.pool_keys, strict=True)):
            best = best_per_pool[index]
            sources_out = tuple(verdicts[index])
            priority = self.priorities[key]
            if not self.active[index]:
                why = status_warning(pool) or "the pool is not active"
                if best is not None:
                    why += f"; source {best[1].source_index} would match this visit"
                pools.append(
                    PoolVerdict(
                        index,
                        key,
                        pool.name,
                        priority,
                        "inactive",
                        why,
                        best[1].source_index if best is not None else None,
                        None,
                        None,
                        sources_out,
                    )
                )
                continue
            if best is None:
                pools.append(
                    PoolVerdict(
                        index,
                        key,
                        pool.name,
                        priority,
                        "no match",
                        "no tracking source matched",
                        None,
                        None,
                        None,
                        sources_out,
                    )
                )
                continue
            source_index = best[1].source_index
            if bot:
                outcome, reason = "bot", "would match, but crawlers never take a number"
                lost_to, step = None, None
            elif winner is not None and winner[1].pool_index == index:
                outcome, reason, lost_to, step = (
                    "won",
                    f"won with source {source_index}",
                    None,
                    None,
                )
            else:
                assert winner is not None
                step = best[0].deciding_step(winner[0])
                assert step is not None  # two pools always differ at step 4
                lost_to = self.pool_keys[winner[1].pool_index]
                reason = self._lost_reason(best, winner, step)
                outcome = "lost"
            pools.append(
                PoolVerdict(
                    index,
                    key,
                    pool.name,
                    priority,
                    outcome,
                    reason,
                    source_index,
                    lost_to,
                    step,
                    sources_out,
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

    def _lost_reason(
        self,
        mine: tuple[Precedence, CompiledSource, Via, Trigger | None],
        theirs: tuple[Precedence, CompiledSource, Via, Trigger | None],
        step: int,
    ) -> str:
        other = self.pools[theirs[1].pool_index]
        other_key = self.pool_keys[theirs[1].pool_index]
        head = f"lost to '{other.name}' (key {other_key}) at step {step}, {STEP_NAMES[step]}"
        if step == 1:
            return f"{head}: {mine[0].conditions} condition(s) against {theirs[0].conditions}"
        if step == 2:
            return f"{head}: this source uses Any, the winner's uses {theirs[1].referrer}"
        if step == 3:
            return f"{head}: priority {mine[0].priority} against {theirs[0].priority}"
        return f"{head}: the winner is listed earlier (pool {theirs[1].pool_index})"


def _to_match(entry: _Entry, visit: _Visit) -> Match:
    source = entry.source
    trigger = entry.trigger
    return Match(
        pool_index=source.pool_index,
        pool_key=entry.pool_key,
        pool_name=entry.pool_name,
        source_index=source.source_index,
        referrer=source.referrer,
        referrer_class=visit.referrer_class,
        trigger=trigger.text if trigger is not None else None,
        specificity=entry.specificity,
        paid=visit.paid_reason is not None,
    )


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
                referrer=source.referrer_domain,
                rule=rule,
                triggers=tuple(triggers),
                track_organic=source.track_organic,
            )
        )
    if problems:
        raise ConfigError(problems)
    return tuple(compiled)


def compile_pools(
    pools: Sequence[NumberPool | NumberPoolRequest],
    priorities: Mapping[str, int] | None = None,
) -> RuleSet:
    """Compile every pool of a site into a :class:`RuleSet`, once.

    ``priorities`` maps a pool key (``str(pool.id)`` for a :class:`NumberPool`,
    the name for a :class:`NumberPoolRequest`) to an integer; higher wins at
    step 3 of precedence, unlisted pools have 0. Raises :class:`ConfigError`
    when two pools share a key, a priority names no pool or is not an integer,
    or a pool object is not a validated pool.
    """
    problems: list[Problem] = []
    keys: list[str] = []
    seen: dict[str, int] = {}
    for index, pool in enumerate(pools):
        if not isinstance(pool, NumberPool | NumberPoolRequest):
            problems.append(
                Problem(
                    format_path((index,)),
                    f"expected a NumberPool or NumberPoolRequest, got {type(pool).__name__}",
                )
            )
            keys.append(f"#{index}")
            continue
        key = pool_key(pool)
        if key in seen:
            what = "id" if isinstance(pool, NumberPool) else "name"
            problems.append(
                Problem(
                    format_path((index, "id" if what == "id" else "name")),
                    f"pool key {key!r} (its {what}) is already used by pool {seen[key]}; "
                    "keys must be unique",
                )
            )
        seen.setdefault(key, index)
        keys.append(key)
    chosen = dict(priorities or {})
    # Read as plain objects so that a wrong-typed entry reaches the check below
    # (compiled, a typed loop variable would reject it with a bare TypeError).
    entries: Iterable[tuple[object, object]] = chosen.items()
    for given, value in entries:
        if given not in seen:
            problems.append(Problem(f"priorities.{given}", f"no pool has the key {given!r}"))
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(
                Problem(f"priorities.{given}", f"priority must be a whole number, got {value!r}")
            )
    if problems:
        raise ConfigError(problems)
    return RuleSet(pools, keys, chosen)


# ---- explanations ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceVerdict:
    """How one tracking source fared on a visit.

    ``via`` says how it matched (``None`` if it did not); ``trigger`` and
    ``specificity`` describe the trigger that matched; ``reason`` is one plain
    sentence.
    """

    source_index: int
    referrer: str
    matched: bool
    via: Via | None
    trigger: str | None
    specificity: int
    reason: str


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
                    f"      source {source.source_index} ({source.referrer}): {source.reason}"
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
            f"({m.referrer}), matched by {how}"
        )


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
    """One source against one visit, by direct evaluation (no index)."""

    def verdict(
        matched: bool, via: Via | None, trigger: Trigger | None, reason: str
    ) -> SourceVerdict:
        return SourceVerdict(
            source.source_index,
            source.referrer,
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


# ---- lint -----------------------------------------------------------------------------

#: Every lint code with what it means.
LINT_CODES = {
    "unreachable-source": "a source that can never win: another pool always beats it",
    "order-tie": "two pools tie on precedence for some visit; only registration order decides",
    "mixed-wildcards": "the same pattern is spelled with '%' in one place and '*' in another",
    "wildcard-referrer": "referrer '%' needs a referrer host, unlike Any",
    "percent-escape": "a trigger value holds a percent-escape, which reads as a wildcard",
    "catalogue-domain": "a referrer written as one domain of a catalogue member",
    "organic-no-effect": "track_organic on a source without url_triggers does nothing",
    "duplicate-number": "the same number is replaced by several pools",
    "inactive-pool": "a pool whose status is not active: it leases no numbers",
}


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One finding of :func:`lint`: where (JSON path into the pool list), what, and why.

    ``severity`` is ``'warning'`` (the configuration probably does not do what
    was meant) or ``'notice'`` (worth a look, often intended). ``code`` is one
    of :data:`LINT_CODES`. ``visit`` is an example ``(url, referrer)`` where
    the finding shows (for ``order-tie``), ``None`` otherwise.
    """

    path: str
    code: str
    message: str
    severity: str = "warning"
    visit: tuple[str, str | None] | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.severity} [{self.code}] {self.message}"


def lint(
    pools: Sequence[NumberPool | NumberPoolRequest],
    priorities: Mapping[str, int] | None = None,
) -> list[LintWarning]:
    """Find pool configurations that cannot work as their author meant.

    Checks: sources that can never win (``unreachable-source``); pools that
    tie on every precedence step for some plausible visit, so only their
    order decides (``order-tie``, with that visit as an example); ``%`` and
    ``*`` spellings of one pattern (``mixed-wildcards``); the referrer ``%``
    (``wildcard-referrer``); percent-escapes in trigger values
    (``percent-escape``); a catalogue member written as one domain, such as
    ``google.com`` for ``Google`` (``catalogue-domain``); ``track_organic``
    without triggers (``organic-no-effect``); a number replaced by several
    pools (``duplicate-number``); a pool whose ``status`` is not ``active``
    (``inactive-pool``, a warning: it never matches, so it is left out of the
    checks between pools, ``unreachable-source``, ``order-tie`` and
    ``duplicate-number``). Raises :class:`ConfigError` as
    :func:`compile_pools` does.
    """
    rules = compile_pools(pools, priorities)
    found: list[LintWarning] = []
    found += _lint_inactive(rules)
    found += _lint_referrers(rules)
    found += _lint_trigger_spelling(rules)
    found += _lint_organic_without_triggers(rules)
    never_win, unreachable = _lint_unreachable(rules)
    found += never_win
    found += _lint_order_ties(rules, unreachable)
    found += _lint_duplicate_numbers(rules)
    return found


def _source_path(source: CompiledSource, *rest: int | str) -> str:
    where = (source.pool_index, "replacement_configuration", "tracking_sources")
    return format_path((*where, source.source_index, *rest))


def _all_sources(rules: RuleSet) -> Iterable[CompiledSource]:
    for sources in rules.sources:
        yield from sources


def _active_sources(rules: RuleSet) -> Iterable[CompiledSource]:
    """The sources of the pools that can match (see :attr:`RuleSet.active`)."""
    for index, sources in enumerate(rules.sources):
        if rules.active[index]:
            yield from sources


def _lint_inactive(rules: RuleSet) -> list[LintWarning]:
    found = []
    for index, pool in enumerate(rules.pools):
        why = status_warning(pool)
        if not rules.active[index] and why is not None:
            found.append(
                LintWarning(
                    format_path((index, "status")),
                    "inactive-pool",
                    f"pool '{pool.name}': {why}, so it never matches a visit; the checks "
                    "between pools leave it out",
                )
            )
    return found


def _lint_referrers(rules: RuleSet) -> list[LintWarning]:
    found = []
    vendor_patterns = {e.vendor_domain: e.name for e in CATALOGUE if e.vendor_domain}
    for source in _all_sources(rules):
        rule = source.rule
        path = _source_path(source, "referrer_domain")
        if rule.kind is RuleKind.DOMAIN:
            entry = catalogue_entry(classify_host(rule.value) or "")
            if entry is not None:
                found.append(
                    LintWarning(
                        path,
                        "catalogue-domain",
                        f"{source.referrer!r} matches only {rule.value} and its subdomains, "
                        f"not the rest of {entry.name} ({entry.description}); "
                        f"write {entry.name!r} to match all of it",
                    )
                )
        elif rule.kind is RuleKind.PATTERN:
            if rule.glob is not None and rule.glob.matches_anything:
                found.append(
                    LintWarning(
                        path,
                        "wildcard-referrer",
                        f"{source.referrer!r} matches any visit that has a referrer host, but not "
                        "direct visits; write 'Any' (or '*') to match every visit",
                    )
                )
            elif rule.value in vendor_patterns:
                name = vendor_patterns[rule.value]
                found.append(
                    LintWarning(
                        path,
                        "catalogue-domain",
                        f"the pattern {source.referrer!r} also matches look-alike hosts "
                        f"(such as evil{rule.value.strip('%*').rstrip('.')}.com); "
                        f"write {name!r} to match {name} by registrable domain",
                    )
                )
    return found


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _lint_trigger_spelling(rules: RuleSet) -> list[LintWarning]:
    found = []
    spellings: dict[object, list[tuple[str, str, str]]] = {}
    for source in _all_sources(rules):
        if source.rule.kind is RuleKind.PATTERN:
            text = source.referrer.strip()
            spellings.setdefault(("referrer", source.rule.value.replace("%", "*")), []).append(
                (_source_path(source, "referrer_domain"), text, _wildcard_style(text))
            )
        for t, trigger in enumerate(source.triggers):
            path = _source_path(source, "url_triggers", t)
            style = _wildcard_style(trigger.text)
            key = ("trigger", frozenset(trigger.conditions))
            spellings.setdefault(key, []).append((path, trigger.text, style))
            for condition in trigger.conditions:
                _, _, value = condition.written.partition("=")
                escape = _PERCENT_ESCAPE.search(value)
                if escape is not None:
                    found.append(
                        LintWarning(
                            path,
                            "percent-escape",
                            f"{escape.group()!r} in {condition.written!r} is read as a wildcard "
                            f"followed by {escape.group()[1:]!r}, not as an encoded character: "
                            "trigger values are compared with the decoded query, so write the "
                            "character itself",
                        )
                    )
    for occurrences in spellings.values():
        for path, text, style in occurrences:
            if style == "both":
                found.append(
                    LintWarning(
                        path,
                        "mixed-wildcards",
                        f"{text!r} uses both '%' and '*'; they mean the same, so pick one",
                    )
                )
        styles = [o for o in occurrences if o[2] in ("%", "*")]
        if len({o[2] for o in styles}) < 2:
            continue
        first = styles[0]
        for path, text, style in styles[1:]:
            if style != first[2]:
                found.append(
                    LintWarning(
                        path,
                        "mixed-wildcards",
                        f"{text!r} is written {first[1]!r} at {first[0]}; '%' and '*' mean the "
                        "same here, so spell it one way",
                    )
                )
    return found


def _wildcard_style(text: str) -> str:
    percent, star = "%" in text, "*" in text
    if percent and star:
        return "both"
    return "%" if percent else "*" if star else ""


def _lint_organic_without_triggers(rules: RuleSet) -> list[LintWarning]:
    return [
        LintWarning(
            _source_path(source, "track_organic"),
            "organic-no-effect",
            "track_organic does nothing here: a source without url_triggers already matches "
            "every visit from its referrer, organic or paid",
            "notice",
        )
        for source in _all_sources(rules)
        if source.track_organic and not source.triggers
    ]


def _implies(given: Condition, wanted: Condition) -> bool:
    """Whenever ``given`` holds, ``wanted`` holds too."""
    if given.name != wanted.name:
        return False
    if wanted.glob is None:
        return True
    if given.glob is None:
        return False
    if given.glob == wanted.glob:
        return True
    return given.glob.is_literal and wanted.glob.matches(given.glob.prefix)


def _trigger_covers(wide: Trigger, narrow: Trigger) -> bool:
    """Every query that matches ``narrow`` matches ``wide``."""
    return all(any(_implies(g, w) for g in narrow.conditions) for w in wide.conditions)


def _referrer_covers(wide: ReferrerRule, narrow: ReferrerRule) -> bool:
    """Every visit ``narrow`` accepts, ``wide`` accepts (a safe under-estimate)."""
    if wide.kind is RuleKind.ANY:
        return True
    if narrow.kind is RuleKind.ANY:
        return False
    if wide.kind is narrow.kind and wide.value == narrow.value:
        return True
    if wide.kind is RuleKind.PATTERN and wide.glob is not None and wide.glob.matches_anything:
        return True  # every non-Any rule needs a host, and '%' accepts every host
    if wide.kind is RuleKind.CATALOGUE and narrow.kind is RuleKind.DOMAIN:
        # a domain's subdomains share its registrable domain, hence its class
        return classify_host(narrow.value) == wide.value
    if wide.kind is RuleKind.DOMAIN and narrow.kind is RuleKind.DOMAIN:
        return narrow.value.endswith("." + wide.value)
    return False


def _referrer_key(rule: ReferrerRule) -> str:
    """The bucket a rule is filed under when looking for rules that cover others."""
    if rule.kind is RuleKind.PATTERN:
        return "%" if rule.glob is not None and rule.glob.matches_anything else "p:" + rule.value
    token = _rule_token(rule)
    assert token is not None
    return token


def _covering_keys(rule: ReferrerRule) -> list[str]:
    """The buckets whose rules may cover ``rule`` (see :func:`_referrer_covers`)."""
    if rule.kind is RuleKind.ANY:
        return [_ANY_TOKEN]
    keys = [_ANY_TOKEN, "%", _referrer_key(rule)]
    if rule.kind is RuleKind.DOMAIN:
        member = classify_host(rule.value)
        if member is not None:
            keys.append("c:" + member)
        labels = rule.value.split(".")
        keys += ["d:" + ".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    return keys


def _cover_key(condition: Condition) -> tuple[str, str, str]:
    """How a trigger that might cover others is filed, by one of its conditions."""
    glob = condition.glob
    if glob is None:
        return ("present", condition.name, "")
    return ("exact" if glob.is_literal else "prefix", condition.name, glob.prefix)


def _implied_keys(trigger: Trigger) -> set[tuple[str, str, str]]:
    """The keys of every condition that one of ``trigger``'s conditions implies.

    A presence test is implied by any condition on its parameter; a literal
    value only by that value; a pattern by the same pattern, or by a literal
    starting with its prefix.
    """
    keys: set[tuple[str, str, str]] = set()
    for condition in trigger.conditions:
        name, glob = condition.name, condition.glob
        keys.add(("present", name, ""))
        if glob is None:
            continue
        if glob.is_literal:
            value = glob.prefix
            keys.add(("exact", name, value))
            keys.update(("prefix", name, value[:end]) for end in range(len(value) + 1))
        else:
            keys.add(("prefix", name, glob.prefix))
    return keys


class _Coverage:
    """Every source way, indexed to find quickly one that beats a given way everywhere.

    A trigger is filed under its most selective condition (as the matcher
    files it); a trigger covering another has that condition implied by one
    of the other's, so only the buckets of :func:`_implied_keys` need a look.
    Ways without triggers are filed by referrer. Buckets are sorted by the
    steps between pools (:attr:`Precedence.steps`), best first.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        Ranked = tuple[Precedence, CompiledSource]
        triggered: dict[tuple[str, str, str], list[tuple[Precedence, CompiledSource, Trigger]]]
        triggered = {}
        plain: dict[str, list[Ranked]] = {}
        organic: dict[str, list[Ranked]] = {}
        for source in _active_sources(rules):
            for via, _, trigger in source.ways():
                if trigger is not None:
                    rank = rules.precedence(source, trigger.specificity)
                    key = _cover_key(_index_condition(trigger))
                    triggered.setdefault(key, []).append((rank, source, trigger))
                else:
                    bucket = plain if via is Via.NO_TRIGGERS else organic
                    rank = rules.precedence(source, 0)
                    bucket.setdefault(_referrer_key(source.rule), []).append((rank, source))
        for entries in triggered.values():
            entries.sort(key=lambda e: e[0].steps, reverse=True)
        for buckets in (plain, organic):
            for ranked in buckets.values():
                ranked.sort(key=lambda e: e[0].steps, reverse=True)
        self.triggered = triggered
        self.plain = plain
        self.organic = organic

    def dominator(
        self, source: CompiledSource, via: Via, trigger: Trigger | None
    ) -> tuple[CompiledSource, Precedence, Precedence] | None:
        """A source of another pool that matches whenever this way does, and always wins.

        Returns that source, this way's rank and the other source's.
        """
        mine = self.rules.precedence(source, trigger.specificity if trigger is not None else 0)
        if trigger is not None:
            for key in _implied_keys(trigger):
                for rank, other, wide in self.triggered.get(key, ()):
                    if rank.steps <= mine.steps:
                        break
                    if (
                        other.pool_index != source.pool_index
                        and _referrer_covers(other.rule, source.rule)
                        and _trigger_covers(wide, trigger)
                    ):
                        return other, mine, rank
            return None
        buckets = [self.plain] if via is Via.NO_TRIGGERS else [self.plain, self.organic]
        for referrer_key in _covering_keys(source.rule):
            for bucket in buckets:
                for rank, other in bucket.get(referrer_key, ()):
                    if rank.steps <= mine.steps:
                        break
                    if other.pool_index != source.pool_index and _referrer_covers(
                        other.rule, source.rule
                    ):
                        return other, mine, rank
        return None


def _lint_unreachable(rules: RuleSet) -> tuple[list[LintWarning], set[tuple[int, int]]]:
    """Sources that can never win, and the ``(pool, source)`` index of each."""
    found = []
    decided: set[tuple[int, int]] = set()
    coverage = _Coverage(rules)
    for pool_index, sources in enumerate(rules.sources):
        if not rules.active[pool_index]:
            continue
        for source in sources:
            beaten = [coverage.dominator(source, via, trig) for via, _, trig in source.ways()]
            if not beaten or any(b is None for b in beaten):
                continue
            other, mine, theirs = next(b for b in beaten if b is not None)
            step = mine.deciding_step(theirs)
            assert step is not None  # the other source is in another pool
            pool = rules.pools[other.pool_index]
            decided.add((source.pool_index, source.source_index))
            found.append(
                LintWarning(
                    _source_path(source),
                    "unreachable-source",
                    f"this source can never win: pool '{pool.name}' (key "
                    f"{rules.pool_keys[other.pool_index]}, {_source_path(other)}) matches every "
                    f"visit it matches and always wins at step {step}, {STEP_NAMES[step]}",
                )
            )
    return found, decided


def _fill(glob: Glob, filler: str) -> str:
    return filler.join(glob.pieces)


def _common_value(globs: Sequence[Glob]) -> str | None:
    """One value every glob accepts, if an obvious one exists."""
    if not globs:
        return "x"
    candidates = [_fill(g, f) for g in globs for f in ("x", "")]
    candidates += [_fill(a, "") + _fill(b, "") for a in globs for b in globs if a is not b]
    for value in candidates:
        if all(g.matches(value) for g in globs):
            return value
    return None


def _host_candidates(rule: ReferrerRule) -> list[str | None]:
    if rule.kind is RuleKind.ANY:
        return [None]
    if rule.kind is RuleKind.CATALOGUE:
        entry = catalogue_entry(rule.value)
        return list(entry.example_hosts) if entry is not None else []
    if rule.kind is RuleKind.DOMAIN:
        return [rule.value, "www." + rule.value]
    assert rule.glob is not None
    fills = [_fill(rule.glob, f) for f in ("x", "www.example", "example.com", "")]
    return [h for h in fills if h and referrer_host(h) == h]


# One way a source can match, with the source: (source, via, trigger or None).
_Way = tuple[CompiledSource, Via, Trigger | None]


def _witness(a: _Way, b: _Way) -> tuple[str, str | None] | None:
    """A plausible visit that both ways match, or ``None``.

    Plausible: one value per parameter and at most one ad click id, because
    real landing URLs look like that; a tie that needs ``?a=1&a=2`` or both
    ``gclid`` and ``msclkid`` is not worth a warning.
    """
    wanted: dict[str, list[Glob]] = {}
    for _, _, trigger in (a, b):
        for condition in trigger.conditions if trigger is not None else ():
            globs = wanted.setdefault(condition.name, [])
            if condition.glob is not None:
                globs.append(condition.glob)
    params: dict[str, str] = {}
    for name, globs in wanted.items():
        value = _common_value(globs)
        if value is None:
            return None
        params[name] = value
    if len(CLICK_IDS.intersection(params)) > 1:
        return None  # one click comes from one ad network: never two click ids
    organic = Via.ORGANIC in (a[1], b[1])
    if organic and paid_reason({k: [v] for k, v in params.items()}) is not None:
        return None
    for host in [*_host_candidates(a[0].rule), *_host_candidates(b[0].rule)]:
        cls = classify_host(host)
        if a[0].rule.matches(host, cls) and b[0].rule.matches(host, cls):
            break
    else:
        return None
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    url = "https://www.example.com/" + (f"?{query}" if query else "")
    return url, (f"https://{host}/" if host is not None else None)


def _lint_order_ties(rules: RuleSet, unreachable: set[tuple[int, int]]) -> list[LintWarning]:
    """Pairs of pools that tie on steps 1-3 for some plausible visit.

    Ways are grouped by (specificity, specific referrer, priority), so only
    ways that could tie are compared. Sources already reported as
    unreachable are left out: their ties add nothing.
    """
    groups: dict[tuple[int, int, int], list[_Way]] = {}
    for source in _active_sources(rules):
        if (source.pool_index, source.source_index) in unreachable:
            continue
        for via, _, trigger in source.ways():
            spec = trigger.specificity if trigger is not None else 0
            groups.setdefault(_before_order(rules.precedence(source, spec)), []).append(
                (source, via, trigger)
            )
    found = []
    reported: set[tuple[int, int]] = set()
    for group in groups.values():
        for first, second in _overlapping_pairs(group):
            pair = (first[0].pool_index, second[0].pool_index)
            if pair[0] == pair[1] or pair in reported:
                continue
            warning = _tie_warning(rules, first, second)
            if warning is not None:
                reported.add(pair)
                found.append(warning)
    return found


def _before_order(rank: Precedence) -> tuple[int, int, int]:
    """Steps 1-3 of ``rank``: what two pools tie on when only registration order decides."""
    return rank.conditions, rank.specific_referrer, rank.priority


def _overlapping_pairs(group: Sequence[_Way]) -> Iterator[tuple[_Way, _Way]]:
    """Pairs of ways whose referrers may accept one host and whose values may agree.

    ``Any`` and host patterns may overlap anything. Otherwise a rule is
    *anchored* at its catalogue name or domain and *reaches* what covers it:
    a domain reaches its parent domains and its catalogue member. Two rules
    overlap only when one is anchored where the other is anchored or reaches,
    so sibling domains (``a.example.com``, ``b.example.com``) are never paired.
    """
    wild: list[_Way] = []
    anchored: dict[str, list[_Way]] = {}
    reaching: dict[str, list[_Way]] = {}
    for way in group:
        rule = way[0].rule
        if rule.kind is RuleKind.ANY or rule.kind is RuleKind.PATTERN:
            wild.append(way)
            continue
        if rule.kind is RuleKind.CATALOGUE:
            anchored.setdefault("c:" + rule.value, []).append(way)
            continue
        anchored.setdefault("d:" + rule.value, []).append(way)
        labels = rule.value.split(".")
        for i in range(1, len(labels) - 1):
            reaching.setdefault("d:" + ".".join(labels[i:]), []).append(way)
        member = classify_host(rule.value)
        if member is not None:
            reaching.setdefault("c:" + member, []).append(way)
    wild_ids = {id(way) for way in wild}
    batches = [(wild, [way for way in group if id(way) not in wild_ids])]
    batches += [(members, reaching.get(anchor, [])) for anchor, members in anchored.items()]
    for members, others in batches:
        together = [*members, *others]
        for i, j in _compatible_pairs(together):
            if i < len(members):  # every pair holds at least one member of the batch
                a, b = together[i], together[j]
                yield (a, b) if _order(a) <= _order(b) else (b, a)


def _order(way: _Way) -> tuple[int, int]:
    return way[0].pool_index, way[0].source_index


def _value_constraints(trigger: Trigger | None) -> list[tuple[str, bool, str]]:
    """What a trigger says about each parameter's value: ``(name, exact, text)``.

    ``exact`` with ``text`` the literal value, or a wildcard pattern whose
    literal prefix is ``text``. Patterns without a literal prefix, and
    presence tests, constrain nothing here.
    """
    if trigger is None:
        return []
    return [
        (c.name, c.glob.is_literal, c.glob.prefix)
        for c in trigger.conditions
        if c.glob is not None and (c.glob.is_literal or c.glob.prefix)
    ]


_HIGHEST = "\U0010ffff"


def _compatible_pairs(group: Sequence[_Way]) -> Iterator[tuple[int, int]]:
    """Index pairs ``i < j`` of ways that one plausible visit could match together.

    A plausible visit carries one value per parameter, so two ways whose
    values for one parameter cannot be the same text never match together:
    two different literals, a literal that does not start with the other's
    prefix, two prefixes neither of which starts the other. On a site with a
    pool per ``utm_campaign`` this keeps the pairs few; each pair left is then
    checked with a concrete visit.
    """
    constraints = [_value_constraints(way[2]) for way in group]
    everyone = set(range(len(group)))
    literal_at: dict[str, dict[str, set[int]]] = {}
    prefix_at: dict[str, dict[str, set[int]]] = {}
    constrained: dict[str, set[int]] = {}
    for index, wanted in enumerate(constraints):
        for name, exact, text in wanted:
            table = literal_at if exact else prefix_at
            table.setdefault(name, {}).setdefault(text, set()).add(index)
            constrained.setdefault(name, set()).add(index)
    literals_sorted = {name: sorted(values) for name, values in literal_at.items()}
    prefixes_sorted = {name: sorted(values) for name, values in prefix_at.items()}
    without = {name: everyone - holders for name, holders in constrained.items()}

    def starting_with(name: str, text: str, table: dict[str, dict[str, set[int]]]) -> set[int]:
        keys = (literals_sorted if table is literal_at else prefixes_sorted).get(name, [])
        found: set[int] = set()
        for key in keys[bisect_left(keys, text) : bisect_left(keys, text + _HIGHEST)]:
            found |= table[name][key]
        return found

    def prefixes_of(name: str, text: str) -> set[int]:
        by_prefix = prefix_at.get(name, {})
        found: set[int] = set()
        for end in range(1, len(text) + 1):
            found |= by_prefix.get(text[:end], set())
        return found

    for i, wanted in enumerate(constraints):
        candidates: set[int] | None = None
        for name, exact, text in wanted:
            agree = without[name] | prefixes_of(name, text)
            if exact:
                agree |= literal_at[name][text]
            else:
                agree |= starting_with(name, text, literal_at)
                agree |= starting_with(name, text, prefix_at)
            candidates = agree if candidates is None else candidates & agree
        for j in sorted(everyone if candidates is None else candidates):
            if j > i:
                yield i, j


def _tie_warning(rules: RuleSet, a: _Way, b: _Way) -> LintWarning | None:
    """A warning when a plausible visit makes ``a`` and ``b`` tie and the earlier one win it."""
    visit_text = _witness(a, b)
    if visit_text is None:
        return None
    url, referrer = visit_text
    visit = _Visit.read(url, referrer)
    ranks = []
    for pool_index in (a[0].pool_index, b[0].pool_index):
        best: Precedence | None = None
        for source in rules.sources[pool_index]:
            _, way = _judge_source(source, visit)
            if way is not None:
                spec = way[2].specificity if way[2] is not None else 0
                rank = rules.precedence(source, spec)
                best = rank if best is None or rank.steps > best.steps else best
        ranks.append(best)
    if ranks[0] is None or ranks[1] is None or _before_order(ranks[0]) != _before_order(ranks[1]):
        return None  # the pools do not really tie on this visit
    first, second = sorted((a, b), key=lambda p: p[0].pool_index)
    found = rules.match(url, referrer, check_bots=False)
    if found is None or found.pool_index != first[0].pool_index:
        return None  # a third pool wins this visit: here the order does not decide
    winner = rules.pools[first[0].pool_index].name
    loser = rules.pools[second[0].pool_index].name
    spec, specific, priority = _before_order(ranks[0])
    came = f"from {referrer}" if referrer else "with no referrer"
    return LintWarning(
        _source_path(second[0]),
        "order-tie",
        f"pools '{winner}' ({format_path((first[0].pool_index,))}) and '{loser}' "
        f"({format_path((second[0].pool_index,))}) tie on a visit "
        f"to {url} {came}: both match with {_conditions(spec)}, "
        f"{'a specific referrer' if specific else 'referrer Any'} and priority {priority}, so "
        f"'{winner}' wins only because it is listed first; add a condition to the one that "
        "should win, or give it a priority",
        visit=(url, referrer),
    )


def _lint_duplicate_numbers(rules: RuleSet) -> list[LintWarning]:
    owners: dict[str, list[tuple[int, str, str]]] = {}
    for index, pool in enumerate(rules.pools):
        if not rules.active[index]:
            continue  # never shown, so never a second number for one page number
        country = pool.country
        for k, text in enumerate(pool.replacement_configuration.numbers_to_replace or ()):
            try:
                normal = e164(parse_number(text, country))
            except ValueError:
                normal = letters_to_digits(strip_formatting(text))
            path = format_path((index, "replacement_configuration", "numbers_to_replace", k))
            owners.setdefault(normal, []).append((index, path, text))
    found = []
    for normal, places in owners.items():
        pools = sorted({index for index, _, _ in places})
        if len(pools) < 2:
            continue
        second = next(p for p in places if p[0] == pools[1])
        listing = ", ".join(f"'{rules.pools[i].name}' ({path})" for i, path, _ in places)
        found.append(
            LintWarning(
                second[1],
                "duplicate-number",
                f"{normal} is replaced by {len(pools)} pools: {listing}; a visitor only ever "
                "sees one pool's number, which is right when the pools are alternatives for "
                "the same page number",
                "notice",
            )
        )
    return found
