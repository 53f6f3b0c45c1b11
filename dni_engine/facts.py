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
from dni_engine.leases import Facts
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


def landing_facts(url: str, referrer: str, keep: AbstractSet[str]) -> Facts:
    """The facts of a landing: :func:`dni_engine.calls.facts_of` once its inputs are read.

    ``url`` and ``referrer`` are what it reads of them (``""`` for none);
    ``keep`` as there. A pure function of its arguments.
    """
    base, _, query = url.partition("#")[0].partition("?")
    params = _parse(query) if query else {}
    page = base + _kept_query(query, keep) if query else base
    click_ids: list[tuple[str, str]] = []
    utm: list[tuple[str, str]] = []
    if params:
        for name in CLICK_IDS:
            value = params.get(name)
            if value:
                click_ids.append((name, value[:MAX_FACT_VALUE]))
        for name, value in params.items():
            if name[:4] == "utm_" and len(name) <= MAX_UTM_NAME and len(utm) < MAX_UTM:
                utm.append((name, value[:MAX_FACT_VALUE]))
    if len(page) > MAX_FACTS_URL:
        page = cap_url(page, MAX_FACTS_URL, _KEPT_NAMES | frozenset(n for n, _ in utm))
    medium = params.get("utm_medium")
    paid = not PAID_CLICK_IDS.isdisjoint(params) or (
        medium is not None and medium.lower() in PAID_MEDIA
    )
    host = referrer_host(referrer) or "" if referrer else ""
    referrer_class = (classify_host(host) or "") if host else ""
    return Facts(page, host, referrer_class, paid, tuple(click_ids), tuple(utm))


def _kept_query(query: str, keep: AbstractSet[str]) -> str:
    """``?`` and the parameters of ``query`` attribution needs, as written; ``""`` for none."""
    kept = []
    for part in query.split("&", 256)[:256]:
        raw_name = part.partition("=")[0]
        if "%" in raw_name or "+" in raw_name:
            name = unquote_plus(raw_name, errors="replace").lower()
        else:
            name = raw_name.lower()
        if name in _CLICK_ID_SET or name.startswith("utm_") or name in keep:
            kept.append(part)
    return "?" + "&".join(kept) if kept else ""


def _parse(query: str) -> dict[str, str]:
    """The first value of each query parameter: names lower-cased, values decoded as sent."""
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&", 256)[:256]:
        raw_name, _, raw_value = part.partition("=")
        if "%" in raw_name or "+" in raw_name:
            name = unquote_plus(raw_name, errors="replace").lower()
        else:  # the common case: decoding is the costly part
            name = raw_name.lower()
        if not name or name in params:
            continue
        if not (name in _CLICK_ID_SET or name.startswith("utm_")):
            continue
        value = raw_value[: 4 * MAX_FACT_VALUE]
        if "%" in value or "+" in value:
            value = unquote_plus(value, errors="replace")
        params[name] = value
    return params
