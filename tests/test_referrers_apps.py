"""Referrers of app traffic and of the engines' ad-serving hosts: classified with their network."""

from __future__ import annotations

import pytest

from dni_engine import compile_pools
from dni_engine.referrers import (
    CATALOGUE,
    catalogue_entry,
    classify_host,
    parse_referrer_domain,
    referrer_host,
)
from dni_engine.schema import NumberPool
from dni_engine.testing import build_pool, oracle, source

APPS = [
    ("android-app://com.google.android.googlequicksearchbox", "Google"),
    ("android-app://com.google.android.googlequicksearchbox/https/www.google.com", "Google"),
    ("android-app://com.google.android.apps.searchlite/", "Google"),
    ("android-app://com.facebook.katana/", "Facebook"),
    ("android-app://com.facebook.lite", "Facebook"),
    ("android-app://com.facebook.orca", "Facebook"),
    ("android-app://com.instagram.android/", "Instagram"),
    ("android-app://com.linkedin.android", "LinkedIn"),
    ("android-app://com.twitter.android/", "Twitter"),
    ("ANDROID-APP://COM.FACEBOOK.KATANA", "Facebook"),
]
AD_HOSTS = [
    ("https://www.googleadservices.com/pagead/aclk?sa=L&ai=x", "Google"),
    ("https://googleads.g.doubleclick.net/pagead/ads", "Google"),
    ("https://ad.doubleclick.net/ddm/clk/1", "Google"),
    ("https://tpc.googlesyndication.com/simgad/1", "Google"),
    ("https://cc.bingj.com/cache.aspx?q=a", "Bing"),
    ("https://search.msn.com/results.aspx?q=a", "Bing"),
    ("https://uk.search.msn.com/results.aspx?q=a", "Bing"),
]
NOT_MEMBERS = [
    "android-app://com.google.android.gm/",  # Gmail: not a search referral
    "android-app://com.facebook.katana.evil/",
    "android-app://org.example.reader/",
    "https://www.msn.com/en-gb/news",  # MSN's portal is not Bing's search
    "https://msn.com/",
    "https://doubleclick.net.evil.example/",
    "https://evildoubleclick.net/",
    "https://searchmsn.com/",
    "https://bingj.com.example.org/",
]


@pytest.mark.parametrize(("referrer", "name"), APPS + AD_HOSTS)
def test_classified_with_their_network(referrer: str, name: str) -> None:
    host = referrer_host(referrer)
    assert classify_host(host) == name
    assert oracle.catalogue_name(host) == name


@pytest.mark.parametrize("referrer", NOT_MEMBERS)
def test_look_alikes_and_other_apps_are_not_members(referrer: str) -> None:
    host = referrer_host(referrer)
    assert classify_host(host) is None
    assert oracle.catalogue_name(host) is None


def _pool(referrer_domain: str) -> NumberPool:
    return build_pool(
        id=1,
        name=referrer_domain,
        group_id=1,
        numbers=["+441174960001"],
        first_number_id=10,
        sources=[source(referrer_domain)],
        numbers_to_replace=["0117 496 0000"],
        termination_number="+441174960000",
    )


CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(("referrer", "name"), APPS + AD_HOSTS)
def test_a_catalogue_pool_claims_the_visit(referrer: str, name: str) -> None:
    rules = compile_pools([_pool(name)])
    found = rules.match("https://shop.example/", referrer, CHROME)
    assert found is not None
    assert found.referrer_class == name


def test_a_domain_rule_does_not_take_an_app() -> None:
    # "facebook.com" as a domain is about web hosts; the app counts for the name Facebook.
    rule = parse_referrer_domain("facebook.com")
    host = referrer_host("android-app://com.facebook.katana")
    assert not rule.matches(host, classify_host(host))
    assert parse_referrer_domain("Facebook").matches(host, classify_host(host))


def test_the_catalogue_describes_apps_and_hosts() -> None:
    google = catalogue_entry("Google")
    bing = catalogue_entry("bing")
    assert google is not None
    assert bing is not None
    assert "the app com.google.android.googlequicksearchbox" in google.description
    assert "doubleclick.net" in google.description
    assert "search.msn.com" in bing.description
    apps = [app for entry in CATALOGUE for app in entry.apps]
    assert len(apps) == len(set(apps))
    for entry in CATALOGUE:
        for app in entry.apps:
            assert classify_host(app) == entry.name
