"""The browser endpoint's cost per call, against the bare application, in the same run.

The page is the synthetic 100 KB shop page of ``test_rewrite.py`` (10 numbers
in text and ``tel:`` links). Its swap request is what the browser script
sends for it: every run of text holding a digit, per block, as tiny HTML,
and its ``tel:`` targets (gathered with the tests' model of the script,
:func:`tests.test_web_endpoint.runs`). Called directly (no server, no sockets):

- ``endpoint-wsgi``: the bare WSGI application handing over the page (the
  baseline, as in ``test_web.py``), a ``POST {prefix}/swap`` through
  :class:`~dni_engine.web.WSGIMiddleware` for a returning visitor (cookies
  sent: ``kept``) and for a new one, and the server-side page view of the
  same page through the middleware (what a swap stands in for on a cached page);
- ``endpoint-asgi``: the same through :class:`~dni_engine.web.ASGIMiddleware`.

The last test prints each call's ratio to the bare application and to the
server-side page view (median times); nothing fails on timing.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.test_rewrite import PAGE
from benchmarks.test_web import BODY, SECRET, _cookies, _engine, asgi_app, wsgi_app
from dni_engine.web import ASGIMiddleware, WSGIMiddleware
from tests.test_web_endpoint import runs, tree

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def _swap_body() -> bytes:
    found, links = runs(tree(PAGE))
    return json.dumps(
        {
            "url": "https://shop.example/tyres",
            "referrer": "https://www.google.com/",
            "fragments": [html for html, _ in found][:200],
            "links": [link["attrs"]["href"] for link in links][:100],
        }
    ).encode()


SWAP_BODY = _swap_body()
_medians: dict[tuple[str, str], float] = {}


def _environ(method: str, path: str, cookie: str | None, body: bytes = b"") -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "shop.example",
        "HTTP_USER_AGENT": BROWSER,
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8" if method == "GET" else "*/*",
        "HTTP_REFERER": "https://www.google.com/",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def _scope(method: str, path: str, cookie: str | None, body: bytes = b"") -> dict[str, Any]:
    headers = [
        (b"host", b"shop.example"),
        (b"user-agent", BROWSER.encode()),
        (b"accept", b"text/html,*/*;q=0.8" if method == "GET" else b"*/*"),
        (b"referer", b"https://www.google.com/"),
    ]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("shop.example", 443),
    }


Call = Callable[..., tuple[int, list[str]]]


def wsgi_call(app: Callable[..., Iterable[bytes]], method: str, path: str, body: bytes) -> Call:
    def call(cookie: str | None = None) -> tuple[int, list[str]]:
        seen: list[tuple[str, str]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            seen.extend(headers)
            return lambda data: None

        result = app(_environ(method, path, cookie, body), start_response)
        try:
            size = sum(len(chunk) for chunk in result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return size, [v for n, v in seen if n.lower() == "set-cookie"]

    return call


class _Loop:
    """One event loop on its own thread for the whole run (as under a server)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            ready.set()
            await asyncio.Event().wait()

        threading.Thread(target=self.loop.run_until_complete, args=(serve(),), daemon=True).start()
        ready.wait()


_LOOP: _Loop | None = None


def asgi_call(app: Any, method: str, path: str, body: bytes) -> Call:
    global _LOOP
    if _LOOP is None:
        _LOOP = _Loop()
    loop = _LOOP.loop

    async def run(cookie: str | None) -> tuple[int, list[str]]:
        size = 0
        cookies: list[str] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                cookies.extend(
                    v.decode() for n, v in message.get("headers", []) if n.lower() == b"set-cookie"
                )
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))

        await app(_scope(method, path, cookie, body), receive, send)
        return size, cookies

    def call(cookie: str | None = None) -> tuple[int, list[str]]:
        return asyncio.run_coroutine_threadsafe(run(cookie), loop).result()

    return call


def _calls(protocol: str) -> dict[str, Call]:
    if protocol == "wsgi":

        def wrap(engine: Any) -> Any:
            return WSGIMiddleware(wsgi_app, engine, secret=SECRET)

        make: Callable[..., Call] = wsgi_call
        bare_app: Any = wsgi_app
    else:

        def wrap(engine: Any) -> Any:
            return ASGIMiddleware(asgi_app, engine, secret=SECRET)

        make = asgi_call
        bare_app = asgi_app
    returning = wrap(_engine())
    return {
        "baseline": make(bare_app, "GET", "/tyres", b""),
        "page": make(returning, "GET", "/tyres", b""),
        "returning": make(returning, "POST", "/_dni/swap", SWAP_BODY),
        "new": make(wrap(_engine(new_visitors=True)), "POST", "/_dni/swap", SWAP_BODY),
    }


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def calls(request: pytest.FixtureRequest) -> tuple[str, dict[str, Call]]:
    return str(request.param), _calls(str(request.param))


def _record(benchmark: BenchmarkFixture, group: str, role: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, role] = stats.stats.median


def test_the_swap_answers_the_page(calls: tuple[str, dict[str, Call]]) -> None:
    _, views = calls
    size, cookies = views["returning"]()
    assert size > 0
    assert len(cookies) == 3  # visitor, landing, number
    size, again = views["returning"](_cookies(cookies))
    assert size > 0
    assert len(again) == 2
    assert views["baseline"]()[0] == len(BODY)
    assert len(json.loads(SWAP_BODY)["fragments"]) >= 10


@pytest.mark.parametrize("role", ["baseline", "page", "returning", "new"])
def test_call(benchmark: BenchmarkFixture, calls: tuple[str, dict[str, Call]], role: str) -> None:
    protocol, views = calls
    group = f"endpoint-{protocol}"
    benchmark.group = group
    benchmark.extra_info["role"] = "baseline" if role == "baseline" else role
    call = views[role]
    cookie = _cookies(call()[1]) if role in ("returning", "page") else None
    size, _ = benchmark(call, cookie)
    assert size > 0
    _record(benchmark, group, role)


def test_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    """Print each call's cost as a ratio to the bare application and to a server page view."""
    fragments = len(json.loads(SWAP_BODY)["fragments"])
    lines = [f"swap request: {len(SWAP_BODY)} bytes, {fragments} fragments"]
    for protocol in ("wsgi", "asgi"):
        group = f"endpoint-{protocol}"
        baseline = _medians.get((group, "baseline"))
        page = _medians.get((group, "page"))
        for role in ("returning", "new"):
            candidate = _medians.get((group, role))
            if baseline is None or page is None or candidate is None:
                lines.append(f"{group} {role}: not measured (benchmarks disabled or deselected)")
                continue
            lines.append(
                f"{group} swap, {role} visitor: {candidate / baseline:.0f}x the bare app "
                f"({candidate * 1e3:.3f} ms vs {baseline * 1e3:.3f} ms); "
                f"{candidate / page:.2f}x the server-side page view ({page * 1e3:.3f} ms)"
            )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
