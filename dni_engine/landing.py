"""The first-touch rule: which landing context a page view is matched on.

A visitor's first page view lands on the site with a URL (maybe a ``gclid``)
and a referrer (maybe a search engine). The pages they open next carry neither:
their URL is the site's own and their referrer is the site itself. Matched as
they are, an ad visitor who found the ad pool full on the landing page would
take the catch-all pool's number on page 2, and their call would be credited to
"all other visitors". So every page view is matched on its session's
**landing context**: the landing URL and the external referrer of the page
view that started it.

:func:`next_landing` is the rule, in one place for the web integration and the
simulation alike. A page view starts a new context when

* it carries a paid click id (:data:`~dni_engine.rules.visit.CLICK_IDS`) or a query parameter that a
  pool's URL trigger names (``params``), that is a new campaign landing;
* or its referrer is external: a host whose registrable domain is not the
  site's (``www.example.com`` and ``shop.example.com`` are one site; as for
  browsers, the Public Suffix List's private section counts, so
  ``shop.github.io`` and ``blog.github.io`` are two);
* or there is no context yet, or the last one lapsed: more than ``window``
  seconds passed since its last page view (a sliding window, like an
  analytics session).

Otherwise the page view continues the context, which keeps its landing URL and
referrer and moves its ``seen`` time forward.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from dni_engine._frozen import Frozen
from dni_engine.referrers import referrer_host, registrable_domain
from dni_engine.rules.visit import CLICK_IDS
from dni_engine.triggers import parse_query, query_of

__all__ = [
    "DEFAULT_ATTRIBUTION_WINDOW",
    "MAX_LANDING_REFERRER",
    "MAX_LANDING_URL",
    "Landing",
    "cap_url",
    "is_external",
    "landing_page",
    "landing_terms",
    "next_landing",
    "starts_landing",
]

DEFAULT_ATTRIBUTION_WINDOW: Final = 30 * 60.0
"""Seconds a landing context lasts after its last page view (an analytics session)."""

MAX_LANDING_URL: Final = 2048
"""The longest landing URL a context keeps, in characters; longer ones are cut."""
MAX_LANDING_REFERRER: Final = 1024
"""The longest landing referrer a context keeps, in characters; longer ones are cut."""


@dataclass(frozen=True, slots=True)
class Landing(Frozen):
    """One session's landing context.

    ``url`` is the landing page view's URL without its fragment (at most
    :data:`MAX_LANDING_URL` characters; a longer one drops the query
    parameters matching does not read first, so a click id or trigger
    parameter stays), ``referrer`` its HTTP referrer when
    external, else ``None`` (at most :data:`MAX_LANDING_REFERRER`);
    ``started`` and ``seen`` are the times (float seconds) of its first and
    latest page views.
    """

    url: str
    referrer: str | None
    started: float
    seen: float


def is_external(referrer: str | None, site_host: str | None) -> bool:
    """Whether ``referrer`` comes from outside the site whose host is ``site_host``.

    Hosts compare by registrable domain (``www.example.co.uk`` and
    ``shop.example.co.uk`` are one site), the Public Suffix List's private
    section included (``a.github.io`` and ``b.github.io`` are two sites);
    hosts without one (``localhost``, an IP address) compare whole. No
    referrer, or one without a host, is not external; without a
    ``site_host`` every referrer with a host is. Never raises.
    """
    if type(referrer) is str and (site_host is None or type(site_host) is str):
        return _external(referrer, site_host)  # a page view's usual case, cached
    return _is_external(referrer, site_host)


def _is_external(referrer: object, site_host: object) -> bool:
    host = referrer_host(referrer)
    if host is None:
        return False
    if not site_host:
        return True
    site = referrer_host(site_host)
    if site is None:
        return True
    if host == site:
        return False
    mine = _site_of(site)
    return mine is None or _site_of(host) != mine


_external = functools.lru_cache(maxsize=4096)(_is_external)


@functools.lru_cache(maxsize=4096)
def _site_of(host: str) -> str | None:
    # A page view's referrer is looked up on every page: cached, as the
    # Public Suffix List look-up costs microseconds.
    return registrable_domain(host, private=True)


@functools.lru_cache(maxsize=64)
def _landing_names(params: frozenset[str]) -> frozenset[str]:
    return CLICK_IDS | params


def _capped_url(page: str, names: frozenset[str]) -> str:
    return cap_url(page, MAX_LANDING_URL, names)


def cap_url(page: str, limit: int, params: frozenset[str] = frozenset()) -> str:
    """``page`` cut to at most ``limit`` characters, keeping what matching reads.

    Matching reads only the click ids and the parameters in ``params``
    (:attr:`.RuleSet.param_names`), so a long URL keeps those (and the ``?``)
    and loses the rest of its query first, then its end. Never raises for ``str``.
    """
    if len(page) <= limit:
        return page
    head, mark, query = page.partition("?")
    if not mark:
        return page[:limit]
    names = _landing_names(params)
    kept = "&".join(part for part in query.split("&") if part and parse_query(part, names))
    room = max(0, limit - len(kept) - 1)
    return f"{head[:room]}?{kept}"[:limit]


def starts_landing(
    url: str,
    referrer: str | None,
    *,
    site_host: str | None = None,
    params: frozenset[str] = frozenset(),
) -> bool:
    """Whether a page view starts a new landing context whatever came before it.

    True when ``url`` carries a paid click id (:data:`~dni_engine.rules.visit.CLICK_IDS`) or a
    parameter named in ``params`` (lower-case names; the pools' URL triggers
    give them, see :attr:`.RuleSet.param_names`), or when ``referrer`` is
    external to ``site_host`` (:func:`is_external`). Never raises for ``str``.
    """
    if is_external(referrer, site_host):
        return True
    query = query_of(url)
    if not query:
        return False
    return bool(parse_query(query, _landing_names(params)))


def landing_terms(
    url: str,
    referrer: str | None,
    *,
    site_host: str | None = None,
    params: frozenset[str] = frozenset(),
) -> tuple[bool, str, str | None]:
    """What :func:`next_landing` reads of a page view, apart from its time.

    ``(starts, url, referrer)``: whether the page view starts a new context
    whatever came before it (:func:`starts_landing`), and the landing URL and
    referrer of the context it starts when it does (or when there is none, or
    the last one lapsed). A pure function of its arguments, so a caller that
    sees the same page views again may keep the answers. So
    ``next_landing(previous, url, referrer, at, ...)`` is ``previous`` with
    ``seen = max(at, previous.seen)`` when ``previous`` is not ``None``,
    ``starts`` is false and ``at - previous.seen <= window``, and
    ``Landing(url, referrer, at, at)`` of these terms otherwise. Never
    raises for ``str`` inputs.
    """
    starts = starts_landing(url, referrer, site_host=site_host, params=params)
    page, external = landing_page(url, referrer, site_host=site_host, params=params)
    return starts, page, external


def landing_page(
    url: str,
    referrer: str | None,
    *,
    site_host: str | None = None,
    params: frozenset[str] = frozenset(),
) -> tuple[str, str | None]:
    """The landing URL and referrer a context started by this page view keeps.

    The last two terms of :func:`landing_terms`: ``url`` without its fragment,
    cut by :func:`cap_url` to :data:`MAX_LANDING_URL`, and ``referrer`` cut to
    :data:`MAX_LANDING_REFERRER` when it is external to ``site_host``
    (:func:`is_external`), else ``None``. Never raises for ``str`` inputs.
    """
    page = cap_url(url.partition("#")[0], MAX_LANDING_URL, params)
    outside = is_external(referrer, site_host)
    external = referrer[:MAX_LANDING_REFERRER] if outside and referrer is not None else None
    return page, external


def next_landing(
    previous: Landing | None,
    url: str,
    referrer: str | None,
    at: float,
    *,
    site_host: str | None = None,
    window: float = DEFAULT_ATTRIBUTION_WINDOW,
    params: frozenset[str] = frozenset(),
) -> Landing:
    """The landing context a page view at ``at`` is matched on (see the module docstring).

    ``previous`` is the visitor's context so far (``None`` for none); a new one
    starts when :func:`starts_landing` says so, when there is none, or when
    more than ``window`` seconds passed since ``previous.seen``; otherwise
    ``previous`` continues with ``seen = at`` (never earlier than it was).
    Never raises for ``str`` inputs.
    """
    names = _landing_names(params)
    outside = is_external(referrer, site_host)
    if previous is not None and not outside and at - previous.seen <= window:
        # starts_landing, written out: this runs on every page view
        query = url.partition("#")[0].partition("?")[2]
        if not query or not parse_query(query, names):
            seen = previous.seen
            return Landing(previous.url, previous.referrer, previous.started, max(at, seen))
    page = _capped_url(url.partition("#")[0], names)
    external = referrer if outside else None
    if external is not None:
        external = external[:MAX_LANDING_REFERRER]
    return Landing(page, external, at, at)
