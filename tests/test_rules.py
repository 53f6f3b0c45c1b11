"""The compiled rule matcher: a table of hand-written visits, precedence, explain, lint."""

from __future__ import annotations

from typing import Any

import pytest

from dni_engine.errors import ConfigError
from dni_engine.rules import LINT_CODES, Match, RuleSet, compile_pools, lint, pool_key
from dni_engine.schema import NumberPool, NumberPoolRequest
from dni_engine.testing import build_pool, oracle, source

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
URL = "https://shop.example/tyres"


SITE = [
    build_pool(id=1, name="google-ads", sources=[source("Any", ["gclid=*"])]),
    build_pool(id=2, name="bing-ads", sources=[source("Any", ["msclkid=%"])]),
    build_pool(id=3, name="winter", sources=[source("Any", ["utm_campaign=wintertires"])]),
    build_pool(
        id=4,
        name="winter-google-ads",
        sources=[source("Any", ["utm_campaign=wintertires&gclid=*"])],
    ),
    build_pool(
        id=5,
        name="google-organic",
        sources=[source("Google", ["utm_medium=organic"], track_organic=True)],
    ),
    build_pool(
        id=6, name="social", sources=[source("Facebook"), source("Twitter"), source("LinkedIn")]
    ),
    build_pool(id=7, name="yahoo", sources=[source("Yahoo")]),
    build_pool(id=8, name="bing-organic", sources=[source("bing")]),
    build_pool(id=9, name="partner", sources=[source("example.org")]),
    build_pool(id=10, name="promo", sources=[source("Any", ["promo=spring*"])]),
    build_pool(
        id=11,
        name="more-catalogue",
        sources=[
            source(name)
            for name in (
                "DuckDuckGo",
                "Baidu",
                "Yandex",
                "Instagram",
                "YouTube",
                "Reddit",
                "TikTok",
                "Pinterest",
            )
        ],
    ),
    build_pool(id=12, name="catch-all", sources=[source("Any")]),
]
RULES = compile_pools(SITE)


def row(
    url: str,
    referrer: str | None,
    expected: tuple[str, int, str | None, str | None, bool] | None,
    user_agent: str | None = BROWSER,
    *,
    id: str,
) -> Any:
    """One visit and its expected (pool name, source, trigger, referrer class, paid)."""
    return pytest.param(url, referrer, user_agent, expected, id=id)


CA = "catch-all"


def winner(rules: RuleSet, url: str, referrer: str | None = None) -> Match:
    """The match for a browser visit, which must exist."""
    found = rules.match(url, referrer, BROWSER)
    assert found is not None, (url, referrer)
    return found


