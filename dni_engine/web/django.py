"""``DNIMiddleware``: the web core as a Django middleware.

Add it to ``MIDDLEWARE`` above ``GZipMiddleware`` and anything else that
changes the body (it decodes compressed bodies itself, and sees the page last)::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "dni_engine.web.django.DNIMiddleware",
        "django.middleware.gzip.GZipMiddleware",
        ...
    ]
    DNI_ENGINE = "mysite.tracking:engine"  # an Engine, or "module:name" of one
    DNI_WEB = {"secret": env("DNI_SECRET"), "debug_header": DEBUG}

``DNI_ENGINE`` is an :class:`~dni_engine.engine.Engine`, or the dotted path
(``"pkg.mod:name"`` or ``"pkg.mod.name"``) of an engine or of a zero-argument
callable returning one (called once, when Django builds its middleware
chain). ``DNI_WEB`` holds the :class:`~dni_engine.web.config.WebConfig`
fields, or is a ``WebConfig``. A missing or invalid setting raises
``ImproperlyConfigured`` naming it, when Django loads the middleware.

The middleware is sync and async capable: under ASGI with async views the
store is called off the event loop. ``HttpResponse`` bodies are rewritten
whole (with an exact ``Content-Length``); ``StreamingHttpResponse`` bodies,
sync or async iterators, stay streamed. Cookies the core sets go through
``response.cookies``, like Django's own. The browser endpoint's paths
(``endpoint_prefix``, see :mod:`dni_engine.web.endpoint`) are answered by the
middleware and never reach a view. Nothing in here raises into a request:
any failure leaves the view's response exactly as it was.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any, TypeAlias, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import (  # type: ignore[import-untyped]
    ImproperlyConfigured,
    RequestDataTooBig,
)
from django.http import (  # type: ignore[import-untyped]
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)

from dni_engine.engine import Engine
from dni_engine.errors import ConfigError
from dni_engine.web.body import BodyRewriter
from dni_engine.web.config import WebConfig
from dni_engine.web.core import SKIP_HEADER, PageRequest, PageView, ResponsePlan, WebCore
from dni_engine.web.endpoint import MAX_BODY, Endpoint, EndpointResponse

__all__ = ["DNIMiddleware", "load_engine"]

log = logging.getLogger("dni_engine.web.django")

_Response: TypeAlias = Any  # a django.http.HttpResponseBase (Django ships no types)
_GetResponse = Callable[[HttpRequest], Any]
_logged: set[str] = set()


def _log_once(kind: str, exc: BaseException) -> None:
    if kind not in _logged:
        _logged.add(kind)
        log.warning("dni-engine left the response as it was (%s): %r", kind, exc, exc_info=exc)


def load_engine(value: object, setting: str = "DNI_ENGINE") -> Engine:
    """The :class:`Engine` that ``value`` names (see the module doc).

    Raises ``ImproperlyConfigured`` naming ``setting`` when ``value`` is
    missing, cannot be imported, or is not (and does not return) an engine.
    """
    if value is None:
        raise ImproperlyConfigured(
            f"{setting} is not set: give an Engine, or the dotted path of one "
            '(for example "mysite.tracking:engine")'
        )
    target = value
    if isinstance(value, str):
        module_name, sep, attribute = value.partition(":")
        if not sep:
            module_name, _, attribute = value.rpartition(".")
        if not module_name or not attribute:
            raise ImproperlyConfigured(
                f'{setting} = {value!r} is not a dotted path like "pkg.module:engine"'
            )
        try:
            module = importlib.import_module(module_name)
            target = getattr(module, attribute)
        except (ImportError, AttributeError) as exc:
            raise ImproperlyConfigured(f"{setting} = {value!r} cannot be imported: {exc}") from exc
    if not isinstance(target, Engine) and callable(target):
        try:
            target = target()
        except Exception as exc:
            raise ImproperlyConfigured(f"{setting} = {value!r} failed to build: {exc}") from exc
    if not isinstance(target, Engine):
        raise ImproperlyConfigured(
            f"{setting} must be a dni_engine Engine or name one; got {type(target).__name__}"
        )
    return target


def _load_config(value: object) -> WebConfig:
    if isinstance(value, WebConfig):
        return value
    if value is None:
        raise ImproperlyConfigured(
            'DNI_WEB is not set: it needs at least a "secret" (16 bytes or more) '
            "that signs the landing cookie"
        )
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"DNI_WEB must be a dict of WebConfig fields; got {type(value).__name__}"
        )
    try:
        return WebConfig(**value)
    except ConfigError as exc:
        lines = "; ".join(str(problem) for problem in exc.problems)
        raise ImproperlyConfigured(f"DNI_WEB is invalid: {lines}") from exc
    except TypeError as exc:  # an unknown field
        raise ImproperlyConfigured(f"DNI_WEB is invalid: {exc}") from exc


def _page_request(request: HttpRequest) -> PageRequest | None:
    """The core's view of ``request``; ``None`` when Django cannot say its URL."""
    try:
        url = request.build_absolute_uri()  # DisallowedHost for a host not in ALLOWED_HOSTS
    except Exception:
        return None
    headers = {name.lower(): value for name, value in request.headers.items()}
    return PageRequest(
        method=request.method or "GET",
        url=url,
        headers=headers,
        cookies=dict(request.COOKIES),
        client=request.META.get("REMOTE_ADDR"),
        native=request,
    )


