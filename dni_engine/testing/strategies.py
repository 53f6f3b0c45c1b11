"""Hypothesis strategies: tracking sources, pools, landing URLs, referrers and visits.

Small functions, each building one thing, composed into bigger ones:

* configuration: :func:`referrer_domains`, :func:`url_triggers`,
  :func:`tracking_sources`, :func:`replacement_configurations`,
  :func:`number_pools` (valid :class:`NumberPool` objects, GB and US),
  :func:`pool_lists`, :func:`number_pool_requests`;
* traffic: :func:`referrers`, :func:`query_pairs`, :func:`landing_urls`,
  :func:`user_agents`, :func:`visits`;
* targeted traffic: :func:`visits_matching` (a visit built to match a given
  source) and :func:`visits_missing` (one built to *just* miss it: only its
  referrer, or only its triggers, or only its user agent is wrong).

The vocabularies are deliberately small (a few parameter names, a short
alphabet with characters that need percent-encoding) so that generated
visits and generated triggers collide often.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from dni_engine.extras import MissingExtra

try:
    from hypothesis import strategies as st
except ImportError as exc:
    raise MissingExtra("dni_engine.testing.strategies", "testing", exc.name) from exc

from dni_engine.bots import crawler_examples
from dni_engine.referrers import CATALOGUE, catalogue_entry, referrer_host
from dni_engine.schema import NumberPool, NumberPoolRequest, TrackingSource
from dni_engine.testing.oracle import AD_CLICK_IDS, PAID_UTM_MEDIUMS, is_any, referrer_matches
from dni_engine.testing.pools import pool_document

__all__ = [
    "BROWSER_USER_AGENTS",
    "PARAMETER_NAMES",
    "Visit",
    "browser_user_agents",
    "cased",
    "crawler_user_agents",
    "landing_urls",
    "mixed_case",
    "number_pool_requests",
    "number_pools",
    "pool_lists",
    "query_pairs",
    "referrer_domains",
    "referrer_for_host",
    "referrers",
    "referrers_for_hosts",
    "replacement_configurations",
    "tracking_sources",
    "trigger_conditions",
    "url_triggers",
    "user_agents",
    "value_patterns",
    "visits",
    "visits_matching",
    "visits_missing",
]


@dataclass(frozen=True)
class Visit:
    """One page view as the matcher sees it."""

    url: str
    referrer: str | None
    user_agent: str | None


# ---- vocabularies ---------------------------------------------------------------

#: Parameter names used by generated triggers and queries (two are ad click ids).
PARAMETER_NAMES = ("gclid", "msclkid", "utm_campaign", "utm_source", "utm_medium", "promo")
_NOISE_NAMES = ("page", "lang", "q")
# Literal characters of values: some need percent-encoding, '+' is a trap
# (a literal plus in a trigger, a space in a query), 'é' is not ASCII.
_LITERAL_ALPHABET = "abxAB01-_.+/ =é"
_DOMAINS = ("example.org", "shop.example.co.uk", "news.example.com", "bücher.de")
_HOST_PATTERNS = ("%google.%", "*.example.*", "%bing%", "%example%", "*example.org", "%")
_CATALOGUE_HOSTS = (
    "www.google.com",
    "www.google.co.uk",
    "google.com.br",
    "news.google.de",
    "www.bing.com",
    "search.yahoo.co.jp",
    "uk.search.yahoo.com",
    "l.facebook.com",
    "m.facebook.com",
    "fb.me",
    "t.co",
    "x.com",
    "mobile.twitter.com",
    "www.linkedin.com",
    "lnkd.in",
    "duckduckgo.com",
    "www.baidu.com",
    "yandex.ru",
    "l.instagram.com",
    "m.youtube.com",
    "youtu.be",
    "old.reddit.com",
    "www.tiktok.com",
    "pin.it",
)
_LOOK_ALIKE_HOSTS = (
    "evilgoogle.com",
    "google.evil.com",
    "google.com.evil.net",
    "notbing.com",
    "facebook.com.example.org",
    "badexample.org",
    "example.org.evil.net",
    "shop.example.org",
    "www.example.com",
)
_JUNK_REFERRERS = ("", "about:blank", "not a url", "\x00\xff binary", "http://[::1]/", "https://")

#: A few real browser user agents (not crawlers).
BROWSER_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
)

_NUMBERS = {
    "GB": tuple(f"+44117496{n:04d}" for n in range(40)),
    "US": tuple(f"+1202555{n:04d}" for n in range(100, 140)),
}
_TERMINATION = {"GB": "+441174960999", "US": "+12125550142"}
_TO_REPLACE = {
    "GB": ("01174960500", "0117 496 0501", "+44 117 496 0502", "4402078395555"),
    "US": ("8004442277", "1-800-444-CARS", "(202) 555-0150", "+1 202 555 0151"),
}


# ---- small building blocks --------------------------------------------------------


def _apply_case(text: str, bits: int) -> str:
    return "".join(c.upper() if bits >> (i % 16) & 1 else c.lower() for i, c in enumerate(text))


_CASE_BITS = st.integers(0, 0xFFFF)  # shrinks to 0: all lower case


def cased(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Texts from ``texts`` with each letter's case chosen at random (``gclid`` -> ``gClID``)."""
    return st.tuples(texts, _CASE_BITS).map(lambda t: _apply_case(*t))


