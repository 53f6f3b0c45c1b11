"""The web middleware's cost per HTML page view, against the bare application, in the same run.

The page is the synthetic 100 KB shop page of ``test_rewrite.py`` (10 numbers
in text and ``tel:`` links), served whole by a minimal application called
directly (no server, no sockets):

- ``web-wsgi``: a WSGI app returning the page, bare (the baseline) and inside
  :class:`~dni_engine.web.WSGIMiddleware`;
- ``web-asgi``: an ASGI app sending the page, bare and inside
  :class:`~dni_engine.web.ASGIMiddleware`.

Each middleware is measured for a returning visitor (their cookies sent: the
engine keeps their lease, ``kept``) and for a new visitor (no cookie: a new
visitor id and landing context, a new lease; see :func:`_engine`). Both
rewrite the page; the store is the memory store.

Against a bare application that does nothing but hand over the page, the
ratio is large (hundreds on WSGI; tens on ASGI, whose bare call includes the
hop to the event loop's thread): nearly all of it is the page rewrite, which a 100 KB
page needs whatever the integration does. So the goal is set on what the
integration adds: a page view through the middleware costs at most
``GOAL`` x (the bare application + the whole-page rewrite alone, the same
``Rewriter.rewrite_html`` on the decoded page, encoded back), measured in the
same run. The last test prints both ratios (median times); nothing fails on
timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.report import Goals
from benchmarks.test_rewrite import LISTED, PAGE
from dni_engine import Engine
from dni_engine.testing.pools import build_pool, source
from dni_engine.web import ASGIMiddleware, WSGIMiddleware

GOAL = 1.5  # middleware time / (bare application + page rewrite alone), at most
SECRET = "benchmark-secret-0123456789"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
BODY = PAGE.encode()
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(BODY)))]
_medians: dict[tuple[str, str], float] = {}


class Ticking:
    """A clock 5 seconds further on at every reading (from the real time of its start)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 5.0
        return self.now


def _engine(*, new_visitors: bool = False) -> Engine:
    """The pool of the page's number: 20 numbers held 30 minutes.

    For new visitors, held 1 minute on a clock that ticks 5 seconds per
    reading (a page view reads it about twice), so that only a handful are
    live at once and every page view leases a free number (outcome ``new``)
    however many rounds the benchmark runs. A small pool, as a real one: the
    rewriter's per-number caches stay warm, as they do on a site.
    """
    pool = build_pool(
        id=1,
        numbers=20,
        sources=[source("Any")],
        numbers_to_replace=["0117 409 0162"],
        match_period=1 if new_visitors else 30,
    )
    return Engine([pool], clock=Ticking() if new_visitors else None)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(HEADERS))
    return [BODY]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(n.lower().encode(), v.encode()) for n, v in HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def _environ(cookie: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/tyres",
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "shop.example",
        "HTTP_USER_AGENT": BROWSER,
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
        "HTTP_REFERER": "https://www.google.com/",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def _scope(cookie: str | None) -> dict[str, Any]:
    headers = [
        (b"host", b"shop.example"),
        (b"user-agent", BROWSER.encode()),
        (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
        (b"referer", b"https://www.google.com/"),
    ]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/tyres",
        "raw_path": b"/tyres",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("shop.example", 443),
    }


def _cookies(set_cookies: list[str]) -> str:
    return "; ".join(line.split(";", 1)[0] for line in set_cookies)


class WSGIView:
    """One page view through a WSGI app: the body's length and the Set-Cookie values."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, cookie: str | None = None) -> tuple[int, list[str]]:
        seen: list[tuple[str, str]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            seen.extend(headers)
            return lambda data: None

        result = self.app(_environ(cookie), start_response)
        try:
            size = sum(len(chunk) for chunk in result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return size, [v for n, v in seen if n.lower() == "set-cookie"]


class ASGIView:
    """One page view through an ASGI app, on one event loop running for the whole run.

    The loop runs on its own thread under one long-lived root task, as under a
    server, so that the worker threads the middleware hands the store call to
    are started once and reused (an event loop run anew per page view would
    start a thread every time). The bare app is called the same way.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            ready.set()
            await asyncio.Event().wait()  # until the process ends

        thread = threading.Thread(target=self.loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        ready.wait()

    async def _call(self, cookie: str | None) -> tuple[int, list[str]]:
        size = 0
        cookies: list[str] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                cookies.extend(
                    v.decode() for n, v in message.get("headers", []) if n.lower() == b"set-cookie"
                )
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))

        await self.app(_scope(cookie), receive, send)
        return size, cookies

    def __call__(self, cookie: str | None = None) -> tuple[int, list[str]]:
        return asyncio.run_coroutine_threadsafe(self._call(cookie), self.loop).result()


