"""The example site's views, and the middleware that names the worker."""

import os
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.decorators import sync_and_async_middleware
from shop import PAGES, STOCK

from dni_engine.web import skip


@sync_and_async_middleware
def worker_pid(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Adds ``X-Worker-Pid`` to every response (to show which worker answered).

    Sync and async, like every middleware of the project, so that under ASGI the
    chain stays async (and the DNI middleware takes its async path).
    """
    pid = str(os.getpid())
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            response = await get_response(request)
            response["X-Worker-Pid"] = pid
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        response["X-Worker-Pid"] = pid
        return response

    return middleware


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGES[request.path])


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        text = PAGES["/contact"].encode()
        for start in range(0, len(text), 64):  # the number is split across chunks
            yield text[start : start + 64]

    return StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")


def stock(request: HttpRequest) -> JsonResponse:
    return JsonResponse(STOCK)


def offers(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect("/tyres")


@skip
def printable(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGES["/contact"])  # opted out: always the site's own number
