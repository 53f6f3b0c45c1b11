"""Who counts as a crawler: the corrections as data, the site's options, the pinned list."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import dni_engine
from dni_engine import DEFAULT_CRAWLERS, ConfigError, Crawlers, Engine, compile_pools
from dni_engine.bots import (
    MAX_USER_AGENT_LENGTH,
    crawler_examples,
    crawler_patterns,
    crawler_rule_patterns,
    is_bot,
)
from dni_engine.crawler_rules import HEADLESS_FAMILY, HEADLESS_PATTERNS, NARROWINGS, SIGNALS
from dni_engine.schema import NumberPool
from dni_engine.testing import build_pool, source
from dni_engine.testing.oracle import is_crawler
from dni_engine.web.config import WebConfig
from tests.ua_corpus import browser_agents, human_agents

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = browser_agents()
HUMANS = [a.user_agent for a in human_agents()]
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.60 Safari/537.36"
)

# ---- the agents the report on false positives and misses quoted ----------------------

QUOTED_PEOPLE = [
    "Mozilla/5.0 (Linux; Android 15; CPH2581 Build/AP3A.240617.008) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36",
]
QUOTED_CRAWLERS = [
    "Mozilla/5.0 (compatible; bingadsbot/1.0)",
    "facebookexternalua",
    "meta-externalads/1.1",
    "UniversalFeedParser/5.2.1 +https://github.com/kurtmckee/feedparser/",
    "Mozilla/5.0 (compatible; Ezooms/1.0; help@moz.com)",
    "Chef Client/18.2.7 (ruby-3.1.2-p20; ohai-18.1.3; x86_64-linux; +https://chef.io)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
    "+https://openai.com/bot",
    # PageSpeed Insights and Search Console's URL inspection
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
]


@pytest.mark.parametrize("user_agent", QUOTED_PEOPLE + HUMANS)
def test_quoted_and_in_app_people_are_not_crawlers(user_agent: str) -> None:
    assert not is_bot(user_agent)
    assert not is_crawler(user_agent)


@pytest.mark.parametrize("user_agent", QUOTED_CRAWLERS)
def test_quoted_crawlers_are_caught(user_agent: str) -> None:
    assert is_bot(user_agent)
    assert is_crawler(user_agent)


@pytest.mark.parametrize("size", [8 * 1024, 4 * 1024 * 1024])
def test_very_long_agents_are_crawlers_unread(size: int) -> None:
    agent = (CHROME + " ") * (size // (len(CHROME) + 1))
    assert len(agent) > MAX_USER_AGENT_LENGTH
    assert is_bot(agent)
    assert Crawlers(exempt=["Chrome"]).is_bot(agent)  # the options do not read it either


# ---- the corrections, as data ----------------------------------------------------------


@pytest.mark.parametrize("narrowing", NARROWINGS, ids=lambda n: n.pattern)
def test_each_narrowing_frees_its_example_person(narrowing: object) -> None:
    from dni_engine.crawler_rules import Narrowing

    assert isinstance(narrowing, Narrowing)
    assert narrowing.pattern in crawler_patterns(), "the list no longer has this pattern"
    assert re.search(narrowing.pattern, narrowing.human), "the example is not what it fixes"
    if narrowing.replacement is not None:
        assert not re.search(narrowing.replacement, narrowing.human)
    assert narrowing.reason
    assert not is_bot(narrowing.human)


def test_narrowed_patterns_keep_the_lists_crawler_examples() -> None:
    """A narrowing only frees people: the list's examples of a narrowed pattern still match it."""
    by_pattern = {
        str(item["pattern"]): [str(i) for i in item["instances"]]
        for item in __import__("crawleruseragents").CRAWLER_USER_AGENTS_DATA
    }
    for narrowing in NARROWINGS:
        if narrowing.replacement is None:
            continue
        for example in by_pattern[narrowing.pattern]:
            assert re.search(narrowing.replacement, example), (narrowing.pattern, example)


def test_every_list_example_left_is_a_crawler() -> None:
    examples = crawler_examples()
    assert len(examples) > 1000
    assert [ua for ua in examples if not is_bot(ua)] == []


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: f"{s.family}:{s.pattern[:24]}")
def test_each_signal_catches_its_example_and_no_person(signal: object) -> None:
    from dni_engine.crawler_rules import Signal

    assert isinstance(signal, Signal)
    regex = re.compile(signal.pattern, re.IGNORECASE)
    assert regex.search(signal.example)
    assert is_bot(signal.example)
    people = [*HUMANS, *(a.user_agent for a in BROWSERS)]
    assert [ua for ua in people if regex.search(ua)] == []


# ---- the pinned list and its guard ------------------------------------------------------

# Browser agents of the shared corpus that the crawler list, as narrowed, flags: none
# for the tested release. A new release whose patterns take people for crawlers fails
# here, naming them, before it can reach a site.
RECORDED_FLAGGED = 0


def test_the_crawler_list_is_pinned_to_the_tested_release_line() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.startswith("crawler-user-agents")]
    assert pins == ["crawler-user-agents>=1.67,<1.68"]
    installed = tuple(int(x) for x in version("crawler-user-agents").split(".")[:2])
    assert installed == (1, 67), "install the tested release line, or re-run this guard"


@pytest.mark.skipif(not BROWSERS, reason="../shared/corpora/user-agents/ is not here")
def test_the_installed_list_does_not_take_more_people_for_crawlers() -> None:
    listed, _ = crawler_rule_patterns()
    regexes = [re.compile(p) for p in listed]
    flagged = {
        a.user_agent: [r.pattern for r in regexes if r.search(a.user_agent)]
        for a in BROWSERS
        if any(r.search(a.user_agent) for r in regexes)
    }
    assert len(flagged) <= RECORDED_FLAGGED, flagged


