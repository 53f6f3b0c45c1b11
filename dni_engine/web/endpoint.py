"""The browser's endpoint: the script, the swap answers and the AMP number; no I/O, no framework.

The middleware answers these paths under ``WebConfig.endpoint_prefix``
(``/_dni`` by default) itself; they never reach the application:

``GET {prefix}/dni.js``
    The browser script, shipped as package data (``dni_engine/web/static/dni.js``),
    ``Cache-Control: public, max-age=86400`` with an ``ETag`` (it holds nothing
    personal); ``If-None-Match`` gets a 304.

``POST {prefix}/swap``
    A JSON body ``{"url": location.href, "referrer": document.referrer,
    "fragments": [...], "links": [...]}``. A fragment is one run of text the
    page shows inside one block, written as tiny HTML: its text nodes escaped
    (``&amp; &lt; &gt;``), inline elements as bare tags (``Call 0117 <b>496</b>
    0123``), two neighbouring text nodes parted by ``<!---->``. A link is a
    ``tel:``/``callto:`` target as the ``href`` attribute holds it. At most
    :data:`MAX_FRAGMENTS` fragments of :data:`MAX_FRAGMENT_CHARS` characters and
    :data:`MAX_LINKS` links (more: 413), each field of its type (else: 400);
    either answer is ``{"error": ..., "field": name}``.

    The decision is a page view's (:meth:`.WebCore.visit`): the page's URL and
    referrer from the body, the visitor's cookies, user agent and consent from
    the request, its cookies set in the answer. The answer::

        {"outcome": "new", "number": "+441174960000", "formatted": "0117 496 0000",
         "pool": "1", "fragments": [[text, ...] or null, ...], "links": [href or null, ...]}

    Each fragment is rewritten by the server's own rewriter
    (``Engine.rewrite(fragment, decision)``) and cut back at its tags: the
    entry lists the new text of each of the fragment's non-empty text runs
    between tags, in order, unescaped; ``null`` when nothing changed (or
    the rewrite changed a tag, which it never does). A link is rewritten as
    ``<a href="HREF">``. The browser so shows exactly the server's rewrite.
    ``Cache-Control: private, no-store``. It never fails: a failure answers 200
    ``{"outcome": "error"}`` with every entry ``null`` (the page keeps its numbers).

``GET {prefix}/number?url=...&referrer=...``
    The shape ``amp-call-tracking`` reads: ``{"phoneNumber": E164,
    "formattedPhoneNumber": national}``; with no number for the visitor, the
    ``original`` parameter's number (as given) or a 404. CORS as AMP asks:
    ``Origin`` must be the site's own, ``https://*.ampproject.org`` or one
    of ``amp_origins`` (else 403); the answer echoes it with
    ``Access-Control-Allow-Credentials: true``; ``__amp_source_origin``, when
    sent, must be the site's origin and is echoed in
    ``AMP-Access-Control-Allow-Source-Origin``.

``POST {prefix}/calls`` and ``POST {prefix}/calls/twilio``
    The call webhook, when configured (``call_secret``, ``twilio_auth_token``):
    see :mod:`dni_engine.web.calls`.

The ``swap`` and ``number`` answers are rate limited per client (its network
and user agent, :mod:`dni_engine.web.clients`): over
``WebConfig.endpoint_rate_limit`` requests a minute the answer is ``429``
``{"error": "too many requests", "field": "client"}`` with ``Retry-After``
(whole seconds), and the page keeps its numbers.

Other paths under the prefix go to the application.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from dni_engine.leases import Decision
from dni_engine.web.calls import CallWebhook
from dni_engine.web.core import (
    DEBUG_HEADER,
    PageRequest,
    Visit,
    WebCore,
    _off_loop,
    debug_value,
    formatted_number,
)

__all__ = [
    "MAX_BODY",
    "MAX_FRAGMENTS",
    "MAX_FRAGMENT_CHARS",
    "MAX_LINKS",
    "MAX_URL_CHARS",
    "Endpoint",
    "EndpointResponse",
    "script_tags",
    "split_fragment",
]

MAX_FRAGMENTS: Final = 200
"""The most fragments one swap request may send."""
MAX_FRAGMENT_CHARS: Final = 2000
"""The longest fragment (and link target), in characters."""
MAX_LINKS: Final = 100
"""The most links one swap request may send."""
MAX_URL_CHARS: Final = 8192
"""The longest page URL or referrer, in characters."""
MAX_BODY: Final = 2_097_152
"""The largest swap request body, in bytes (more: 413 naming ``body``)."""

SCRIPT_PATH: Final = "/dni.js"
SWAP_PATH: Final = "/swap"
NUMBER_PATH: Final = "/number"

_JSON: Final = ("Content-Type", "application/json")
_NO_STORE: Final = ("Cache-Control", "private, no-store")
_TAG: Final = re.compile(r"<[^<>]*>")
_LINK: Final = re.compile(r'<a href="([^"]*)">', re.DOTALL)
_AMP_CACHE: Final = re.compile(r"https://[A-Za-z0-9.-]+\.ampproject\.org")


@dataclass(frozen=True, slots=True)
class EndpointResponse:
    """The whole answer to one endpoint request: ``status``, ``headers`` and ``body``."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _BadRequest(Exception):
    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


