"""Real user agents for the crawler tests: the shared corpus and the project's own lists.

``../shared/corpora/user-agents/`` holds ua-parser's test cases: ``test_ua.yaml``
(agents labelled with their browser or client family) and ``test_device.yaml``
(agents labelled with their device; crawlers are the device ``Spider``). They are
read from there, never copied. :func:`browser_agents` is the human side: every agent
of both files except crawlers (device ``Spider``), agents of a crawler or tool family
(:data:`NOT_BROWSER_FAMILY`) and clients that fetch pages without a person looking
at them (:data:`NOT_BROWSER_CLIENT`). :func:`in_app_agents` is the part of it, and
of ``tests/data/human_agents.tsv``, written by an app's built-in browser.

``tests/data/crawler_agents.tsv`` is a crawler corpus taken from the crawlers' own
documentation, not from the crawler list's examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CORPUS",
    "IN_APP",
    "NOT_BROWSER_CLIENT",
    "NOT_BROWSER_FAMILY",
    "Agent",
    "browser_agents",
    "crawler_agents",
    "human_agents",
    "in_app_agents",
    "read_cases",
]

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "user-agents"
DATA = Path(__file__).resolve().parent / "data"

# Families of ``test_ua.yaml`` that are crawlers, HTTP libraries, tools or services,
# not a person's browser: a family name with one of these words, or one of the names.
NOT_BROWSER_FAMILY = re.compile(
    r"bot|crawl|spider|scrap|archiv|seeker|slurp|nutch|heritrix|index|sleuth|monitor|"
    r"pinger|synthetic|catchpoint|gomez|checklink|sniffer|whatweb|scanner|prober|masscan|"
    r"feed|rss|fetch|proxy|bingpreview|headless|phantomjs|http|curl|wget|python|java|perl|"
    r"axios|okhttp|^got$|^ahc$|aws-|sdk|boto|s3|rclone|cyberduck|^transmit$|lftp|aria2|"
    r"axel|apt-|update|^jersey$|^unirest|reactornetty|reqwest|ureq|^guzzle|postman|"
    r"httpie|^go-|minio|^node-|cloudfoundry|cloudcockpit|sap |eureka|"
    r"vert\.x|apache-|lua-resty|xsuaa|netweaver|jaeger|site24x7|^monitis|davdroid|"
    r"^wordpress$|^008$|^argus$|^goodzer$|^grub$|^webzip$|^y!j|^aboundex$|^appengine|"
    r"^ask jeeves$|^charlotte$|^flamingo|^genieo$|^mediapartners|^vagabondo$|^wotbox$|"
    r"^yeti$|^zyborg$|^findlinks$|^ichiro|^larbin$|^httrack$|^bubing$|tlsprober|"
    r"^webthumb$|^reaper$|^holmes$|^voyager$|^steeler$|^pycurl$|^surveyon$|"
    r"^ping-service$|^ogscrper$|^fme$|^geoevent|^owncloud$|^nextcloud$|^jnlp$|^other$|"
    # search engines and services of the client file whose family names no crawler word
    r"^(?:50\.nu|accoona-.*|altresium|axtaris|baidumobaider|boardreader|dnsgroup|"
    r"dataparksearch|edi|hiddenmarket|hoowwwer|iconsurf|iltrovatore|infohelfer|isara|kraken|"
    r"kurzor|leia|looq|linkaider|llaut|objectssearch|orbiter|pagesinventory|pathdefender|"
    r"paxleframework|peew|pompos|postpost|redcarpet|rival iq|shopsalad|simpy|sitecon|"
    r"tailsweep|thumbshots\.ru|webcrunch|yowedo|zao|altavista|boitho\.com-dc|clumboot|"
    r"envolk|gonzo1|grub-client|htdig|lycos|mozdex|scooter|semanticdiscovery|sproose|"
    r"urlgrabber|wminer|www\.almaden\.ibm\.com|bloglovin|ghost|newsgator|stringer|rusoto|"
    r"openbsd ftp|pyamf|microsoft-cryptoapi|sophosagent|ingrid|vse|infuzapp)$",
    re.IGNORECASE,
)
# Agents that are programs, not browsers, in families that also hold browsers: a
# messaging app's own client (it also fetches link previews), a blog server's
# pingbacks, the WIRE and Pinterest crawlers, Google's page previews, and a crawler
# the device file takes for a Huawei phone.
NOT_BROWSER_CLIENT = re.compile(
    r"^WhatsApp\+?/|^WordPress/|WordPress/\d[^;]*; https?://|^WIRE/[\d.]+ \(Linux|"
    r"^Pinterest/0\.|^Google Web Preview|^Huaweisymantecspider"
)
# Marks of an app's built-in browser (Facebook, Instagram, Messenger, LINE, WeChat,
# Weibo, Pinterest, Snapchat, TikTok, LinkedIn, X, KakaoTalk, Telegram, the Google app).
IN_APP = re.compile(
    r"FBAN/|FBAV/|FB_IAB|FBIOS|MetaIAB|Instagram \d|\bLine/\d|MicroMessenger/|Weibo|"
    r"\[Pinterest/|Pinterest for Android|Snapchat/?\d|musical_ly|BytedanceWebview|TikTok|"
    r"LinkedInApp|Twitter for|TwitterAndroid|KAKAOTALK|Telegram|GSA/\d|Viber/\d|"
    r"Slack_SSB|baiduboxapp|Barcelona \d",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Agent:
    """One user agent of a corpus, with its family (and, for crawlers, its source)."""

    user_agent: str
    family: str
    source: str = ""


def _unquote(value: str) -> str:
    text = value.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def read_cases(path: Path) -> list[Agent]:
    """The ``user_agent_string``/``family`` pairs of one ua-parser test file."""
    cases: list[Agent] = []
    agent: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  - user_agent_string: "):
            agent = _unquote(line.partition(": ")[2])
        elif line.startswith("    family: ") and agent is not None:
            cases.append(Agent(agent, _unquote(line.partition(": ")[2])))
            agent = None
    return cases


def browser_agents() -> list[Agent]:
    """The human agents of the shared corpus (distinct), or ``[]`` when it is absent."""
    if not CORPUS.is_dir():
        return []
    devices = read_cases(CORPUS / "test_device.yaml")
    clients = read_cases(CORPUS / "test_ua.yaml")
    crawlers = {a.user_agent for a in devices if a.family == "Spider"}
    tools = {a.user_agent for a in clients if NOT_BROWSER_FAMILY.search(a.family)}
    seen: set[str] = set()
    agents: list[Agent] = []
    for agent in [*clients, *devices]:
        ua = agent.user_agent
        if ua in seen or ua in crawlers or ua in tools or NOT_BROWSER_CLIENT.search(ua):
            continue
        seen.add(ua)
        agents.append(agent)
    return agents


def _read_tsv(path: Path) -> list[Agent]:
    rows: list[Agent] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        family, source, user_agent = line.split("\t")
        rows.append(Agent(user_agent, family, source))
    return rows


def human_agents() -> list[Agent]:
    """``tests/data/human_agents.tsv``: people's agents reported as flagged, and in-app browsers."""
    return _read_tsv(DATA / "human_agents.tsv")


def crawler_agents() -> list[Agent]:
    """``tests/data/crawler_agents.tsv``: crawlers' agents as their operators document them."""
    return _read_tsv(DATA / "crawler_agents.tsv")


def in_app_agents() -> list[Agent]:
    """The in-app browser agents of the shared corpus and of ``human_agents.tsv``."""
    found = [a for a in browser_agents() if IN_APP.search(a.user_agent)]
    seen = {a.user_agent for a in found}
    found += [a for a in human_agents() if IN_APP.search(a.user_agent) and a.user_agent not in seen]
    return found
