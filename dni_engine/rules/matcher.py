"""Matching visits: :func:`compile_pools` builds a :class:`RuleSet`, :meth:`RuleSet.match` walks it.

A visit is read once (:mod:`dni_engine.rules.visit`) and looks only at the
index entries reachable from the parameters it carries and the referrer it
has (:mod:`dni_engine.rules.compile`). The walk is werkzeug's router walk:
exact buckets (a parameter with a literal value, a parameter's presence) are
tried before prefix buckets (a wildcard value's literal prefix), and every
bucket was sorted by rank when the rules were compiled, so a walk stops at its
first match or as soon as nothing left in the bucket could beat the best match
so far. Query parameters that no rule names are skipped undecoded; answers
that depend on the referrer alone, and the :class:`Match` objects returned,
are memoised in bounded tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from dni_engine.bots import DEFAULT_CRAWLERS, Crawlers
from dni_engine.errors import ConfigError, Problem, format_path
from dni_engine.rules.compile import (
    CompiledSource,
    Match,
    _build_index,
    _compile_sources,
    _Entry,
    _precedence,
    _ranked_entries,
    pool_key,
)
from dni_engine.rules.explain import Explanation
from dni_engine.rules.explain import explain as explain_visit
from dni_engine.rules.precedence import Precedence
from dni_engine.rules.visit import _Visit
from dni_engine.schema import AnyPool, NumberPool, NumberPoolRequest

__all__ = ["RuleSet", "compile_pools"]

logger = logging.getLogger("dni_engine.rules")  # one logger for the whole package

# Distinct Match objects kept for reuse; the cache is simply emptied when full.
_MATCH_CACHE_SIZE = 4096
# Referrer-only answers kept per (host, organic); emptied when full.
_REFERRER_CACHE_SIZE = 4096
# Longer referrers are not remembered as they are sent (a memo key, not a limit on matching).
_MAX_REMEMBERED_REFERRER = 1024


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
        index = _build_index(
            _ranked_entries(self.pools, self.pool_keys, self.priorities, self.active, self.sources)
        )
        # The walk reads the buckets as the rule set's own attributes.
        self._trigger_static = index.trigger_static
        self._trigger_present = index.trigger_present
        self._trigger_prefix = index.trigger_prefix
        self._prefix_lengths = index.prefix_lengths
        self._plain_by_token = index.plain_by_token
        self._plain_patterns = index.plain_patterns
        self._organic_by_token = index.organic_by_token
        self._organic_patterns = index.organic_patterns
        self._names = index.names
        self._matches: dict[tuple[int, str | None, bool], Match] = {}
        self._by_referrer: dict[tuple[str | None, bool], _Entry | None] = {}
        self._by_raw_referrer: dict[str | None, Match | None] = {}

    def __len__(self) -> int:
        return len(self.pools)

    @property
    def param_names(self) -> frozenset[str]:
        """The query parameters (lower-cased) a match can depend on: those the pools'
        URL triggers name, the click ids and ``utm_medium``."""
        return self._names

    def __repr__(self) -> str:
        return f"<RuleSet of {len(self.pools)} pools>"

    def precedence(self, source: CompiledSource, specificity: int, way: int = 0) -> Precedence:
        """The rank of one way ``source`` (one of :attr:`sources`) can match.

        ``specificity`` is the number of conditions of the way's trigger (0
        without one); ``way`` is the way's index in :meth:`CompiledSource.ways`,
        which only orders one source's own ways: the steps between pools
        (:attr:`Precedence.steps`) do not depend on it.
        """
        priority = self.priorities[self.pool_keys[source.pool_index]]
        return _precedence(source, specificity, way, priority)

    def match(
        self,
        url: object,
        referrer: object = None,
        user_agent: object = None,
        *,
        check_bots: bool = True,
        crawlers: Crawlers | None = None,
    ) -> Match | None:
        """The pool and source that claim a visit, or ``None``.

        ``url`` is the landing URL (only its query string is read; the fragment
        is ignored; anything but a string never matches), ``referrer`` the
        HTTP referrer (a URL or a bare host; empty, ``None`` or unreadable
        for a direct visit). With ``check_bots`` (the default) a crawler user
        agent, or a missing or blank one, never matches: pass the visitor's
        user agent, or ``check_bots=False`` when there is none to check.
        ``crawlers`` is who counts as a crawler (the default policy if ``None``).
        Never raises: malformed input simply does not match.
        """
        try:
            if not isinstance(url, str) or (
                check_bots and (crawlers or DEFAULT_CRAWLERS).is_bot(user_agent)
            ):
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

    def explain(
        self,
        url: object,
        referrer: object = None,
        user_agent: object = None,
        *,
        check_bots: bool = True,
        crawlers: Crawlers | None = None,
    ) -> Explanation:
        """Why each pool and source matched, lost or did not match one visit.

        Evaluates every source directly (no index), so it also cross-checks
        :meth:`match`. ``str()`` of the result is a plain-text report. Never
        raises for malformed input. See :func:`dni_engine.rules.explain.explain`.
        """
        return explain_visit(
            self, url, referrer, user_agent, check_bots=check_bots, crawlers=crawlers
        )


def _to_match(entry: _Entry, visit: _Visit) -> Match:
    source = entry.source
    trigger = entry.trigger
    return Match(
        pool_index=source.pool_index,
        pool_key=entry.pool_key,
        pool_name=entry.pool_name,
        source_index=source.source_index,
        referrer_domain=source.referrer_domain,
        referrer_class=visit.referrer_class,
        trigger=trigger.text if trigger is not None else None,
        specificity=entry.specificity,
        paid=visit.paid_reason is not None,
    )


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
