"""The project's own corrections to the crawler list, kept as data.

The ``crawler-user-agents`` list is the starting point of crawler detection, but
some of its patterns match real people's browsers (a phone's build id, a device
name, an in-app browser), and it misses whole families of crawlers. Taking a
person for a crawler costs them their tracking number, so false positives weigh
more than misses. This module holds:

- :data:`NARROWINGS`: list patterns replaced by a narrower pattern, or dropped,
  each with the reason and a real person's user agent the list pattern matched;
- :data:`SIGNALS`: patterns added, by family (generic signals such as a
  word-bounded ``bot`` or a URL, HTTP libraries, AI agents, monitors,
  scanners...), each with a crawler agent it catches;
- :data:`HEADLESS_PATTERNS` / the ``headless`` signal family: automated browsers,
  which a site may count as people (its own end-to-end tests).

Every entry is checked against a corpus of real human user agents by the tests.
Added signals are searched with ASCII letters in any case (``re.IGNORECASE |
re.ASCII``); list patterns and their narrowings are searched as written
(case-sensitively), like the list itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "HEADLESS_FAMILY",
    "HEADLESS_PATTERNS",
    "NARROWINGS",
    "SIGNALS",
    "Narrowing",
    "Signal",
]


@dataclass(frozen=True, slots=True)
class Narrowing:
    """A list pattern that matched people: replaced by ``replacement``, or dropped (``None``).

    ``human`` is a real person's user agent the list pattern matched and the
    replacement does not; ``reason`` says what the pattern was confusing.
    """

    pattern: str
    replacement: str | None
    reason: str
    human: str


@dataclass(frozen=True, slots=True)
class Signal:
    """An added crawler pattern (searched in any case), its family and a crawler it catches."""

    family: str
    pattern: str
    reason: str
    example: str


NARROWINGS: tuple[Narrowing, ...] = (
    Narrowing(
        r"AP3A\.240617\.008",
        None,
        "an Android 15 build id shipped on OPPO, realme, OnePlus and Infinix phones, "
        "not a crawler's mark; the crawler it was added for is caught by other patterns",
        "Mozilla/5.0 (Linux; Android 15; CPH2581 Build/AP3A.240617.008) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.135 Mobile Safari/537.36",
    ),
    Narrowing(
        "Sogou",
        r"Sogou[ A-Za-z-]*(?:[Ss]pider|Agent)",
        "Sogou's crawlers name themselves spiders; Sogou Mobile Browser is a browser",
        "Mozilla/5.0 (Linux; U; Android 4.1.2; zh-cn; GT-I9300 Build/JZO54K) AppleWebKit/534.30 "
        "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30 SogouMSE,SogouMobileBrowser/3.5.1",
    ),
    Narrowing(
        "Sonic",
        r"(?:^|[ ;(])Sonic/|RankSonic",
        "ViewSonic phones and the Slack desktop app carry the word Sonic",
        "Mozilla/5.0 (Linux; U; Android 2.3;en-us; ViewSonic-ViewPad7e Build/ERE27) "
        "AppleWebKit/533.1 (KHTML, Like Gecko) Version/4.0 Mobile Safari/533.1",
    ),
    Narrowing(
        "Butterfly",
        r"Butterfly/\d",
        "HTC Butterfly is a phone; the crawler writes Butterfly/1.0",
        "Mozilla/5.0 (Linux; Android 4.2.2; HTC Butterfly s Build/JDQ39) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/29.0.1547.72 Mobile Safari/537.36",
    ),
    Narrowing(
        "Fever",
        r"Fever/\d",
        "Wiko Fever is a phone; the feed reader writes Fever/1.38",
        "Mozilla/5.0 (Linux; U; Android 5.1; fr-fr; Wiko Fever 4G Build/LMY47I) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/39.0.0.0 Mobile Safari/537.36",
    ),
    Narrowing(
        "Expanse",
        r"Expanse,? a Palo Alto Networks company|Expanse indexes",
        "Expanse is also a device and app name; the scanner names Palo Alto Networks",
        "Mozilla/5.0 (Linux; Android 10; Expanse Build/QP1A.190711.020) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/90.0.4430.91 Mobile Safari/537.36",
    ),
    Narrowing(
        r"008\/",
        r"(?:^|compatible; )008/",
        "008/ also ends Opera Mini build numbers (4.4.39008/) and device names (sprd-L008/)",
        "Opera/9.80 (MAUI Runtime; Opera Mini/4.4.39008/37.9178; U; en) Presto/2.12.423 "
        "Version/12.16",
    ),
    Narrowing(
        "Fluid",
        None,
        "Fluid turns a web site into a Mac app: a person browsing",
        "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_6; en-us) AppleWebKit/528.16 "
        "(KHTML, like Gecko) Fluid/0.9.6 Safari/528.16",
    ),
    Narrowing(
        "Viber",
        r"(?:^|Safari/[\d.]+ )Viber$",
        "Viber's in-app browser writes Viber/<version>; its link preview fetcher ends in "
        "a bare Viber",
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Viber/21.0.0.5",
    ),
    Narrowing(
        "MetaIAB Facebook",
        None,
        "Facebook's in-app browser: a person who followed a link in the app",
        "Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile "
        "Safari/537.36 MetaIAB Facebook",
    ),
    Narrowing(
        "speedy",
        r"[Ss]peedy ?[Ss]pider|[Ss]peedy[Aa]ds",
        "Yahoo Mail's Android app names its device profile speedy",
        "YahooMobileMail/1.0 (Android Mail; 1.3.6) (speedy;HTC;PG06100;2.2/FRF91)",
    ),
    Narrowing(
        r"RED\/",
        r"(?:^|[^A-Za-z])RED/",
        "the WIRED app writes WIRED/3.2",
        "Mozilla/5.0 (iPad; U; CPU iPhone OS 7_0 like Mac OS X; de-DE) WIRED/3.2.3.11.87970",
    ),
)

HEADLESS_FAMILY = "headless"
# List patterns naming an automated (headless or driven) browser.
HEADLESS_PATTERNS: frozenset[str] = frozenset(
    {"HeadlessChrome", "PhantomJS", "Playwright", "Puppeteer", "Selenium"}
)

_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
_COMPAT = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "

SIGNALS: tuple[Signal, ...] = (
    # Generic signals: words crawlers use for themselves, and contact details. Each
    # alternative stands at the top level, so the prefilter finds its literal.
    Signal(
        "generic",
        r"(?<![a-z])bots?(?![a-z])|(?<![a-z])robots?(?![a-z])|(?<![a-z])crawl(?:er|ers|ing)?(?![a-z])"
        r"|(?<![a-z])spiders?(?![a-z])|(?<![a-z])scanners?(?![a-z])|(?<![a-z])scrapers?(?![a-z])",
        "a crawler calling itself one, as a word",
        "Mozilla/5.0 (compatible; Example crawler/1.0)",
    ),
    Signal(
        "generic",
        r"[a-z0-9]bot(?:[/;)]|$)|[a-z0-9](?<!cu)bot(?:[ _-]|\d)"
        r"|[a-z0-9]crawler(?:[/;) _-]|$)|[a-z0-9]spider(?:[/;) _-]|$)"
        r"|[a-z0-9]scraper(?:[/;) _-]|$)",
        "a name ending in bot, crawler, spider or scraper (Zoominfobot/, MJ12bot, "
        "ImageBot v1); not the CUBOT phones",
        "Mozilla/5.0 (compatible; Zoominfobot/1.0)",
    ),
    Signal(
        "generic",
        r"[+(;,] ?http://|[+(;,] ?https://|[+(;,] ?www\.|^[^ ]+/[0-9.]+ https?://",
        "a URL where crawlers give a page about themselves (+http://, (http://, "
        "; http://, or right after the name and version); browsers never do",
        "Mozilla/5.0 (compatible; Seekport Crawler; http://seekport.com/)",
    ),
    Signal(
        "generic",
        r"bot[a-z0-9._%+-]*@|crawl[a-z0-9._%+-]*@|spider[a-z0-9._%+-]*@|robot[a-z0-9._%+-]*@"
        r"|webmaster[a-z0-9._%+-]*@|admin[a-z0-9._%+-]*@|abuse[a-z0-9._%+-]*@"
        r"|research[a-z0-9._%+-]*@|scan[a-z0-9._%+-]*@|info@|feedback@|support@|contact@",
        "an operator's e-mail address (bot@, crawler@, webmaster@...); an app that writes "
        "its user's own address into the agent is not one",
        "Mozilla/5.0 (compatible; Ezooms/1.0; ezooms.bot@gmail.com)",
    ),
    Signal(
        "generic",
        r"(?<![a-z])monitor(?:ing)?(?![a-z])|checker(?![a-z])|validator(?![a-z])"
        r"|[a-z]scan/|(?<![a-z])scan(?![a-z])|image ?proxy|imgproxy|webhooks?(?![a-z])"
        r"|fetcher|retriever|resolver(?![a-z])|\[at\]",
        "words for a service's program: a monitor, checker, validator, scan, image "
        "proxy, webhook, fetcher; an obfuscated e-mail address",
        "websitepulse checker/3.0 (compatible; MSIE 5.5; Netscape 4.75; Linux)",
    ),
    Signal(
        "generic",
        r"@(?!gmail\.|googlemail\.|hotmail\.|yahoo\.|outlook\.|live\.|icloud\.|qq\.|163\.)"
        r"[a-z0-9-]+\.[a-z]{2,}",
        "an e-mail address at an organisation's domain; an app that writes its user's "
        "own webmail address into the agent is not a crawler",
        "Hype Machine/4.0 hypem.com (anthony@hypem.com)",
    ),
    # HTTP libraries and command-line tools.
    Signal(
        "http library",
        r"^python-requests|^python-urllib|^python-httpx|^python/\d|^aiohttp|^httpx/"
        r"|^go-http-client|^go-resty|^java/\d|^apache-httpclient|^jakarta commons"
        r"|^okhttp|^axios|^node-fetch|^undici|^got/|^got \(|^node\.js|^node/|^curl"
        r"|^wget|^libwww-perl|^lwp-|^php/|^guzzlehttp|^ruby|^faraday|^typhoeus|^httpie"
        r"|^postmanruntime|^insomnia|^reqwest|^hyper/|^ureq|^dart:io|^dart/|^winhttp"
        r"|^powershell|^restsharp|^scrapy|^mechanize|^http_request2|^libcurl|^pycurl"
        r"|^urllib3|^aria2|^lftp|^rest-client|^unirest|^feign|^k6/|^apachebench|^jmeter"
        r"|^gatling|^vegeta|^locust|^http\.rb|^httpclient|^cpp-httplib|^libsoup",
        "an HTTP library or tool: a program, not a person's browser",
        "python-httpx/0.27.0",
    ),
    Signal(
        "http library",
        r"(?<![a-z])python-requests/|(?<![a-z])python-urllib/|(?<![a-z])aiohttp/"
        r"|(?<![a-z])go-http-client/|(?<![a-z])okhttp/|(?<![a-z])apache-httpclient/"
        r"|(?<![a-z])libwww-perl/|(?<![a-z])guzzlehttp/|(?<![a-z])node-fetch/"
        r"|(?<![a-z])axios/|(?<![a-z])scrapy/",
        "an HTTP library named anywhere in the agent",
        "Mozilla/5.0 (compatible) python-requests/2.31.0",
    ),
    # AI agents and assistants.
    Signal(
        "AI agent",
        r"chatgpt-user|gptbot|oai-searchbot|chatgpt agent|"
        r"claudebot|claude-user|claude-searchbot|claude-web|anthropic-ai|"
        r"perplexitybot|perplexity-user|perplexityuser|google-extended|google-agent|"
        r"googleagent-|googleother|google-cloudvertexbot|gemini-deep-research|"
        r"bytespider|ccbot|cohere-ai|cohere-training|diffbot|youbot|amazonbot|"
        r"applebot-extended|meta-externalagent|meta-externalfetcher|mistralai-user|"
        r"duckassistbot|ai2bot|timpibot|omgili|imagesiftbot|petalbot|kangaroo bot",
        "AI crawlers, assistants and agents fetching pages for a model or a chat",
        _COMPAT + "ChatGPT-User/1.0; +https://openai.com/bot",
    ),
    # Ad and social fetchers.
    Signal(
        "ad and social fetcher",
        r"bingadsbot|adidxbot|facebookexternalua|facebookexternalhit|facebookcatalog|"
        r"meta-externalads|meta-externalhit|meta-webindexer|twitterbot|linkedinbot|"
        r"pinterestbot|slackbot|discordbot|telegrambot|whatsapp/[\d.]+ [ain]$|"
        r"skypeuripreview|redditbot|embedly|iframely|snapchat-link|tiktokspider|"
        r"adsbot|mediapartners-google|google-adwords|google-display-ads|"
        r"googleproducer|google-read-aloud|storebot-google|feedfetcher-google",
        "link previews, ad reviews and product feeds: programs fetching for a service",
        "Mozilla/5.0 (compatible; bingadsbot/1.0)",
    ),
    # Google's own tools.
    Signal(
        "Google tool",
        r"chrome-lighthouse|lighthouse/|pagespeed|google page speed|google-site-verification|"
        r"google-inspectiontool|google-structured-data|google-safety|google-test|"
        r"googledocs|google-apps-script|google-pagerenderer|google web preview|"
        r"google favicon|googleimageproxy|google-firebase",
        "PageSpeed Insights, Search Console and other Google tools",
        _CHROME + "Chrome/120.0.0.0 Safari/537.36 Chrome-Lighthouse",
    ),
    # Site monitors.
    Signal(
        "site monitor",
        r"uptimerobot|pingdom|statuscake|site24x7|better ?uptime|betterstack|uptime-kuma|"
        r"uptimekuma|freshping|hetrixtools|updown\.io|nodeping|montastic|monitis|"
        r"newrelicpinger|datadog|checkly|cron-job\.org|uptime\.com|hyperping|"
        r"ruxitsynthetic|dynatrace|catchpoint|gomezagent|alertsite|elastic-heartbeat|"
        r"synthetics|zabbix|nagios|check_http|monitor\.us|host-tracker|pingadmin|"
        r"site ?monitor|uptime ?monitor|uptime checker",
        "uptime and performance monitors",
        "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    ),
    # Security scanners.
    Signal(
        "security scanner",
        r"nessus|nmap|sqlmap|nikto|zgrab|masscan|nuclei|openvas|acunetix|netsparker|"
        r"qualys|wpscan|dirbuster|gobuster|ffuf|wfuzz|w3af|arachni|zmeu|"
        r"censys|shodan|internet-measurement|palo alto networks|l9explore|l9tcpid|"
        r"leakix|netcraft|httpx - open-source|projectdiscovery|fuzz faster|"
        r"whatweb|wappalyzer|jaeles|owasp zap",
        "vulnerability and port scanners",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    ),
    # Feed readers.
    Signal(
        "feed reader",
        r"universalfeedparser|feedparser|ezooms|feedly|feedbin|feedburner|feedvalidator|"
        r"newsblur|inoreader|tiny tiny rss|miniflux|freshrss|theoldreader|netnewswire|"
        r"feedreader|feed ?fetcher|rss ?reader|rssowl|bloglovin|superfeedr|flipboardproxy|"
        r"newsgator|liferea|selfoss|commafeed|feedspot",
        "feed readers and aggregators fetching for their subscribers",
        "UniversalFeedParser/5.2.1 +https://github.com/kurtmckee/feedparser/",
    ),
    # Configuration and deployment tools.
    Signal(
        "configuration tool",
        r"chef client|chef-client|chef/|puppet/\d|puppet agent|ansible|salt(?:stack)?/|terraform|"
        r"cloud-init|kubernetes|kube-probe|elb-healthchecker|googlehc|"
        r"amazon-route53-health|health ?check",
        "configuration, deployment and health-check tools",
        "Chef Client/18.2.7 (ruby-3.1.2-p20; ohai-18.1.3; x86_64-linux; +https://chef.io)",
    ),
    # Automated browsers: people only when the site says so.
    Signal(
        HEADLESS_FAMILY,
        r"headlesschrome|headless|phantomjs|slimerjs|puppeteer|playwright|selenium|"
        r"webdriver",
        "a browser driven by a program",
        _CHROME + "HeadlessChrome/120.0.0.0 Safari/537.36",
    ),
)
