"""A reference interpreter of the matching rules (SPEC sections 2-4): slow and plain.

:func:`match` answers exactly what :meth:`dni_engine.rules.RuleSet.match`
answers, by the most direct reading of the rules: every pool, every source,
every trigger, every time, re-reading the configuration text on each call.
Property tests and benchmarks compare the compiled matcher against it.

It shares no matching code with :mod:`dni_engine.rules`. It reuses only host
normalisation (:func:`~dni_engine.referrers.referrer_host`), the Public Suffix
List (through tldextract), query decoding (:func:`~dni_engine.triggers.query_of`,
:func:`~dni_engine.triggers.parse_query`) and the catalogue's data. Wildcards
are matched by dynamic programming, crawlers by trying every pattern of the
list one by one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import crawleruseragents
import tldextract

from dni_engine.crawler_rules import NARROWINGS, SIGNALS
from dni_engine.referrers import CATALOGUE, CatalogueEntry, referrer_host
from dni_engine.rules import Match
from dni_engine.schema import AnyPool, NumberPool, TrackingSource
from dni_engine.triggers import parse_query, query_of

__all__ = [
    "AD_CLICK_IDS",
    "PAID_UTM_MEDIUMS",
    "SourceOutcome",
    "catalogue_name",
    "condition_holds",
    "is_any",
    "is_crawler",
    "is_paid",
    "match",
    "referrer_matches",
    "source_matches",
    "source_outcome",
    "trigger_conditions",
    "wildcard_match",
]

# SPEC section 4, written out again on purpose.
AD_CLICK_IDS = (
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "msclkid",
    "yclid",
    "ttclid",
    "li_fat_id",
    "twclid",
)
PAID_UTM_MEDIUMS = (
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid_social",
    "cpm",
    "display",
)


def wildcard_match(pattern: str, text: str) -> bool:
    """Does ``text`` match ``pattern``, where ``*`` and ``%`` are any run of characters?

    Case-insensitive. A textbook dynamic programme over (pattern prefix, text
    prefix): quadratic, and obviously right.
    """
    p, t = pattern.lower(), text.lower()
    # row[j]: does the pattern read so far match t[:j]?
    row = [True] + [False] * len(t)
    for ch in p:
        if ch in "*%":
            new = [row[0]]
            for j in range(1, len(t) + 1):
                new.append(row[j] or new[j - 1])
        else:
            new = [False]
            for j in range(1, len(t) + 1):
                new.append(row[j - 1] and t[j - 1] == ch)
        row = new
    return row[len(t)]


@functools.cache
def _psl() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def catalogue_name(host: str | None) -> str | None:
    """The catalogue member whose registrable domain ``host`` is under, or ``None``.

    An app's package name (the host of an ``android-app://`` referrer) is its
    member's; so is a listed host (``search.msn.com``) and its subdomains.
    """
    if not host:
        return None
    for entry in CATALOGUE:
        if host in entry.apps:
            return entry.name
    parts = _psl()(host)
    if not parts.suffix or not parts.domain:
        return None
    registrable = parts.domain + "." + parts.suffix
    for entry in CATALOGUE:
        if registrable in entry.domains:
            return entry.name
    for entry in CATALOGUE:
        if parts.domain in entry.labels:
            return entry.name
    for entry in CATALOGUE:
        if any(host == h or host.endswith("." + h) for h in entry.hosts):
            return entry.name
    return None


def _catalogue_entry(name: str) -> CatalogueEntry | None:
    for entry in CATALOGUE:
        if entry.name.lower() == name:
            return entry
    return None


def is_any(referrer_domain: str) -> bool:
    """True for ``Any`` and ``*``, in any case."""
    return referrer_domain.strip().lower() in ("any", "*")


def referrer_matches(referrer_domain: str, host: str | None) -> bool:
    """Does a ``referrer_domain`` accept a visit from ``host`` (``None``: direct)?"""
    value = referrer_domain.strip().lower()
    if value in ("any", "*"):
        return True
    if host is None:
        return False
    entry = _catalogue_entry(value)
    if entry is not None:
        return catalogue_name(host) == entry.name
    if "*" in value or "%" in value:
        return wildcard_match(value, host)
    domain = referrer_host(value)
    return domain is not None and (host == domain or host.endswith("." + domain))


def _canonical(pattern: str) -> str | None:
    text = pattern.lower().replace("%", "*")
    while "**" in text:
        text = text.replace("**", "*")
    return None if text == "*" else text


def trigger_conditions(trigger: str) -> list[tuple[str, str | None]]:
    """The distinct ``(name, pattern)`` conditions of a url_trigger (pattern ``None``: present).

    ``name=*`` only asks for the parameter to be there, so it is the same
    condition as ``name``; a condition written twice counts once.
    """
    body = trigger.strip()
    if body.startswith("?"):
        body = body[1:]
    conditions: list[tuple[str, str | None]] = []
    for part in body.split("&"):
        name, equals, pattern = part.partition("=")
        condition = (name.lower(), _canonical(pattern) if equals else None)
        if condition not in conditions:
            conditions.append(condition)
    return conditions


def condition_holds(condition: tuple[str, str | None], params: Mapping[str, Sequence[str]]) -> bool:
    """Is the parameter there and, with a pattern, does one of its values match?"""
    name, pattern = condition
    if name not in params:
        return False
    return pattern is None or any(wildcard_match(pattern, v) for v in params[name])


def is_paid(params: Mapping[str, Sequence[str]]) -> bool:
    """Does the decoded query carry an ad click id or a paid ``utm_medium``?"""
    if any(name in params for name in AD_CLICK_IDS):
        return True
    return any(value in PAID_UTM_MEDIUMS for value in params.get("utm_medium", []))


@functools.cache
def _crawler_regexes() -> tuple[re.Pattern[str], ...]:
    # The list's patterns as crawler_rules narrows them (searched as written),
    # then its added signals (in any case): the default policy, without a prefilter.
    narrowed = {n.pattern: n.replacement for n in NARROWINGS}
    listed = [str(item["pattern"]) for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    kept = [narrowed.get(p, p) for p in listed]
    return (
        *(re.compile(p) for p in kept if p is not None),
        *(re.compile(s.pattern, re.IGNORECASE | re.ASCII) for s in SIGNALS),
    )


def is_crawler(user_agent: str | None) -> bool:
    """Missing, blank, over 1 KB, or matched by a crawler pattern (tried one by one).

    The patterns are the crawler list's, narrowed as
    :data:`dni_engine.crawler_rules.NARROWINGS` says, and the added
    :data:`dni_engine.crawler_rules.SIGNALS`.
    """
    if not isinstance(user_agent, str) or not user_agent.strip():
        return True
    if len(user_agent) > 1024:
        return True
    return any(regex.search(user_agent) for regex in _crawler_regexes())


@dataclass(frozen=True)
class SourceOutcome:
    """How a source matched a visit: the trigger text (``None``: none) and its condition count."""

    trigger: str | None
    specificity: int


def source_outcome(
    source: TrackingSource, params: Mapping[str, Sequence[str]], host: str | None
) -> SourceOutcome | None:
    """How ``source`` matches a visit (decoded ``params``, referrer ``host``), or ``None``."""
    if not referrer_matches(source.referrer_domain, host):
        return None
    triggers = source.url_triggers or []
    if not triggers:
        return SourceOutcome(None, 0)
    best: SourceOutcome | None = None
    for trigger in triggers:
        conditions = trigger_conditions(trigger)
        holds = all(condition_holds(c, params) for c in conditions)
        if holds and (best is None or len(conditions) > best.specificity):
            best = SourceOutcome(trigger, len(conditions))
    if best is not None:
        return best
    if source.track_organic and not is_paid(params):
        return SourceOutcome(None, 0)
    return None


def source_matches(source: TrackingSource, url: str, referrer: str | None) -> bool:
    """Does ``source`` match a visit to ``url`` from ``referrer`` (crawlers aside)?"""
    params = parse_query(query_of(url))
    return source_outcome(source, params, referrer_host(referrer)) is not None


def match(
    pools: Sequence[AnyPool],
    url: str,
    referrer: str | None = None,
    user_agent: str | None = None,
    *,
    priorities: Mapping[str, int] | None = None,
    check_bots: bool = True,
) -> Match | None:
    """The winning pool and source for one visit, by direct reading of SPEC sections 2-4."""
    if check_bots and is_crawler(user_agent):
        return None
    params = parse_query(query_of(url))
    host = referrer_host(referrer)
    best: tuple[tuple[int, int, int, int, int], Match] | None = None
    for i, pool in enumerate(pools):
        key = str(pool.id) if isinstance(pool, NumberPool) else pool.name
        priority = (priorities or {}).get(key, 0)
        for j, source in enumerate(pool.replacement_configuration.tracking_sources):
            outcome = source_outcome(source, params, host)
            if outcome is None:
                continue
            specific = 0 if is_any(source.referrer_domain) else 1
            rank = (outcome.specificity, specific, priority, -i, -j)
            if best is None or rank > best[0]:
                found = Match(
                    pool_index=i,
                    pool_key=key,
                    pool_name=pool.name,
                    source_index=j,
                    referrer_domain=source.referrer_domain,
                    referrer_class=catalogue_name(host),
                    trigger=outcome.trigger,
                    specificity=outcome.specificity,
                    paid=is_paid(params),
                )
                best = (rank, found)
    return best[1] if best is not None else None
