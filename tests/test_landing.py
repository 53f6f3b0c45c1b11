"""The first-touch rule: which landing context each page view is matched on."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.landing import (
    DEFAULT_ATTRIBUTION_WINDOW,
    MAX_LANDING_REFERRER,
    MAX_LANDING_URL,
    Landing,
    is_external,
    landing_terms,
    next_landing,
    starts_landing,
)
from dni_engine.rules.visit import CLICK_IDS
from dni_engine.triggers import parse_query, query_of

SITE = "www.example.co.uk"
HOME = "https://www.example.co.uk/"
AD = "https://www.example.co.uk/pricing?gclid=Cj0KCQ123&utm_medium=cpc"
GOOGLE = "https://www.google.co.uk/"


def landed(url: str = AD, referrer: str | None = GOOGLE, at: float = 0.0) -> Landing:
    """The context of a first page view."""
    return next_landing(None, url, referrer, at, site_host=SITE)


def browse(previous: Landing, url: str, at: float, referrer: str | None = HOME) -> Landing:
    return next_landing(previous, url, referrer, at, site_host=SITE, params=frozenset({"promo"}))


# ---- starting a context ---------------------------------------------------------


def test_the_first_page_view_starts_a_context_with_its_url_and_external_referrer() -> None:
    context = landed(at=100.0)
    assert context == Landing(AD, GOOGLE, 100.0, 100.0)


def test_an_internal_page_continues_the_landing_context() -> None:
    first = landed(at=0.0)
    second = browse(first, "https://www.example.co.uk/contact", 60.0)
    assert (second.url, second.referrer, second.started, second.seen) == (AD, GOOGLE, 0.0, 60.0)


@pytest.mark.parametrize("click_id", sorted(CLICK_IDS))
def test_a_click_id_starts_a_new_context_even_from_an_internal_referrer(click_id: str) -> None:
    first = landed(at=0.0)
    url = f"https://www.example.co.uk/offer?{click_id}=abc"
    second = browse(first, url, 60.0)
    assert second == Landing(url, None, 60.0, 60.0)


def test_click_ids_are_read_as_the_matcher_reads_them() -> None:
    # Names are decoded and compared without case; a click id in the
    # fragment is not in the query, which browsers never send.
    assert starts_landing("/x?GCLID=1", None, site_host=SITE)
    assert starts_landing("/x?g%63lid=1", None, site_host=SITE)
    assert starts_landing("/x?a=1&msclkid=", None, site_host=SITE)
    assert not starts_landing("/x#?gclid=1", None, site_host=SITE)
    assert not starts_landing("/x?xgclid=1&gclidx=2", None, site_host=SITE)


def test_a_trigger_parameter_starts_a_new_context_only_when_a_pool_names_it() -> None:
    first = landed(at=0.0)
    url = "https://www.example.co.uk/?promo=winter"
    assert browse(first, url, 60.0).url == url  # params={"promo"}
    plain = next_landing(first, url, HOME, 60.0, site_host=SITE)
    assert plain.url == AD
    assert starts_landing(url, None, params=frozenset({"promo"}))
    assert not starts_landing(url, None)


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.bing.com/search?q=tyres",
        "https://l.facebook.com/",
        "android-app://com.google.android.gm/",
        "https://example.co.uk.evil.net/",
        "https://other.co.uk/",
    ],
)
def test_an_external_referrer_starts_a_new_context(referrer: str) -> None:
    first = landed(at=0.0)
    second = browse(first, "https://www.example.co.uk/", 60.0, referrer=referrer)
    assert second == Landing("https://www.example.co.uk/", referrer, 60.0, 60.0)


# ---- internal and external ------------------------------------------------------


@pytest.mark.parametrize(
    "referrer",
    [
        "https://www.example.co.uk/pricing",
        "https://example.co.uk/",
        "https://shop.example.co.uk/basket",
        "http://a.b.c.example.co.uk:8080/",
        "HTTPS://WWW.EXAMPLE.CO.UK./",
        "www.example.co.uk",
        "//shop.example.co.uk/x",
    ],
)
def test_the_same_registrable_domain_is_internal(referrer: str) -> None:
    assert not is_external(referrer, SITE)
    assert not is_external(referrer, "https://shop.example.co.uk/")  # a site given as a URL
    assert not is_external(referrer, "example.co.uk:443")


@pytest.mark.parametrize(
    ("referrer", "site"),
    [
        ("https://co.uk/", SITE),  # a bare public suffix
        ("https://example.com/", SITE),  # another suffix
        ("https://www.example.co.uk.evil.net/", SITE),
        ("https://examples.co.uk/", SITE),
        # The private section of the Public Suffix List separates owners, as
        # browsers do for "same site": another shop on the same platform.
        ("https://other.github.io/", "mine.github.io"),
        ("https://other-shop.myshopify.com/", "shop.myshopify.com"),
    ],
)
def test_other_sites_are_external(referrer: str, site: str) -> None:
    assert is_external(referrer, site)


def test_subdomains_of_a_private_suffix_site_are_internal() -> None:
    assert not is_external("https://www.mine.github.io/", "mine.github.io")
    assert not is_external("https://mine.github.io/about", "mine.github.io")


def test_international_hosts_compare_in_one_form() -> None:
    assert not is_external("https://www.bücher.de/", "xn--bcher-kva.de")
    assert not is_external("https://xn--bcher-kva.de/", "shop.bücher.de")


@pytest.mark.parametrize(
    ("referrer", "site", "external"),
    [
        ("http://localhost:8000/", "localhost", False),
        ("http://localhost/", "localhost:3000", False),
        ("http://localhost/", "other-host", True),
        ("http://intranet/", "localhost", True),
        ("http://127.0.0.1:8000/a", "127.0.0.1", False),
        ("http://127.0.0.2/", "127.0.0.1", True),
        ("http://10.0.0.1/", "www.example.co.uk", True),
        ("https://www.example.co.uk/", "127.0.0.1:8000", True),
        ("https://www.example.co.uk/", "localhost", True),
    ],
)
def test_localhost_and_ip_addresses_compare_whole(referrer: str, site: str, external: bool) -> None:
    assert is_external(referrer, site) is external


@pytest.mark.parametrize(
    "referrer", [None, "", "   ", "about:blank", "data:text/html,x", "mailto:a@b.example"]
)
def test_a_referrer_without_a_host_is_not_external(referrer: str | None) -> None:
    assert not is_external(referrer, SITE)
    assert not is_external(referrer, None)


def test_without_a_site_host_every_referrer_with_a_host_is_external() -> None:
    assert is_external(HOME, None)
    assert is_external(HOME, "")
    assert is_external(HOME, "about:blank")  # a site host with no host in it


# ---- the window -------------------------------------------------------------------


def test_the_window_slides_with_each_page_view() -> None:
    context = landed(at=0.0)
    # A page every 20 minutes for two hours: each within 30 minutes of the last.
    for minute in range(20, 121, 20):
        context = browse(context, "https://www.example.co.uk/blog", minute * 60.0)
        assert (context.url, context.referrer, context.started) == (AD, GOOGLE, 0.0)
        assert context.seen == minute * 60.0


def test_the_context_lapses_after_the_window_without_a_page_view() -> None:
    first = landed(at=0.0)
    assert DEFAULT_ATTRIBUTION_WINDOW == 30 * 60.0
    at_edge = browse(first, "https://www.example.co.uk/a", DEFAULT_ATTRIBUTION_WINDOW)
    assert at_edge.url == AD  # "more than the window" lapses; exactly the window does not
    late = browse(at_edge, "https://www.example.co.uk/b", 2 * DEFAULT_ATTRIBUTION_WINDOW + 0.001)
    assert late == Landing("https://www.example.co.uk/b", None, late.seen, late.seen)


def test_the_window_is_the_callers() -> None:
    first = landed(at=0.0)
    kept = next_landing(first, "/next", HOME, 3000.0, site_host=SITE, window=3600.0)
    assert kept.url == AD
    lapsed = next_landing(first, "/next", HOME, 61.0, site_host=SITE, window=60.0)
    assert lapsed.url == "/next"


def test_an_earlier_page_view_never_moves_seen_back() -> None:
    first = landed(at=100.0)
    second = browse(first, "https://www.example.co.uk/a", 50.0)
    assert (second.url, second.started, second.seen) == (AD, 100.0, 100.0)


# ---- what a context keeps -----------------------------------------------------------


def test_the_fragment_is_dropped_from_the_landing_url() -> None:
    context = landed(f"{AD}#reviews?gclid=not-this", at=0.0)
    assert context.url == AD


def test_the_referrer_is_none_when_internal() -> None:
    context = landed(HOME, "https://shop.example.co.uk/basket")
    assert context.referrer is None
    assert landed(HOME, None).referrer is None
    # A click id from an internal link starts a context without a referrer.
    assert browse(landed(), f"{HOME}?gclid=2", 10.0).referrer is None


def test_long_urls_and_referrers_are_capped() -> None:
    url = HOME + "a" * 5000
    referrer = "https://www.bing.com/search?q=" + "q" * 5000
    context = landed(url, referrer)
    assert context.url == url[:MAX_LANDING_URL]
    assert context.referrer == referrer[:MAX_LANDING_REFERRER]


def test_a_long_landing_url_keeps_the_parameters_matching_reads() -> None:
    names = frozenset({"promo", "utm_medium"})
    filler = "&".join(f"utm_content{i}=" + "x" * 40 for i in range(100))
    url = f"{HOME}offers/{'p' * 300}?{filler}&gclid=Cj0&promo=Winter&utm_medium=cpc"
    assert len(url) > MAX_LANDING_URL
    context = next_landing(None, url, GOOGLE, 0.0, site_host=SITE, params=names)
    assert len(context.url) <= MAX_LANDING_URL
    assert parse_query(query_of(context.url), CLICK_IDS | names) == {
        "gclid": ["cj0"],
        "promo": ["winter"],
        "utm_medium": ["cpc"],
    }
    assert context.url.startswith(f"{HOME}offers/")
    # A long URL whose query is all kept is still cut to the cap.
    huge = next_landing(None, f"{HOME}?gclid={'g' * 5000}", None, 0.0, site_host=SITE)
    assert len(huge.url) == MAX_LANDING_URL
    assert starts_landing(huge.url, None)


# ---- never raises, and the property --------------------------------------------------

odd_text = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["?", "#", "?&=&", "http://", "//", "[::1]", "http://[::1", "%", "?%zz=%"]),
)
times = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    url=odd_text,
    referrer=st.one_of(st.none(), odd_text),
    site=st.one_of(st.none(), odd_text),
    first=times,
    at=times,
    window=times,
    params=st.frozensets(st.text(max_size=8)),
)
def test_never_raises_on_odd_strings(
    url: str,
    referrer: str | None,
    site: str | None,
    first: float,
    at: float,
    window: float,
    params: frozenset[str],
) -> None:
    previous = next_landing(None, url, referrer, first, site_host=site, window=window)
    context = next_landing(
        previous, url, referrer, at, site_host=site, window=window, params=params
    )
    assert isinstance(context, Landing)
    assert len(context.url) <= MAX_LANDING_URL
    assert context.referrer is None or len(context.referrer) <= MAX_LANDING_REFERRER
    is_external(referrer, site)
    starts_landing(url, referrer, site_host=site, params=params)


internal_referrers = st.one_of(
    st.none(),
    st.sampled_from(["", "about:blank", HOME]),
    st.builds(
        "https://{}example.co.uk/{}".format,
        st.sampled_from(["", "www.", "shop.", "a.b."]),
        st.text(max_size=30),
    ),
)
internal_urls = st.builds(
    "{}{}{}".format,
    st.sampled_from([HOME, "/", "https://shop.example.co.uk/", ""]),
    st.text(max_size=40),
    st.one_of(st.just(""), st.builds("?{}".format, st.text(max_size=60))),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.tuples(st.one_of(st.just(AD), internal_urls), st.one_of(st.none(), odd_text)),
    url=internal_urls,
    referrer=internal_referrers,
    gap=st.floats(min_value=0, max_value=DEFAULT_ATTRIBUTION_WINDOW),
)
def test_an_internal_page_view_inside_the_window_never_changes_the_context(
    start: tuple[str, str | None], url: str, referrer: str | None, gap: float
) -> None:
    names = frozenset({"promo", "utm_medium"})
    previous = next_landing(None, start[0], start[1], 1000.0, site_host=SITE, params=names)
    if starts_landing(url, referrer, site_host=SITE, params=names):
        return  # a campaign landing (the text drew a click id or a named parameter)
    context = next_landing(previous, url, referrer, 1000.0 + gap, site_host=SITE, params=names)
    assert (context.url, context.referrer, context.started) == (
        previous.url,
        previous.referrer,
        previous.started,
    )
    assert context.seen == 1000.0 + gap
    assert math.isfinite(context.seen)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    url=st.one_of(
        internal_urls,
        odd_text,
        st.builds("/p?{}={}".format, st.sampled_from(["gclid", "Promo", "x", "MSCLKID"]), odd_text),
    ),
    referrer=st.one_of(internal_referrers, odd_text, st.sampled_from([GOOGLE, "t.co"])),
)
def test_inside_the_window_a_page_view_starts_a_context_exactly_when_starts_landing_says(
    url: str, referrer: str | None
) -> None:
    names = frozenset({"promo"})
    previous = Landing("https://www.example.co.uk/first", None, 0.0, 0.0)
    context = next_landing(previous, url, referrer, 1.0, site_host=SITE, params=names)
    started = starts_landing(url, referrer, site_host=SITE, params=names)
    assert (context.started == 1.0) is started
    if not started:
        assert (context.url, context.referrer, context.seen) == (previous.url, None, 1.0)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    previous=st.one_of(
        st.none(),
        st.builds(
            Landing,
            st.sampled_from([AD, HOME]),
            st.sampled_from([None, GOOGLE]),
            st.just(0.0),
            st.sampled_from([0.0, 5.0, 100.0]),
        ),
    ),
    url=st.one_of(
        internal_urls,
        odd_text,
        st.just(AD),
        st.builds("/p?{}={}#f".format, st.sampled_from(["gclid", "Promo", "x"]), odd_text),
        st.builds("{}?gclid=1&{}".format, st.just(HOME), st.text(min_size=2100, max_size=2200)),
    ),
    referrer=st.one_of(
        internal_referrers,
        odd_text,
        st.sampled_from([GOOGLE, "t.co", "https://www.google.com/" + "q" * 1100]),
    ),
    at=st.sampled_from([0.0, 5.0, 50.0, 100.0, 100.0 + DEFAULT_ATTRIBUTION_WINDOW, 5000.0]),
    site=st.sampled_from([SITE, None]),
)
def test_landing_terms_give_next_landing(
    previous: Landing | None, url: str, referrer: str | None, at: float, site: str | None
) -> None:
    # What a simulation keeps per (URL, referrer) gives next_landing's context.
    names = frozenset({"promo"})
    starts, page, external = landing_terms(url, referrer, site_host=site, params=names)
    assert starts is starts_landing(url, referrer, site_host=site, params=names)
    context = next_landing(previous, url, referrer, at, site_host=site, params=names)
    if previous is not None and not starts and at - previous.seen <= DEFAULT_ATTRIBUTION_WINDOW:
        seen = max(at, previous.seen)
        expected = Landing(previous.url, previous.referrer, previous.started, seen)
    else:
        expected = Landing(page, external, at, at)
    assert context == expected