@functools.cache
def mixed_case(text: str) -> st.SearchStrategy[str]:
    """``text`` with each letter's case chosen at random."""
    return cased(st.just(text))


@functools.cache
def literal_texts(min_size: int = 0, max_size: int = 5) -> st.SearchStrategy[str]:
    """Short texts over a small alphabet, some of whose characters need encoding."""
    return st.text(alphabet=_LITERAL_ALPHABET, min_size=min_size, max_size=max_size)


@functools.cache
def value_patterns() -> st.SearchStrategy[str]:
    """Trigger value patterns: literal pieces and ``*``/``%`` wildcards, possibly empty."""
    piece = st.one_of(literal_texts(1, 3), st.sampled_from(["*", "%"]))
    return st.lists(piece, max_size=4).map("".join)


@functools.cache
def parameter_names() -> st.SearchStrategy[str]:
    """A parameter name of the shared vocabulary, in random case."""
    return cased(st.sampled_from(PARAMETER_NAMES))


@functools.cache
def trigger_conditions() -> st.SearchStrategy[str]:
    """One condition: ``name`` or ``name=pattern``."""
    return st.one_of(
        parameter_names(),
        st.tuples(parameter_names(), value_patterns()).map(lambda t: f"{t[0]}={t[1]}"),
    )


@functools.cache
def url_triggers() -> st.SearchStrategy[str]:
    """A url_trigger of one to three conditions joined by ``&``."""
    return st.lists(trigger_conditions(), min_size=1, max_size=3).map("&".join)


@functools.cache
def referrer_domains() -> st.SearchStrategy[str]:
    """``referrer_domain`` values of every kind: Any, catalogue names, domains, patterns."""
    any_names = st.sampled_from(["Any", "any", "ANY", "*"])
    names = cased(st.sampled_from([e.name for e in CATALOGUE]))
    return st.one_of(
        any_names,
        names,
        st.sampled_from(_DOMAINS),
        st.sampled_from(_HOST_PATTERNS),
    )


@functools.cache
def tracking_sources() -> st.SearchStrategy[TrackingSource]:
    """Valid tracking sources; ``url_triggers`` may be missing, empty or up to two."""
    triggers = st.one_of(st.none(), st.lists(url_triggers(), max_size=2))
    return st.builds(
        lambda r, t, o: TrackingSource.model_validate(
            {"referrer_domain": r, "url_triggers": t, "track_organic": o}
        ),
        referrer_domains(),
        triggers,
        st.booleans(),
    )


@functools.cache
def replacement_configurations(country: str = "GB") -> st.SearchStrategy[dict[str, object]]:
    """A ``replacement_configuration`` document for a pool of ``country`` (GB or US)."""
    numbers = st.lists(st.sampled_from(_TO_REPLACE[country]), min_size=1, max_size=2, unique=True)
    sources = st.lists(tracking_sources(), min_size=1, max_size=2)
    return st.builds(
        lambda replace, srcs: {
            **({"numbers_to_replace": replace} if replace else {"replace_all_numbers": True}),
            "tracking_sources": [s.model_dump(mode="json", exclude_none=True) for s in srcs],
        },
        st.one_of(numbers, st.none()),
        sources,
    )


