"""Crawler detection: the literal prefilter answers exactly as the full pattern list."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.bots import (
    MAX_USER_AGENT_LENGTH,
    CrawlerMatcher,
    crawler_examples,
    crawler_patterns,
    is_bot,
    required_literal,
    top_level_branches,
)
from dni_engine.testing.oracle import is_crawler
from dni_engine.testing.strategies import BROWSER_USER_AGENTS

PATTERNS = crawler_patterns()
FULL = [re.compile(p) for p in PATTERNS]
MATCHER = CrawlerMatcher.compile(PATTERNS)


def searched(user_agent: str) -> bool:
    """The plain answer: some pattern of the list is found in the user agent."""
    return any(regex.search(user_agent) for regex in FULL)


def test_every_example_of_the_crawler_list_is_a_bot() -> None:
    examples = crawler_examples()
    assert len(examples) > 1000
    missed = [ua for ua in examples if not is_bot(ua)]
    assert missed == []


@pytest.mark.parametrize("user_agent", BROWSER_USER_AGENTS)
def test_browsers_are_not_bots(user_agent: str) -> None:
    assert not is_bot(user_agent)
    assert not searched(user_agent)


@pytest.mark.parametrize("user_agent", [None, "", "   ", "\t\n"])
def test_missing_or_blank_user_agents_are_bots(user_agent: str | None) -> None:
    assert is_bot(user_agent)


def test_not_a_string_counts_as_missing() -> None:
    assert is_bot(b"Mozilla/5.0")
    assert is_bot(42)


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "curl/8.4.0",
        "Wget/1.21",
        "python-requests/2.31.0",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "facebookexternalhit/1.1",
    ],
)
def test_well_known_crawlers(user_agent: str) -> None:
    assert is_bot(user_agent)
    assert is_crawler(user_agent)


def test_user_agents_over_the_limit_are_bots_unread() -> None:
    tail = " Googlebot/2.1"
    assert is_bot("Mozilla/5.0 " + "x" * 100_000 + tail)
    assert is_bot("Mozilla/5.0 " + "x" * 100_000)
    at_limit = "Mozilla/5.0 " + "x" * (MAX_USER_AGENT_LENGTH - 12)
    assert len(at_limit) == MAX_USER_AGENT_LENGTH
    assert not is_bot(at_limit)
    assert is_bot(at_limit + "x")


@pytest.mark.parametrize(
    ("branch", "literal"),
    [
        ("Googlebot\\/", "Googlebot/"),
        ("[wW]get", "get"),
        ("AdsBot-Google([^-]|$)", "AdsBot-Google"),
        ("BlogTraffic\\/\\d\\.\\d+ Feed-Fetcher", " Feed-Fetcher"),
        ("^curl", "curl"),
        ("ab?cde", "cde"),
        ("abcd*e", "abc"),
        ("abc+de", "abc"),
        ("abc{2}de", "ab"),
        ("ContextualBot[\\s\\S]*outcomes\\.net", "ContextualBot"),
        ("(sistrix|SISTRIX) [cC]rawler", "rawler"),
        ("x\\1y", None),
        ("abc)", None),
        ("[abc", None),
        ("(abc", None),
        ("", None),
    ],
)
def test_required_literal(branch: str, literal: str | None) -> None:
    assert required_literal(branch) == literal


def test_top_level_branches() -> None:
    assert top_level_branches("Automaton|Newsify Feed Fetcher") == [
        "Automaton",
        "Newsify Feed Fetcher",
    ]
    assert top_level_branches("(a|b)c") == ["(a|b)c"]
    assert top_level_branches("[|]x|y") == ["[|]x", "y"]
    assert top_level_branches("a\\|b") == ["a\\|b"]


def test_every_pattern_is_filtered_or_always_searched() -> None:
    branches = sum(len(top_level_branches(p)) for p in PATTERNS)
    assert MATCHER.prefiltered + len(MATCHER.always) == branches
    assert MATCHER.prefiltered > 0.95 * branches


_FRAGMENTS = [
    *BROWSER_USER_AGENTS,
    *(e[:30] for e in crawler_examples()[::40]),
    "bot",
    "Bot/",
    "crawler",
    "Spider",
    "wget",
    "Wget",
    "AdsBot-Google-Mobile",
    "AdsBot-Google ",
    " ",
    "/",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=4).map("".join))
def test_prefilter_agrees_with_searching_every_pattern(user_agent: str) -> None:
    assert MATCHER.matches(user_agent) == searched(user_agent)
    assert is_bot(user_agent) == is_crawler(user_agent)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_agrees_and_never_raises(user_agent: str) -> None:
    assert MATCHER.matches(user_agent) == searched(user_agent)
    assert is_bot(user_agent) == is_crawler(user_agent)