@functools.cache
def _script() -> tuple[bytes, str] | None:
    """The script's bytes and ETag, read once from the package; ``None`` when absent."""
    try:
        data = (resources.files("dni_engine.web") / "static" / "dni.js").read_bytes()
    except Exception:
        return None
    return data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def split_fragment(fragment: str) -> tuple[list[str], list[str]]:
    """A fragment's tags and its text runs between them (``len(tags) + 1`` runs, escaped)."""
    tags = _TAG.findall(fragment)
    texts = _TAG.split(fragment)
    return tags, texts


class Endpoint:
    """The endpoint of one site (see the module doc); built on a :class:`.WebCore`.

    Adapters ask :meth:`route` whether a request is the endpoint's, then give
    it and its body (at most :data:`MAX_BODY` bytes read; ``too_large`` when
    there was more) to :meth:`answer` or :meth:`answer_async`.
    """

    def __init__(self, core: WebCore) -> None:
        self.core = core
        self.prefix = core.config.endpoint_prefix
        self.calls = CallWebhook(core)
        """The call webhook (its routes are empty unless it is configured)."""

    def route(self, request: PageRequest) -> str | None:
        """``"script"``, ``"swap"``, ``"number"``, or the call webhook's ``"generic"`` or
        ``"twilio"``, for an endpoint request; else ``None``."""
        prefix = self.prefix
        try:
            path = request.path
        except Exception:
            return None
        if prefix is None or not path.startswith(prefix):
            return None
        subpath = path[len(prefix) :]
        return {SCRIPT_PATH: "script", SWAP_PATH: "swap", NUMBER_PATH: "number"}.get(
            subpath
        ) or self.calls.route(subpath)

    def needs_body(self, request: PageRequest) -> bool:
        """Whether the answer reads the request body (a swap or a call webhook ``POST``)."""
        return self.route(request) in ("swap", "generic", "twilio") and _method(request) == "POST"

    async def answer_async(
        self, request: PageRequest, body: bytes = b"", *, too_large: bool = False
    ) -> EndpointResponse:
        """:meth:`answer` for an event loop: the store and the rewriter run on a worker thread."""
        if self.route(request) == "script":
            return self.answer(request, body, too_large=too_large)
        try:
            # An asynchronous store answers the worker thread's calls on this loop.
            self.core.engine.bind_loop()
            return await _off_loop(
                functools.partial(self.answer, request, body, too_large=too_large)
            )
        except Exception:
            self.core.log_once("endpoint", "the browser endpoint failed; it answered an error")
            return _error_answer(None)

    def answer(
        self, request: PageRequest, body: bytes = b"", *, too_large: bool = False
    ) -> EndpointResponse:
        """The answer to an endpoint request (``body`` its body); never raises.

        Every answer but a 204 or 304 carries its exact ``Content-Length``; ``HEAD``
        is answered as ``GET`` without the body.
        """
        answer = self._answer(request, body, too_large)
        if answer.status in (204, 304):
            return answer
        headers = [(n, v) for n, v in answer.headers if n.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer.body))))
        head = _method(request) == "HEAD"
        return EndpointResponse(answer.status, headers, b"" if head else answer.body)

    def _answer(self, request: PageRequest, body: bytes, too_large: bool) -> EndpointResponse:
        try:
            route = self.route(request)
            method = _method(request)
            if route == "script":
                if method not in ("GET", "HEAD"):
                    return _not_allowed("GET, HEAD")
                return self._script(request)
            if route == "swap":
                if method != "POST":
                    return _not_allowed("POST")
                return self._limited(request) or self._swap(request, body, too_large)
            if route in ("generic", "twilio"):
                hook = self.calls.answer(request, route, body, too_large=too_large)
                return EndpointResponse(hook.status, hook.headers, hook.body)
            if route == "number":
                if method == "OPTIONS":
                    return self._number_preflight(request)
                if method not in ("GET", "HEAD"):
                    return _not_allowed("GET, HEAD, OPTIONS")
                return self._limited(request) or self._number(request)
            return EndpointResponse(404, [_JSON, _NO_STORE], _dumps({"error": "not found"}))
        except Exception:
            self.core.log_once("endpoint", "the browser endpoint failed; it answered an error")
            return _error_answer(None)

    def _limited(self, request: PageRequest) -> EndpointResponse | None:
        """A ``429`` when the request's client is over the rate limit, else ``None``."""
        limiter = self.core.rate_limiter
        if limiter is None:
            return None
        wait = limiter.check(self.core.client(request))
        if wait <= 0.0:
            return None
        body = _dumps({"error": "too many requests", "field": "client"})
        retry = ("Retry-After", str(max(1, math.ceil(wait))))
        return EndpointResponse(429, [_JSON, _NO_STORE, retry], body)

    # -- the script --

    def _script(self, request: PageRequest) -> EndpointResponse:
        script = _script()
        if script is None:
            return EndpointResponse(
                404, [("Content-Type", "text/plain; charset=utf-8")], b"no script is installed"
            )
        data, etag = script
        headers = [
            ("Content-Type", "text/javascript; charset=utf-8"),
            ("Cache-Control", "public, max-age=86400"),
            ("ETag", etag),
        ]
        wanted = request.headers.get("if-none-match", "")
        if etag in {tag.strip().removeprefix("W/") for tag in wanted.split(",")}:
            return EndpointResponse(304, headers, b"")
        return EndpointResponse(200, headers, data)

    # -- the swap --

    def _swap(self, request: PageRequest, body: bytes, too_large: bool) -> EndpointResponse:
        try:
            if too_large or len(body) > MAX_BODY:
                raise _BadRequest(413, "body", f"is larger than {MAX_BODY} bytes")
            url, referrer, fragments, links = _parse_swap(body)
        except _BadRequest as bad:
            return EndpointResponse(
                bad.status,
                [_JSON, _NO_STORE],
                _dumps({"error": bad.reason, "field": bad.field}),
            )
        if (request.headers.get("sec-fetch-site") or "").strip().lower() == "cross-site":
            return EndpointResponse(
                403, [_JSON, _NO_STORE], _dumps({"error": "is cross-site", "field": "origin"})
            )
        try:
            visit = self._visit(request, url, referrer)
        except Exception:
            self.core.log_once("endpoint-visit", "a swap's visit failed; the page keeps numbers")
            return _error_answer(len(fragments), len(links))
        decision = visit.decision
        answer: dict[str, Any] = {
            "outcome": visit.outcome,
            "number": None,
            "formatted": None,
            "pool": None,
            "fragments": [None] * len(fragments),
            "links": [None] * len(links),
        }
        if decision is not None and decision.number is not None and decision.pool_key:
            answer["number"] = decision.number
            answer["formatted"] = formatted_number(decision.number)
            answer["pool"] = decision.pool_key
            try:
                answer["fragments"] = [self._fragment(f, decision) for f in fragments]
                answer["links"] = [self._link(h, decision) for h in links]
            except Exception:
                self.core.log_once("endpoint-rewrite", "a swap's rewrite failed; numbers kept")
                answer["fragments"] = [None] * len(fragments)
                answer["links"] = [None] * len(links)
        return EndpointResponse(200, self._headers(visit), _dumps(answer))

    def _visit(self, request: PageRequest, url: str, referrer: str | None) -> Visit:
        """The page view the browser reports, decided as the server would have."""
        headers = {k: v for k, v in request.headers.items() if k != "referer"}
        if referrer:
            headers["referer"] = referrer
        page = PageRequest("GET", url, headers, request.cookies, request.client, request.native)
        path = page.path
        if any(path.startswith(prefix) for prefix in self.core.config.skip_paths):
            return Visit("skipped", None, ())
        return self.core.visit(page, secure=request.scheme == "https")

    def _headers(self, visit: Visit) -> list[tuple[str, str]]:
        headers = [_JSON, _NO_STORE, ("Vary", "Cookie")]
        headers += [("Set-Cookie", cookie) for cookie in visit.cookies]
        if self.core.config.debug_header:
            headers.append((DEBUG_HEADER, debug_value(visit.outcome, visit.decision)))
        return headers

    def _fragment(self, fragment: str, decision: Decision) -> list[str] | None:
        out = self.core.engine.rewrite(fragment, decision)
        if out is fragment or out == fragment:
            return None
        tags, texts = split_fragment(fragment)
        new_tags, new_texts = split_fragment(out)
        if new_tags != tags:
            return None
        return [html.unescape(new) for old, new in zip(texts, new_texts, strict=True) if old]

    def _link(self, href: str, decision: Decision) -> str | None:
        written = '<a href="' + href.replace("&", "&amp;").replace('"', "&quot;") + '">'
        out = self.core.engine.rewrite(written, decision)
        if out is written or out == written:
            return None
        found = _LINK.fullmatch(out)
        return html.unescape(found.group(1)) if found else None

    # -- the AMP number --

    def _cors(self, request: PageRequest) -> list[tuple[str, str]] | None:
        """The CORS headers of an AMP request, ``[]`` for a same-origin one, ``None``: refused."""
        own = f"{request.scheme}://{_authority(request.url)}"
        origin = request.headers.get("origin")
        headers: list[tuple[str, str]] = []
        if origin is not None:
            origin = origin.strip()
            allowed = (
                origin == own
                or _AMP_CACHE.fullmatch(origin) is not None
                or origin in self.core.config.amp_origins
            )
            if not allowed:
                return None
            headers += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin, Cookie"),
            ]
        source = _query(request.url).get("__amp_source_origin")
        if source is not None:
            if source != own:
                return None
            headers += [
                ("AMP-Access-Control-Allow-Source-Origin", source),
                ("Access-Control-Expose-Headers", "AMP-Access-Control-Allow-Source-Origin"),
            ]
        return headers

    def _number_preflight(self, request: PageRequest) -> EndpointResponse:
        cors = self._cors(request)
        if cors is None:
            return EndpointResponse(403, [_JSON, _NO_STORE], _dumps({"error": "origin"}))
        cors += [("Access-Control-Allow-Methods", "GET"), ("Access-Control-Max-Age", "600")]
        return EndpointResponse(204, [*cors, _NO_STORE], b"")

    def _number(self, request: PageRequest) -> EndpointResponse:
        cors = self._cors(request)
        if cors is None:
            body = _dumps({"error": "this origin may not ask", "field": "origin"})
            return EndpointResponse(403, [_JSON, _NO_STORE], body)
        query = _query(request.url)
        url = query.get("url") or request.referrer or ""
        referrer = query.get("referrer") or None
        if len(url) > MAX_URL_CHARS or (referrer and len(referrer) > MAX_URL_CHARS):
            return EndpointResponse(413, [_JSON, _NO_STORE, *cors], _dumps({"error": "url"}))
        try:
            visit = self._visit(request, url, referrer)
        except Exception:
            self.core.log_once("endpoint-visit", "an AMP visit failed; the page keeps numbers")
            visit = Visit("error", None, ())
        headers = [*self._headers(visit), *(h for h in cors if h[0] != "Vary")]
        if cors:
            headers = [(n, "Cookie, Origin" if n == "Vary" else v) for n, v in headers]
        decision = visit.decision
        number = decision.number if decision is not None and decision.pool_key else None
        if number is None:
            number = query.get("original") or None
            formatted = (formatted_number(number) or number) if number else None
        else:
            formatted = formatted_number(number) or number
        if number is None:
            return EndpointResponse(404, headers, _dumps({"error": "no number for this visitor"}))
        return EndpointResponse(
            200, headers, _dumps({"phoneNumber": number, "formattedPhoneNumber": formatted})
        )


