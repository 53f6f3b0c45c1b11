"""The framework-neutral core of the website integration: no I/O, no framework.

An adapter turns its framework's request into a :class:`PageRequest` and asks
:meth:`WebCore.begin` whether it may be a page view. For one that may, it lets
the application answer, then gives the response's status and headers to
:meth:`PageView.respond` (or :meth:`PageView.respond_async` on an event loop)
and sends what the :class:`ResponsePlan` says: its headers and, when
``plan.body`` is set, the body fed through that
:class:`~dni_engine.web.body.BodyRewriter`.

Which requests are page views (:meth:`WebCore.begin`), before the application runs:

1. ``GET`` or ``HEAD``, outside ``skip_paths``;
2. ``Sec-Fetch-Dest`` absent or ``document`` (an ``iframe``, image, script,
   ``fetch`` ... is not a page view);
3. ``Sec-Fetch-Mode`` absent or ``navigate``/``nested-navigate``;
4. no ``X-Requested-With: XMLHttpRequest``;
5. an ``Accept`` header, when present, that asks for HTML: it names
   ``text/html`` or ``application/xhtml+xml`` with a ``q`` above 0, or it
   names only wildcards (``*/*``, ``text/*``). A list naming other types
   before a wildcard (``image/webp,*/*``, ``application/json, text/plain,
   */*``) is a sub-resource or an API call. ``*/*`` alone is admitted: the
   browsers whose ``fetch`` sends it also send ``Sec-Fetch-*`` (rules 2 and
   3), and clients that send it for pages are real.

Which responses are visits (:meth:`PageView.respond`), after it answered: status
200, ``Content-Type`` ``text/html`` or ``application/xhtml+xml``, and no
:data:`SKIP_HEADER`. Then, in this order: a crawler gets nothing (no cookie, no
visit); the ``consent`` hook refusing (or raising) gets nothing; the visitor
id is the application's (``visitor_id`` hook), else the visitor cookie when it
looks like one of ours, else a new one; the landing context is read from the
signed landing cookie and moved on by :func:`~dni_engine.landing.next_landing`;
and the engine is asked for the number of the landing URL and referrer, with
the request's client key (:meth:`WebCore.cap_client`) when a pool caps its
clients (``client_cap``: one address and user agent sending fresh cookies
cannot drain a pool). A
visitor holding a lease also gets the number cookie, readable by the page's
script (``number_cookie_name``), and the signed lease cookie naming the pool of
their lease (``lease_cookie_name``), which the next visit gives the store as a
hint so that a shared store decides it in one round trip. In ``debug`` mode a ``dni_test_pool`` URL
parameter shows that pool's first number instead, without a lease or a cookie.
These rules are :meth:`WebCore.visit`, which the browser endpoint
(:mod:`dni_engine.web.endpoint`) shares.

Nothing here raises into the host: any failure gives a plan that leaves the
response as the application made it, logged once per kind of failure.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import inspect
import json
import logging
import math
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import parse_qs, quote, urlsplit

from dni_engine.bots import DEFAULT_CRAWLERS, Crawlers
from dni_engine.landing import Landing, cap_url, next_landing
from dni_engine.leases import Decision, Outcome
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.web.body import BodyRewriter
from dni_engine.web.clients import (
    UNIX,
    RateLimiter,
    client_address,
    client_key,
    client_network,
    parse_networks,
    rotating_key,
)
from dni_engine.web.config import WebConfig

if TYPE_CHECKING:
    from dni_engine.engine import Engine
    from dni_engine.rewrite import ByteRewriteStream

__all__ = [
    "DEBUG_HEADER",
    "MAX_LANDING_COOKIE",
    "SKIP_HEADER",
    "TEST_PARAMETER",
    "PageRequest",
    "PageView",
    "ResponsePlan",
    "Visit",
    "WebCore",
    "decode_landing",
    "decode_lease_hint",
    "encode_landing",
    "encode_lease_hint",
    "formatted_number",
    "number_cookie_value",
    "parse_cookies",
    "skip",
]

log = logging.getLogger("dni_engine.web")

SKIP_HEADER: Final = "X-DNI-Skip"
"""A response carrying this header is never touched; the middleware removes it."""
DEBUG_HEADER: Final = "X-DNI"
"""The support header (``WebConfig(debug_header=True)``): ``outcome=new; pool=41001; source=0``."""
MAX_LANDING_COOKIE: Final = 3072
"""The longest landing cookie value written or read, in characters."""

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_PAGE_METHODS: Final = frozenset({"GET", "HEAD"})
_NAVIGATE_MODES: Final = frozenset({"navigate", "nested-navigate"})
_WILDCARDS: Final = frozenset({"text/*", "*/*"})
# Our visitor ids: secrets.token_urlsafe(16), 22 characters of base64url.
_OUR_ID: Final = re.compile(r"[A-Za-z0-9_-]{22}")
# Headers a CDN reads instead of Cache-Control; a personal page must not be cached there.
_CDN_CACHE_HEADERS: Final = frozenset(
    {"surrogate-control", "cdn-cache-control", "cloudflare-cdn-cache-control"}
)
_SHARED_DIRECTIVES: Final = frozenset({"public", "s-maxage", "proxy-revalidate"})
_LANDING_CONTEXT: Final = b"dni-landing\x00"
_LEASE_CONTEXT: Final = b"dni-lease\x00"
_MAX_LEASE_COOKIE: Final = 400
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


# ---- the request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The facts of one request an adapter gives the core.

    ``url`` is absolute, as the browser sent it (``scheme://host/path?query``);
    ``headers`` has lower-case names, repeated headers joined with ``", "``;
    ``cookies`` are the request's cookies by name (the first of a repeated
    name); ``client`` is the socket peer address; ``native`` is the
    framework's own request (ASGI scope, WSGI environ, Django or Flask request),
    for the ``consent`` and ``visitor_id`` hooks.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    native: object = None

    @property
    def scheme(self) -> str:
        """``http`` or ``https`` (lower case; ``""`` when the URL has none)."""
        return _parts(self.url)[0]

    @property
    def host(self) -> str:
        """The host name, lower case, without the port (``""`` when the URL has none)."""
        return _parts(self.url)[1]

    @property
    def path(self) -> str:
        """The URL's path (``/`` when empty)."""
        return _parts(self.url)[2]

    @property
    def user_agent(self) -> str | None:
        """The ``User-Agent`` header, or ``None``."""
        return _header(self.headers, "user-agent")

    @property
    def referrer(self) -> str | None:
        """The ``Referer`` header, or ``None``."""
        return _header(self.headers, "referer")


