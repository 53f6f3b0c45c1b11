"""``ASGIMiddleware``: the integration as pure ASGI 3 middleware (Starlette, FastAPI, any app).

Only ``http`` requests that may be page views (:meth:`.WebCore.begin`) are
watched; everything else (lifespan, websockets, other requests) goes to the
application as it is. For a watched request the ``http.response.start``
message is held until the first body message, so that the plan
(:meth:`.PageView.respond_async`, which awaits an asynchronous store such as
:class:`~dni_engine.stores.redis.AsyncRedisStore` on the loop and runs a
synchronous store doing I/O on a worker thread) knows whether the body is
whole: a single body message is rewritten in one go and sent with its exact
``Content-Length``; a streamed body stays streamed, each piece passed through
the plan's body rewriter as it comes.
When rewriting a whole body fails, the application's own response is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from dni_engine.engine import Engine
from dni_engine.web.config import WebConfig, config_from
from dni_engine.web.core import (
    PageRequest,
    PageView,
    ResponsePlan,
    WebCore,
    authority,
    parse_cookies,
    url_of,
)
from dni_engine.web.endpoint import MAX_BODY, Endpoint

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Server extensions that would let the application send a body the middleware never sees.
_BODY_EXTENSIONS = ("http.response.pathsend", "http.response.zerocopysend")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class ASGIMiddleware:
    """Shows each visitor their tracking number on the HTML pages of an ASGI application.

    ``ASGIMiddleware(app, engine, secret=...)`` takes the
    :class:`~dni_engine.web.config.WebConfig` fields as keyword arguments, or
    ``config=WebConfig(...)``. Never turns a working response into an error.
    """

    def __init__(
        self, app: ASGIApp, /, engine: Engine, config: WebConfig | None = None, **fields: Any
    ) -> None:
        self.app = app
        self.engine = engine
        self.config = config_from(config, fields)
        self.core = WebCore(engine, self.config)
        self.endpoint = Endpoint(self.core)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application for one connection scope (ASGI 3)."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        prefix = self.config.endpoint_prefix
        if (
            prefix is not None
            and _endpoint_path(scope, prefix)
            and await self._endpoint(scope, receive, send)
        ):
            return
        try:
            view = self.core.begin(_request(scope))
        except Exception:
            self.core.log_once("asgi-request", "reading an ASGI request failed; it was left alone")
            view = None
        if view is None:
            await self.app(scope, receive, send)
            return
        extensions = scope.get("extensions")
        if isinstance(extensions, dict) and any(e in extensions for e in _BODY_EXTENSIONS):
            scope = dict(scope)
            scope["extensions"] = {k: v for k, v in extensions.items() if k not in _BODY_EXTENSIONS}
        response = _Response(self.core, view, send)
        await self.app(scope, receive, response.send)
        await response.finish()

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer an endpoint request (see :mod:`.endpoint`); ``False``: it is the app's."""
        try:
            request = _request(scope)
        except Exception:
            return False
        endpoint = self.endpoint
        if endpoint.route(request) is None:
            return False
        body = b""
        too_large = False
        if endpoint.needs_body(request):
            pieces: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    return True
                piece = bytes(message.get("body", b""))
                size += len(piece)
                if size > MAX_BODY:
                    too_large = True
                    break
                pieces.append(piece)
                if not message.get("more_body", False):
                    break
            body = b"".join(pieces)
        answer = await endpoint.answer_async(request, body, too_large=too_large)
        headers = answer.headers
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": _encode(headers)}
        )
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})
        return True


def _endpoint_path(scope: Scope, prefix: str) -> bool:
    """Whether the scope's path may be the endpoint's (a cheap look before a request is read)."""
    path = scope.get("path")
    root = scope.get("root_path") or ""
    if not isinstance(path, str) or not isinstance(root, str):
        return False
    if root and not path.startswith(root):
        path = root + path
    return path.startswith(prefix)


