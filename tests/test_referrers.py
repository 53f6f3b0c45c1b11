"""Referrer hosts, the catalogue and referrer_domain rules."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.referrers import (
    CATALOGUE,
    RuleKind,
    catalogue_entry,
    classify_host,
    parse_referrer_domain,
    referrer_host,
)
from dni_engine.testing import oracle


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.Google.co.uk:443/search?q=a", "www.google.co.uk"),
        ("www.google.co.uk", "www.google.co.uk"),
        ("google.com:8080/x", "google.com"),
        ("//l.facebook.com/l.php?u=x", "l.facebook.com"),
        ("http://user:secret@t.co/abc", "t.co"),
        ("http://google.com./", "google.com"),
        ("HTTPS://SEARCH.YAHOO.CO.JP/", "search.yahoo.co.jp"),
        ("https://BÜCHER.de/", "xn--bcher-kva.de"),
        ("https://xn--bcher-kva.de/", "xn--bcher-kva.de"),
        ("https://google。com/", "google.com"),  # ideographic full stop
        ("http:\\\\google.com\\path", "google.com"),
        ("  https://www.bing.com/  ", "www.bing.com"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("https://shop.example.org?x=1", "shop.example.org"),
        ("https://shop.example.org#top", "shop.example.org"),
    ],
)
def test_referrer_host(referrer: str, host: str) -> None:
    assert referrer_host(referrer) == host


@pytest.mark.parametrize(
    "referrer",
    [
        None,
        "",
        "   ",
        "about:blank",
        "data:text/html,hi",
        "mailto:someone@example.org",
        "http://[::1]/",
        "\x00\xff\xfe",
        "https://",
        "https://" + "a" * 300 + ".com/",
        "https://bücher..de/",
    ],
)
def test_referrer_without_a_usable_host(referrer: str | None) -> None:
    assert referrer_host(referrer) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_referrer_host_never_raises(referrer: str) -> None:
    host = referrer_host(referrer)
    assert host is None or (host == host.lower() and host.isascii() and len(host) <= 253)
    classify_host(host)


def test_huge_referrer_reads_only_its_start() -> None:
    assert referrer_host("https://www.google.com/" + "x" * 100_000) == "www.google.com"
    assert referrer_host("https://" + "a" * 100_000) is None


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("google.com", "Google"),
        ("www.google.co.uk", "Google"),
        ("google.com.br", "Google"),
        ("news.google.de", "Google"),
        ("www.bing.com", "Bing"),
        ("search.yahoo.co.jp", "Yahoo"),
        ("t.co", "Twitter"),
        ("x.com", "Twitter"),
        ("mobile.twitter.com", "Twitter"),
        ("lnkd.in", "LinkedIn"),
        ("www.linkedin.com", "LinkedIn"),
        ("l.facebook.com", "Facebook"),
        ("fb.me", "Facebook"),
        ("duckduckgo.com", "DuckDuckGo"),
        ("www.baidu.com", "Baidu"),
        ("yandex.ru", "Yandex"),
        ("ya.ru", "Yandex"),
        ("l.instagram.com", "Instagram"),
        ("youtu.be", "YouTube"),
        ("old.reddit.com", "Reddit"),
        ("www.tiktok.com", "TikTok"),
        ("www.pinterest.co.uk", "Pinterest"),
        ("pin.it", "Pinterest"),
        ("evilgoogle.com", None),
        ("google.evil.com", None),
        ("google.com.evil.net", None),
        ("facebook.com.example.org", None),
        ("t.co.uk", None),
        ("google", None),
        ("localhost", None),
        ("127.0.0.1", None),
        ("blogspot.com", None),
        (None, None),
    ],
)
def test_classify_host(host: str | None, name: str | None) -> None:
    assert classify_host(host) == name
    assert oracle.catalogue_name(host) == name


def test_catalogue_has_the_vendor_seven_and_more() -> None:
    vendor = {e.name: (e.vendor_id, e.vendor_domain) for e in CATALOGUE if e.vendor_id}
    assert vendor == {
        "Google": (1, "%google.%"),
        "Bing": (2, "%bing.%"),
        "Yahoo": (3, "%yahoo.%"),
        "Twitter": (14, "%twitter.com%"),
        "LinkedIn": (16, "%linkedin.com%"),
        "Facebook": (17, "%facebook.com%"),
    }
    names = {e.name for e in CATALOGUE}
    assert {
        "DuckDuckGo",
        "Baidu",
        "Yandex",
        "Instagram",
        "YouTube",
        "Reddit",
        "TikTok",
        "Pinterest",
    } <= names
    for entry in CATALOGUE:
        assert all(classify_host(h) == entry.name for h in entry.example_hosts), entry.name


@pytest.mark.parametrize(
    ("value", "kind", "canonical"),
    [
        ("Any", RuleKind.ANY, "Any"),
        ("*", RuleKind.ANY, "Any"),
        (" aNy ", RuleKind.ANY, "Any"),
        ("google", RuleKind.CATALOGUE, "Google"),
        ("LINKEDIN", RuleKind.CATALOGUE, "LinkedIn"),
        ("%google.%", RuleKind.PATTERN, "%google.%"),
        ("*.Example.*", RuleKind.PATTERN, "*.example.*"),
        ("%", RuleKind.PATTERN, "%"),
        ("Example.org", RuleKind.DOMAIN, "example.org"),
        ("bücher.de", RuleKind.DOMAIN, "xn--bcher-kva.de"),
        ("shop.example.co.uk", RuleKind.DOMAIN, "shop.example.co.uk"),
    ],
)
def test_parse_referrer_domain(value: str, kind: RuleKind, canonical: str) -> None:
    rule = parse_referrer_domain(value)
    assert (rule.kind, rule.value) == (kind, canonical)
    assert rule.description


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("Googel", "neither a known referrer"),
        ("https://example.org/", "looks like a URL"),
        ("example.invalidtld", "known public suffix"),
        ("co.uk", "is a public suffix"),
        ("%goo gle%", "may contain only"),
        ("-bad-.com", "neither a known referrer"),
    ],
)
def test_parse_referrer_domain_rejects(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_referrer_domain(value)


@pytest.mark.parametrize(
    ("value", "host", "expected"),
    [
        ("Any", None, True),
        ("Google", None, False),
        ("Google", "www.google.co.uk", True),
        ("Google", "evilgoogle.com", False),
        ("example.org", "example.org", True),
        ("example.org", "shop.example.org", True),
        ("example.org", "badexample.org", False),
        ("example.org", "example.org.evil.net", False),
        ("shop.example.org", "example.org", False),
        ("%google.%", "www.google.co.uk", True),
        ("%google.%", "evilgoogle.com", True),
        ("%google.%", "www.bing.com", False),
        ("*.example.*", "example.org", False),
        ("*.example.*", "www.example.org", True),
        ("%", "anything.example", True),
        ("%", None, False),
    ],
)
def test_rule_matches(value: str, host: str | None, expected: bool) -> None:
    rule = parse_referrer_domain(value)
    assert rule.matches(host, classify_host(host)) is expected
    assert oracle.referrer_matches(value, host) is expected


def test_catalogue_lookup_is_case_insensitive() -> None:
    entry = catalogue_entry(" tiktok ")
    assert entry is not None
    assert entry.name == "TikTok"
    assert catalogue_entry("Any") is None
