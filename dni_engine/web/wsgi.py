"""``WSGIMiddleware``: the integration as PEP 3333 middleware (Flask, any WSGI app).

Only requests that may be page views (:meth:`.WebCore.begin`) are watched;
the others go to the application as they are. For a watched request the
application's ``start_response`` is held until the first piece of the body
(or the first ``write()``), when the plan (:meth:`.PageView.respond`) is made.
A body known whole (a list or tuple, or one with a ``Content-Length`` of at
most ``max_buffer`` bytes) is rewritten in one go and sent with its exact
``Content-Length``; any other body is streamed, each piece passed through the
plan's body rewriter as it comes. When rewriting a whole body fails, the
application's own response is sent. The iterable's ``close()`` is always called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeAlias
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

__all__ = ["WSGIMiddleware"]

ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
Write: TypeAlias = Callable[[bytes], object]
StartResponse: TypeAlias = Callable[..., Write]
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_END = object()


class WSGIMiddleware:
    """Shows each visitor their tracking number on the HTML pages of a WSGI application.

    ``WSGIMiddleware(app, engine, secret=...)`` takes the
    :class:`~dni_engine.web.config.WebConfig` fields as keyword arguments, or
    ``config=WebConfig(...)``. Never turns a working response into an error.
    """

    def __init__(
        self, app: WSGIApp, engine: Engine, config: WebConfig | None = None, **fields: Any
    ) -> None:
        self.app = app
        self.engine = engine
        self.config = config_from(config, fields)
        self.core = WebCore(engine, self.config)
        self.endpoint = Endpoint(self.core)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Run the application for one request (PEP 3333)."""
        prefix = self.config.endpoint_prefix
        if prefix is not None:
            path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")
            if path.startswith(prefix):
                answered = self._endpoint(environ, start_response)
                if answered is not None:
                    return answered
        try:
            view = self.core.begin(_request(environ))
        except Exception:
            self.core.log_once("wsgi-request", "reading a WSGI request failed; it was left alone")
            view = None
        if view is None:
            return self.app(environ, start_response)
        call = _Call(self.core, view, start_response)
        result = self.app(environ, call.start_response)
        if call.status is not None and not call.sent and not call.visit_possible():
            # Known now to be no page view: the application's own iterable goes to
            # the server (a wsgi.file_wrapper keeps its sendfile), headers as given.
            call.send_headers(call.make_plan().headers)
            return result
        return _Body(call, result)

    def _endpoint(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes] | None:
        """Answer an endpoint request (see :mod:`.endpoint`); ``None``: it is the app's."""
        try:
            request = _request(environ)
        except Exception:
            return None
        endpoint = self.endpoint
        if endpoint.route(request) is None:
            return None
        body = b""
        too_large = False
        if endpoint.needs_body(request):
            body, too_large = _read_body(environ)
        answer = endpoint.answer(request, body, too_large=too_large)
        headers = answer.headers
        reason = _REASONS.get(answer.status, "")
        start_response(f"{answer.status} {reason}".rstrip(), headers)
        return [answer.body]


_REASONS = {
    200: "OK",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
}


def _read_body(environ: dict[str, Any]) -> tuple[bytes, bool]:
    """The request body, at most :data:`MAX_BODY` bytes; and whether there was more."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b"", False
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > MAX_BODY:
        return b"", True
    try:
        # No length given: read at most one byte past the limit.
        data = stream.read(length) if length >= 0 else stream.read(MAX_BODY + 1)
    except Exception:
        return b"", False
    data = bytes(data or b"")
    if len(data) > MAX_BODY:
        return b"", True
    return data, False


def _request(environ: dict[str, Any]) -> PageRequest:
    """The :class:`PageRequest` of a WSGI environ (raises on a malformed one)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if isinstance(value, str) and value:
            headers[name] = value
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    port = environ.get("SERVER_PORT")
    server = (str(environ.get("SERVER_NAME") or "localhost"), int(port) if port else None)
    host = authority(scheme, headers.get("host"), server)
    raw_path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")
    path = quote(raw_path.encode("latin-1", "replace"), safe=_PATH_SAFE)
    query = str(environ.get("QUERY_STRING") or "")
    client = environ.get("REMOTE_ADDR")
    return PageRequest(
        method=str(environ.get("REQUEST_METHOD") or "GET"),
        url=url_of(scheme, host, path, query),
        headers=headers,
        cookies=parse_cookies(headers.get("cookie")),
        client=str(client) if client else None,
        native=environ,
    )


