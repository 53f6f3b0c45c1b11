"""ASGIMiddleware on real Starlette and FastAPI applications, in process (Starlette TestClient)."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import brotli
import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI
from fastapi.responses import HTMLResponse as FastHTML
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.testclient import TestClient

from dni_engine import Engine
from dni_engine.leases import Attribution
from dni_engine.stores.redis import AsyncRedisStore
from dni_engine.testing.redis_server import RedisServer
from dni_engine.web import SKIP_HEADER, ASGIMiddleware, skip
from dni_engine.web.core import decode_landing, encode_landing
from tests.web_site import (
    AD_NUMBERS,
    BROWSER,
    CRAWLER,
    OVERFLOW,
    PAGE,
    PAGE_BYTES,
    SECRET,
    STREAMED,
    STREAMED_SWAPPED,
    FlakyStore,
    break_the_rewriter,
    make_engine,
    shown,
)

BASE = "https://shop.example.com"
NAVIGATE = {
    "User-Agent": BROWSER,
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}
LOOP_THREADS: list[threading.Thread] = []


async def page(request: Request) -> Response:
    LOOP_THREADS.append(threading.current_thread())
    return HTMLResponse(PAGE, headers={"ETag": '"v1"', "Cache-Control": "public, max-age=60"})


async def json_view(request: Request) -> Response:
    return JSONResponse({"phone": "0117 496 0999"})


async def text_view(request: Request) -> Response:
    return PlainTextResponse("Call 0117 496 0999")


async def redirect(request: Request) -> Response:
    return RedirectResponse("/", status_code=302)


async def not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"ETag": '"v1"', "Content-Type": "text/html"})


async def missing(request: Request) -> Response:
    return HTMLResponse(PAGE, status_code=404)


async def failing(request: Request) -> Response:
    return HTMLResponse(PAGE, status_code=500)


async def gzipped(request: Request) -> Response:
    return Response(
        gzip.compress(PAGE_BYTES),
        media_type="text/html",
        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
    )


async def brotlied(request: Request) -> Response:
    return Response(
        brotli.compress(PAGE_BYTES), media_type="text/html", headers={"Content-Encoding": "br"}
    )


async def streamed(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in STREAMED:
            yield piece.encode()
            await asyncio.sleep(0)

    return StreamingResponse(pieces(), media_type="text/html")


@skip
async def opted_out(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def header_opt_out(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={SKIP_HEADER: "1"})


ROUTES = [
    Route("/", page),
    Route("/about", page),
    Route("/json", json_view),
    Route("/text", text_view),
    Route("/redirect", redirect),
    Route("/not-modified", not_modified),
    Route("/missing", missing),
    Route("/failing", failing),
    Route("/gzip", gzipped),
    Route("/br", brotlied),
    Route("/stream", streamed),
    Route("/skip", opted_out),
    Route("/skip-header", header_opt_out),
]


def site(engine: Engine | None = None, **fields: Any) -> TestClient:
    app = ASGIMiddleware(Starlette(routes=ROUTES), engine or make_engine(), secret=SECRET, **fields)
    return TestClient(app, base_url=BASE, headers=NAVIGATE)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with site() as test_client:
        yield test_client


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_an_ad_visitor_gets_a_pool_number_in_text_and_links(client: TestClient) -> None:
    response = client.get("/?gclid=abc")
    assert response.status_code == 200
    assert shown(response.text) == AD_NUMBERS[0]
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["cache-control"] == "private, max-age=60"
    assert response.headers["vary"] == "Cookie"
    assert response.headers["etag"] == 'W/"v1"'
    names = sorted(c.partition("=")[0] for c in set_cookies(response))
    assert names == ["dni_landing", "dni_lease", "dni_number", "dni_visitor"]
    for c in set_cookies(response):  # the number cookie is read by the page's script
        wanted = "Secure; SameSite=Lax" if c.startswith("dni_number=") else "Secure; HttpOnly;"
        assert wanted in c


def test_the_same_number_on_the_next_pages(client: TestClient) -> None:
    number = shown(client.get("/?gclid=abc").text)
    for path in ("/about", "/", "/about?x=1"):
        response = client.get(path, headers={"Referer": f"{BASE}/"})
        assert shown(response.text) == number
        assert [c.partition("=")[0] for c in set_cookies(response)] == [
            "dni_landing",
            "dni_number",
            "dni_lease",
        ]


def test_a_crawler_gets_the_original_page_and_no_cookie() -> None:
    engine = make_engine()
    with site(engine) as test_client:
        response = test_client.get("/?gclid=abc", headers={"User-Agent": CRAWLER})
    assert response.text == PAGE
    assert set_cookies(response) == []
    assert response.headers["etag"] == '"v1"'
    assert engine.stats().visits == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/json", {}),
        ("/text", {}),
        ("/missing", {}),
        ("/failing", {}),
        ("/not-modified", {}),
        ("/", {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"}),
        ("/", {"X-Requested-With": "XMLHttpRequest"}),
        ("/", {"Accept": "application/json"}),
        ("/skip", {}),
        ("/skip-header", {}),
    ],
)
def test_untouched_responses(path: str, headers: dict[str, str]) -> None:
    engine = make_engine()
    with site(engine) as test_client:
        response = test_client.get(path + "?gclid=abc", headers=headers)
    bare = TestClient(Starlette(routes=ROUTES), base_url=BASE, headers=NAVIGATE)
    expected = bare.get(path + "?gclid=abc", headers=headers)
    assert response.status_code == expected.status_code
    assert response.content == expected.content
    assert set_cookies(response) == []
    assert SKIP_HEADER.lower() not in response.headers
    assert dict(response.headers) == {
        k: v for k, v in expected.headers.items() if k != SKIP_HEADER.lower()
    }
    assert engine.stats().visits == 0


def test_a_redirect_is_not_followed_nor_touched(client: TestClient) -> None:
    response = client.get("/redirect?gclid=abc", follow_redirects=False)
    assert response.status_code == 302
    assert set_cookies(response) == []


def test_head_is_answered_like_get_without_a_body(client: TestClient) -> None:
    response = client.head("/?gclid=abc")
    assert response.status_code == 200
    assert response.content == b""
    assert len(set_cookies(response)) == 4  # visitor, landing, number, lease
    assert "content-length" not in response.headers
    assert response.headers["cache-control"].startswith("private")
    # The HEAD took the lease the GET then shows.
    assert shown(client.get("/about").text) == AD_NUMBERS[0]


@pytest.mark.parametrize("path", ["/gzip", "/br"])
def test_compressed_bodies_are_rewritten(client: TestClient, path: str) -> None:
    response = client.get(path + "?gclid=abc")
    assert response.headers["content-encoding"] == path[1:]
    assert shown(response.text) == AD_NUMBERS[0]
    assert "Cookie" in response.headers["vary"]


def test_a_streamed_body_with_a_number_split_across_chunks(client: TestClient) -> None:
    response = client.get("/stream?gclid=abc")
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert shown(response.text) == AD_NUMBERS[0]
    assert response.text == "".join(STREAMED).replace("0117 496 0999", "0117 496 0000").replace(
        "tel:01174960999", "tel:+441174960000"
    )


def test_a_tampered_landing_cookie_is_ignored() -> None:
    with site(make_engine(ad_numbers=1)) as test_client:
        test_client.get("/?gclid=first", headers={"Cookie": "dni_visitor=aaaaaaaaaaaaaaaaaaaaaa"})
        landing = test_client.get("/?gclid=second")
        assert shown(landing.text) == OVERFLOW
        value = test_client.cookies["dni_landing"]
        found = decode_landing(value, SECRET.encode())
        assert found is not None
        forged = encode_landing(found, b"not the site's secret, 32 bytes.")
        test_client.cookies.set("dni_landing", forged, domain="shop.example.com")
        page2 = test_client.get("/about", headers={"Referer": f"{BASE}/"})
        assert shown(page2.text) not in (OVERFLOW, *AD_NUMBERS)  # the catch-all pool's


def test_the_ad_visitor_who_found_the_pool_full_stays_with_the_ad_pool() -> None:
    engine = make_engine(ad_numbers=1)
    with site(engine) as other:
        other.get("/?gclid=first")
    with site(engine, debug_header=True) as test_client:
        landing = test_client.get("/?gclid=second")
        assert landing.headers["x-dni"] == "outcome=overflow; pool=1; source=0"
        page2 = test_client.get("/about", headers={"Referer": f"{BASE}/"})
        assert page2.headers["x-dni"] == "outcome=overflow; pool=1; source=0"
        assert shown(page2.text) == OVERFLOW


def test_consent_refused() -> None:
    engine = make_engine()
    with site(engine, consent=lambda request: False) as test_client:
        response = test_client.get("/?gclid=abc")
    assert response.text == PAGE
    assert set_cookies(response) == []
    assert engine.stats().visits == 0


def test_the_store_down_gives_the_original_page() -> None:
    store = FlakyStore()
    store.down = True
    with site(make_engine(store=store)) as test_client:
        response = test_client.get("/?gclid=abc")
        assert response.status_code == 200
        assert response.text == PAGE
        store.down = False
        assert shown(test_client.get("/?gclid=abc").text) == AD_NUMBERS[0]


@pytest.mark.parametrize("path", ["/", "/stream", "/gzip"])
def test_an_exception_inside_the_rewriter_gives_the_original_page(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    break_the_rewriter(monkeypatch)
    with site(engine) as test_client:
        response = test_client.get(path + "?gclid=abc")
    assert response.status_code == 200
    assert "0117 496 0999" in response.text
    assert shown(response.text) is None


def test_the_store_is_not_called_on_the_event_loop_thread() -> None:
    store = FlakyStore()
    LOOP_THREADS.clear()
    with site(make_engine(store=store)) as test_client:
        assert shown(test_client.get("/?gclid=abc").text) == AD_NUMBERS[0]
    assert store.threads
    assert LOOP_THREADS
    assert not set(store.threads) & set(LOOP_THREADS)


def test_fastapi_through_httpx_asgi_transport() -> None:
    api = FastAPI()

    @api.get("/", response_class=FastHTML)
    async def home() -> str:
        return PAGE

    @api.get("/api/phone")
    async def phone() -> dict[str, str]:
        return {"phone": "0117 496 0999"}

    store = FlakyStore()
    app = ASGIMiddleware(api, make_engine(store=store), secret=SECRET)

    async def visit() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=NAVIGATE) as c:
            return [
                await c.get("/?gclid=abc"),
                await c.get("/", headers={"Referer": f"{BASE}/"}),
                await c.get("/api/phone", headers={"Accept": "application/json"}),
            ]

    first, second, api_call = asyncio.run(visit())
    assert shown(first.text) == AD_NUMBERS[0]
    assert shown(second.text) == AD_NUMBERS[0]
    assert api_call.json() == {"phone": "0117 496 0999"}
    assert set_cookies(api_call) == []
    assert threading.main_thread() not in store.threads


def test_lifespan_and_websockets_pass_through() -> None:
    events: list[str] = []

    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        events.append(scope["type"])
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
            await send({"type": "lifespan.shutdown.complete"})

    app = ASGIMiddleware(raw, make_engine(), secret=SECRET)
    with TestClient(app):
        pass
    assert events == ["lifespan"]


# ---- at the protocol level ------------------------------------------------------------------


def _scope(path: str = "/", query: bytes = b"gclid=abc", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in NAVIGATE.items()]
        + [(b"host", b"shop.example.com")],
        "server": ("10.0.0.1", 8000),
        "client": ("10.0.0.2", 50000),
        "extensions": {"http.response.pathsend": {}},
    }


def _drive(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_stream_stays_streamed() -> None:
    """Each piece goes out before the application makes the next (bounded holding)."""
    log: list[str] = []

    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "http.response.pathsend" not in scope["extensions"]
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pieces = ["<p>" + "x" * 5000, *STREAMED]
        for index, piece in enumerate(pieces):
            log.append(f"app {index}")
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece.encode(), "more_body": more})

    middleware = ASGIMiddleware(raw, make_engine(), secret=SECRET)
    original_send: list[dict[str, Any]] = []

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message["body"]:
                log.append("out")
            original_send.append(message)

        await middleware(_scope(), receive, send)

    asyncio.run(run())
    assert log[:2] == ["app 0", "out"]  # the first piece went out before the second was made
    start = original_send[0]
    assert start["type"] == "http.response.start"
    names = [n for n, _ in start["headers"]]
    assert b"content-length" not in names
    assert b"set-cookie" in names
    body = b"".join(m["body"] for m in original_send[1:])
    assert body.decode() == "<p>" + "x" * 5000 + STREAMED_SWAPPED
    assert shown(body) == AD_NUMBERS[0]
    assert original_send[-1]["more_body"] is False


def test_an_application_failing_after_start_sends_nothing() -> None:
    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the application failed")

    middleware = ASGIMiddleware(raw, make_engine(), secret=SECRET)
    with pytest.raises(RuntimeError, match="application failed"):
        _drive(middleware, _scope())


def test_a_start_without_body_is_sent_when_the_application_returns() -> None:
    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})

    sent = _drive(ASGIMiddleware(raw, make_engine(), secret=SECRET), _scope())
    assert sent == [{"type": "http.response.start", "status": 204, "headers": []}]


def test_the_request_url_the_core_sees() -> None:
    seen: list[str] = []

    async def any_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await HTMLResponse(PAGE)(scope, receive, send)

    middleware = ASGIMiddleware(
        any_path,
        make_engine(),
        secret=SECRET,
        consent=lambda request: seen.append(request.url) or True,
    )
    scope = _scope("/about", b"gclid=1&utm_source=x")
    scope["root_path"] = "/shop"
    scope["path"] = "/shop/about"
    _drive(middleware, scope)
    scope["path"] = "/shop/café au lait"
    _drive(middleware, scope)
    assert seen == [
        "https://shop.example.com/shop/about?gclid=1&utm_source=x",
        "https://shop.example.com/shop/caf%C3%A9%20au%20lait?gclid=1&utm_source=x",
    ]


def _pieces_app(pieces: list[bytes], length: int | None) -> Any:
    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, piece in enumerate(pieces):
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})

    return raw


def test_a_body_of_declared_length_is_gathered_and_rewritten_whole() -> None:
    pieces = [piece.encode() for piece in STREAMED]
    app = _pieces_app(pieces, sum(map(len, pieces)))
    sent = _drive(ASGIMiddleware(app, make_engine(), secret=SECRET), _scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    body = sent[1]["body"]
    assert body.decode() == STREAMED_SWAPPED
    assert (b"content-length", str(len(body)).encode()) in sent[0]["headers"]


def test_a_body_longer_than_max_buffer_is_streamed_from_there() -> None:
    pieces = [b"<p>" + b"x" * 300, *(piece.encode() for piece in STREAMED)]
    app = _pieces_app(pieces, 10)  # a wrong length
    sent = _drive(ASGIMiddleware(app, make_engine(), secret=SECRET, max_buffer=200), _scope())
    names = [n for n, _ in sent[0]["headers"]]
    assert b"content-length" not in names
    body = b"".join(m["body"] for m in sent[1:])
    assert body.decode() == "<p>" + "x" * 300 + STREAMED_SWAPPED
    assert sent[-1]["more_body"] is False


def test_an_html_file_response(tmp_path: Any) -> None:
    from starlette.responses import FileResponse

    path = tmp_path / "page.html"
    path.write_bytes(PAGE_BYTES * 3000)  # several chunks of FileResponse's 64 KB

    async def file_page(request: Request) -> Response:
        return FileResponse(path)

    app = ASGIMiddleware(Starlette(routes=[Route("/", file_page)]), make_engine(), secret=SECRET)
    with TestClient(app, base_url=BASE, headers=NAVIGATE) as test_client:
        response = test_client.get("/?gclid=abc")
    assert response.text.count("0117 496 0000") == 3000
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["etag"].startswith("W/")


@pytest.mark.parametrize(
    "change",
    [
        {"headers": [("not", "bytes")]},
        {"headers": None, "server": None},
        {"query_string": "not bytes"},
        {"client": 5},
        {"headers": [(b"cookie", b"\xff\xfe; dni_landing=\x00")]},
        {"method": None, "scheme": None, "path": None},
    ],
)
def test_a_malformed_scope_never_breaks_the_response(change: dict[str, Any]) -> None:
    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await HTMLResponse(PAGE)(scope, receive, send)

    scope = {**_scope(), **change}
    sent = _drive(ASGIMiddleware(raw, make_engine(), secret=SECRET), scope)
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:])


class LoopedStore:
    """An AsyncRedisStore recording the thread each visit ran on (a wrapper, as FlakyStore is)."""

    def __init__(self, inner: AsyncRedisStore) -> None:
        self.inner = inner
        self.threads: list[threading.Thread] = []

    async def visit(
        self, visitor_id: str, now: float, claim: Any, client: Any = None, *, hint: Any = None
    ) -> Any:
        self.threads.append(threading.current_thread())
        return await self.inner.visit(visitor_id, now, claim, client, hint=hint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_async_redis_store_answers_page_views_on_the_event_loop(
    redis_server: RedisServer,
) -> None:
    api = FastAPI()

    @api.get("/", response_class=FastHTML)
    async def home() -> str:
        LOOP_THREADS.append(threading.current_thread())
        return PAGE

    async def visit() -> tuple[list[httpx.Response], Attribution, Attribution]:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)
        store = LoopedStore(AsyncRedisStore(client, namespace="asgi-async", new_namespace=True))
        engine = make_engine(store=cast(Any, store))
        app = ASGIMiddleware(api, engine, secret=SECRET)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=NAVIGATE) as c:
            responses = [
                await c.get("/?gclid=abc"),
                await c.get("/", headers={"Referer": f"{BASE}/"}),
                await c.get("/"),
            ]
        # The engine's synchronous methods reach the store from a worker thread, on this loop;
        # on the loop's own thread they would block it, and find the store unavailable.
        found = await asyncio.to_thread(engine.attribute_call, AD_NUMBERS[0])
        on_loop = engine.attribute_call(AD_NUMBERS[0])
        assert store.threads
        assert set(store.threads) <= set(LOOP_THREADS)  # awaited on the loop, no thread
        await client.aclose()
        return responses, found, on_loop

    LOOP_THREADS.clear()
    (first, second, third), found, on_loop = asyncio.run(visit())
    assert shown(first.text) == AD_NUMBERS[0]
    assert shown(second.text) == AD_NUMBERS[0]
    assert shown(third.text) == AD_NUMBERS[0]
    cookies = {c.partition("=")[0] for c in set_cookies(second)}
    assert "dni_lease" in cookies
    assert found.kind == "lease"
    assert found.number == AD_NUMBERS[0]
    assert on_loop.kind == "store_unavailable"