def _parts(url: object) -> tuple[str, str, str]:
    if type(url) is not str:
        return "", "", "/"
    return _split(url)


@functools.lru_cache(maxsize=256)
def _split(url: str) -> tuple[str, str, str]:
    try:
        split = urlsplit(url)
        host = split.hostname or ""
    except ValueError:
        return "", "", "/"
    return split.scheme.lower(), host, split.path or "/"


def _header(headers: object, name: str) -> str | None:
    try:
        value = cast("Mapping[str, str]", headers).get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def parse_cookies(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header by name: the first of a repeated name wins.

    Lenient, as browsers are: pieces without ``=`` are skipped, a value in
    double quotes loses them, nothing is percent-decoded. Never raises.
    """
    cookies: dict[str, str] = {}
    if not isinstance(header, str):
        return cookies
    for piece in header.split(";"):
        name, sep, value = piece.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, value)
    return cookies


def url_of(scheme: str, host: str, path: str, query: str = "") -> str:
    """An absolute URL from its parts as a server reports them (``host`` may carry a port)."""
    url = f"{scheme}://{host}{path or '/'}"
    return f"{url}?{query}" if query else url


def authority(scheme: str, host: str | None, server: tuple[str, int | None] | None) -> str:
    """The ``Host`` header, else the server's address (its port only when not the default)."""
    if host:
        return host
    if server is None:
        return "localhost"
    name, port = server
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return name
    return f"{name}:{port}"


# ---- the landing cookie -----------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, _LANDING_CONTEXT + payload.encode("ascii"), hashlib.sha256)
    return _b64(digest.digest())


def encode_landing(landing: Landing, secret: bytes, params: frozenset[str] = frozenset()) -> str:
    """``landing`` as a signed cookie value: base64url JSON ``.`` base64url HMAC-SHA256.

    The value never exceeds :data:`MAX_LANDING_COOKIE` characters: a long
    referrer is cut first, then the URL, keeping the click ids and the query
    parameters in ``params`` (:func:`~dni_engine.landing.cap_url`).
    """
    url, referrer = landing.url, landing.referrer
    while True:
        body = json.dumps(
            [url, referrer, landing.started, landing.seen],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        payload = _b64(body)
        value = f"{payload}.{_mac(secret, payload)}"
        excess = len(value) - MAX_LANDING_COOKIE
        if excess <= 0:
            return value
        cut = excess * 3 // 4 + 4  # base64 characters back to (at least as many) bytes
        if referrer:
            referrer = referrer[: max(0, len(referrer) - cut)] or None
        else:
            url = cap_url(url, max(0, len(url) - cut), params)


def _lease_mac(secret: bytes, visitor_id: str, payload: str) -> str:
    message = _LEASE_CONTEXT + visitor_id.encode("utf-8", "replace") + b"\x00" + payload.encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def encode_lease_hint(pool_key: str, visitor_id: str, secret: bytes) -> str:
    """The lease cookie's value: ``pool_key`` in base64url ``.`` an HMAC-SHA256 tag.

    The tag covers the visitor id too, so the value means nothing for another
    visitor. The cookie is a hint for the store (see :meth:`Engine.visit
    <dni_engine.engine.Engine.visit>`), never trusted with a decision.
    """
    payload = _b64(pool_key.encode("utf-8"))
    return f"{payload}.{_lease_mac(secret, visitor_id, payload)}"


def decode_lease_hint(value: object, visitor_id: str, secret: bytes) -> str | None:
    """The pool key a lease cookie value holds for ``visitor_id``, or ``None``; never raises.

    ``None`` for a value that is not a string, too long, unsigned, signed with
    another key or for another visitor, or tampered with.
    """
    if not isinstance(value, str) or len(value) > _MAX_LEASE_COOKIE:
        return None
    payload, sep, signature = value.partition(".")
    if not sep or not payload or not payload.isascii() or not signature.isascii():
        return None
    try:
        if not hmac.compare_digest(_lease_mac(secret, visitor_id, payload), signature):
            return None
        pool_key = _unb64(payload).decode("utf-8")
    except Exception:
        return None
    return pool_key or None


def decode_landing(value: object, secret: bytes) -> Landing | None:
    """The :class:`~dni_engine.landing.Landing` a signed cookie value holds, or ``None``.

    ``None`` for a value that is not a string, longer than
    :data:`MAX_LANDING_COOKIE`, unsigned, signed with another key, tampered
    with or not holding a landing context. Never raises.
    """
    if not isinstance(value, str) or len(value) > MAX_LANDING_COOKIE:
        return None
    payload, sep, signature = value.partition(".")
    if not sep or not payload or not payload.isascii() or not signature.isascii():
        return None
    try:
        if not hmac.compare_digest(_mac(secret, payload), signature):
            return None
        data = json.loads(_unb64(payload))
    except Exception:
        return None
    if not isinstance(data, list) or len(data) != 4:
        return None
    url, referrer, started, seen = data
    if not isinstance(url, str) or not (referrer is None or isinstance(referrer, str)):
        return None
    times = (started, seen)
    if not all(type(t) in (int, float) and math.isfinite(t) for t in times):
        return None
    return Landing(url, referrer, float(started), float(seen))


# ---- the plan -----------------------------------------------------------------------


@dataclass(slots=True)
class ResponsePlan:
    """What an adapter does with one response.

    ``headers`` are the headers to send (see :meth:`PageView.respond`);
    ``body`` is the :class:`~dni_engine.web.body.BodyRewriter` to feed the
    body through, or ``None`` for a body passed through untouched;
    ``decision`` the engine's decision when the response was a visit;
    ``touched`` whether ``headers`` differ from the application's beyond the
    removed :data:`SKIP_HEADER`. ``original`` are the application's headers
    (without :data:`SKIP_HEADER`): what is sent when the body rewrite fails
    before anything was sent.
    """

    headers: list[tuple[str, str]]
    body: BodyRewriter | None = None
    decision: Decision | None = None
    touched: bool = False
    original: list[tuple[str, str]] = field(default_factory=list)
    etag: str | None = None

    def whole(self, length: int, changed: bool) -> list[tuple[str, str]]:
        """The headers for a body rewritten in one go: ``length`` bytes long.

        ``Content-Length`` is set to ``length``; when the rewrite changed
        nothing (``changed`` false), a weakened ``ETag`` is restored as it was.
        """
        out = [(n, v) for n, v in self.headers if n.lower() != "content-length"]
        if not changed and self.etag is not None:
            out = [(n, self.etag if n.lower() == "etag" else v) for n, v in out]
        out.append(("Content-Length", str(length)))
        return out


def _untouched(headers: Sequence[tuple[str, str]]) -> ResponsePlan:
    kept = _without(headers, SKIP_HEADER)
    return ResponsePlan(kept, original=list(kept))


def _as_given(headers: object) -> ResponsePlan:
    """A plan sending ``headers`` exactly as given (they could not even be read)."""
    try:
        given = list(cast("Sequence[tuple[str, str]]", headers))
    except Exception:
        given = []
    return ResponsePlan(given, original=list(given))


def _without(headers: Sequence[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(n, v) for n, v in headers if n.lower() not in drop]


def _values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name]


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower case without parameters."""
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def _admits_html(accept: str) -> bool:
    """Whether an ``Accept`` value asks for a page (see the module docstring, rule 5)."""
    wildcard = other = False
    for item in accept.split(","):
        kind, _, params = item.partition(";")
        kind = kind.strip().lower()
        if not kind:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if kind in _HTML_TYPES:
            if q > 0:
                return True
        elif kind in _WILDCARDS:
            wildcard = wildcard or q > 0
        else:
            other = True  # a specific type that is not HTML: an image, JSON, a script ...
    return wildcard and not other


def _private(values: list[str]) -> str:
    """One ``Cache-Control`` value from the application's, made private (see the module doc)."""
    directives: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            name = item.partition("=")[0].strip().lower()
            if not item or name in _SHARED_DIRECTIVES or name == "private":
                continue
            directives.append(item)
    return ", ".join(["private", *directives])


def _vary(values: list[str]) -> str:
    names = [item.strip() for value in values for item in value.split(",") if item.strip()]
    lowered = {name.lower() for name in names}
    if "*" in lowered or "cookie" in lowered:
        return ", ".join(names)
    return ", ".join([*names, "Cookie"])


def _weak(etag: str) -> str:
    etag = etag.strip()
    return etag if etag.startswith("W/") else f"W/{etag}"


def debug_value(outcome: str, decision: Decision | None) -> str:
    """The :data:`DEBUG_HEADER` value: ``outcome=new; pool=41001; source=0``."""
    parts = [f"outcome={outcome}"]
    if decision is not None:
        if decision.pool_key is not None:
            parts.append(f"pool={decision.pool_key}")
        if decision.source_index is not None:
            parts.append(f"source={decision.source_index}")
    return "; ".join(parts)


_T = TypeVar("_T")

# ---- a visit -------------------------------------------------------------------------

TEST_PARAMETER: Final = "dni_test_pool"
"""The URL parameter of the test hook (``WebConfig(debug=True)`` only)."""


@dataclass(frozen=True, slots=True)
class Visit:
    """What one visit decided: ``outcome``, the engine's ``decision`` and the ``cookies`` to set.

    ``outcome`` is the decision's outcome, or ``"bot"`` / ``"no_consent"``
    (no decision: nothing was asked) or ``"test"`` (the test hook's decision).
    ``cookies`` are ``Set-Cookie`` header values.
    """

    outcome: str
    decision: Decision | None
    cookies: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def formatted_number(e164: str) -> str | None:
    """An E.164 number in its country's national format (``0117 496 0000``), or ``None``."""
    try:
        import phonenumbers

        parsed = phonenumbers.parse(e164, None)
        if not phonenumbers.is_possible_number(parsed):
            return None
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))
    except Exception:
        return None


