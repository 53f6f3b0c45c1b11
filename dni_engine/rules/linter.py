"""Lint: pool configurations that cannot work as their author meant.

:func:`lint` compiles the pools as :func:`compile_pools` does and reads the
result: per source (referrer and trigger spellings, ``track_organic``
without triggers), per pool (its status) and between pools. The checks
between pools use the precedence rank (:meth:`RuleSet.precedence`): a source
that another pool's source always covers and beats can never win
(``unreachable-source``), and two pools that tie on steps 1-3 for some
plausible visit are decided only by registration order (``order-tie``).
Both are indexed (by condition, by referrer, by literal value and prefix), so
a large site lints without comparing every pair of sources.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from dni_engine.errors import format_path
from dni_engine.phone import e164, letters_to_digits, parse_number, strip_formatting
from dni_engine.referrers import (
    CATALOGUE,
    ReferrerRule,
    RuleKind,
    catalogue_entry,
    classify_host,
    referrer_host,
)
from dni_engine.rules.compile import CompiledSource, Via, _index_condition
from dni_engine.rules.explain import _conditions, _judge_source
from dni_engine.rules.matcher import RuleSet, compile_pools
from dni_engine.rules.precedence import STEP_NAMES, Precedence
from dni_engine.rules.visit import _ANY_TOKEN, CLICK_IDS, _rule_token, _Visit, paid_reason
from dni_engine.schema import NumberPool, NumberPoolRequest, status_warning
from dni_engine.triggers import Condition, Glob, Trigger

__all__ = ["LINT_CODES", "LintWarning", "lint"]

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
                        f"{source.referrer_domain!r} matches only {rule.value} and its subdomains, "
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
                        f"{source.referrer_domain!r} matches any visit that has a referrer host, "
                        "but not direct visits; write 'Any' (or '*') to match every visit",
                    )
                )
            elif rule.value in vendor_patterns:
                name = vendor_patterns[rule.value]
                found.append(
                    LintWarning(
                        path,
                        "catalogue-domain",
                        f"the pattern {source.referrer_domain!r} also matches look-alike hosts "
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
            text = source.referrer_domain.strip()
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