@functools.cache
def number_pools(
    countries: Sequence[str] = ("GB", "US"), ids: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[NumberPool]:
    """Valid :class:`NumberPool` responses (validated through the schema).

    Each is a :func:`~dni_engine.testing.pools.pool_document` with drawn
    ``id``, ``match_period``, numbers and ``replacement_configuration``.
    """

    @st.composite
    def build(draw: st.DrawFn) -> NumberPool:
        country = draw(st.sampled_from(list(countries)))
        pool_id = draw(ids if ids is not None else st.integers(1, 999_999))
        numbers = draw(
            st.lists(st.sampled_from(_NUMBERS[country]), min_size=1, max_size=3, unique=True)
        )
        document = pool_document(
            id=pool_id,
            group_id=12462615,
            match_period=draw(st.integers(1, 120)),
            numbers=numbers,
            first_number_id=9_000_000,
            termination_number=_TERMINATION[country],
        )
        document["replacement_configuration"] = draw(replacement_configurations(country))
        return NumberPool.model_validate(document)

    return build()


@functools.cache
def pool_lists(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[list[NumberPool]]:
    """Lists of pools with distinct ids (hence distinct keys and names)."""
    return st.lists(number_pools(), min_size=min_size, max_size=max_size, unique_by=lambda p: p.id)


@functools.cache
def number_pool_requests(
    countries: Sequence[str] = ("GB", "US"),
) -> st.SearchStrategy[NumberPoolRequest]:
    """Valid :class:`NumberPoolRequest` bodies of every ``match_type``."""

    @st.composite
    def build(draw: st.DrawFn) -> NumberPoolRequest:
        country = draw(st.sampled_from(list(countries)))
        match_type = draw(st.sampled_from(["geographic", "tollfree", "national"]))
        request: dict[str, object] = {
            "number_type": "international",
            "match_type": match_type,
            "iso_country": draw(mixed_case(country)),
        }
        if match_type == "geographic":
            locality = draw(st.sampled_from(["city", "area_code"]))
            if locality == "city":
                request["city"] = "Bristol" if country == "GB" else "Washington"
            else:
                request["area_code"] = "0117" if country == "GB" else "202"
            if draw(st.booleans()):
                request["region"] = "England" if country == "GB" else "DC"
        document: dict[str, object] = {
            "name": draw(
                st.text(alphabet="ABCabc 123-", min_size=1, max_size=20).filter(str.strip)
            ),
            "match_period": draw(st.integers(1, 43_200)),
            "quantity": draw(st.integers(1, 1000)),
            "phone_number_request": request,
            "replacement_configuration": draw(replacement_configurations(country)),
            "call_routes": {
                "route_type": draw(st.sampled_from(["Basic", "basic", "BASIC"])),
                "route": {"termination_number": _TERMINATION[country]},
            },
        }
        if draw(st.booleans()):
            document["sms_routes"] = {"route_type": "None"}
        return NumberPoolRequest.model_validate(document)

    return build()


# ---- traffic ----------------------------------------------------------------------


def referrers_for_hosts(hosts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Ways a browser (or a careless integrator) writes a referrer for a host from ``hosts``."""
    return st.tuples(
        st.sampled_from(["https://", "http://", "", "//", "HTTPS://"]),
        cased(hosts),
        st.sampled_from(["", ":443", ".", ".:8080"]),
        st.sampled_from(["/", "", "/search?q=tyres", "/l.php?u=https%3A%2F%2Fshop"]),
    ).map(lambda t: t[0] + t[1] + t[2] + t[3])


@functools.cache
def referrer_for_host(host: str) -> st.SearchStrategy[str]:
    """Ways a referrer for ``host`` is written: scheme or not, case, port, trailing dot, path."""
    return referrers_for_hosts(st.just(host))


@functools.cache
def referrers() -> st.SearchStrategy[str | None]:
    """Referrers of every kind: none, catalogue hosts, look-alikes, plain domains, junk."""
    hosts = st.sampled_from(_CATALOGUE_HOSTS + _LOOK_ALIKE_HOSTS + _DOMAINS)
    return st.one_of(
        st.none(),
        st.sampled_from(_JUNK_REFERRERS),
        referrers_for_hosts(hosts),
    )


def _encode(text: str, style: int) -> str:
    return quote(text, safe="") if style == 0 else quote_plus(text, safe="")


@functools.cache
def query_pairs(
    names: st.SearchStrategy[str] | None = None, max_size: int = 4
) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Decoded ``(name, value)`` pairs for a query string (names may repeat)."""
    pick = (
        names if names is not None else st.one_of(parameter_names(), st.sampled_from(_NOISE_NAMES))
    )
    values = st.one_of(
        literal_texts(0, 6), st.sampled_from(["cpc", "organic", "email", "paid_social"])
    )
    return st.lists(st.tuples(pick, values), max_size=max_size)


def _render_url(draw: st.DrawFn, pairs: Sequence[tuple[str, str]]) -> str:
    parts = []
    for name, value in pairs:
        style = draw(st.integers(0, 1))
        if value == "" and draw(st.booleans()):
            parts.append(_encode(name, style))  # "?gclid" with no "="
        else:
            parts.append(f"{_encode(name, style)}={_encode(value, style)}")
    path = draw(st.sampled_from(_PATHS))
    bare_question_mark: bool = draw(st.booleans())
    query = "?" + "&".join(parts) if parts or bare_question_mark else ""
    return path + query + draw(st.sampled_from(_FRAGMENTS))


_PATHS = ("https://shop.example/", "https://shop.example/tyres/winter", "/landing")
_FRAGMENTS = ("", "", "#top", "#gclid=from-fragment")


@st.composite
def _landing_urls(draw: st.DrawFn, pairs: st.SearchStrategy[list[tuple[str, str]]]) -> str:
    return _render_url(draw, draw(pairs))


@functools.cache
def landing_urls(
    pairs: st.SearchStrategy[list[tuple[str, str]]] | None = None,
) -> st.SearchStrategy[str]:
    """Landing URLs carrying ``pairs``, percent-encoded one way or another, maybe a fragment.

    A fragment may hold ``gclid=...``: it is never part of the query.
    """
    return _landing_urls(pairs if pairs is not None else query_pairs())


@functools.cache
def browser_user_agents() -> st.SearchStrategy[str]:
    """User agents of real browsers."""
    return st.sampled_from(BROWSER_USER_AGENTS)


@functools.cache
def crawler_user_agents() -> st.SearchStrategy[str | None]:
    """Crawler user agents from the crawler list's own examples, plus missing/blank ones."""
    return st.one_of(st.sampled_from(list(crawler_examples())), st.sampled_from([None, "", "  "]))


@functools.cache
def user_agents() -> st.SearchStrategy[str | None]:
    """Mostly browsers, sometimes crawlers."""
    return st.one_of(browser_user_agents(), browser_user_agents(), crawler_user_agents())


@functools.cache
def visits() -> st.SearchStrategy[Visit]:
    """Arbitrary visits: any landing URL, referrer and user agent."""
    return st.builds(Visit, landing_urls(), referrers(), user_agents())


# ---- visits aimed at one source -----------------------------------------------------


@functools.cache
def _fill(pattern: str) -> st.SearchStrategy[str]:
    """A value matching a trigger pattern: each wildcard replaced by a short text."""
    pieces = pattern.replace("%", "*").split("*")
    fillers = st.lists(literal_texts(0, 3), min_size=len(pieces) - 1, max_size=len(pieces) - 1)
    return st.tuples(fillers, st.booleans()).map(lambda t: _interleave(pieces, t[0], upper=t[1]))


def _interleave(pieces: list[str], fillers: list[str], *, upper: bool) -> str:
    out = pieces[0]
    for filler, piece in zip(fillers, pieces[1:], strict=True):
        out += filler + piece
    return out.upper() if upper else out


@functools.cache
def _pairs_for_trigger(trigger: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query pairs that satisfy every condition of ``trigger``."""
    body = trigger.strip().removeprefix("?")
    parts = []
    for condition in body.split("&"):
        name, equals, pattern = condition.partition("=")
        named = mixed_case(name)
        value = _fill(pattern) if equals else literal_texts(0, 3)
        parts.append(st.tuples(named, value))
    return st.tuples(*parts).map(list)


@functools.cache
def _host_matching(referrer_domain: str) -> st.SearchStrategy[str | None]:
    value = referrer_domain.strip()
    if is_any(value):
        return referrers()
    entry = catalogue_entry(value)
    if entry is not None:
        hosts = [h for h in _CATALOGUE_HOSTS if referrer_matches(value, h)] or list(
            entry.example_hosts
        )
        return referrers_for_hosts(st.sampled_from(hosts))
    if "*" in value or "%" in value:
        fill = st.sampled_from(["x", "", "www.", "example", "a.com", "google", "bing"])
        pieces = value.replace("%", "*").split("*")
        host = st.lists(fill, min_size=len(pieces) - 1, max_size=len(pieces) - 1).map(
            lambda fs: _interleave(pieces, fs, upper=False)
        )
        # judged on the host as the matcher will see it (trailing dots dropped...)
        return referrers_for_hosts(host).filter(lambda r: referrer_matches(value, referrer_host(r)))
    return referrers_for_hosts(st.sampled_from([value, "www." + value, "a.b." + value]))


@functools.cache
def _host_missing(referrer_domain: str) -> st.SearchStrategy[str | None]:
    value = referrer_domain.strip()
    entry = catalogue_entry(value)
    if entry is not None:
        base = list(entry.example_hosts)
        look_alikes = [f"{h}.evil.net" for h in base] + [
            f"evil{h.removeprefix('www.')}" for h in base
        ]
        return st.one_of(st.none(), referrers_for_hosts(st.sampled_from(look_alikes)))
    if "*" in value or "%" in value:
        return st.none()  # a host pattern never matches a direct visit
    return st.one_of(
        st.none(),
        referrers_for_hosts(st.sampled_from(["bad" + value, value + ".evil.net"])),
    )


@functools.cache
def _organic_noise() -> st.SearchStrategy[list[tuple[str, str]]]:
    return query_pairs(st.sampled_from((*_NOISE_NAMES, "utm_source", "utm_campaign")), max_size=2)


@functools.cache
def _names_except(excluded: frozenset[str]) -> st.SearchStrategy[str]:
    return st.sampled_from([n for n in PARAMETER_NAMES + _NOISE_NAMES if n not in excluded])


@st.composite
def _visits_matching(draw: st.DrawFn, source: TrackingSource) -> Visit:
    triggers = source.url_triggers or []
    referrer = draw(_host_matching(source.referrer_domain))
    if triggers and source.track_organic and draw(st.booleans()):
        pairs = draw(_organic_noise())  # matched as an organic visit
    elif triggers:
        pairs = draw(_pairs_for_trigger(draw(st.sampled_from(triggers))))
        pairs += draw(query_pairs(max_size=2))
        pairs = draw(st.permutations(pairs))
    else:
        pairs = draw(query_pairs())
    return Visit(_render_url(draw, pairs), referrer, draw(browser_user_agents()))


def visits_matching(source: TrackingSource) -> st.SearchStrategy[Visit]:
    """Visits built to match ``source`` (by a person with a browser)."""
    return _visits_matching(source)


@st.composite
def _visits_missing(draw: st.DrawFn, source: TrackingSource) -> Visit:
    triggers = source.url_triggers or []
    trigger_names = frozenset(
        condition.partition("=")[0].lower()
        for trigger in triggers
        for condition in trigger.strip().removeprefix("?").split("&")
    )
    modes = ["crawler"]
    if not is_any(source.referrer_domain):
        modes.append("referrer")
    free_click_ids = [c for c in AD_CLICK_IDS if c not in trigger_names]
    paid_medium = "utm_medium" not in trigger_names
    if triggers and (not source.track_organic or free_click_ids or paid_medium):
        modes.append("triggers")
    mode = draw(st.sampled_from(modes))
    if mode == "crawler":
        matching = draw(_visits_matching(source))
        return Visit(matching.url, matching.referrer, draw(crawler_user_agents()))
    if mode == "referrer":
        matching = draw(_visits_matching(source))
        return Visit(matching.url, draw(_host_missing(source.referrer_domain)), matching.user_agent)
    pairs = draw(query_pairs(_names_except(trigger_names)))
    if source.track_organic:
        if free_click_ids:
            pairs.append((draw(st.sampled_from(free_click_ids)), draw(literal_texts(0, 4))))
        else:
            pairs.append(("utm_medium", draw(st.sampled_from(PAID_UTM_MEDIUMS))))
    referrer = draw(_host_matching(source.referrer_domain))
    return Visit(_render_url(draw, pairs), referrer, draw(browser_user_agents()))


def visits_missing(source: TrackingSource) -> st.SearchStrategy[Visit]:
    """Visits built to just miss ``source``: one thing wrong, the rest matching.

    Either the referrer is a look-alike or direct visit (when the source names
    a referrer), or no parameter named by any trigger is present and the visit
    is paid (when it has triggers), or the user agent is a crawler.
    """
    return _visits_missing(source)