_COOKIE_SAFE: Final = "+()-./:"


def number_cookie_value(decision: Decision) -> str | None:
    """The number cookie's value for a decision holding a lease, else ``None``.

    ``E164|FORMATTED|POOL|EXPIRES`` percent-encoded as a URI component
    (``decodeURIComponent(value).split("|")`` in the browser): the number, its
    national format, the pool key and the lease's end in whole seconds since
    the epoch.
    """
    number, key, expires = decision.number, decision.pool_key, decision.expires
    if number is None or key is None or expires is None or decision.lease_id is None:
        return None
    text = formatted_number(number) or number
    return quote(f"{number}|{text}|{key}|{math.ceil(expires)}", safe=_COOKIE_SAFE)


# ---- the core -----------------------------------------------------------------------


@dataclass(slots=True)
class _Asked:
    """What :meth:`WebCore.visit` asks the engine, and what answering it needs."""

    visitor: str
    landing: Landing
    user_agent: str | None
    now: float
    hint: str | None
    client: str | None
    secure: bool
    cookies: list[str]
    held: bool
    lease_held: bool


class WebCore:
    """The integration's decisions for one site: which requests, which cookies, which body.

    Built once per application from an :class:`~dni_engine.engine.Engine`
    and a :class:`~dni_engine.web.config.WebConfig`; shared by all requests
    and threads.
    """

    def __init__(self, engine: Engine, config: WebConfig) -> None:
        self.engine = engine
        self.config = config
        self._secret = config.secret_bytes
        self._window = config.window_seconds
        self._logged: set[str] = set()
        crawlers = config.crawlers or getattr(engine, "crawlers", None)
        self._crawlers = crawlers if isinstance(crawlers, Crawlers) else DEFAULT_CRAWLERS
        try:
            self._params = engine.rules.param_names
        except Exception:
            self._params = frozenset()
        # Whether a visit's client key is worth computing: some pool caps its clients.
        try:
            self._capped = any(t.client_cap for t in engine.terms.values())
        except Exception:
            self._capped = False
        self._trusted = parse_networks(config.trusted_proxies)
        self._unix_trusted = any(
            isinstance(p, str) and p.strip().lower() == UNIX for p in config.trusted_proxies
        )
        limit = config.endpoint_rate_limit
        self.rate_limiter = None if limit is None else RateLimiter(limit)

    def client(self, request: PageRequest, now: float | None = None) -> str:
        """The request's client as a keyed hash of its network and user agent; never raises.

        The network is the socket peer's, or what the forwarding header says
        when the peer is a trusted proxy (:func:`~dni_engine.web.clients.client_address`);
        the hash key changes daily (:func:`~dni_engine.web.clients.rotating_key`).
        """
        try:
            address = client_address(
                request.client,
                request.headers,
                self._trusted,
                self.config.forwarded_header,
                unix_trusted=self._unix_trusted,
            )
            when = self.engine.clock() if now is None else now
            key = rotating_key(self._secret, when)
            return client_key(client_network(address), request.user_agent, key)
        except Exception:
            self.log_once("client", "reading a request's client failed; it counts as unknown")
            return ""

    def cap_client(self, request: PageRequest, now: float | None = None) -> str | None:
        """The request's :meth:`client` key for the pools' client cap; never raises.

        ``None`` (no cap applies) when the request's network is unknown: a
        peer that is not an IP address (a Unix socket not listed in
        ``trusted_proxies``, a test client without one). Such requests would
        otherwise all share one client per user agent.
        """
        try:
            address = client_address(
                request.client,
                request.headers,
                self._trusted,
                self.config.forwarded_header,
                unix_trusted=self._unix_trusted,
            )
            if address is None:
                return None
            when = self.engine.clock() if now is None else now
            key = rotating_key(self._secret, when)
            return client_key(client_network(address), request.user_agent, key)
        except Exception:
            self.log_once("client", "reading a request's client failed; it counts as unknown")
            return None

    def begin(self, request: PageRequest) -> PageView | None:
        """A :class:`PageView` for a request that may be a page view, else ``None``.

        See the module docstring for the rules. Never raises (a failure: ``None``).
        """
        try:
            return self._begin(request)
        except Exception:
            self.log_once("begin", "reading a request failed; it was left alone")
            return None

    def _begin(self, request: PageRequest) -> PageView | None:
        method = request.method.upper() if isinstance(request.method, str) else ""
        if method not in _PAGE_METHODS:
            return None
        path = request.path
        if any(path.startswith(prefix) for prefix in self.config.skip_paths):
            return None
        headers = request.headers
        dest = _header(headers, "sec-fetch-dest")
        if dest is not None and dest.strip().lower() != "document":
            return None
        mode = _header(headers, "sec-fetch-mode")
        if mode is not None and mode.strip().lower() not in _NAVIGATE_MODES:
            return None
        requested_with = _header(headers, "x-requested-with")
        if requested_with is not None and requested_with.strip().lower() == "xmlhttprequest":
            return None
        accept = _header(headers, "accept")
        if accept is not None and accept.strip() and not _admits_html(accept):
            return None
        return PageView(self, request, method == "HEAD")

    def log_once(self, kind: str, message: str) -> None:
        """Log ``message`` (with any exception being handled) the first time ``kind`` fails."""
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s", message, exc_info=sys.exc_info()[0] is not None)

    # -- the parts of a visit, used by PageView --

    def consents(self, request: PageRequest) -> bool:
        """Whether the ``consent`` hook lets this visitor be tracked (raising: no)."""
        hook = self.config.consent
        if hook is None:
            return True
        try:
            return bool(hook(request))
        except Exception:
            self.log_once("consent", "the consent hook raised; the visitor was not tracked")
            return False

    def app_visitor(self, request: PageRequest) -> str | None:
        """The application's own visitor id (``visitor_id`` hook), or ``None``."""
        hook = self.config.visitor_id
        if hook is None:
            return None
        try:
            value = hook(request)
        except Exception:
            self.log_once("visitor_id", "the visitor_id hook raised; the cookie was used")
            return None
        if isinstance(value, str) and value:
            return value
        return None

    def cookie(
        self, name: str, value: str, max_age: int, secure: bool, *, readable: bool = False
    ) -> str:
        """A ``Set-Cookie`` value with the configured attributes (``HttpOnly`` unless readable)."""
        config = self.config
        parts = [f"{name}={value}", f"Max-Age={max_age}", f"Path={config.cookie_path}"]
        if config.cookie_domain:
            parts.append(f"Domain={config.cookie_domain}")
        if secure:
            parts.append("Secure")
        if not readable:
            parts.append("HttpOnly")
        parts.append("SameSite=Lax")
        return "; ".join(parts)

    def visit(self, request: PageRequest, *, secure: bool | None = None) -> Visit:
        """The decision of one visit and the cookies it sets; calls the store once.

        The rules of a page view (see the module doc): a crawler gets
        ``outcome="bot"`` and nothing else; the ``consent`` hook refusing gets
        ``"no_consent"`` (and the number and lease cookies the request holds are cleared);
        in ``debug`` mode a ``dni_test_pool`` URL parameter naming a pool gets
        ``"test"`` and that pool's first number, no lease and no cookie;
        otherwise the visitor and landing cookies and the engine's decision of
        the landing context (for the request's :meth:`cap_client`, so the
        pools' client cap applies), with the number and lease cookies while the
        visitor holds a lease. The lease cookie (signed, naming the lease's
        pool) or a visitor id minted here is the store's ``hint``. ``secure``
        marks the cookies ``Secure`` (by default: an ``https`` URL). Raises
        only what a bug in the engine would.
        """
        asked = self._ask(request, secure)
        if type(asked) is Visit:
            return asked
        ask = cast(_Asked, asked)
        decision = self.engine.visit(
            ask.visitor,
            ask.landing.url,
            ask.landing.referrer,
            ask.user_agent,
            at=ask.now,
            client=ask.client,
            hint=ask.hint,
        )
        return self._answered(ask, decision)

    async def avisit(self, request: PageRequest, *, secure: bool | None = None) -> Visit:
        """:meth:`visit` for an event loop: the engine's :meth:`~dni_engine.engine.Engine.avisit`.

        An asynchronous store is awaited on the loop, so the page view never
        waits on a worker thread; a store doing I/O runs on one.
        """
        asked = self._ask(request, secure)
        if type(asked) is Visit:
            return asked
        ask = cast(_Asked, asked)
        decision = await self.engine.avisit(
            ask.visitor,
            ask.landing.url,
            ask.landing.referrer,
            ask.user_agent,
            at=ask.now,
            client=ask.client,
            hint=ask.hint,
        )
        return self._answered(ask, decision)

    def _ask(self, request: PageRequest, secure: bool | None) -> Visit | _Asked:
        """A visit up to the engine: its :class:`Visit` without one, else what to ask it."""
        config = self.config
        user_agent = request.user_agent
        if secure is None:
            secure = request.scheme == "https"
        if self._crawlers.is_bot(user_agent):
            return Visit("bot", None, ())
        number_cookie = config.number_cookie_name
        held = number_cookie is not None and number_cookie in request.cookies
        lease_cookie = config.lease_cookie_name
        lease_held = lease_cookie is not None and lease_cookie in request.cookies
        if not self.consents(request):
            cleared: list[str] = []
            if number_cookie is not None and held:
                cleared.append(self.cookie(number_cookie, "", 0, secure, readable=True))
            if lease_cookie is not None and lease_held:
                cleared.append(self.cookie(lease_cookie, "", 0, secure))
            return Visit("no_consent", None, tuple(cleared))
        if config.debug:
            test = self.test_decision(request)
            if test is not None:
                return Visit("test", test, ())
        cookies: list[str] = []
        hint: str | None = None
        visitor = self.app_visitor(request)
        if visitor is None:
            known = request.cookies.get(config.cookie_name)
            if isinstance(known, str) and _OUR_ID.fullmatch(known):
                visitor = known
            else:
                visitor = secrets.token_urlsafe(16)
                hint = NEW_VISITOR  # minted just now: the store holds nothing of it
                cookies.append(
                    self.cookie(config.cookie_name, visitor, config.cookie_max_age, secure)
                )
        if hint is None and lease_cookie is not None and lease_held:
            hint = decode_lease_hint(request.cookies.get(lease_cookie), visitor, self._secret)
        engine = self.engine
        now = float(engine.clock())
        landing = next_landing(
            self.landing(request),
            request.url,
            request.referrer,
            now,
            site_host=request.host,
            window=self._window,
            params=self._params,
        )
        client = self.cap_client(request, now) if self._capped else None
        return _Asked(
            visitor, landing, user_agent, now, hint, client, secure, cookies, held, lease_held
        )

    def _answered(self, asked: _Asked, decision: Decision) -> Visit:
        """The visit of the engine's ``decision`` on what :meth:`_ask` prepared: the cookies."""
        config = self.config
        number_cookie, lease_cookie = config.number_cookie_name, config.lease_cookie_name
        visitor, landing, now, secure = asked.visitor, asked.landing, asked.now, asked.secure
        held, lease_held, cookies = asked.held, asked.lease_held, asked.cookies
        max_age = max(1, math.ceil(self._window))
        cookies.append(
            self.cookie(
                config.landing_cookie_name,
                encode_landing(landing, self._secret, self._params),
                max_age,
                secure,
            )
        )
        if number_cookie is not None:
            value = number_cookie_value(decision)
            if value is not None and decision.expires is not None:
                age = max(1, math.ceil(decision.expires - now))
                cookies.append(self.cookie(number_cookie, value, age, secure, readable=True))
            elif held:
                cookies.append(self.cookie(number_cookie, "", 0, secure, readable=True))
        if lease_cookie is not None and decision.outcome != "store_unavailable":
            pool_key, expires = decision.pool_key, decision.expires
            if decision.lease_id is not None and pool_key is not None and expires is not None:
                value = encode_lease_hint(pool_key, visitor, self._secret)
                age = max(1, math.ceil(expires - now))
                cookies.append(self.cookie(lease_cookie, value, age, secure))
            elif lease_held:
                cookies.append(self.cookie(lease_cookie, "", 0, secure))
        return Visit(decision.outcome, decision, tuple(cookies))

    def test_decision(self, request: PageRequest) -> Decision | None:
        """In ``debug`` mode, the decision the ``dni_test_pool`` URL parameter asks for, if any.

        The parameter names a pool by key or name; the decision shows its
        first number (``outcome`` ``"test"``), without asking the store.
        ``None`` when the parameter is absent or names no pool with numbers.
        """
        if not self.config.debug or TEST_PARAMETER not in request.url:
            return None
        try:
            query = urlsplit(request.url).query
            wanted = parse_qs(query).get(TEST_PARAMETER)
            if not wanted:
                return None
            key = self.engine.pool_key(wanted[0])
            numbers = self.engine.terms[key].numbers
            pool_name = self.engine.pool(key).name
        except Exception:
            return None
        if not numbers:
            return None
        now = float(self.engine.clock())
        return Decision("", now, cast("Outcome", "test"), numbers[0], key, pool_name)

    def landing(self, request: PageRequest) -> Landing | None:
        """The landing context the request's signed landing cookie holds, if valid."""
        return decode_landing(request.cookies.get(self.config.landing_cookie_name), self._secret)

    def body_rewriter(
        self, decision: Decision, content_type: str | None, content_encoding: str | None
    ) -> BodyRewriter:
        """The body transformer of a page showing ``decision``'s number."""
        engine = self.engine

        def make_stream(charset: str) -> ByteRewriteStream | None:
            return engine.stream(decision, encoding=charset)

        return BodyRewriter(
            make_stream,
            content_type=content_type,
            content_encoding=content_encoding,
            max_buffer=self.config.max_buffer,
        )


