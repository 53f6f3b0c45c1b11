"""A visit as the matcher reads it: once, before any rule is looked at.

A visit's query string is parsed once, keeping only the parameters some rule
can use; its referrer is reduced once to a host, that host's catalogue class
and the *tokens* the host satisfies (``Any``, its catalogue class, itself and
its parent domains); whether it is paid is decided once (:func:`paid_reason`).
A referrer rule is reduced when the rules are compiled to the one token it
needs, when it has one (:func:`_rule_token`), so testing a referrer while
matching is a set lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Mapping, Sequence

from dni_engine.referrers import ReferrerRule, RuleKind, classify_host, referrer_host
from dni_engine.triggers import parse_query, query_of

__all__ = ["CLICK_IDS", "PAID_MEDIA", "paid_reason"]

#: Query parameters that carry an ad network's click id: their presence makes a visit paid.
CLICK_IDS = frozenset(
    {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid", "ttclid", "li_fat_id", "twclid"}
)
#: ``utm_medium`` values (lower-cased) that make a visit paid.
PAID_MEDIA = frozenset(
    {"cpc", "ppc", "paid", "paidsearch", "paid_search", "paid_social", "cpm", "display"}
)


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


_ANY_TOKEN = "*"


def _rule_token(rule: ReferrerRule) -> str | None:
    """The token a visit must hold for ``rule`` to accept it; ``None`` for a host pattern."""
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
        # Built by name, not through ``cls``: compiled, a direct native call.
        return _Visit(parse_query(query_of(url), names), referrer_host(referrer))


@functools.lru_cache(maxsize=4096)
def _host_facts(host: str | None) -> tuple[str | None, frozenset[str]]:
    """A referrer host's catalogue class and token set, cached (bounded)."""
    return classify_host(host), _visit_tokens(host)