TABLE = [
    # every catalogue member, ccTLDs and subdomains included
    row(URL, "https://www.google.com/", ("google-organic", 0, None, "Google", False), id="google"),
    row(
        URL,
        "https://www.google.co.uk/search?q=tyres",
        ("google-organic", 0, None, "Google", False),
        id="google-co-uk",
    ),
    row(
        URL,
        "google.com.br",
        ("google-organic", 0, None, "Google", False),
        id="google-com-br-bare-host",
    ),
    row(
        URL,
        "https://news.google.de/",
        ("google-organic", 0, None, "Google", False),
        id="google-de-subdomain",
    ),
    row(
        URL,
        "HTTPS://WWW.GOOGLE.CO.UK:443/",
        ("google-organic", 0, None, "Google", False),
        id="google-upper-case-port",
    ),
    row(
        URL,
        "https://www.google.com./",
        ("google-organic", 0, None, "Google", False),
        id="google-trailing-dot",
    ),
    row(URL, "https://www.bing.com/search", ("bing-organic", 0, None, "Bing", False), id="bing"),
    row(URL, "https://cn.bing.com/", ("bing-organic", 0, None, "Bing", False), id="bing-subdomain"),
    row(URL, "https://search.yahoo.co.jp/", ("yahoo", 0, None, "Yahoo", False), id="yahoo-co-jp"),
    row(URL, "https://uk.search.yahoo.com/", ("yahoo", 0, None, "Yahoo", False), id="yahoo-uk"),
    row(
        URL,
        "https://l.facebook.com/l.php?u=x",
        ("social", 0, None, "Facebook", False),
        id="facebook-l",
    ),
    row(URL, "https://m.facebook.com/", ("social", 0, None, "Facebook", False), id="facebook-m"),
    row(URL, "https://fb.me/abc", ("social", 0, None, "Facebook", False), id="fb-me"),
    row(URL, "https://t.co/abc", ("social", 1, None, "Twitter", False), id="t-co"),
    row(URL, "https://x.com/", ("social", 1, None, "Twitter", False), id="x-com"),
    row(
        URL,
        "https://mobile.twitter.com/",
        ("social", 1, None, "Twitter", False),
        id="twitter-mobile",
    ),
    row(
        URL, "https://www.linkedin.com/feed", ("social", 2, None, "LinkedIn", False), id="linkedin"
    ),
    row(URL, "https://lnkd.in/abc", ("social", 2, None, "LinkedIn", False), id="lnkd-in"),
    row(URL, "duckduckgo.com", ("more-catalogue", 0, None, "DuckDuckGo", False), id="duckduckgo"),
    row(URL, "https://www.baidu.com/", ("more-catalogue", 1, None, "Baidu", False), id="baidu"),
    row(URL, "https://yandex.ru/", ("more-catalogue", 2, None, "Yandex", False), id="yandex-ru"),
    row(
        URL,
        "https://l.instagram.com/",
        ("more-catalogue", 3, None, "Instagram", False),
        id="instagram",
    ),
    row(URL, "https://m.youtube.com/", ("more-catalogue", 4, None, "YouTube", False), id="youtube"),
    row(URL, "https://youtu.be/abc", ("more-catalogue", 4, None, "YouTube", False), id="youtu-be"),
    row(URL, "https://old.reddit.com/", ("more-catalogue", 5, None, "Reddit", False), id="reddit"),
    row(URL, "https://www.tiktok.com/", ("more-catalogue", 6, None, "TikTok", False), id="tiktok"),
    row(
        URL,
        "https://www.pinterest.co.uk/",
        ("more-catalogue", 7, None, "Pinterest", False),
        id="pinterest-co-uk",
    ),
    row(URL, "https://pin.it/abc", ("more-catalogue", 7, None, "Pinterest", False), id="pin-it"),
    # look-alikes are not catalogue members; plain domains match themselves and subdomains
    row(URL, "https://evilgoogle.com/", (CA, 0, None, None, False), id="evilgoogle"),
    row(URL, "https://google.evil.com/", (CA, 0, None, None, False), id="google-evil-com"),
    row(URL, "https://google.com.evil.net/", (CA, 0, None, None, False), id="google-com-evil-net"),
    row(URL, "https://notfacebook.com/", (CA, 0, None, None, False), id="notfacebook"),
    row(
        URL,
        "https://twitter.com.example.org/",
        ("partner", 0, None, None, False),
        id="twitter-under-partner",
    ),
    row(URL, "https://badexample.org/", (CA, 0, None, None, False), id="badexample-not-partner"),
    row(
        URL, "https://shop.example.org/", ("partner", 0, None, None, False), id="partner-subdomain"
    ),
    row(URL, "example.org", ("partner", 0, None, None, False), id="partner-bare"),
    # direct visits match Any
    row(URL, None, (CA, 0, None, None, False), id="direct-none"),
    row(URL, "", (CA, 0, None, None, False), id="direct-empty"),
    row(URL, "about:blank", (CA, 0, None, None, False), id="direct-about-blank"),
    # triggers: wildcards, case, percent-encoding, repeated parameters, conjunctions
    row(f"{URL}?gclid=abc", None, ("google-ads", 0, "gclid=*", None, True), id="gclid-star"),
    row(f"{URL}?gclid=", None, ("google-ads", 0, "gclid=*", None, True), id="gclid-empty-value"),
    row(f"{URL}?gclid", None, ("google-ads", 0, "gclid=*", None, True), id="gclid-no-equals"),
    row(f"{URL}?GCLID=AbC", None, ("google-ads", 0, "gclid=*", None, True), id="gclid-upper"),
    row(f"{URL}?msclkid=xyz", None, ("bing-ads", 0, "msclkid=%", None, True), id="msclkid-percent"),
    row(
        f"{URL}?MsClkId=XYZ",
        None,
        ("bing-ads", 0, "msclkid=%", None, True),
        id="msclkid-mixed-case",
    ),
    row(
        f"{URL}?utm_campaign=wintertires",
        None,
        ("winter", 0, "utm_campaign=wintertires", None, False),
        id="campaign",
    ),
    row(
        f"{URL}?utm_campaign=WinterTires",
        None,
        ("winter", 0, "utm_campaign=wintertires", None, False),
        id="campaign-case",
    ),
    row(
        f"{URL}?utm_campaign=winter%74ires",
        None,
        ("winter", 0, "utm_campaign=wintertires", None, False),
        id="campaign-encoded-value",
    ),
    row(
        f"{URL}?utm%5Fcampaign=wintertires",
        None,
        ("winter", 0, "utm_campaign=wintertires", None, False),
        id="campaign-encoded-name",
    ),
    row(
        f"{URL}?utm_campaign=winter+tires",
        None,
        (CA, 0, None, None, False),
        id="campaign-plus-is-space",
    ),
    row(
        f"{URL}?utm_campaign=wintertiresX",
        None,
        (CA, 0, None, None, False),
        id="campaign-literal-exact",
    ),
    row(
        f"{URL}?utm_campaign=summer&utm_campaign=wintertires",
        None,
        ("winter", 0, "utm_campaign=wintertires", None, False),
        id="repeated-parameter",
    ),
    row(
        f"{URL}?utm_campaign=wintertires&gclid=abc",
        None,
        ("winter-google-ads", 0, "utm_campaign=wintertires&gclid=*", None, True),
        id="conjunction-wins",
    ),
    row(
        f"{URL}?gclid=abc&utm_campaign=summer",
        None,
        ("google-ads", 0, "gclid=*", None, True),
        id="conjunction-half",
    ),
    row(
        f"{URL}?promo=spring+sale",
        None,
        ("promo", 0, "promo=spring*", None, False),
        id="prefix-pattern-plus",
    ),
    row(
        f"{URL}?promo=SPRING",
        None,
        ("promo", 0, "promo=spring*", None, False),
        id="prefix-pattern-case",
    ),
    row(f"{URL}?promo=autumn-spring", None, (CA, 0, None, None, False), id="prefix-pattern-miss"),
    row("https://shop.example/#gclid=abc", None, (CA, 0, None, None, False), id="fragment-ignored"),
    row(
        "https://shop.example/?a=1#gclid=abc",
        None,
        (CA, 0, None, None, False),
        id="fragment-after-query",
    ),
    # track_organic with paid and organic visits
    row(
        f"{URL}?gclid=abc",
        "https://www.google.com/",
        ("google-ads", 0, "gclid=*", "Google", True),
        id="google-paid-gclid",
    ),
    row(
        f"{URL}?utm_medium=cpc",
        "https://www.google.com/",
        (CA, 0, None, "Google", True),
        id="google-paid-medium",
    ),
    row(
        f"{URL}?utm_medium=PAID_SOCIAL",
        "https://www.google.com/",
        (CA, 0, None, "Google", True),
        id="google-paid-medium-case",
    ),
    row(
        f"{URL}?utm_medium=organic",
        "https://www.google.com/",
        ("google-organic", 0, "utm_medium=organic", "Google", False),
        id="google-organic-trigger",
    ),
    row(
        f"{URL}?utm_medium=organic&gclid=1",
        "https://www.google.com/",
        ("google-organic", 0, "utm_medium=organic", "Google", True),
        id="specific-referrer-beats-any",
    ),
    row(
        f"{URL}?utm_source=newsletter",
        "https://www.google.com/",
        ("google-organic", 0, None, "Google", False),
        id="google-organic-other-params",
    ),
    row(
        f"{URL}?msclkid=1",
        "https://www.bing.com/",
        ("bing-ads", 0, "msclkid=%", "Bing", True),
        id="bing-paid-beats-bing-organic",
    ),
    # crawlers and missing user agents never match
    row(f"{URL}?gclid=abc", None, None, GOOGLEBOT, id="googlebot"),
    row(URL, "https://www.bing.com/", None, BINGBOT, id="bingbot"),
    row(URL, None, None, "", id="empty-user-agent"),
    row(URL, None, None, None, id="no-user-agent"),
    row(URL, None, None, "curl/8.4.0", id="curl"),
    # malformed input just matches what it can
    row("not a url at all", None, (CA, 0, None, None, False), id="url-not-a-url"),
    row("https://[::1/?gclid=1", None, ("google-ads", 0, "gclid=*", None, True), id="url-bad-ipv6"),
    row(
        f"{URL}?gclid=1",
        "\x00\xff\xfe",
        ("google-ads", 0, "gclid=*", None, True),
        id="binary-referrer",
    ),
    row(
        f"{URL}?%ZZ=1&gclid=%E0%A4",
        None,
        ("google-ads", 0, "gclid=*", None, True),
        id="bad-escapes",
    ),
]