def _header_items(response: _Response) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in response.items()]


class DNIMiddleware:
    """Shows each page view its visitor's number (see the module doc)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _GetResponse) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        engine = load_engine(getattr(settings, "DNI_ENGINE", None))
        self.core = WebCore(engine, _load_config(getattr(settings, "DNI_WEB", None)))
        self.endpoint = Endpoint(self.core)

    def __call__(self, request: HttpRequest) -> Any:
        """Run the view, then show its page this visitor's number."""
        if self._async:
            return self.__acall__(request)
        asked = self._endpoint_request(request)
        if asked is not None:
            page, body, too_large = asked
            return _http_response(self.endpoint.answer(page, body, too_large=too_large))
        view = self._begin(request)
        response = cast(_Response, self.get_response(request))
        if view is None:
            return _unskipped(response)
        try:
            plan = view.respond(response.status_code, _header_items(response))
        except Exception as exc:  # the core never raises; a guard all the same
            _log_once("respond", exc)
            return _unskipped(response)
        return self._apply(plan, response)

    async def __acall__(self, request: HttpRequest) -> _Response:
        """The async twin of :meth:`__call__`: the store is called off the event loop."""
        asked = self._endpoint_request(request)
        if asked is not None:
            page, body, too_large = asked
            answer = await self.endpoint.answer_async(page, body, too_large=too_large)
            return _http_response(answer)
        view = self._begin(request)
        response = cast(_Response, await cast(Awaitable[Any], self.get_response(request)))
        if view is None:
            return _unskipped(response)
        try:
            plan = await view.respond_async(response.status_code, _header_items(response))
        except Exception as exc:
            _log_once("respond", exc)
            return _unskipped(response)
        return self._apply(plan, response)

    def _endpoint_request(self, request: HttpRequest) -> tuple[PageRequest, bytes, bool] | None:
        """An endpoint request (see :mod:`.endpoint`) and its body, else ``None``; never raises."""
        try:
            prefix = self.core.config.endpoint_prefix
            if prefix is None or not str(request.path).startswith(prefix):
                return None
            page = _page_request(request)
            if page is None or self.endpoint.route(page) is None:
                return None
            body, too_large = b"", False
            if self.endpoint.needs_body(page):
                try:
                    body = bytes(request.body)
                except RequestDataTooBig:
                    too_large = True
                too_large = too_large or len(body) > MAX_BODY
            return page, body, too_large
        except Exception as exc:
            _log_once("endpoint", exc)
            return None

    def _begin(self, request: HttpRequest) -> PageView | None:
        try:
            page = _page_request(request)
            return None if page is None else self.core.begin(page)
        except Exception as exc:
            _log_once("begin", exc)
            return None

    def _apply(self, plan: ResponsePlan, response: _Response) -> _Response:
        """``response`` with the plan's headers, cookies and body; as it was on failure."""
        try:
            headers = dict(response.headers.items())
            cookies = _copied(response.cookies)
        except Exception as exc:  # not a response we can put back: leave it alone
            _log_once("snapshot", exc)
            return _unskipped(response)
        try:
            body = plan.body
            if body is not None and not getattr(response, "streaming", False):
                original = cast(Any, response).content
                rewritten = body.rewrite_whole(original)
                if rewritten is None:  # it could not be rewritten: it goes out as it was
                    _set_headers(response, plan.original)
                    return response
                changed = rewritten is not original and rewritten != original
                _set_headers(response, plan.whole(len(rewritten), changed))
                if changed:
                    cast(Any, response).content = rewritten
            else:
                _set_headers(response, plan.headers)
                if body is not None:
                    _rewrite_streaming(cast(StreamingHttpResponse, response), body)
            return response
        except Exception as exc:
            _log_once("apply", exc)
            _restore(response, headers, cookies)
            return response


