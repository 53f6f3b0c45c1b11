"""Synthetic website traffic and access-log replay, as input to the pool-sizing simulation.

A :class:`TrafficModel` describes visitors: arrivals per hour (constant or a
24-hour profile), where they come from (paid search, organic search, direct,
referral, crawlers) built as real landing URLs and referrers, how long they stay
(page views and dwell), and whether and when they call. :func:`generate_sessions`
draws :class:`Session` objects from it in arrival order.

:func:`read_access_log` turns an Apache/Nginx *combined* access log into the same
sessions (visitor = client IP + user agent), and :func:`write_access_log` writes
synthetic traffic in that format, so a replay can be tested end to end.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from dni_engine._frozen import Frozen
from dni_engine.bots import is_bot
from dni_engine.errors import ConfigError, Problem
from dni_engine.referrers import referrer_host

__all__ = [
    "TYPICAL_DAY",
    "LogReplay",
    "Session",
    "SourceMix",
    "TrafficModel",
    "generate_sessions",
    "hourly_profile",
    "read_access_log",
    "write_access_log",
]

SECONDS_PER_HOUR = 3600.0

# A few real-world user agents; a crawler list for the bot share.
HUMAN_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
)
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
SEARCH_REFERRERS = (
    "https://www.google.co.uk/",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://search.yahoo.com/",
)
SOCIAL_REFERRERS = (
    "https://l.facebook.com/",
    "https://t.co/",
    "https://www.linkedin.com/",
    "https://www.reddit.com/",
    "https://news.example-blog.org/best-local-services",
)
SITE_PAGES = ("/", "/services", "/pricing", "/about", "/contact", "/blog/winter-tyres")


@dataclass(frozen=True, slots=True)
class SourceMix(Frozen):
    """Shares of arriving visitors by source; normalised, so they need not add up to 1.

    ``paid``: an ad click (``gclid`` from Google or ``msclkid`` from Bing, with
    ``utm_medium=cpc`` and a campaign); ``organic``: a search engine referrer and
    no ad parameters; ``direct``: no referrer; ``referral``: social and other
    sites; ``bot``: crawlers.
    """

    paid: float = 0.35
    organic: float = 0.30
    direct: float = 0.20
    referral: float = 0.12
    bot: float = 0.03

    def weights(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The kinds and their cumulative weights, for :func:`random.choices`."""
        kinds = ("paid", "organic", "direct", "referral", "bot")
        shares = (self.paid, self.organic, self.direct, self.referral, self.bot)
        if any(s < 0 for s in shares) or sum(shares) <= 0:
            raise ConfigError([Problem("mix", "source shares must be >= 0 and not all zero")])
        total = 0.0
        cumulative = []
        for share in shares:
            total += share
            cumulative.append(total)
        return kinds, tuple(cumulative)