@pytest.mark.parametrize(("url", "referrer", "user_agent", "expected"), TABLE)
def test_visit_table(
    url: str,
    referrer: str | None,
    user_agent: str | None,
    expected: tuple[str, int, str | None, str | None, bool] | None,
) -> None:
    found = RULES.match(url, referrer, user_agent)
    assert found == oracle.match(SITE, url, referrer, user_agent)
    if expected is None:
        assert found is None
        return
    assert found is not None
    name, source_index, trigger, referrer_class, paid = expected
    got = (found.pool_name, found.source_index, found.trigger, found.referrer_class, found.paid)
    assert got == (name, source_index, trigger, referrer_class, paid)
    assert found.specificity == (trigger.count("&") + 1 if trigger else 0)
    assert SITE[found.pool_index].name == name
    assert found.pool_key == pool_key(SITE[found.pool_index])


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 60


def test_match_result_names_the_configured_referrer() -> None:
    found = RULES.match(URL, "https://t.co/x", BROWSER)
    assert found == Match(
        pool_index=5,
        pool_key="6",
        pool_name="social",
        source_index=1,
        referrer_domain="Twitter",
        referrer_class="Twitter",
        trigger=None,
        specificity=0,
        paid=False,
    )


def test_check_bots_false_matches_without_a_user_agent() -> None:
    found = RULES.match(f"{URL}?gclid=1", None, None, check_bots=False)
    assert found is not None
    assert found.pool_name == "google-ads"
    assert RULES.match(f"{URL}?gclid=1", None, GOOGLEBOT, check_bots=False) is not None


# ---- precedence between pools ----------------------------------------------------------


def test_more_trigger_conditions_win_whatever_the_order() -> None:
    pools = [
        build_pool(id=1, name="one", sources=[source("Google", ["gclid=*"])]),
        build_pool(id=2, name="two", sources=[source("Any", ["gclid=*&utm_source=google"])]),
    ]
    found = compile_pools(pools).match(f"{URL}?gclid=1&utm_source=google", "google.com", BROWSER)
    assert found is not None
    assert found.pool_name == "two"
    assert found.specificity == 2


def test_specific_referrer_beats_any_at_equal_conditions() -> None:
    pools = [
        build_pool(id=1, name="any", sources=[source("Any", ["gclid=*"])]),
        build_pool(id=2, name="google", sources=[source("Google", ["gclid=*"])]),
    ]
    rules = compile_pools(pools)
    google = rules.match(f"{URL}?gclid=1", "https://www.google.com/", BROWSER)
    bing = rules.match(f"{URL}?gclid=1", "https://www.bing.com/", BROWSER)
    assert google is not None
    assert google.pool_name == "google"
    assert bing is not None
    assert bing.pool_name == "any"