def test_the_installed_list_frees_the_quoted_people() -> None:
    listed, _ = crawler_rule_patterns()
    regexes = [re.compile(p) for p in listed]
    assert [(ua, r.pattern) for ua in HUMANS for r in regexes if r.search(ua)] == []


# ---- the site's options -----------------------------------------------------------------


def test_the_default_policy() -> None:
    assert DEFAULT_CRAWLERS.is_default
    assert Crawlers().is_default
    assert Crawlers() == DEFAULT_CRAWLERS
    assert not Crawlers(extra=["x"]).is_default
    assert not Crawlers(headless_is_human=True).is_default
    for agent in (None, "", "  ", 42):
        assert DEFAULT_CRAWLERS.is_bot(agent)
    assert not DEFAULT_CRAWLERS.is_bot(CHROME)


def test_extra_patterns_add_crawlers() -> None:
    crawlers = Crawlers(extra=[r"Acme/\d", "(?i)partner-probe"])
    assert crawlers.is_bot(CHROME + " Acme/2.0")
    assert crawlers.is_bot(CHROME + " PARTNER-PROBE")
    assert not crawlers.is_bot(CHROME + " Acme/x")
    assert not crawlers.is_bot(CHROME)
    assert not is_bot(CHROME + " Acme/2.0")  # the default policy is untouched


def test_exempt_patterns_make_people_of_crawlers() -> None:
    monitor = "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
    crawlers = Crawlers(exempt=["UptimeRobot/"])
    assert is_bot(monitor)
    assert not crawlers.is_bot(monitor)
    assert crawlers.is_bot("Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert crawlers.is_bot("")  # a missing agent is never exempt
    assert Crawlers(extra=["Acme"], exempt=["Acme"]).is_bot("Acme") is False


def test_headless_browsers_as_people() -> None:
    people = Crawlers(headless_is_human=True)
    for agent in (
        HEADLESS,
        CHROME + " Puppeteer",
        CHROME + " Playwright/1.44.0",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
    ):
        assert is_bot(agent)
        assert not people.is_bot(agent), agent
    # a headless browser that is also another crawler stays one
    assert people.is_bot(HEADLESS + " Chrome-Lighthouse")
    assert people.is_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    listed, added = crawler_rule_patterns(headless_is_human=True)
    assert not HEADLESS_PATTERNS & set(listed)
    assert len(added) == len([s for s in SIGNALS if s.family != HEADLESS_FAMILY])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"extra": "Googlebot"}, "extra"),
        ({"extra": ["("]}, "extra[0]"),
        ({"exempt": ["ok", ""]}, "exempt[1]"),
        ({"exempt": [3]}, "exempt[0]"),
        pytest.param(
            {"headless_is_human": "yes"},
            "headless_is_human",
            marks=pytest.mark.skipif(
                dni_engine.COMPILED, reason="compiled, the argument's type is checked first"
            ),
        ),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        Crawlers(**kwargs)  # type: ignore[arg-type]


def test_answers_are_bounded_per_policy() -> None:
    crawlers = Crawlers(extra=["Zz"])
    for i in range(10_000):
        assert crawlers.is_bot(f"{CHROME} {i}") is False
    assert crawlers.is_bot("Zz") is True


# ---- the options reach the engine, the rules and the web integration ----------------------


def _pool() -> NumberPool:
    return build_pool(
        id=1,
        name="Any",
        group_id=1,
        numbers=["+441174960001"],
        first_number_id=10,
        sources=[source("Any")],
        numbers_to_replace=["0117 496 0000"],
        termination_number="+441174960000",
    )


def test_engine_takes_a_policy() -> None:
    monitor = "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
    plain = Engine([_pool()])
    assert plain.crawlers is DEFAULT_CRAWLERS
    assert plain.visit("v1", "https://shop.example/", None, monitor).outcome == "bot"
    crawlers = Crawlers(exempt=["UptimeRobot/"], extra=["Acme/"])
    engine = Engine([_pool()], crawlers=crawlers)
    assert engine.crawlers is crawlers
    assert engine.visit("v1", "https://shop.example/", None, monitor).outcome == "new"
    assert engine.visit("v2", "https://shop.example/", None, CHROME + " Acme/1").outcome == "bot"
    # A compiled engine checks the argument's type itself (a TypeError naming the type).
    with pytest.raises(TypeError if dni_engine.COMPILED else ConfigError):
        Engine([_pool()], crawlers=["UptimeRobot"])  # type: ignore[arg-type]
    if not dni_engine.COMPILED:
        with pytest.raises(ConfigError, match="crawlers"):
            Engine([_pool()], crawlers=["UptimeRobot"])  # type: ignore[arg-type]


def test_rules_take_a_policy() -> None:
    rules = compile_pools([_pool()])
    crawlers = Crawlers(headless_is_human=True)
    assert rules.match("https://shop.example/", None, HEADLESS) is None
    assert rules.match("https://shop.example/", None, HEADLESS, crawlers=crawlers) is not None
    assert rules.explain("https://shop.example/", None, HEADLESS).match is None
    explained = rules.explain("https://shop.example/", None, HEADLESS, crawlers=crawlers)
    assert explained.match is not None


def test_web_config_takes_a_policy() -> None:
    crawlers = Crawlers(exempt=["UptimeRobot/"])
    config = WebConfig(secret="s" * 32, crawlers=crawlers)
    assert config.crawlers is crawlers
    assert WebConfig(secret="s" * 32).crawlers is None
    with pytest.raises(ConfigError, match="crawlers"):
        WebConfig(secret="s" * 32, crawlers="UptimeRobot")  # type: ignore[arg-type]