def _record(benchmark: BenchmarkFixture, group: str, role: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _medians[group, role] = stats.stats.median


_View = Callable[..., tuple[int, list[str]]]


def _wsgi() -> tuple[_View, _View, _View]:
    def wrapped(engine: Engine) -> _View:
        return WSGIView(WSGIMiddleware(wsgi_app, engine, secret=SECRET))

    return WSGIView(wsgi_app), wrapped(_engine()), wrapped(_engine(new_visitors=True))


def _asgi() -> tuple[_View, _View, _View]:
    def wrapped(engine: Engine) -> _View:
        return ASGIView(ASGIMiddleware(asgi_app, engine, secret=SECRET))

    return ASGIView(asgi_app), wrapped(_engine()), wrapped(_engine(new_visitors=True))


PROTOCOLS: dict[str, Callable[[], tuple[_View, _View, _View]]] = {"wsgi": _wsgi, "asgi": _asgi}
Views = tuple[str, _View, _View, _View]


@pytest.fixture(scope="module", params=list(PROTOCOLS))
def views(request: pytest.FixtureRequest) -> Views:
    return (str(request.param), *PROTOCOLS[str(request.param)]())


def test_the_middleware_rewrites_the_page(views: Views) -> None:
    _, bare, wrapped, fresh = views
    size, cookies = bare()
    assert size == len(BODY)
    assert not cookies
    _, cookies = wrapped()
    assert len(cookies) == 3  # the visitor, landing and number cookies
    size, again = wrapped(_cookies(cookies))
    assert size > 0
    assert len(again) == 2  # the landing and number cookies, which slide
    for _ in range(3):
        assert len(fresh()[1]) == 3


def test_baseline_bare_app(benchmark: BenchmarkFixture, views: Views) -> None:
    protocol, bare, _, _ = views
    benchmark.group = f"web-{protocol}"
    assert benchmark(bare)[0] == len(BODY)
    _record(benchmark, f"web-{protocol}", "baseline")


@pytest.mark.benchmark(group="web-rewrite")
def test_baseline_rewrite_alone(benchmark: BenchmarkFixture) -> None:
    def rewrite() -> bytes:
        return LISTED.rewrite_html(BODY.decode(), "+441174960500").encode()

    assert b"0500" in benchmark(rewrite)
    _record(benchmark, "web-rewrite", "baseline")


def test_returning_visitor(benchmark: BenchmarkFixture, views: Views) -> None:
    protocol, _, wrapped, _ = views
    benchmark.group = f"web-{protocol}"
    cookie = _cookies(wrapped()[1])
    size, _ = benchmark(wrapped, cookie)
    assert size > 0
    _record(benchmark, f"web-{protocol}", "returning")


def test_new_visitor(benchmark: BenchmarkFixture, views: Views) -> None:
    protocol, _, _, fresh = views
    benchmark.group = f"web-{protocol}"
    size, cookies = benchmark(fresh)
    assert size > 0
    assert len(cookies) == 3
    _record(benchmark, f"web-{protocol}", "new")


def test_ratios(capsys: pytest.CaptureFixture[str], goals: Goals) -> None:
    """Print each middleware's cost as a ratio to the bare application, and the goal's ratio."""
    lines = []
    rewrite = _medians.get(("web-rewrite", "baseline"))
    for protocol in PROTOCOLS:
        group = f"web-{protocol}"
        baseline = _medians.get((group, "baseline"))
        for role in ("returning", "new"):
            candidate = _medians.get((group, role))
            if baseline is None or candidate is None or rewrite is None:
                lines.append(f"{group} {role}: not measured (benchmarks disabled or deselected)")
                goals.ratio(f"{group} {role}", "middleware / (bare app + rewrite)", None, GOAL)
                continue
            ratio = candidate / (baseline + rewrite)
            goals.ratio(f"{group} {role}", "middleware / (bare app + rewrite)", ratio, GOAL)
            lines.append(
                f"{group} {role} visitor: {candidate / baseline:.0f}x the bare app "
                f"({candidate * 1e3:.2f} ms vs {baseline * 1e3:.3f} ms per 100 KB page view); "
                f"{ratio:.2f}x the bare app plus the rewrite alone ({rewrite * 1e3:.2f} ms; "
                f"goal at most {GOAL}x)" + (" -- ABOVE GOAL" if ratio > GOAL else "")
            )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