@dataclass(frozen=True, slots=True)
class TrafficModel(Frozen):
    """How visitors arrive, browse and call.

    Times are seconds. ``visitors_per_hour`` is a constant rate, or 24 hourly
    rates (hour 0 = midnight) repeated day after day. Page views per session are
    geometric with mean ``pages_mean``; the gap between page views is lognormal
    with median ``dwell_median`` and shape ``dwell_sigma``. A human session calls
    with probability ``call_share``, ``call_delay_median`` (lognormal,
    ``call_delay_sigma``) after its last page view; some calls land after the
    hold has ended, as they do in life.
    """

    visitors_per_hour: float | tuple[float, ...] = 120.0
    hours: float = 24.0
    mix: SourceMix = field(default_factory=SourceMix)
    pages_mean: float = 3.0
    dwell_median: float = 45.0
    dwell_sigma: float = 1.0
    call_share: float = 0.06
    call_delay_median: float = 240.0
    call_delay_sigma: float = 1.2
    site: str = "https://www.example.co.uk"
    campaigns: tuple[str, ...] = ("brand", "wintertires", "summer-sale", "servicing")

    def validate(self) -> None:
        """Raise :class:`ConfigError` listing every out-of-range parameter."""
        problems: list[Problem] = []
        rates = (
            self.visitors_per_hour
            if isinstance(self.visitors_per_hour, tuple)
            else (self.visitors_per_hour,)
        )
        if isinstance(self.visitors_per_hour, tuple) and len(self.visitors_per_hour) != 24:
            problems.append(Problem("visitors_per_hour", "a profile needs exactly 24 hourly rates"))
        if any(not math.isfinite(r) or r < 0 for r in rates) or not any(r > 0 for r in rates):
            problems.append(Problem("visitors_per_hour", "rates must be >= 0 and not all zero"))
        if not self.hours > 0:
            problems.append(Problem("hours", "must be > 0"))
        if not self.pages_mean >= 1:
            problems.append(Problem("pages_mean", "must be >= 1"))
        if not 0 <= self.call_share <= 1:
            problems.append(Problem("call_share", "must be between 0 and 1"))
        for name in ("dwell_median", "call_delay_median"):
            if not getattr(self, name) > 0:
                problems.append(Problem(name, "must be > 0"))
        if problems:
            raise ConfigError(problems)

    def rate_at(self, seconds: float) -> float:
        """Arrivals per second at simulated time ``seconds``."""
        rates = self.visitors_per_hour
        if isinstance(rates, tuple):
            return rates[int(seconds // SECONDS_PER_HOUR) % 24] / SECONDS_PER_HOUR
        return rates / SECONDS_PER_HOUR

    def mean_rate(self) -> float:
        """Average arrivals per second over a day."""
        rates = self.visitors_per_hour
        if isinstance(rates, tuple):
            return sum(rates) / len(rates) / SECONDS_PER_HOUR
        return rates / SECONDS_PER_HOUR

    def mean_time_on_site(self) -> float:
        """Mean seconds from the first to the last page view of a session."""
        mean_gap = self.dwell_median * math.exp(self.dwell_sigma**2 / 2)
        return (self.pages_mean - 1) * mean_gap


@dataclass(slots=True)
class Session:
    """One visitor's stay: page views (absolute seconds, first = arrival) and maybe a call.

    ``kind`` is the ground truth of where the visitor came from (``paid``,
    ``organic``, ``direct``, ``referral``, ``bot`` or ``log`` for replayed traffic).
    """

    visitor: str
    user_agent: str
    kind: str
    views: list[tuple[float, str, str | None]]  # (at, url, referrer)
    call_at: float | None = None

    @property
    def arrival(self) -> float:
        """Time of the first page view."""
        return self.views[0][0]

    @property
    def last_activity(self) -> float:
        """Time of the last page view."""
        return self.views[-1][0]


class _Landing:
    """Builds landing URLs and referrers per source kind."""

    def __init__(self, model: TrafficModel, rng: random.Random) -> None:
        site = model.site.rstrip("/")
        self.pages = [f"{site}{page}" for page in SITE_PAGES]
        campaigns = model.campaigns or ("default",)
        # the fixed parts of the ad-click URLs, per campaign
        self.google = [f"&utm_source=google&utm_medium=cpc&utm_campaign={c}" for c in campaigns]
        self.bing = [f"&utm_source=bing&utm_medium=cpc&utm_campaign={c}" for c in campaigns]
        self.rng = rng
        self.clicks = 0

    def build(self, kind: str) -> tuple[str, str | None]:
        draw = self.rng.random
        page = self.pages[int(draw() * len(self.pages))]
        if kind == "paid":
            self.clicks += 1
            campaign = int(draw() * len(self.google))
            if draw() < 0.8:
                url = f"{page}?gclid=Cj0KCQ{self.clicks:09d}{self.google[campaign]}"
                return url, "https://www.google.co.uk/"
            url = f"{page}?msclkid=m{self.clicks:09d}{self.bing[campaign]}"
            return url, "https://www.bing.com/"
        if kind == "organic":
            return page, SEARCH_REFERRERS[int(draw() * len(SEARCH_REFERRERS))]
        if kind == "referral":
            return page, SOCIAL_REFERRERS[int(draw() * len(SOCIAL_REFERRERS))]
        return page, None


def generate_sessions(model: TrafficModel, seed: int = 0) -> Iterator[Session]:
    """Draw sessions from ``model`` in arrival order over ``model.hours``.

    Arrivals are a Poisson process whose rate may change every hour (the
    exponential gap is redrawn at each hour boundary, which is exact for a
    piecewise-constant rate). The same ``seed`` gives the same sessions.
    """
    model.validate()
    rng = random.Random(seed)
    kinds, cumulative = model.mix.weights()
    total = cumulative[-1]
    internal = [f"{model.site.rstrip('/')}{page}" for page in SITE_PAGES]
    internal_referrer = f"{model.site.rstrip('/')}/"
    landing = _Landing(model, rng)
    end = model.hours * SECONDS_PER_HOUR
    continue_p = 1.0 - 1.0 / model.pages_mean  # geometric page count with that mean
    dwell_mu = math.log(model.dwell_median)
    delay_mu = math.log(model.call_delay_median)
    pages = len(internal)
    draw = rng.random
    dwell_sigma, delay_sigma, call_share = (
        model.dwell_sigma,
        model.call_delay_sigma,
        model.call_share,
    )
    bot_agents, human_agents = BOT_AGENTS, HUMAN_AGENTS
    now = 0.0
    serial = 0
    boundary = 0.0
    rate = 0.0
    while True:
        if now >= boundary:  # a new hour: its rate holds until the next boundary
            rate = model.rate_at(now)
            boundary = (now // SECONDS_PER_HOUR + 1) * SECONDS_PER_HOUR
            if rate <= 0:
                now = boundary
                if now >= end:
                    return
                continue
        gap = -math.log(1.0 - draw()) / rate  # exponential
        if now + gap >= boundary:
            now = boundary
            if now >= end:
                return
            continue
        now += gap
        if now >= end:
            return
        serial += 1
        kind = kinds[bisect.bisect(cumulative, draw() * total)]
        url, referrer = landing.build(kind)
        if kind == "bot":
            agent = bot_agents[serial % len(bot_agents)]
        else:
            agent = human_agents[serial % len(human_agents)]
        views = [(now, url, referrer)]
        at = now
        while draw() < continue_p:
            at += math.exp(dwell_mu + dwell_sigma * _standard_normal(draw))
            views.append((at, internal[int(draw() * pages)], internal_referrer))
        call_at = None
        if kind != "bot" and draw() < call_share:
            call_at = at + math.exp(delay_mu + delay_sigma * _standard_normal(draw))
        yield Session(f"v{serial}", agent, kind, views, call_at)


def _standard_normal(draw: Callable[[], float]) -> float:
    """A standard normal deviate from uniform ``draw`` (Kinderman and Monahan's ratio method).

    The method behind ``random.Random.normalvariate``, written out because it
    runs for every page view of every simulated session.
    """
    while True:
        u1 = draw()
        u2 = 1.0 - draw()
        z = _NV_MAGIC * (u1 - 0.5) / u2
        if z * z / 4.0 <= -math.log(u2):
            return z


_NV_MAGIC = 4 * math.exp(-0.5) / math.sqrt(2.0)


# ---- access logs ---------------------------------------------------------------

# Apache/Nginx "combined": host ident user [time] "request" status bytes "referer" "agent"
_COMBINED = re.compile(
    r'^(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\S+) "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)"\s*$'
)
_LOG_TIME = "%d/%b/%Y:%H:%M:%S %z"
_ASSET = re.compile(r"\.(?:css|js|mjs|png|jpe?g|gif|svg|webp|ico|woff2?|ttf|map|txt|xml)$", re.I)


@dataclass(slots=True)
class LogReplay:
    """The sessions read from an access log, and how many lines were skipped and why.

    ``site`` is the site the log is of (its URL or host): referrers from it are
    internal page views, which the simulation matches on their landing context.
    Without one, every referrer with a host counts as external, so every such
    page view is a landing of its own.
    """

    sessions: list[Session]
    lines: int = 0
    page_views: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    start: datetime | None = None
    site: str | None = None

    @property
    def skipped_total(self) -> int:
        """All lines that did not become a page view."""
        return sum(self.skipped.values())


def read_access_log(
    lines: Iterable[str],
    *,
    site: str | None = None,
    session_gap: float = 1800.0,
    call_share: float = 0.06,
    call_delay_median: float = 240.0,
    call_delay_sigma: float = 1.2,
    seed: int = 0,
) -> LogReplay:
    """Read a combined-format access log into sessions, ready to replay.

    A visitor is client IP + user agent; their page views split into sessions
    where they were idle longer than ``session_gap`` seconds. Only successful
    (2xx/304) ``GET`` requests for pages count; assets, other methods and errors
    are skipped and counted by reason, and so are malformed lines: this function
    never raises on bad lines. Times become seconds since the first page view.
    Each human session calls with probability ``call_share`` (lognormal delay
    after its last page view), drawn with ``seed``. ``site`` is the log's
    site (a URL or a host), whose referrers are internal page views; without
    it, the host most page views after a session's first came from. Request
    paths become URLs on it (``https://www.example.co.uk`` when there is none).
    """
    skipped: dict[str, int] = {}
    views: list[tuple[datetime, str, str, str, str | None]] = []
    count = 0
    base = (site or "https://www.example.co.uk").rstrip("/")
    for line in lines:
        count += 1
        reason = None
        found = _COMBINED.match(line)
        if found is None:
            reason = "malformed"
        else:
            parts = found["request"].split(" ")
            try:
                when = datetime.strptime(found["time"], _LOG_TIME)
            except ValueError:
                when = None
            if when is None:
                reason = "bad time"
            elif len(parts) != 3 or not parts[1].startswith("/"):
                reason = "malformed request"
            elif parts[0] != "GET":
                reason = "not a GET"
            elif not (found["status"].startswith("2") or found["status"] == "304"):
                reason = "error status"
            elif _ASSET.search(urlsplit(parts[1]).path):
                reason = "asset"
            else:
                referrer = found["referrer"]
                views.append(
                    (
                        when,
                        f"{found['host']}|{found['agent']}",
                        found["agent"],
                        base + parts[1],
                        None if referrer in ("", "-") else referrer,
                    )
                )
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    views.sort(key=lambda v: v[0])
    if not views:
        return LogReplay([], count, 0, skipped, None, site)
    start = views[0][0]
    rng = random.Random(seed)
    open_sessions: dict[str, Session] = {}
    sessions: list[Session] = []
    delay_mu = math.log(call_delay_median)

    def close(session: Session) -> None:
        # the engine's own crawler list decides who is human
        if not is_bot(session.user_agent) and rng.random() < call_share:
            session.call_at = session.last_activity + rng.lognormvariate(delay_mu, call_delay_sigma)

    for when, visitor, agent, url, referrer in views:
        at = (when - start).total_seconds()
        session = open_sessions.get(visitor)
        if session is not None and at - session.last_activity > session_gap:
            close(session)
            session = None
        if session is None:
            session = Session(visitor, agent, "log", [])
            open_sessions[visitor] = session
            sessions.append(session)
        session.views.append((at, url, referrer))
    for session in open_sessions.values():
        close(session)
    sessions.sort(key=lambda s: s.arrival)
    return LogReplay(sessions, count, len(views), skipped, start, site or _likely_site(sessions))


def _likely_site(sessions: Iterable[Session]) -> str | None:
    """The host most page views after a session's first came from: the site itself."""
    hosts: dict[str, int] = {}
    for session in sessions:
        for _, _, referrer in session.views[1:]:
            host = referrer_host(referrer)
            if host is not None:
                hosts[host] = hosts.get(host, 0) + 1
    return max(hosts, key=lambda host: hosts[host]) if hosts else None


def write_access_log(
    sessions: Iterable[Session],
    start: datetime | None = None,
) -> Iterator[str]:
    """Format ``sessions`` as combined-format access log lines, in time order.

    Each visitor gets a stable made-up client address from the documentation
    ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24).
    """
    origin = start or datetime(2026, 11, 2, tzinfo=UTC)
    rows: list[tuple[float, str]] = []
    nets = ("192.0.2", "198.51.100", "203.0.113")
    for index, session in enumerate(sessions):
        address = f"{nets[index % 3]}.{index // 3 % 254 + 1}"
        for at, url, referrer in session.views:
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            when = (origin + timedelta(seconds=at)).strftime(_LOG_TIME)
            rows.append(
                (
                    at,
                    f'{address} - - [{when}] "GET {target} HTTP/1.1" 200 5120 '
                    f'"{referrer or "-"}" "{session.user_agent}"',
                )
            )
    rows.sort(key=lambda row: row[0])
    for _, line in rows:
        yield line


def hourly_profile(shape: Sequence[float], peak_per_hour: float) -> tuple[float, ...]:
    """Scale a 24-value ``shape`` so its largest hour has ``peak_per_hour`` visitors."""
    if len(shape) != 24 or max(shape) <= 0:
        raise ConfigError([Problem("profile", "needs 24 values with a positive maximum")])
    top = max(shape)
    return tuple(peak_per_hour * v / top for v in shape)


# A typical business-site day: quiet nights, a morning ramp, a lunchtime and an
# early-evening peak.
TYPICAL_DAY = (
    0.10, 0.06, 0.04, 0.04, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 1.00, 0.95,
    0.90, 0.92, 0.88, 0.85, 0.80, 0.78, 0.82, 0.85, 0.70, 0.50, 0.30, 0.18,
)  # fmt: skip