def _request(scope: Scope) -> PageRequest:
    """The :class:`PageRequest` of an ASGI ``http`` scope (raises on a malformed scope)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    # Cookie headers are joined with "; " (RFC 9113 8.2.3), not ", ".
    cookie_values = [
        bytes(v).decode("latin-1")
        for n, v in scope.get("headers") or ()
        if bytes(n).lower() == b"cookie"
    ]
    scheme = str(scope.get("scheme") or "http")
    server = scope.get("server")
    host = authority(scheme, headers.get("host"), (str(server[0]), server[1]) if server else None)
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "")
    if root and not path.startswith(root):
        path = root + path
    path = quote(path, safe=_PATH_SAFE)  # the scope's path is percent-decoded
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    client = scope.get("client")
    return PageRequest(
        method=str(scope.get("method") or "GET"),
        url=url_of(scheme, host, path, query),
        headers=headers,
        cookies=parse_cookies("; ".join(cookie_values)),
        client=str(client[0]) if client else None,
        native=scope,
    )


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # ASGI header names are lower case.
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


class _Response:
    """One watched response on its way out: holds the start message until the plan is known.

    A body declaring a ``Content-Length`` of at most ``max_buffer`` bytes is
    gathered over its messages and rewritten whole; past ``max_buffer`` (a
    wrong length) it is streamed from there.
    """

    __slots__ = ("_core", "_held", "_held_size", "_plan", "_send", "_start", "_started", "_view")

    def __init__(self, core: WebCore, view: PageView, send: Send) -> None:
        self._core = core
        self._view = view
        self._send = send
        self._start: Message | None = None
        self._started = False
        self._plan: ResponsePlan | None = None
        self._held: list[bytes] | None = None
        self._held_size = 0

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" and not self._started and self._start is None:
            self._start = message
            return
        if kind != "http.response.body" or self._start is None:
            await self._release()
            await self._flush()
            await self._send(message)
            return
        if self._held is not None:
            await self._gather(message)
        elif not self._started:
            await self._first(message)
        else:
            await self._piece(message)

    async def _first(self, message: Message) -> None:
        start = self._start
        assert start is not None
        try:
            status = int(start["status"])
            headers = [
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                for n, v in start.get("headers") or ()
            ]
        except Exception:
            self._core.log_once("asgi-start", "an unreadable response start was passed through")
            await self._flush()
            await self._send(message)
            return
        plan = await self._view.respond_async(status, headers)
        self._plan = plan
        more = bool(message.get("more_body", False))
        if plan.body is None:
            await self._start_with(plan.headers)
            await self._send(message)
            return
        chunk = bytes(message.get("body", b""))
        if not more:
            await self._whole(plan, chunk, message)
        elif _declared(headers, self._core.config.max_buffer):
            self._held = [chunk]
            self._held_size = len(chunk)
        else:
            await self._start_with(plan.headers)
            await self._piece(message)

    async def _gather(self, message: Message) -> None:
        held, plan = self._held, self._plan
        assert held is not None
        assert plan is not None
        chunk = bytes(message.get("body", b""))
        held.append(chunk)
        self._held_size += len(chunk)
        if not message.get("more_body", False):
            self._held = None
            data = b"".join(held)
            await self._whole(plan, data, {**message, "body": data})
        elif self._held_size > self._core.config.max_buffer:
            await self._release()

    async def _release(self) -> None:
        """Stream what was gathered: the body turned out longer than it said."""
        held = self._held
        if held is None:
            return
        self._held = None
        assert self._plan is not None
        await self._start_with(self._plan.headers)
        for piece in held:
            await self._piece({"type": "http.response.body", "body": piece, "more_body": True})

    async def _whole(self, plan: ResponsePlan, data: bytes, message: Message) -> None:
        body = plan.body
        assert body is not None
        try:
            out = body.rewrite_whole(data)
        except Exception:  # it promises not to raise: then as when it gives up
            out = None
        self._plan = None
        if out is None:
            self._core.log_once("rewrite", "a page could not be rewritten; sent as it was")
            await self._start_with(plan.original)
            await self._send(message)
            return
        await self._start_with(plan.whole(len(out), out is not data))
        await self._send({"type": "http.response.body", "body": out, "more_body": False})

    async def _piece(self, message: Message) -> None:
        plan = self._plan
        body = plan.body if plan is not None else None
        if body is None:
            await self._send(message)
            return
        chunk = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        try:
            # The last message's body is the page's last piece: the rewriter is
            # told so, and finishes the page with it in one step.
            out = body.feed(chunk) if more else body.close(chunk)
        except Exception:  # the rewriter promises not to raise: the rest passes through
            self._core.log_once("rewrite", "rewriting a streamed page failed; the rest passed")
            assert plan is not None
            plan.body = None
            await self._send(message)
            return
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    async def _start_with(self, headers: list[tuple[str, str]] | None) -> None:
        start = self._start
        assert start is not None
        self._started = True
        if headers is not None:
            start = dict(start)
            start["headers"] = _encode(headers)
        await self._send(start)

    async def _flush(self) -> None:
        if self._start is not None and not self._started:
            await self._start_with(None)

    async def finish(self) -> None:
        """After the application returned: send what it left held (a start, gathered pieces)."""
        await self._release()
        await self._flush()


def _declared(headers: list[tuple[str, str]], limit: int) -> bool:
    """Whether the headers declare a ``Content-Length`` of at most ``limit`` bytes."""
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return 0 <= int(value) <= limit
            except ValueError:
                return False
    return False
