"""WSGIMiddleware on a real Flask application (Flask's test client) and on plain WSGI apps."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import brotli
import pytest
from flask import Flask, Response, make_response, redirect, stream_with_context
from werkzeug.test import Client, TestResponse

from dni_engine import Engine
from dni_engine.web import SKIP_HEADER, WSGIMiddleware, skip
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

HOST = "shop.example.com"
NAVIGATE = {
    "User-Agent": BROWSER,
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    @app.get("/about")
    def page() -> Response:
        response = make_response(PAGE)
        response.headers["ETag"] = '"v1"'
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    @app.get("/json")
    def json_view() -> Any:
        return {"phone": "0117 496 0999"}

    @app.get("/text")
    def text_view() -> Response:
        return Response("Call 0117 496 0999", mimetype="text/plain")

    @app.get("/redirect")
    def go() -> Any:
        return redirect("/")

    @app.get("/not-modified")
    def not_modified() -> Response:
        return Response(status=304, headers={"ETag": '"v1"'}, mimetype="text/html")

    @app.get("/missing")
    def missing() -> Any:
        return PAGE, 404

    @app.get("/failing")
    def failing() -> Any:
        return PAGE, 500

    @app.get("/gzip")
    def gzipped() -> Response:
        return Response(
            gzip.compress(PAGE_BYTES), mimetype="text/html", headers={"Content-Encoding": "gzip"}
        )

    @app.get("/br")
    def brotlied() -> Response:
        return Response(
            brotli.compress(PAGE_BYTES), mimetype="text/html", headers={"Content-Encoding": "br"}
        )

    @app.get("/stream")
    def streamed() -> Response:
        def pieces() -> Iterator[str]:
            yield from STREAMED

        return Response(stream_with_context(pieces()), mimetype="text/html")

    @app.get("/skip")
    @skip
    def opted_out() -> Response:
        return make_response(PAGE)

    @app.get("/skip-header")
    def header_opt_out() -> Response:
        response = make_response(PAGE)
        response.headers[SKIP_HEADER] = "1"
        return response

    return app


def site(engine: Engine | None = None, app: Any = None, **fields: Any) -> Client:
    wrapped = WSGIMiddleware(app or flask_app(), engine or make_engine(), secret=SECRET, **fields)
    return Client(wrapped)


def get(client: Client, path: str, method: str = "GET", **headers: str) -> TestResponse:
    return client.open(
        path,
        method=method,
        base_url=f"https://{HOST}",
        headers={**NAVIGATE, **headers},
    )


def set_cookies(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_an_ad_visitor_gets_a_pool_number_in_text_and_links() -> None:
    response = get(site(), "/?gclid=abc")
    assert response.status_code == 200
    assert shown(response.get_data()) == AD_NUMBERS[0]
    assert int(response.headers["Content-Length"]) == len(response.get_data())
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers["Vary"] == "Cookie"
    assert response.headers["ETag"] == 'W/"v1"'
    assert sorted(c.partition("=")[0] for c in set_cookies(response)) == [
        "dni_landing",
        "dni_lease",
        "dni_number",
        "dni_visitor",
    ]
    for c in set_cookies(response):  # the number cookie is read by the page's script
        readable = c.startswith("dni_number=")
        assert c.endswith("Secure; SameSite=Lax" if readable else "Secure; HttpOnly; SameSite=Lax")


def test_the_same_number_on_the_next_pages() -> None:
    client = site()
    number = shown(get(client, "/?gclid=abc").get_data())
    assert number is not None
    for path in ("/about", "/", "/about?x=1"):
        response = get(client, path, Referer=f"https://{HOST}/")
        assert shown(response.get_data()) == number
        assert [c.partition("=")[0] for c in set_cookies(response)] == [
            "dni_landing",
            "dni_number",
            "dni_lease",
        ]


def test_a_crawler_gets_the_original_page_and_no_cookie() -> None:
    engine = make_engine()
    response = get(site(engine), "/?gclid=abc", **{"User-Agent": CRAWLER})
    assert response.get_data(as_text=True) == PAGE
    assert set_cookies(response) == []
    assert engine.stats().visits == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/json", {}),
        ("/text", {}),
        ("/redirect", {}),
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
    response = get(site(engine), path + "?gclid=abc", **headers)
    expected = get(Client(flask_app()), path + "?gclid=abc", **headers)
    assert response.status_code == expected.status_code
    assert response.get_data() == expected.get_data()
    assert set_cookies(response) == []
    assert SKIP_HEADER not in response.headers
    assert [h for h in response.headers if h[0] != SKIP_HEADER] == [
        h for h in expected.headers if h[0] != SKIP_HEADER
    ]
    assert engine.stats().visits == 0


def test_head_is_answered_like_get_without_a_body() -> None:
    client = site()
    response = get(client, "/?gclid=abc", method="HEAD")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert len(set_cookies(response)) == 4  # visitor, landing, number, lease
    assert "Content-Length" not in response.headers
    assert shown(get(client, "/about").get_data()) == AD_NUMBERS[0]


@pytest.mark.parametrize("path", ["/gzip", "/br"])
def test_compressed_bodies_are_rewritten(path: str) -> None:
    response = get(site(), path + "?gclid=abc")
    assert response.headers["Content-Encoding"] == path[1:]
    data = response.get_data()
    assert int(response.headers["Content-Length"]) == len(data)
    plain = gzip.decompress(data) if path == "/gzip" else brotli.decompress(data)
    assert shown(plain) == AD_NUMBERS[0]


def test_a_streamed_body_with_a_number_split_across_chunks() -> None:
    response = get(site(), "/stream?gclid=abc")
    assert "Content-Length" not in response.headers
    assert response.get_data(as_text=True) == STREAMED_SWAPPED


def test_a_tampered_landing_cookie_is_ignored() -> None:
    engine = make_engine(ad_numbers=1)
    get(site(engine), "/?gclid=first")
    client = site(engine)
    assert shown(get(client, "/?gclid=second").get_data()) == OVERFLOW
    cookie = client.get_cookie("dni_landing", domain=HOST)
    assert cookie is not None
    found = decode_landing(cookie.value, SECRET.encode())
    assert found is not None
    page2 = get(client, "/about", Referer=f"https://{HOST}/")
    assert shown(page2.get_data()) == OVERFLOW  # matched on the landing: the ad pool
    forged = encode_landing(found, b"not the site's secret, 32 bytes.")
    client.set_cookie("dni_landing", forged, domain=HOST)
    page3 = get(client, "/about", Referer=f"https://{HOST}/")
    assert shown(page3.get_data()) not in (OVERFLOW, *AD_NUMBERS)  # the catch-all pool's


def test_consent_refused() -> None:
    engine = make_engine()
    response = get(site(engine, consent=lambda request: False), "/?gclid=abc")
    assert response.get_data(as_text=True) == PAGE
    assert set_cookies(response) == []
    assert engine.stats().visits == 0


def test_the_store_down_gives_the_original_page() -> None:
    store = FlakyStore()
    store.down = True
    client = site(make_engine(store=store))
    response = get(client, "/?gclid=abc")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == PAGE
    store.down = False
    assert shown(get(client, "/?gclid=abc").get_data()) == AD_NUMBERS[0]


@pytest.mark.parametrize("path", ["/", "/stream", "/gzip"])
def test_an_exception_inside_the_rewriter_gives_the_original_page(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    break_the_rewriter(monkeypatch)
    response = get(site(engine), path + "?gclid=abc")
    assert response.status_code == 200
    data = response.get_data()
    if path == "/gzip":
        data = gzip.decompress(data)
    assert shown(data) is None


def test_the_debug_header() -> None:
    response = get(site(debug_header=True), "/?gclid=abc")
    assert response.headers["X-DNI"] == "outcome=new; pool=1; source=0"


# ---- plain WSGI applications ------------------------------------------------------------


def test_a_plain_wsgi_app_using_write() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        for piece in STREAMED[:2]:
            write(piece.encode())
        return [piece.encode() for piece in STREAMED[2:]]

    response = get(site(app=app), "/?gclid=abc")
    assert response.get_data(as_text=True) == STREAMED_SWAPPED
    assert len(set_cookies(response)) == 4  # visitor, landing, number, lease


class _Body:
    """A generator body that records its ``close()``."""

    def __init__(self, pieces: tuple[str, ...], fail_at: int | None = None) -> None:
        self.pieces = pieces
        self.closed = False
        self.fail_at = fail_at

    def __iter__(self) -> Iterator[bytes]:
        for index, piece in enumerate(self.pieces):
            if index == self.fail_at:
                raise RuntimeError("the application failed mid-body")
            yield piece.encode()

    def close(self) -> None:
        self.closed = True


def test_a_generator_body_is_streamed_and_closed() -> None:
    body = _Body(STREAMED)

    def app(environ: dict[str, Any], start_response: Any) -> _Body:
        start_response("200 OK", [("Content-Type", "text/html")])
        return body

    response = get(site(app=app), "/?gclid=abc")
    assert response.get_data(as_text=True) == STREAMED_SWAPPED
    response.close()
    assert body.closed


def test_a_lazy_generator_app_calling_start_response_late() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        for piece in STREAMED:
            yield piece.encode()

    response = get(site(app=app), "/?gclid=abc")
    assert response.get_data(as_text=True) == STREAMED_SWAPPED


def test_close_is_called_when_the_body_is_not_a_page_or_fails() -> None:
    for status, kind, fail_at in [
        ("404 Not Found", "text/html", None),
        ("200 OK", "application/json", None),
        ("200 OK", "text/html", 1),
    ]:
        body = _Body(STREAMED, fail_at)

        def app(environ: dict[str, Any], start_response: Any, body: _Body = body) -> _Body:
            start_response(status, [("Content-Type", kind)])  # noqa: B023
            return body

        wrapped = WSGIMiddleware(app, make_engine(), secret=SECRET)
        environ = {
            "REQUEST_METHOD": "GET",
            "wsgi.url_scheme": "https",
            "HTTP_HOST": HOST,
            "PATH_INFO": "/",
            "QUERY_STRING": "gclid=abc",
            "HTTP_USER_AGENT": BROWSER,
            "wsgi.version": (1, 0),
        }
        result = wrapped(environ, lambda s, h, e=None: lambda data: None)
        try:
            if fail_at is None:
                assert b"".join(result)
            else:
                with pytest.raises(RuntimeError, match="mid-body"):
                    b"".join(result)
        finally:
            close = getattr(result, "close", None)
            assert close is not None
            close()
        assert body.closed


def test_exc_info_before_headers_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        try:
            raise ValueError("failed after start_response")
        except ValueError:
            import sys

            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error"]

    response = get(site(app=app), "/?gclid=abc")
    assert response.status_code == 500
    assert response.get_data() == b"error"
    assert set_cookies(response) == []


def test_a_generator_body_stays_streamed() -> None:
    """Each piece goes out before the application makes the next (bounded holding)."""
    log: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        for index, piece in enumerate(["<p>" + "x" * 5000, *STREAMED]):
            log.append(f"app {index}")
            yield piece.encode()

    wrapped = WSGIMiddleware(app, make_engine(), secret=SECRET)
    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": HOST,
        "PATH_INFO": "/",
        "QUERY_STRING": "gclid=abc",
        "HTTP_USER_AGENT": BROWSER,
        "wsgi.version": (1, 0),
    }
    started: list[list[tuple[str, str]]] = []
    out = []
    for piece in wrapped(environ, lambda s, h, e=None: started.append(h) or (lambda d: None)):
        log.append("out")
        out.append(piece)
    assert log[:2] == ["app 0", "out"]
    assert b"".join(out).decode() == "<p>" + "x" * 5000 + STREAMED_SWAPPED
    assert "Content-Length" not in dict(started[0])


@pytest.mark.parametrize(
    "change",
    [
        {"SERVER_PORT": "not a port"},
        {"HTTP_HOST": "", "SERVER_NAME": "shop.example.com", "SERVER_PORT": "8443"},
        {"HTTP_COOKIE": "\xff\xfe; dni_landing=\x00; dni_visitor=" + "v" * 5000},
        {"PATH_INFO": "/caf\xc3\xa9 \x00", "QUERY_STRING": "\xff"},
        {"REQUEST_METHOD": None, "wsgi.url_scheme": None},
    ],
)
def test_a_malformed_environ_never_breaks_the_response(change: dict[str, Any]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [PAGE_BYTES]

    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": HOST,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "PATH_INFO": "/",
        "QUERY_STRING": "gclid=abc",
        "HTTP_USER_AGENT": BROWSER,
        "wsgi.version": (1, 0),
        **change,
    }
    statuses: list[str] = []
    result = WSGIMiddleware(app, make_engine(), secret=SECRET)(
        environ, lambda s, h, e=None: statuses.append(s) or (lambda d: None)
    )
    body = b"".join(result)
    assert statuses == ["200 OK"]
    shown(body)  # the page whole: the site's number or a tracking number, in text and link


def test_a_response_known_to_be_no_page_is_the_applications_own_iterable() -> None:
    class FileLike:
        def __init__(self) -> None:
            self.closed = False

        def __iter__(self) -> Iterator[bytes]:
            yield b"%PDF-1.7"

        def close(self) -> None:
            self.closed = True

    body = FileLike()

    def app(environ: dict[str, Any], start_response: Any) -> FileLike:
        start_response("200 OK", [("Content-Type", "application/pdf"), (SKIP_HEADER, "1")])
        return body

    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": HOST,
        "PATH_INFO": "/doc.pdf",
        "HTTP_USER_AGENT": BROWSER,
        "wsgi.version": (1, 0),
    }
    started: list[Any] = []
    result = WSGIMiddleware(app, make_engine(), secret=SECRET)(
        environ, lambda s, h, e=None: started.append((s, h)) or (lambda d: None)
    )
    assert result is body
    assert started == [("200 OK", [("Content-Type", "application/pdf")])]