class _Call:
    """One watched response: the application's ``start_response``, held until the plan."""

    def __init__(self, core: WebCore, view: PageView, start_response: StartResponse) -> None:
        self.core = core
        self.view = view
        self._start_response = start_response
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.plan: ResponsePlan | None = None
        self.sent = False
        self._write: Write | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle (PEP 3333)
        self.status = status
        self.headers = list(headers)
        self.plan = None
        return self.write

    def visit_possible(self) -> bool:
        """Whether the held response may be a visit (no I/O: status and headers only)."""
        try:
            status = int(str(self.status)[:3])
        except ValueError:
            return False
        return self.view.candidate(status, self.headers)

    def make_plan(self) -> ResponsePlan:
        if self.plan is None:
            try:
                status = int(str(self.status)[:3])
            except ValueError:
                status = 0
            self.plan = self.view.respond(status, self.headers)
        return self.plan

    def send_headers(self, headers: list[tuple[str, str]]) -> None:
        self.sent = True
        self._write = self._start_response(self.status, headers)

    def write(self, data: bytes) -> None:
        """The ``write()`` callable of PEP 3333: the data goes through the rewriter."""
        if not self.sent:
            plan = self.make_plan()
            self.send_headers(plan.headers)
        out = self.feed(data)
        if out and self._write is not None:
            self._write(out)

    def feed(self, chunk: bytes) -> bytes:
        plan = self.plan
        if plan is None or plan.body is None:
            return chunk
        try:
            return plan.body.feed(chunk)
        except Exception:  # the rewriter promises not to raise: the rest passes through
            self.core.log_once("rewrite", "rewriting a streamed page failed; the rest passed")
            plan.body = None
            return chunk

    def close_body(self) -> bytes:
        plan = self.plan
        if plan is None or plan.body is None:
            return b""
        try:
            return plan.body.close()
        except Exception:
            self.core.log_once("rewrite", "rewriting a streamed page failed; the rest passed")
            plan.body = None
            return b""


class _Body:
    """The iterable handed to the server: the application's body, rewritten per the plan."""

    def __init__(self, call: _Call, result: Iterable[bytes]) -> None:
        self._call = call
        self._result = result
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = self._pieces()
        return self._iterator

    def close(self) -> None:
        """Close the application's iterable (always), after this one's pieces."""
        try:
            if self._iterator is not None:
                close = getattr(self._iterator, "close", None)
                if close is not None:
                    close()
        finally:
            close_result = getattr(self._result, "close", None)
            if close_result is not None:
                close_result()

    def _pieces(self) -> Iterator[bytes]:
        call = self._call
        pieces = iter(self._result)
        first = next(pieces, _END)
        if not call.sent:
            if call.status is None:  # the application broke PEP 3333; not ours to mend
                if first is not _END:
                    yield first  # type: ignore[misc]
                yield from pieces
                return
            plan = call.make_plan()
            if plan.body is None:
                call.send_headers(plan.headers)
                if first is not _END:
                    yield first  # type: ignore[misc]
                yield from pieces
                return
            held: list[bytes] = [] if first is _END else [first]  # type: ignore[list-item]
            if first is _END or self._known_whole(plan):
                size = sum(len(p) for p in held)
                limit = call.core.config.max_buffer
                for piece in pieces:
                    held.append(piece)
                    size += len(piece)
                    if size > limit:
                        break
                else:
                    yield self._whole(plan, b"".join(held))
                    return
            call.send_headers(plan.headers)
            for piece in held:
                out = call.feed(piece)
                if out:
                    yield out
        elif first is not _END:
            out = call.feed(first)  # type: ignore[arg-type]
            if out:
                yield out
        for piece in pieces:
            out = call.feed(piece)
            if out:
                yield out
        rest = call.close_body()
        if rest:
            yield rest

    def _known_whole(self, plan: ResponsePlan) -> bool:
        if isinstance(self._result, list | tuple):
            return True
        limit = self._call.core.config.max_buffer
        for name, value in self._call.headers:
            if name.lower() == "content-length":
                try:
                    return 0 <= int(value) <= limit
                except ValueError:
                    return False
        return False

    def _whole(self, plan: ResponsePlan, data: bytes) -> bytes:
        call = self._call
        body = plan.body
        assert body is not None
        try:
            out = body.rewrite_whole(data)
        except Exception:  # it promises not to raise: then as when it gives up
            out = None
        plan.body = None
        if out is None:
            call.core.log_once("rewrite", "a page could not be rewritten; sent as it was")
            call.send_headers(plan.original)
            return data
        call.send_headers(plan.whole(len(out), out is not data))
        return out
