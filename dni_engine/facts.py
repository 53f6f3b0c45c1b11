"""A landing's attribution facts: the part of :func:`dni_engine.calls.facts_of` on every new lease.

Compiled with the per-visit path (a new lease's landing is read here), apart
from :mod:`dni_engine.calls`, whose call records stay plain Python. The
rules are :mod:`dni_engine.calls`'s (see its module notes); so are the limits,
defined here and exported from there.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Final
from urllib.parse import unquote_plus

from dni_engine.landing import MAX_LANDING_URL, cap_url
from dni_engine.leases import Facts, _new_facts
from dni_engine.referrers import classify_host, referrer_host
from dni_engine.rules.visit import CLICK_IDS as PAID_CLICK_IDS
from dni_engine.rules.visit import PAID_MEDIA

__all__ = [
    "CLICK_IDS",
    "MAX_FACTS_URL",
    "MAX_FACT_VALUE",
    "MAX_UTM",
    "MAX_UTM_NAME",
    "landing_facts",
]

CLICK_IDS: Final[tuple[str, ...]] = (
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "msclkid",
    "fbclid",
    "ttclid",
    "li_fat_id",
    "twclid",
    "yclid",
)
"""The click ids a lease's facts keep, in this order."""

MAX_FACTS_URL: Final = MAX_LANDING_URL
"""The longest landing URL the facts keep, in characters."""
MAX_FACT_VALUE: Final = 256
"""The longest click id or ``utm_*`` value the facts keep, in characters (longer ones are cut)."""
MAX_UTM: Final = 10
"""How many ``utm_*`` parameters the facts keep (the first ones of the landing URL)."""
MAX_UTM_NAME: Final = 64
"""The longest ``utm_*`` parameter name the facts keep; longer names are dropped."""
_KEPT_NAMES: Final = frozenset(CLICK_IDS)
_CLICK_ID_SET: Final = frozenset(CLICK_IDS)
_CLICK_ID_RANK: Final = {name: rank for rank, name in enumerate(CLICK_IDS)}


def landing_facts(url: str, referrer: str, keep: AbstractSet[str]) -> Facts:
    """The facts of a landing: :func:`dni_engine.calls.facts_of` once its inputs are read.

    ``url`` and ``referrer`` are what it reads of them (``""`` for none);
    ``keep`` as there. A pure function of its arguments.
    """
    base, _, query = url.partition("#")[0].partition("?")
    page = base
    params: dict[str, str] = {}
    ids: list[str] = []
    click_ids: list[tuple[str, str]] = []
    utm: list[tuple[str, str]] = []
    if query:
        kept, ids = _read_query(query, keep, params, utm)
        if kept:
            page = base + "?" + "&".join(kept)
        if ids:
            if len(ids) > 1:  # in CLICK_IDS' order, as the landing's order may differ
                ids.sort(key=_click_id_rank)
            for name in ids:
                value = params[name]
                if value:
                    click_ids.append((name, value[:MAX_FACT_VALUE]))
    if len(page) > MAX_FACTS_URL:
        page = cap_url(page, MAX_FACTS_URL, _KEPT_NAMES | frozenset(n for n, _ in utm))
    medium = params.get("utm_medium")
    # A paid click id among the landing's: the names in params other than its
    # click ids start with utm_, so none of them is one.
    paid = any(name in PAID_CLICK_IDS for name in ids) or (
        medium is not None and medium.lower() in PAID_MEDIA
    )
    host = referrer_host(referrer) or "" if referrer else ""
    referrer_class = (classify_host(host) or "") if host else ""
    return _new_facts(page, host, referrer_class, paid, tuple(click_ids), tuple(utm))


def _click_id_rank(name: str) -> int:
    return _CLICK_ID_RANK[name]


def _read_query(
    query: str, keep: AbstractSet[str], params: dict[str, str], utm: list[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """Read a landing's query in one pass over its first 256 parameters.

    Fills ``params`` with the first value of each click id and ``utm_*``
    parameter (names lower-cased, values decoded as sent) and ``utm`` with the
    first :data:`MAX_UTM` ``utm_*`` pairs among them whose names are at most
    :data:`MAX_UTM_NAME` long (values cut to :data:`MAX_FACT_VALUE`), in the
    query's order. Returns the parameters attribution needs, as written (click
    ids, ``utm_*`` and the names in ``keep``: the kept URL's query), and the
    click id names found, in the query's order.
    """
    kept: list[str] = []
    ids: list[str] = []
    # Most queries have nothing to decode: then no part is looked at for it.
    coded = "%" in query or "+" in query
    for part in query.split("&", 256)[:256]:
        raw_name, _, raw_value = part.partition("=")
        if coded and ("%" in raw_name or "+" in raw_name):
            name = unquote_plus(raw_name, errors="replace").lower()
        else:  # the common case: decoding is the costly part
            name = raw_name.lower()
        if name in _CLICK_ID_SET:
            kept.append(part)
            if name in params:
                continue
            ids.append(name)
        elif name.startswith("utm_"):
            kept.append(part)
            if name in params:
                continue
        else:
            if name in keep:
                kept.append(part)
            continue
        value = raw_value[: 4 * MAX_FACT_VALUE]
        if coded and ("%" in value or "+" in value):
            value = unquote_plus(value, errors="replace")
        params[name] = value
        if len(name) <= MAX_UTM_NAME and len(utm) < MAX_UTM and name[:4] == "utm_":
            utm.append((name, value[:MAX_FACT_VALUE]))
    return kept, ids