def _http_response(answer: EndpointResponse) -> _Response:
    """The Django response of an endpoint answer."""
    response = HttpResponse(answer.body, status=answer.status)
    _set_headers(response, answer.headers)
    return response


def _unskipped(response: _Response) -> _Response:
    """``response`` without the opt-out header (never raises)."""
    try:
        if SKIP_HEADER in response.headers:
            del response.headers[SKIP_HEADER]
    except Exception as exc:
        _log_once("skip header", exc)
    return response


def _copied(cookies: object) -> SimpleCookie | None:
    """A copy of a response's cookie jar (its morsels copied), or ``None`` when it is not one."""
    if not isinstance(cookies, SimpleCookie):
        return None
    jar: SimpleCookie = SimpleCookie()
    for key, morsel in cookies.items():
        jar[key] = morsel.copy()
    return jar


def _restore(response: _Response, headers: dict[str, str], cookies: SimpleCookie | None) -> None:
    try:
        for name in list(response.headers):
            del response.headers[name]
        for name, value in headers.items():
            response.headers[name] = value
        if SKIP_HEADER in response.headers:
            del response.headers[SKIP_HEADER]
        if cookies is not None:
            response.cookies = cookies
    except Exception as exc:
        _log_once("restore", exc)


def _set_headers(response: _Response, planned: Iterable[tuple[str, str]]) -> None:
    """Make ``response``'s headers the planned ones (``Set-Cookie`` into its cookies)."""
    merged: dict[str, tuple[str, str]] = {}
    cookies: list[str] = []
    for name, value in planned:
        key = name.lower()
        if key == "set-cookie":
            cookies.append(value)
        elif key in merged:
            merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
        else:
            merged[key] = (name, value)
    for name in list(response.headers):
        if name.lower() not in merged:
            del response.headers[name]
    for name, value in merged.values():
        response.headers[name] = value
    for line in cookies:
        jar: SimpleCookie = SimpleCookie()
        jar.load(line)
        for key, morsel in jar.items():
            response.cookies[key] = morsel


def _rewrite_streaming(response: StreamingHttpResponse, body: BodyRewriter) -> None:
    if response.is_async:
        response.streaming_content = _arewritten(
            cast(AsyncIterator[bytes], response.streaming_content), body
        )
    else:
        response.streaming_content = _rewritten(
            cast(Iterator[bytes], response.streaming_content), body
        )


def _rewritten(chunks: Iterator[bytes], body: BodyRewriter) -> Iterator[bytes]:
    try:
        for chunk in chunks:
            out = body.feed(chunk)
            if out:
                yield out
        tail = body.close()
        if tail:
            yield tail
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


async def _arewritten(chunks: AsyncIterator[bytes], body: BodyRewriter) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            out = body.feed(chunk)
            if out:
                yield out
        tail = body.close()
        if tail:
            yield tail
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