class PageView:
    """One request that may be a page view, waiting for the application's response."""

    __slots__ = ("_core", "head", "request")

    def __init__(self, core: WebCore, request: PageRequest, head: bool) -> None:
        self._core = core
        self.request = request
        self.head = head

    def candidate(self, status: int, headers: Sequence[tuple[str, str]]) -> bool:
        """Whether this response would be a visit (status 200, HTML, no opt-out); no I/O."""
        try:
            return self._candidate(status, headers)
        except Exception:
            return False

    def _candidate(self, status: int, headers: Sequence[tuple[str, str]]) -> bool:
        if status != 200:
            return False
        skip_header = SKIP_HEADER.lower()
        kind = ""
        for name, value in headers:
            lower = name.lower()
            if lower == skip_header:
                return False
            if lower == "content-type":
                kind = media_type(value)
        return kind in _HTML_TYPES

    def respond(self, status: int, headers: Sequence[tuple[str, str]]) -> ResponsePlan:
        """The plan for the application's response (``status``, ``headers``); calls the store.

        Only a visit (see :meth:`candidate`) is touched: the visitor cookie when
        new, the landing cookie, ``Cache-Control: private`` (``public``,
        ``s-maxage`` and ``proxy-revalidate`` dropped, the CDN-only caching
        headers removed) and ``Vary: Cookie``; when the page shows a number
        ``Content-Length`` and ``Content-MD5`` dropped and a strong ``ETag``
        weakened; the debug header when configured. :data:`SKIP_HEADER` is
        always removed. Never raises: a failure leaves the response as it was.
        """
        try:
            if not self._candidate(status, headers):
                return _untouched(headers)
            return self._visit(list(headers))
        except Exception:
            self._core.log_once("respond", "planning a response failed; it was left alone")
            try:
                return _untouched(headers)
            except Exception:
                return _as_given(headers)

    async def respond_async(self, status: int, headers: Sequence[tuple[str, str]]) -> ResponsePlan:
        """:meth:`respond` for an event loop.

        With an asynchronous store (:attr:`Engine.awaits_store
        <dni_engine.engine.Engine.awaits_store>`) the visit goes through
        :meth:`WebCore.avisit` and the store is awaited on the loop, so the
        configured hooks (``consent``, ``visitor_id``) run on the loop too and
        must not block. With any other store the whole of :meth:`respond`,
        hooks included, runs on a worker thread, as before.
        """
        try:
            if not self._candidate(status, headers):
                return _untouched(headers)
            if not self._core.engine.awaits_store:
                return await _off_loop(functools.partial(self.respond, status, headers))
            given = list(headers)
            return self._plan(given, await self._core.avisit(self.request))
        except Exception:
            self._core.log_once("respond", "planning a response failed; it was left alone")
            try:
                return _untouched(headers)
            except Exception:
                return _as_given(headers)

    def _visit(self, headers: list[tuple[str, str]]) -> ResponsePlan:
        return self._plan(headers, self._core.visit(self.request))

    def _plan(self, headers: list[tuple[str, str]], visit: Visit) -> ResponsePlan:
        """The plan for a response whose visit was ``visit``."""
        core, config = self._core, self._core.config
        original = _without(headers, SKIP_HEADER)
        debug = config.debug_header
        decision = visit.decision
        if decision is None and not visit.cookies:
            return self._plain(original, visit.outcome) if debug else _untouched(original)
        cookies = list(visit.cookies)
        out = [
            (n, v)
            for n, v in original
            if n.lower() not in _CDN_CACHE_HEADERS and n.lower() not in ("cache-control", "vary")
        ]
        out.append(("Cache-Control", _private(_values(original, "cache-control"))))
        out.append(("Vary", _vary(_values(original, "vary"))))
        out += [("Set-Cookie", c) for c in cookies]
        body: BodyRewriter | None = None
        etag: str | None = None
        if decision is None:  # no consent, a cookie cleared: only the privacy headers
            if debug:
                out.append((DEBUG_HEADER, debug_value(visit.outcome, None)))
            return ResponsePlan(out, None, None, True, original)
        shows = decision.number is not None and decision.pool_key is not None
        if shows and not self.head:
            try:
                body = core.body_rewriter(
                    decision, _last(original, "content-type"), _last(original, "content-encoding")
                )
            except Exception:
                core.log_once("body", "no body rewriter could be made; pages were left as they are")
                shows = False
        if shows:
            rewritten: list[tuple[str, str]] = []
            for n, v in out:
                lower = n.lower()
                if lower in ("content-length", "content-md5"):
                    continue
                if lower == "etag":
                    etag = v
                    v = _weak(v)
                rewritten.append((n, v))
            out = rewritten
        if debug:
            out.append((DEBUG_HEADER, debug_value(visit.outcome, decision)))
        return ResponsePlan(out, body, decision, True, original, etag)

    def _plain(self, original: list[tuple[str, str]], outcome: str) -> ResponsePlan:
        headers = [*original, (DEBUG_HEADER, debug_value(outcome, None))]
        return ResponsePlan(headers, None, None, True, original)


