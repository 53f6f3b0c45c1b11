"""``WebConfig``: the settings of the website integration, checked once.

Every adapter (ASGI, WSGI, Django, Flask) takes a :class:`WebConfig` or its
fields as keyword arguments (:func:`config_from`). The only required field is
``secret``, the key that signs the landing cookie. All problems are reported
at once, in one :class:`~dni_engine.errors.ConfigError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

from dni_engine.bots import Crawlers
from dni_engine.errors import ConfigError, Problem
from dni_engine.web.clients import FORWARDED_HEADERS, parse_networks

if TYPE_CHECKING:
    from dni_engine.web.core import PageRequest

__all__ = ["MIN_SECRET_BYTES", "WebConfig", "config_from"]

MIN_SECRET_BYTES: Final = 16
"""The shortest ``secret`` accepted, in bytes (UTF-8 for a ``str``)."""

# RFC 6265 cookie-name: a token (no separators, controls or spaces).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A domain or path attribute value: printable ASCII without ';' (RFC 6265 av-octet).
_ATTRIBUTE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")
# The endpoint's prefix: a plain path of unreserved characters, no trailing slash.
_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~-]+)+")
_BASE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class WebConfig:
    """How the website integration treats requests and responses.

    * ``secret``: the key signing the landing cookie (HMAC-SHA256); at least
      :data:`MIN_SECRET_BYTES` bytes. Keep it the same on every worker.
    * ``cookie_name`` / ``landing_cookie_name``: the visitor and landing cookies.
    * ``cookie_max_age``: the visitor cookie's lifetime in seconds (one year).
    * ``cookie_domain``: ``Domain=`` of both cookies (``"example.com"`` shares
      them between subdomains); ``None`` for the host only.
    * ``cookie_path``: ``Path=`` of both cookies.
    * ``attribution_window``: minutes a landing context lasts after its last
      page view (sliding); also the landing cookie's ``Max-Age``.
    * ``consent``: given the :class:`~dni_engine.web.core.PageRequest`, whether
      this visitor may be tracked; ``None`` tracks everyone. Raising counts as no.
    * ``visitor_id``: the application's own visitor id for a request; ``None``
      or ``""`` from it falls back to the cookie.
    * ``debug_header``: add ``X-DNI: outcome=...; pool=...; source=...`` to page views.
    * ``skip_paths``: path prefixes the integration never touches.
    * ``max_buffer``: bytes a streamed body may hold back before the rest
      passes through untouched.
    * ``endpoint_prefix``: the path under which the middleware answers the
      browser script (``{prefix}/dni.js``, ``{prefix}/swap``, ``{prefix}/number``;
      see :mod:`dni_engine.web.endpoint`); ``None`` turns the endpoint off.
    * ``number_cookie_name``: the small cookie, readable by the page's script,
      holding the number of a visitor with a lease (no flicker on cached
      pages); ``None`` never sets it.
    * ``lease_cookie_name``: the signed, ``HttpOnly`` cookie naming the pool
      of the visitor's live lease, a hint that lets a shared store decide a
      visit in one round trip (a wrong or stale one costs time, never the
      decision); ``None`` never sets it.
    * ``amp_origins``: origins (``https://amp.example.net``) besides the
      site's own and ``https://*.ampproject.org`` allowed to ask
      ``{prefix}/number`` with the visitor's cookies.
    * ``debug``: the test hook: ``?dni_test_pool=<pool key or name>`` on a page
      URL shows that pool's first number, no lease taken. Never on a live site.
    * ``trusted_proxies``: addresses or networks (``"10.0.0.0/8"``) of the
      reverse proxies, load balancers or CDN in front of the site; only from
      them is ``forwarded_header`` believed (see :mod:`dni_engine.web.clients`).
      Empty (the default): the socket peer is the client.
    * ``forwarded_header``: ``"x-forwarded-for"`` (the default) or
      ``"forwarded"`` (RFC 7239): the header the trusted proxies write.
    * ``endpoint_rate_limit``: requests a minute one client (network and user
      agent) may make to the browser endpoint's ``swap`` and ``number``
      answers (120); more get ``429`` with ``Retry-After`` and the page keeps
      its numbers. Counted in each process; ``None`` turns it off.
    * ``call_secret``: the key of the generic call webhook's signature
      (``POST {prefix}/calls``, see :mod:`dni_engine.web.calls`); at least
      :data:`MIN_SECRET_BYTES` bytes, and not ``secret``. ``None`` turns it off.
    * ``twilio_auth_token``: the Twilio Auth Token that signs Twilio's status
      callbacks (``POST {prefix}/calls/twilio``; the ``twilio`` extra). ``None``
      turns it off.
    * ``public_base_url``: the site's public ``https://host[:port][/path]``, for
      checking signatures made over the public URL (Twilio's) behind a proxy
      that changes the scheme, host or path; ``None``: the request's own URL.
    * ``crawlers``: who counts as a crawler (a :class:`~dni_engine.bots.Crawlers`);
      ``None`` uses the engine's (:attr:`~dni_engine.engine.Engine.crawlers`).
    """

    secret: str | bytes = b""
    cookie_name: str = "dni_visitor"
    landing_cookie_name: str = "dni_landing"
    cookie_max_age: int = 31_536_000
    cookie_domain: str | None = None
    cookie_path: str = "/"
    attribution_window: float = 30.0
    consent: Callable[[PageRequest], bool] | None = None
    visitor_id: Callable[[PageRequest], str | None] | None = None
    debug_header: bool = False
    skip_paths: tuple[str, ...] = ()
    max_buffer: int = 1_048_576
    endpoint_prefix: str | None = "/_dni"
    number_cookie_name: str | None = "dni_number"
    lease_cookie_name: str | None = "dni_lease"
    amp_origins: tuple[str, ...] = ()
    debug: bool = False
    trusted_proxies: tuple[str, ...] = ()
    forwarded_header: str = "x-forwarded-for"
    endpoint_rate_limit: int | None = 120
    call_secret: str | bytes | None = None
    twilio_auth_token: str | None = None
    public_base_url: str | None = None
    crawlers: Crawlers | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError(problems)
        for name in ("skip_paths", "amp_origins", "trusted_proxies"):
            if isinstance(getattr(self, name), list):  # a list is accepted, kept as a tuple
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def secret_bytes(self) -> bytes:
        """``secret`` as bytes (UTF-8 for a ``str``)."""
        if isinstance(self.secret, str):
            return self.secret.encode("utf-8")
        return bytes(self.secret)

    @property
    def call_secret_bytes(self) -> bytes | None:
        """``call_secret`` as bytes (UTF-8 for a ``str``), or ``None`` when it is not set."""
        if self.call_secret is None:
            return None
        if isinstance(self.call_secret, str):
            return self.call_secret.encode("utf-8")
        return bytes(self.call_secret)

    @property
    def window_seconds(self) -> float:
        """``attribution_window`` in seconds."""
        return float(self.attribution_window) * 60.0


def _problems(config: WebConfig) -> list[Problem]:
    problems: list[Problem] = []

    def bad(name: str, reason: str) -> None:
        problems.append(Problem(name, reason))

    if config.crawlers is not None and not isinstance(config.crawlers, Crawlers):
        bad("crawlers", "must be a dni_engine.Crawlers or None")
    _secret_problem(config.secret, "secret", "the key that signs the landing cookie", bad)
    if config.call_secret is not None:
        _secret_problem(config.call_secret, "call_secret", "the call webhook's key", bad)
        if config.call_secret == config.secret:
            bad("call_secret", "must differ from secret (a webhook sender would hold both)")
    token = config.twilio_auth_token
    if token is not None and (not isinstance(token, str) or not token.strip()):
        bad("twilio_auth_token", "must be the Twilio Auth Token (a non-empty string), or None")
    base = config.public_base_url
    if base is not None and (not isinstance(base, str) or not _BASE_URL.fullmatch(base)):
        bad("public_base_url", f"{base!r} is not a URL like 'https://www.example.com' (or None)")
    webhooks = config.call_secret is not None or token is not None
    if webhooks and config.endpoint_prefix is None:
        bad("endpoint_prefix", "is None, but the call webhook is served under it")
    for name in ("cookie_name", "landing_cookie_name", "number_cookie_name", "lease_cookie_name"):
        value = getattr(config, name)
        if value is None and name in ("number_cookie_name", "lease_cookie_name"):
            continue
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            bad(name, f"{value!r} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
    if isinstance(config.cookie_name, str) and config.cookie_name == config.landing_cookie_name:
        bad("landing_cookie_name", "must differ from cookie_name")
    if config.number_cookie_name is not None and config.number_cookie_name in (
        config.cookie_name,
        config.landing_cookie_name,
    ):
        bad("number_cookie_name", "must differ from cookie_name and landing_cookie_name")
    lease_name = config.lease_cookie_name
    if lease_name is not None and lease_name in (
        config.cookie_name,
        config.landing_cookie_name,
        config.number_cookie_name,
    ):
        bad("lease_cookie_name", "must differ from the visitor, landing and number cookies")
    prefix = config.endpoint_prefix
    if prefix is not None and (
        not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or prefix.endswith("/")
    ):
        bad("endpoint_prefix", f"{prefix!r} is not a path like '/_dni' (or None)")
    origins = config.amp_origins
    if isinstance(origins, str) or not isinstance(origins, tuple | list):
        bad("amp_origins", f"must be a tuple of origins, not {origins!r}")
    else:
        for index, origin in enumerate(origins):
            if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
                bad(f"amp_origins[{index}]", f"{origin!r} is not an origin like 'https://a.b'")
    if type(config.debug) is not bool:
        bad("debug", f"{config.debug!r} is not True or False")
    age = config.cookie_max_age
    if type(age) is not int or age <= 0:
        bad("cookie_max_age", f"{age!r} is not a whole number of seconds > 0")
    domain = config.cookie_domain
    if domain is not None and (
        not isinstance(domain, str) or not domain or not _ATTRIBUTE.fullmatch(domain)
    ):
        bad("cookie_domain", f"{domain!r} is not a domain (or None)")
    path = config.cookie_path
    if not isinstance(path, str) or not path.startswith("/") or not _ATTRIBUTE.fullmatch(path):
        bad("cookie_path", f"{path!r} is not a path starting with '/'")
    window = config.attribution_window
    if (
        type(window) is bool
        or not isinstance(window, int | float)
        or not math.isfinite(window)
        or window <= 0
    ):
        bad("attribution_window", f"{window!r} is not a number of minutes > 0")
    for name in ("consent", "visitor_id"):
        hook = getattr(config, name)
        if hook is not None and not callable(hook):
            bad(name, f"must be a callable taking the request, or None; got {hook!r}")
    if type(config.debug_header) is not bool:
        bad("debug_header", f"{config.debug_header!r} is not True or False")
    paths = config.skip_paths
    if isinstance(paths, str) or not isinstance(paths, tuple | list):
        bad("skip_paths", f"must be a tuple of path prefixes, not {paths!r}")
    else:
        for index, prefix in enumerate(paths):
            if not isinstance(prefix, str) or not prefix.startswith("/"):
                bad(f"skip_paths[{index}]", f"{prefix!r} is not a path starting with '/'")
    size_limit = config.max_buffer
    if type(size_limit) is not int or size_limit < 0:
        bad("max_buffer", f"{size_limit!r} is not a whole number of bytes >= 0")
    proxies = config.trusted_proxies
    if isinstance(proxies, str) or not isinstance(proxies, tuple | list):
        bad("trusted_proxies", f"must be a tuple of addresses or networks, not {proxies!r}")
    else:
        for index, proxy in enumerate(proxies):
            try:
                parse_networks([proxy])
            except ValueError:
                bad(f"trusted_proxies[{index}]", f"{proxy!r} is not an address or a network")
    if config.forwarded_header not in FORWARDED_HEADERS:
        bad(
            "forwarded_header",
            f"{config.forwarded_header!r} is not one of {', '.join(FORWARDED_HEADERS)}",
        )
    limit = config.endpoint_rate_limit
    if limit is not None and (type(limit) is not int or limit <= 0):
        bad("endpoint_rate_limit", f"{limit!r} is not a whole number of requests > 0 (or None)")
    return problems


def _secret_problem(secret: object, name: str, what: str, bad: Callable[[str, str], None]) -> None:
    if isinstance(secret, str):
        try:
            size = len(secret.encode("utf-8"))
        except UnicodeEncodeError:
            size = -1
    elif isinstance(secret, bytes | bytearray):
        size = len(secret)
    else:
        size = -2
    if size == -2:
        bad(name, f"must be str or bytes, not {type(secret).__name__}")
    elif size == -1:
        bad(name, "must be text UTF-8 can encode")
    elif size == 0:
        bad(name, f"is required: {what}")
    elif size < MIN_SECRET_BYTES:
        bad(name, f"is {size} bytes; at least {MIN_SECRET_BYTES} are needed")


_FIELDS: Final = frozenset(f.name for f in fields(WebConfig))


def config_from(config: WebConfig | None, options: Mapping[str, Any]) -> WebConfig:
    """The adapters' settings: ``config`` itself, or a :class:`WebConfig` built from ``options``.

    Giving both, or an option that is no field, raises :class:`ConfigError`.
    """
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise ConfigError([Problem(name, "is not a WebConfig field") for name in unknown])
    if config is not None:
        if options:
            raise ConfigError(
                [Problem(name, "given with config=; set it on the WebConfig") for name in options]
            )
        if not isinstance(config, WebConfig):
            raise ConfigError([Problem("config", f"must be a WebConfig, not {config!r}")])
        return config
    return WebConfig(**options)