def test_priority_decides_between_equally_specific_pools() -> None:
    pools = [
        build_pool(id=1, name="first", sources=[source("Any", ["gclid=*"])]),
        build_pool(id=2, name="second", sources=[source("Any", ["utm_campaign=x"])]),
    ]
    url = f"{URL}?gclid=1&utm_campaign=x"
    assert winner(compile_pools(pools), url).pool_name == "first"
    prioritised = compile_pools(pools, {"2": 5})
    assert winner(prioritised, url).pool_name == "second"
    assert prioritised.match(url, None, BROWSER) == oracle.match(
        pools, url, None, BROWSER, priorities={"2": 5}
    )
    # priority never overrides specificity
    assert winner(compile_pools(pools, {"1": 9}), f"{URL}?utm_campaign=x").pool_name == "second"


def test_negative_priority_loses_to_the_default() -> None:
    pools = [
        build_pool(id=1, name="first", sources=[source("Any")]),
        build_pool(id=2, name="second", sources=[source("Any")]),
    ]
    found = compile_pools(pools, {"1": -1}).match(URL, None, BROWSER)
    assert found is not None
    assert found.pool_name == "second"


def test_registration_order_decides_a_full_tie() -> None:
    pools = [
        build_pool(id=2, name="registered-first", sources=[source("Bing")]),
        build_pool(id=1, name="registered-second", sources=[source("Bing")]),
    ]
    found = compile_pools(pools).match(URL, "https://www.bing.com/", BROWSER)
    assert found is not None
    assert found.pool_name == "registered-first"
    assert found.pool_index == 0


def test_within_a_pool_the_best_source_is_reported() -> None:
    pool = build_pool(
        id=1,
        name="multi",
        sources=[source("Any", ["gclid=*"]), source("Google", ["gclid=*"]), source("Google")],
    )
    rules = compile_pools([pool])
    found = rules.match(f"{URL}?gclid=1", "https://www.google.com/", BROWSER)
    assert found is not None
    assert (found.source_index, found.referrer_domain) == (1, "Google")
    plain = rules.match(URL, "https://www.google.com/", BROWSER)
    assert plain is not None
    assert plain.source_index == 2


def test_trigger_with_most_conditions_is_reported_within_a_source() -> None:
    pool = build_pool(
        id=1, name="p", sources=[source("Any", ["gclid=*", "gclid=*&utm_source=*", "utm_source=g"])]
    )
    found = compile_pools([pool]).match(f"{URL}?gclid=1&utm_source=g", None, BROWSER)
    assert found is not None
    assert (found.trigger, found.specificity) == ("gclid=*&utm_source=*", 2)


def test_repeated_condition_counts_once() -> None:
    pools = [
        build_pool(id=1, name="padded", sources=[source("Any", ["gclid=*&GCLID=%&gclid"])]),
        build_pool(id=2, name="pair", sources=[source("Any", ["gclid=*&utm_source=*"])]),
    ]
    found = compile_pools(pools).match(f"{URL}?gclid=1&utm_source=g", None, BROWSER)
    assert found is not None
    assert found.pool_name == "pair"
    padded = compile_pools(pools[:1]).match(f"{URL}?gclid=1", None, BROWSER)
    assert padded is not None
    assert padded.specificity == 1


def test_empty_url_triggers_list_means_no_triggers() -> None:
    pool = build_pool(id=1, name="p", sources=[source("Any", [])])
    found = compile_pools([pool]).match(URL, None, BROWSER)
    assert found is not None
    assert found.trigger is None


def test_percent_referrer_needs_a_host() -> None:
    pool = build_pool(id=1, name="p", sources=[source("%")])
    rules = compile_pools([pool])
    assert rules.match(URL, None, BROWSER) is None
    assert rules.match(URL, "https://anything.example/", BROWSER) is not None


def test_host_pattern_referrer() -> None:
    pool = build_pool(id=1, name="p", sources=[source("%google.%")])
    rules = compile_pools([pool])
    assert rules.match(URL, "https://www.google.co.uk/", BROWSER) is not None
    assert (
        rules.match(URL, "https://evilgoogle.com/", BROWSER) is not None
    )  # a pattern is a pattern
    assert rules.match(URL, "https://www.bing.com/", BROWSER) is None


def test_pool_requests_are_keyed_by_name() -> None:
    request = NumberPoolRequest.model_validate(
        {
            "name": "Spring sale",
            "match_period": 30,
            "quantity": 2,
            "phone_number_request": {
                "number_type": "international",
                "match_type": "tollfree",
                "iso_country": "GB",
            },
            "replacement_configuration": {
                "replace_all_numbers": True,
                "tracking_sources": [{"referrer_domain": "Any", "url_triggers": ["promo=spring"]}],
            },
            "call_routes": {
                "route_type": "Basic",
                "route": {"termination_number": "+441174960999"},
            },
        }
    )
    rules = compile_pools([SITE[0], request], {"Spring sale": 1})
    assert rules.pool_keys == ("1", "Spring sale")
    assert rules.pools == (SITE[0], request)
    found = rules.match(f"{URL}?promo=spring", None, BROWSER)
    assert found is not None
    assert found.pool_key == "Spring sale"


# ---- configuration errors -------------------------------------------------------------


def test_duplicate_pool_keys_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="already used by pool 0"):
        compile_pools([SITE[0], SITE[0]])


def test_priority_for_an_unknown_pool_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"priorities\.99"):
        compile_pools(SITE, {"99": 1})