def _method(request: PageRequest) -> str:
    return request.method.upper() if isinstance(request.method, str) else ""


def _authority(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _query(url: str) -> dict[str, str]:
    try:
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    except ValueError:
        return {}


def _not_allowed(allow: str) -> EndpointResponse:
    return EndpointResponse(
        405, [_JSON, _NO_STORE, ("Allow", allow)], _dumps({"error": "method not allowed"})
    )


def _error_answer(fragments: int | None, links: int = 0) -> EndpointResponse:
    body = {
        "outcome": "error",
        "number": None,
        "formatted": None,
        "pool": None,
        "fragments": [None] * (fragments or 0),
        "links": [None] * links,
    }
    return EndpointResponse(200, [_JSON, _NO_STORE], _dumps(body))


def _strings(value: object, field: str, limit: int, size: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadRequest(400, field, "must be a list of strings")
    if len(value) > limit:
        raise _BadRequest(413, field, f"holds {len(value)} items; at most {limit} are answered")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _BadRequest(400, f"{field}[{index}]", "must be a string")
        if len(item) > size:
            raise _BadRequest(413, f"{field}[{index}]", f"is longer than {size} characters")
    return value


def _parse_swap(body: bytes) -> tuple[str, str | None, list[str], list[str]]:
    """The swap request's fields; :class:`_BadRequest` naming the first field at fault."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _BadRequest(400, "body", "is not a JSON object in UTF-8") from exc
    if not isinstance(data, dict):
        raise _BadRequest(400, "body", "is not a JSON object")
    url = data.get("url")
    if not isinstance(url, str):
        raise _BadRequest(400, "url", "must be the page's URL, a string")
    if len(url) > MAX_URL_CHARS:
        raise _BadRequest(413, "url", f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme.lower() not in ("http", "https"):
        raise _BadRequest(400, "url", "must be an absolute http(s) URL")
    referrer = data.get("referrer")
    if referrer is not None and not isinstance(referrer, str):
        raise _BadRequest(400, "referrer", "must be a string or null")
    if referrer is not None and len(referrer) > MAX_URL_CHARS:
        raise _BadRequest(413, "referrer", f"is longer than {MAX_URL_CHARS} characters")
    fragments = _strings(data.get("fragments"), "fragments", MAX_FRAGMENTS, MAX_FRAGMENT_CHARS)
    links = _strings(data.get("links"), "links", MAX_LINKS, MAX_FRAGMENT_CHARS)
    if any("\x00" in s for s in (url, referrer or "")):
        raise _BadRequest(400, "url", "holds a NUL character")
    return url, referrer or None, fragments, links


# ---- the page's tags ------------------------------------------------------------------


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def script_tags(
    nonce: str | None = None,
    prefix: str = "/_dni",
    *,
    hide: int | None = None,
    cookie: str | None = None,
    inline: bool = False,
) -> str:
    """The HTML a site puts in its ``<head>``, as early as it can, for the browser swap.

    ``<script src="{prefix}/dni.js">``: not ``async``, so that on a returning
    visitor's page the script (cached a day) swaps each number from its cache
    as the parser adds it, before the first paint. ``nonce`` is the page's CSP
    nonce (escaped); ``hide`` (milliseconds, at most 1000) hides the
    ``[data-dni-hide]`` elements of a first visit until the swap or that
    timeout; ``cookie`` names the number cookie when it is not ``dni_number``.
    ``inline=True`` writes the script itself into the page (no request at
    all) when it is installed and can stand inline.
    """
    attrs = []
    if nonce is not None:
        attrs.append(f' nonce="{_attr(nonce)}"')
    if prefix != "/_dni":
        attrs.append(f' data-prefix="{_attr(prefix)}"')
    if hide is not None:
        attrs.append(f' data-hide="{max(0, min(int(hide), 1000))}"')
    if cookie is not None:
        attrs.append(f' data-cookie="{_attr(cookie)}"')
    extra = "".join(attrs)
    if inline:
        script = _script()
        if script is not None:
            text = script[0].decode("utf-8")
            # Inside <script>, "</script" ends it, and "<script" after "<!--" keeps
            # a later "</script>" from ending it: either makes the text unsafe inline.
            if "<script" not in text.lower() and "</script" not in text.lower():
                if prefix == "/_dni":
                    extra += ' data-prefix="/_dni"'
                return f"<script{extra}>{text}</script>"
    return f'<script src="{_attr(prefix)}{SCRIPT_PATH}"{extra}></script>'