def _last(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    values = _values(headers, name)
    return values[-1] if values else None


async def _off_loop(call: Callable[[], _T]) -> _T:
    """Run ``call`` on a worker thread: anyio's when installed (asyncio or trio), else asyncio's."""
    try:
        import anyio.to_thread  # optional: present wherever ASGI frameworks are
    except ImportError:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, call)
    return await anyio.to_thread.run_sync(call)


# ---- opting out -----------------------------------------------------------------------

_View = TypeVar("_View", bound=Callable[..., Any])


def _mark(response: object) -> None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return
    try:
        headers[SKIP_HEADER] = "1"
    except Exception:
        log.debug("a response could not be marked %s", SKIP_HEADER, exc_info=True)


def _skip_headers(headers: object) -> object:
    try:
        return [*cast("list[tuple[str, str]]", headers), (SKIP_HEADER, "1")]
    except Exception:
        return headers


def skip(view: _View) -> _View:
    """Mark every response of ``view`` as not to be touched (the :data:`SKIP_HEADER`).

    Works on any callable, sync or async: a view whose return value has a
    mutable ``headers`` mapping (Flask, Django, Starlette responses), a WSGI
    application (its ``start_response`` headers) or an ASGI application (its
    ``http.response.start`` headers). The middleware removes the header.
    """
    # An ASGI application may be an object whose __call__ is a coroutine function.
    if inspect.iscoroutinefunction(view) or inspect.iscoroutinefunction(type(view).__call__):

        @functools.wraps(view)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 3 and not kwargs and isinstance(args[0], dict) and "type" in args[0]:
                scope, receive, send = args

                async def marked_send(message: dict[str, Any]) -> None:
                    if message.get("type") == "http.response.start":
                        message = dict(message)
                        message["headers"] = [
                            *message.get("headers", ()),
                            (SKIP_HEADER.encode("latin-1"), b"1"),
                        ]
                    await send(message)

                return await view(scope, receive, marked_send)
            response = await cast("Callable[..., Awaitable[Any]]", view)(*args, **kwargs)
            _mark(response)
            return response

        return cast("_View", async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if (
            len(args) == 2
            and not kwargs
            and isinstance(args[0], dict)
            and "wsgi.version" in args[0]
            and callable(args[1])
        ):
            environ, start_response = args

            def marked_start(status: str, headers: Any, exc_info: Any = None) -> Any:
                return start_response(status, _skip_headers(headers), exc_info)

            return view(environ, marked_start)
        response = view(*args, **kwargs)
        _mark(response)
        return response

    return cast("_View", wrapper)