def test_priority_must_be_an_integer() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        compile_pools(SITE, {"1": "high"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="whole number"):
        compile_pools(SITE, {"1": True})


def test_not_a_pool_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[1\]: expected a NumberPool"):
        compile_pools([SITE[0], {"name": "x"}])  # type: ignore[list-item]


def test_no_pools_never_match() -> None:
    rules = compile_pools([])
    assert len(rules) == 0
    assert rules.match(f"{URL}?gclid=1", None, BROWSER) is None


# ---- robustness -------------------------------------------------------------------------


MALFORMED = [
    ("", None, BROWSER),
    ("?", "?", BROWSER),
    ("http://[", "http://[", BROWSER),
    ("https://shop.example/?" + "&" * 10_000, None, BROWSER),
    ("https://shop.example/?a=" + "%" * 5_000, "%" * 5_000, BROWSER),
    ("https://shop.example/?\x00=\x00", "\x00", "\x00"),
    ("https://shop.example/?gclid=\ud800", "https://\ud800.com/", BROWSER),
    ("https://xn--.com/?utm_campaign=💥", "https://xn--zz-invalid.com/", BROWSER),
    ("https://shop.example/", "https://" + "a" * 300 + ".com/", BROWSER),
    ("https://shop.example/", "https://bücher.de:99999999/", BROWSER),
    ("https://shop.example/", "https://пример.рф/", "Mozilla/5.0 \U0001f600"),
    ("https://shop.example/", "http://user:pass@:80/", BROWSER),
]


@pytest.mark.parametrize(("url", "referrer", "user_agent"), MALFORMED)
def test_malformed_visits_never_raise(url: str, referrer: str | None, user_agent: str) -> None:
    found = RULES.match(url, referrer, user_agent)
    assert found is None or isinstance(found, Match)
    assert RULES.explain(url, referrer, user_agent).match == found


def test_wrong_types_never_raise() -> None:
    assert RULES.match(None, None, BROWSER) is None  # type: ignore[arg-type]
    assert RULES.match(b"?gclid=1", b"google.com", BROWSER) is None  # type: ignore[arg-type]
    found = RULES.match(URL, 12345, BROWSER)  # type: ignore[arg-type]
    assert found is not None
    assert found.pool_name == CA
    assert RULES.match(URL, None, 42) is None  # type: ignore[arg-type]  # not a user agent: a bot


def test_huge_query_string_is_read() -> None:
    filler = "&".join(f"p{i}={'x' * 20}" for i in range(3_000))  # about 64 KB
    url = f"https://shop.example/?{filler}&gclid=abc"
    assert len(url) > 64_000
    found = RULES.match(url, None, BROWSER)
    assert found is not None
    assert found.pool_name == "google-ads"


def test_many_wildcards_against_a_64_kb_value() -> None:
    pattern = "q=" + "*a" * 250 + "*b"  # 504 characters, 251 wildcards
    pools = [
        build_pool(id=1, name="stars", sources=[source("Any", [pattern])]),
        build_pool(id=2, name="rest", sources=[source("Any")]),
    ]
    rules = compile_pools(pools)
    miss = rules.match("https://shop.example/?q=" + "a" * 65_536, None, BROWSER)
    assert miss is not None
    assert miss.pool_name == "rest"
    hit = rules.match("https://shop.example/?q=" + "a" * 65_536 + "b", None, BROWSER)
    assert hit is not None
    assert hit.pool_name == "stars"


def test_huge_referrer_is_a_direct_visit() -> None:
    referrer = "https://www.google.com/" + "a" * 100_000
    found = RULES.match(URL, referrer, BROWSER)
    assert found is not None
    assert found.referrer_class == "Google"
    host_too_long = "https://" + "a" * 100_000
    found = RULES.match(URL, host_too_long, BROWSER)
    assert found is not None
    assert found.pool_name == CA
    assert found.referrer_class is None


def test_binary_referrer_bytes_decoded_as_latin1() -> None:
    referrer = bytes(range(256)).decode("latin-1") * 400  # 100 KB of every byte value
    found = RULES.match(f"{URL}?gclid=1", referrer, BROWSER)
    assert found is not None
    assert found.pool_name == "google-ads"


def test_idna_hosts() -> None:
    pools = [
        build_pool(id=1, name="books", sources=[source("bücher.de")]),
        build_pool(id=2, name="rest", sources=[source("Any")]),
    ]
    rules = compile_pools(pools)
    for referrer in ("https://BÜCHER.de/", "https://xn--bcher-kva.de/", "https://shop.bücher.de/"):
        found = rules.match(URL, referrer, BROWSER)
        assert found is not None, referrer
        assert found.pool_name == "books", referrer
    assert winner(rules, URL, "https://google。com/").referrer_class == "Google"


# ---- explain ------------------------------------------------------------------------------


def test_explain_reports_each_pool_and_the_deciding_step() -> None:
    explanation = RULES.explain(
        f"{URL}?gclid=1&utm_medium=organic", "https://www.google.co.uk/", BROWSER
    )
    assert explanation.match == RULES.match(
        f"{URL}?gclid=1&utm_medium=organic", "https://www.google.co.uk/", BROWSER
    )
    verdicts = {p.pool_name: p for p in explanation.pools}
    assert verdicts["google-organic"].outcome == "won"
    assert (verdicts["google-ads"].outcome, verdicts["google-ads"].step) == ("lost", 2)
    assert (verdicts["catch-all"].outcome, verdicts["catch-all"].step) == ("lost", 1)
    assert verdicts["bing-ads"].outcome == "no match"
    assert verdicts["google-ads"].lost_to == "5"
    text = str(explanation)
    assert "Paid:        yes (gclid)" in text
    assert "www.google.co.uk (Google)" in text
    assert "Result: pool 'google-organic' (key 5), source 0 (Google)" in text
    assert "lost to 'google-organic' (key 5) at step 2, specific referrer beats Any" in text
    assert "at step 1, trigger conditions: 0 condition(s) against 1" in text
    assert "'msclkid=%': no 'msclkid' parameter" in text
    assert "referrer did not match: www.google.co.uk (Google) is not Bing" in text


def test_explain_priority_and_order_steps() -> None:
    pools = [
        build_pool(id=1, name="a", sources=[source("Any")]),
        build_pool(id=2, name="b", sources=[source("Any")]),
        build_pool(id=3, name="c", sources=[source("Any")]),
    ]
    explanation = compile_pools(pools, {"2": 1}).explain(URL, None, BROWSER)
    text = str(explanation)
    assert "Result: pool 'b' (key 2)" in text
    assert "at step 3, priority: priority 0 against 1" in text
    explanation = compile_pools(pools).explain(URL, None, BROWSER)
    assert "at step 4, registration order: the winner is listed earlier (pool 0)" in str(
        explanation
    )


def test_explain_names_paid_visits_that_defeat_track_organic() -> None:
    text = str(RULES.explain(f"{URL}?utm_medium=cpc", "https://www.google.com/", BROWSER))
    assert "track_organic does not apply: the visit is paid (utm_medium=cpc)" in text
    assert "'utm_medium' is 'cpc', not 'utm_medium=organic'" in text


def test_explain_a_crawler() -> None:
    explanation = RULES.explain(f"{URL}?gclid=1", None, GOOGLEBOT)
    assert explanation.bot
    assert explanation.match is None
    text = str(explanation)
    assert "[crawler]" in text
    assert "no number: the visitor is a crawler or sent no user agent" in text
    assert {p.outcome for p in explanation.pools} == {"bot", "no match"}


def test_explain_organic_match_and_direct_visit() -> None:
    text = str(RULES.explain(URL, "https://www.google.com/", BROWSER))
    assert "matched by track_organic (organic visit)" in text
    text = str(RULES.explain(URL, None, BROWSER))
    assert "Referrer:    none (direct visit)" in text
    assert "is not Google" in text
    assert "a direct visit (no referrer host)" in text


def test_explain_shortens_huge_values() -> None:
    text = str(RULES.explain("https://shop.example/?q=" + "x" * 50_000, "\x00" * 10, BROWSER))
    assert "(50024 characters)" in text
    assert "\\x00" in text
    assert len(text) < 20_000


# ---- lint -----------------------------------------------------------------------------------


def codes(pools: list[NumberPool], priorities: dict[str, int] | None = None) -> list[str]:
    return [w.code for w in lint(pools, priorities)]


def test_lint_finds_a_source_that_can_never_win() -> None:
    pools = [
        build_pool(id=1, name="all-google", sources=[source("Google")]),
        build_pool(id=2, name="google-uk", sources=[source("google.co.uk")]),
        build_pool(id=3, name="gclid", sources=[source("Any", ["gclid=*"])]),
        build_pool(id=4, name="gclid-abc", sources=[source("Any", ["gclid=abc"])]),
    ]
    found = lint(pools, {"1": 1})
    unreachable = [w for w in found if w.code == "unreachable-source"]
    assert [w.path for w in unreachable] == [
        "[1].replacement_configuration.tracking_sources[0]",
        "[3].replacement_configuration.tracking_sources[0]",
    ]
    assert "at step 3, priority" in unreachable[0].message
    # gclid=abc has no more conditions than gclid=*, which matches whenever it does
    # and is listed first
    assert "pool 'gclid' (key 3" in unreachable[1].message
    assert "at step 4, registration order" in unreachable[1].message
    assert "order-tie" not in [w.code for w in found]


def test_lint_unreachable_by_order_and_by_organic() -> None:
    pools = [
        build_pool(id=1, name="first", sources=[source("Any", ["gclid=*"])]),
        build_pool(id=2, name="copy", sources=[source("any", ["GCLID=%"])]),
        build_pool(id=3, name="organic", sources=[source("Bing", ["x=1"], track_organic=True)]),
        build_pool(id=4, name="bing-all", sources=[source("Bing")]),
    ]
    found = lint(pools, {"4": 1})
    paths = [w.path for w in found if w.code == "unreachable-source"]
    assert "[1].replacement_configuration.tracking_sources[0]" in paths
    assert "[2].replacement_configuration.tracking_sources[0]" not in paths  # x=1 can still win


def test_lint_reports_order_ties_with_an_example_visit() -> None:
    pools = [
        build_pool(id=1, name="ads", sources=[source("Any", ["gclid=*"])]),
        build_pool(id=2, name="campaign", sources=[source("Any", ["utm_campaign=spring"])]),
        build_pool(id=3, name="bing-ads", sources=[source("Any", ["msclkid=*"])]),
    ]
    ties = [w for w in lint(pools) if w.code == "order-tie"]
    assert len(ties) == 2  # gclid+campaign, msclkid+campaign; never gclid+msclkid
    assert "?gclid=x&utm_campaign=spring" in ties[0].message
    assert "'ads' wins only because it is listed first" in ties[0].message
    assert not [w for w in lint(pools, {"2": 1}) if w.code == "order-tie"]


def test_lint_no_tie_when_no_single_value_fits_both() -> None:
    pools = [
        build_pool(id=1, name="a", sources=[source("Any", ["utm_campaign=spring"])]),
        build_pool(id=2, name="b", sources=[source("Any", ["utm_campaign=summer"])]),
        build_pool(id=3, name="c", sources=[source("Any", ["utm_campaign=sum*"])]),
    ]
    ties = [w for w in lint(pools) if w.code == "order-tie"]
    assert [w.path for w in ties] == ["[2].replacement_configuration.tracking_sources[0]"]
    assert "utm_campaign=summer" in ties[0].message


def test_lint_tie_needs_overlapping_referrers() -> None:
    pools = [
        build_pool(id=1, name="google", sources=[source("Google")]),
        build_pool(id=2, name="bing", sources=[source("Bing")]),
        build_pool(id=3, name="partner", sources=[source("example.org")]),
        build_pool(id=4, name="partner-shop", sources=[source("shop.example.org")]),
    ]
    found = lint(pools)
    assert "order-tie" not in [w.code for w in found]
    assert [w.path for w in found if w.code == "unreachable-source"] == [
        "[3].replacement_configuration.tracking_sources[0]"
    ]


def test_lint_mixed_wildcards() -> None:
    pools = [
        build_pool(id=1, name="a", sources=[source("Any", ["gclid=*"]), source("%google.%")]),
        build_pool(id=2, name="b", sources=[source("Bing", ["gclid=%"]), source("*google.*")]),
        build_pool(id=3, name="c", sources=[source("Yahoo", ["promo=%sale*"])]),
    ]
    mixed = [w for w in lint(pools) if w.code == "mixed-wildcards"]
    assert sorted(w.path for w in mixed) == [
        "[1].replacement_configuration.tracking_sources[0].url_triggers[0]",
        "[1].replacement_configuration.tracking_sources[1].referrer_domain",
        "[2].replacement_configuration.tracking_sources[0].url_triggers[0]",
    ]
    assert any("'gclid=%' is written 'gclid=*' at [0]" in w.message for w in mixed)


def test_lint_duplicate_numbers_compared_normalised() -> None:
    pools = [
        build_pool(
            id=1, name="a", sources=[source("Google")], numbers_to_replace=["0117 496 0500"]
        ),
        build_pool(
            id=2,
            name="b",
            sources=[source("Bing")],
            numbers_to_replace=["+44 (0)117 496-0500", "01174960501"],
        ),
        build_pool(id=3, name="c", sources=[source("Yahoo")], numbers_to_replace=["441174960501"]),
    ]
    found = [w for w in lint(pools) if w.code == "duplicate-number"]
    assert [(w.path, w.severity) for w in found] == [
        ("[1].replacement_configuration.numbers_to_replace[0]", "notice"),
        ("[2].replacement_configuration.numbers_to_replace[0]", "notice"),
    ]
    assert "+441174960500 is replaced by 2 pools" in found[0].message


def test_lint_catalogue_member_written_as_a_domain() -> None:
    pools = [
        build_pool(id=1, name="a", sources=[source("google.com")]),
        build_pool(id=2, name="b", sources=[source("%facebook.com%")]),
        build_pool(id=3, name="c", sources=[source("example.org")]),
    ]
    found = [w for w in lint(pools) if w.code == "catalogue-domain"]
    assert [w.path for w in found] == [
        "[0].replacement_configuration.tracking_sources[0].referrer_domain",
        "[1].replacement_configuration.tracking_sources[0].referrer_domain",
    ]
    assert "write 'Google'" in found[0].message
    assert "write 'Facebook'" in found[1].message


def test_lint_other_codes() -> None:
    pools = [
        build_pool(id=1, name="a", sources=[source("%"), source("Bing", None, track_organic=True)]),
        build_pool(id=2, name="b", sources=[source("Any", ["utm_campaign=summer%20sale"])]),
    ]
    found = {w.code: w for w in lint(pools)}
    assert found["wildcard-referrer"].path.endswith("tracking_sources[0].referrer_domain")
    assert found["organic-no-effect"].severity == "notice"
    assert "'%20'" in found["percent-escape"].message
    assert set(found) <= set(LINT_CODES)


def test_lint_clean_configuration() -> None:
    pools = [
        build_pool(
            id=1,
            name="ads",
            sources=[source("Any", ["gclid=*"])],
            numbers_to_replace=["0117 496 0500"],
        ),
        build_pool(
            id=2, name="google", sources=[source("Google")], numbers_to_replace=["0117 496 0501"]
        ),
        build_pool(
            id=3, name="rest", sources=[source("Any")], numbers_to_replace=["0117 496 0502"]
        ),
    ]
    assert lint(pools) == []
    assert codes(pools) == []


def test_lint_warning_text() -> None:
    (warning,) = lint([build_pool(id=1, name="a", sources=[source("google.com")])])
    assert str(warning).startswith(
        "[0].replacement_configuration.tracking_sources[0].referrer_domain: warning "
        "[catalogue-domain] 'google.com' matches only google.com"
    )


# ---- pool status ---------------------------------------------------------------------------


def with_status(pool: NumberPool, status: str) -> NumberPool:
    return NumberPool.model_validate(
        dict(pool.model_dump(mode="json", by_alias=True), status=status)
    )


@pytest.mark.parametrize(
    ("status", "leases"),
    [
        ("active", True),
        (" ACTIVE ", True),
        ("deleted", False),
        ("inactive", False),
        ("suspended", False),
        ("activated", False),
    ],
)
def test_only_active_pools_match(status: str, leases: bool) -> None:
    pools = [
        build_pool(id=1, name="ads", sources=[source("Any", ["gclid=*"])]),
        with_status(
            build_pool(id=2, name="campaign", sources=[source("Any", ["gclid=*&utm_campaign=x"])]),
            status,
        ),
        build_pool(id=3, name="rest", sources=[source("Any")]),
    ]
    rules = compile_pools(pools)
    assert rules.active == (True, leases, True)
    assert len(rules) == 3  # kept, so that explain and lint can speak of it
    found = winner(rules, f"{URL}?gclid=1&utm_campaign=x")
    assert (found.pool_name, found.pool_index) == (("campaign", 1) if leases else ("ads", 0))
    explanation = rules.explain(f"{URL}?gclid=1&utm_campaign=x", None, BROWSER)
    assert explanation.match == found
    assert (explanation.pools[1].outcome == "inactive") is not leases


def test_an_inactive_pool_never_matches_and_its_neighbours_keep_their_indexes() -> None:
    pools = [with_status(build_pool(id=1, name="gone", sources=[source("Any")]), "deleted")]
    rules = compile_pools(pools)
    assert rules.match(URL, None, BROWSER) is None
    assert rules.match(f"{URL}?gclid=1", "https://www.google.com/", BROWSER) is None
    pools.append(build_pool(id=2, name="rest", sources=[source("Any")]))
    found = winner(compile_pools(pools), URL)
    assert (found.pool_index, found.pool_key) == (1, "2")


def test_a_request_counts_as_active() -> None:
    request = NumberPoolRequest.model_validate(
        {
            "name": "Spring sale",
            "match_period": 30,
            "quantity": 1,
            "phone_number_request": {
                "number_type": "international",
                "match_type": "geographic",
                "iso_country": "GB",
                "city": "Bristol",
            },
            "replacement_configuration": {
                "numbers_to_replace": ["0117 496 0999"],
                "tracking_sources": [source("Any")],
            },
            "call_routes": {
                "route_type": "Basic",
                "route": {"termination_number": "+441174960999"},
            },
        }
    )
    rules = compile_pools([request])
    assert rules.active == (True,)
    assert winner(rules, URL).pool_name == "Spring sale"
    assert lint([request]) == []


def test_explain_says_an_inactive_pool_leases_no_numbers() -> None:
    pools = [
        with_status(
            build_pool(id=1, name="old ads", sources=[source("Any", ["gclid=*"])]), "deleted"
        ),
        build_pool(id=2, name="google", sources=[source("Google")]),
    ]
    rules = compile_pools(pools)
    explanation = rules.explain(f"{URL}?gclid=1", None, BROWSER)
    assert explanation.match is None
    old = explanation.pools[0]
    assert (old.outcome, old.source_index, old.lost_to) == ("inactive", 0, None)
    assert old.reason == (
        "status 'deleted' is not 'active': the pool leases no numbers; "
        "source 0 would match this visit"
    )
    text = str(explanation)
    assert "[0] 'old ads' (key 1): not active" in text
    assert "Result: no active pool matches this visit ('old ads' would, but it is not active)" in (
        text
    )
    # a visit it would not match anyway, and a crawler's
    quiet = rules.explain(URL, "https://www.google.com/", BROWSER)
    assert quiet.pools[0].reason == "status 'deleted' is not 'active': the pool leases no numbers"
    assert quiet.match is not None
    assert quiet.match.pool_name == "google"
    crawler = rules.explain(f"{URL}?gclid=1", None, GOOGLEBOT)
    assert crawler.pools[0].outcome == "inactive"


def test_lint_warns_of_an_inactive_pool_and_leaves_it_out_of_the_checks_between_pools() -> None:
    pools = [
        with_status(
            build_pool(
                id=1,
                name="gone",
                sources=[source("Any", ["gclid=*"])],
                numbers_to_replace=["0117 496 0500"],
            ),
            "deleted",
        ),
        build_pool(
            id=2,
            name="ads",
            sources=[source("Any", ["gclid=abc"])],
            numbers_to_replace=["0117 496 0500"],
        ),
        build_pool(
            id=3,
            name="campaign",
            sources=[source("Bing", ["utm_campaign=x"])],
            numbers_to_replace=["0117 496 0501"],
        ),
        with_status(
            build_pool(id=4, name="paused", sources=[source("Bing", ["utm_source=y"])]), "inactive"
        ),
    ]
    found = lint(pools)
    assert [(w.path, w.code, w.severity) for w in found] == [
        ("[0].status", "inactive-pool", "warning"),
        ("[3].status", "inactive-pool", "warning"),
    ]
    assert found[0].message == (
        "pool 'gone': status 'deleted' is not 'active': the pool leases no numbers, so it "
        "never matches a visit; the checks between pools leave it out"
    )
    assert "inactive-pool" in LINT_CODES
    # active, the same pools would be unreachable, tied and sharing a number
    active = codes([with_status(p, "active") for p in pools])
    assert {"unreachable-source", "order-tie", "duplicate-number"} <= set(active)
