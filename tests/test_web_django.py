"""``DNIMiddleware`` in a real Django, configured in this module, with its test clients.

The site is the example site's pools (a 4-number Google Ads pool, a catch-all
"Website (all other visitors)" pool and others) on a memory store, or on a
Redis nobody listens on for the store-down case. The views below are the
module's URLconf; ``GZipMiddleware`` sits under the DNI middleware, as the
documentation advises, so a client that accepts gzip gets compressed pages.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import brotli
import django
import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-" + "k" * 40,
        ALLOWED_HOSTS=["testserver", ".shop.example"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        MIDDLEWARE=[
            "dni_engine.web.django.DNIMiddleware",
            "django.middleware.gzip.GZipMiddleware",
        ],
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    HttpResponseNotModified,
    HttpResponseRedirect,
    HttpResponseServerError,
    JsonResponse,
    StreamingHttpResponse,
)
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from dni_engine import Engine, load_pools
from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import free_port
from dni_engine.web import SKIP_HEADER, WebConfig, skip
from dni_engine.web import django as django_adapter
from dni_engine.web.django import DNIMiddleware
from tests.web_site import break_the_rewriter

ROOT = Path(__file__).resolve().parent.parent
POOLS = load_pools((ROOT / "examples" / "site" / "pools.json").read_bytes())
SECRET = "test-secret-0123456789abcdef"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLE = "https://www.google.com/"
AD = "/?gclid=EAIaIQobChMI"
AD_NUMBERS = {f"+44117496010{i}" for i in range(1, 5)}
CATCH_ALL = "41006"
PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ABC Tyres</title></head><body>"
    "<p>Tyres fitted while you wait; winter stock in today, all sizes.</p>"
    "<p>Call us on 0117 496 0000 or "
    '<a href="tel:+441174960000">tap to call</a>.</p>'
    "<p>Open Monday to Saturday, 8am to 6pm, at Unit 4, Bristol BS1 4DJ.</p>"
    + "<p>Winter tyres, summer tyres, all-season tyres: fitted while you wait.</p>" * 20
    + "</body></html>"
)
ORIGINAL = "0117 496 0000"


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


async def async_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


def split_chunks() -> Iterator[bytes]:
    text = PAGE.encode()
    cut = text.index(b"496 0000") + 2  # "0117 49" | "6 0000"
    yield text[:cut]
    yield text[cut:]


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(split_chunks(), content_type="text/html; charset=utf-8")


async def async_streamed(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in split_chunks():
            yield chunk

    return StreamingHttpResponse(chunks(), content_type="text/html; charset=utf-8")


def with_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(PAGE)
    response.set_cookie("basket", "3", httponly=True)
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "public, max-age=60, s-maxage=600"
    response.headers["ETag"] = '"v1"'
    return response


def brotli_page(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(brotli.compress(PAGE.encode()))
    response.headers["Content-Encoding"] = "br"
    return response


def html_file(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(PAGE.encode()), content_type="text/html; charset=utf-8")


@skip
def skipped(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


urlpatterns = [
    path("", page),
    path("tyres", page),
    path("async", async_page),
    path("stream", streamed),
    path("astream", async_streamed),
    path("skipped", skipped),
    path("cookie", with_cookie),
    path("brotli", brotli_page),
    path("file", html_file),
    path("json", lambda request: JsonResponse({"phone": ORIGINAL})),
    path("text", lambda request: HttpResponse(PAGE, content_type="text/plain")),
    path("redirect", lambda request: HttpResponseRedirect("/tyres")),
    path("not-modified", lambda request: HttpResponseNotModified()),
    path("missing", lambda request: HttpResponseNotFound(PAGE)),
    path("error", lambda request: HttpResponseServerError(PAGE)),
]


def numbers(text: str) -> set[str]:
    """The tel: targets on a page."""
    return set(re.findall(r'href="tel:([^"]+)"', text))


def debug(response: object) -> dict[str, str]:
    """The X-DNI debug header as a dict (``outcome``, ``pool``, ``source``)."""
    value = response.headers.get("X-DNI", "")  # type: ignore[attr-defined]
    pairs = (part.strip().partition("=") for part in value.split(";") if part.strip())
    return {key: val for key, _, val in pairs}


@pytest.fixture
def engine() -> Engine:
    return Engine(POOLS)


def configured(engine: Engine, **fields: object) -> override_settings:
    return override_settings(
        DNI_ENGINE=engine, DNI_WEB={"secret": SECRET, "debug_header": True, **fields}
    )


@pytest.fixture
def client(engine: Engine) -> Iterator[Client]:
    with configured(engine):
        yield Client(headers={"User-Agent": BROWSER})


def ad_visit(client: Client, path: str = AD, **headers: str) -> HttpResponse:
    return client.get(path, headers={"Referer": GOOGLE, **headers})  # type: ignore[return-value]


def test_an_ad_visitor_sees_a_pool_number_in_text_and_tel_links(client: Client) -> None:
    response = ad_visit(client)
    body = response.content.decode()
    assert response.status_code == 200
    (number,) = numbers(body)
    assert number in AD_NUMBERS
    assert ORIGINAL not in body
    assert "0117 496 010" in body  # the text too, written as the page wrote it
    assert debug(response)["pool"] == "41001"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert "private" in response.headers["Cache-Control"]
    assert "Cookie" in response.headers["Vary"]
    visitor = response.cookies["dni_visitor"]
    assert visitor["httponly"]
    assert visitor["samesite"] == "Lax"
    assert not visitor["secure"]  # plain http
    assert "dni_landing" in response.cookies


def test_the_same_number_on_the_next_pages(client: Client) -> None:
    (number,) = numbers(ad_visit(client).content.decode())
    for _ in range(3):
        response = client.get("/tyres", headers={"Referer": "http://testserver/"})
        assert numbers(response.content.decode()) == {number}
        assert debug(response)["outcome"] == "kept"


def test_https_sets_secure_cookies(client: Client) -> None:
    response = client.get(AD, headers={"Referer": GOOGLE}, secure=True)
    assert response.cookies["dni_visitor"]["secure"]


def test_cookie_settings_reach_the_django_cookies(engine: Engine) -> None:
    with configured(engine, cookie_domain="shop.example", cookie_path="/shop", cookie_name="v"):
        response = Client(headers={"User-Agent": BROWSER}).get(
            AD, headers={"Referer": GOOGLE}, HTTP_HOST="www.shop.example"
        )
    visitor = response.cookies["v"]
    assert visitor["domain"] == "shop.example"
    assert visitor["path"] == "/shop"
    assert visitor["max-age"] == "31536000"
    assert response.cookies["dni_landing"]["max-age"] == "1800"


def test_the_applications_own_visitor_id(engine: Engine) -> None:
    def visitor_id(request: object) -> str | None:
        native = request.native  # type: ignore[attr-defined]
        return native.COOKIES.get("account")  # type: ignore[no-any-return]

    with configured(engine, visitor_id=visitor_id):
        first = Client(headers={"User-Agent": BROWSER})
        first.cookies["account"] = "customer-42"
        (number,) = numbers(ad_visit(first).content.decode())
        assert "dni_visitor" not in first.cookies  # the application's id replaces the cookie
        again = Client(headers={"User-Agent": BROWSER})  # another device, the same account
        again.cookies["account"] = "customer-42"
        response = again.get("/tyres")
    assert numbers(response.content.decode()) == {number}
    assert debug(response)["outcome"] == "kept"


def test_a_crawler_gets_the_original_page_and_no_cookie(engine: Engine) -> None:
    with configured(engine):
        response = Client(headers={"User-Agent": CRAWLER}).get(AD, headers={"Referer": GOOGLE})
    assert response.status_code == 200
    assert response.content.decode() == PAGE
    assert not response.cookies


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/json", 200),
        ("/text", 200),
        ("/redirect", 302),
        ("/not-modified", 304),
        ("/missing", 404),
        ("/error", 500),
    ],
)
def test_non_html_redirects_304s_and_errors_are_untouched(
    client: Client, path: str, status: int
) -> None:
    response = client.get(path + "?gclid=abc", headers={"Referer": GOOGLE})
    assert response.status_code == status
    assert not response.cookies
    assert "X-DNI" not in response.headers
    assert "0000" in response.content.decode() or status in (302, 304)
    assert "0117 496 010" not in response.content.decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Requested-With": "XMLHttpRequest"},
        {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"},
        {"Accept": "application/json"},
    ],
    ids=["x-requested-with", "sec-fetch-empty", "accept-json"],
)
def test_xhr_and_fetch_are_untouched(client: Client, headers: dict[str, str]) -> None:
    response = ad_visit(client, **headers)
    assert response.content.decode() == PAGE
    assert not response.cookies


def test_a_navigation_with_fetch_metadata_is_a_page_view(client: Client) -> None:
    response = ad_visit(client, **{"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"})
    assert numbers(response.content.decode()) <= AD_NUMBERS
    assert numbers(response.content.decode())


def test_head_is_answered_like_get_without_a_body(client: Client) -> None:
    response = client.head(AD, headers={"Referer": GOOGLE})
    assert response.status_code == 200
    assert response.content == b""
    assert debug(response)["pool"] == "41001"
    assert "dni_visitor" in response.cookies
    (number,) = numbers(ad_visit(client).content.decode())  # the number HEAD leased
    assert number in AD_NUMBERS
    assert debug(ad_visit(client))["outcome"] == "kept"


def test_a_gzip_body_is_decoded_rewritten_and_encoded_again(client: Client) -> None:
    response = ad_visit(client, **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Length"] == str(len(response.content))
    body = gzip.decompress(response.content).decode()
    assert numbers(body) <= AD_NUMBERS
    assert len(numbers(body)) == 1
    assert ORIGINAL not in body


def test_a_brotli_body_is_decoded_rewritten_and_encoded_again(client: Client) -> None:
    response = ad_visit(client, "/brotli?gclid=abc")
    assert response.headers["Content-Encoding"] == "br"
    body = brotli.decompress(response.content).decode()
    assert len(numbers(body) & AD_NUMBERS) == 1
    assert ORIGINAL not in body


def test_the_views_own_cookies_and_headers_are_kept_and_made_private(client: Client) -> None:
    response = ad_visit(client, "/cookie?gclid=abc")
    assert response.cookies["basket"].value == "3"
    assert {"dni_visitor", "dni_landing", "basket"} <= set(response.cookies)
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers["Vary"] == "Accept-Language, Accept-Encoding, Cookie"  # gzip's too
    assert response.headers["ETag"] == 'W/"v1"'
    assert numbers(response.content.decode()) <= AD_NUMBERS


def test_a_host_django_refuses_is_left_alone(client: Client) -> None:
    response = client.get(AD, headers={"Referer": GOOGLE}, HTTP_HOST="evil.example")
    assert response.content.decode() == PAGE
    assert not response.cookies


def test_a_streamed_body_with_a_number_split_across_chunks(client: Client) -> None:
    response = ad_visit(client, "/stream?gclid=abc")
    assert response.streaming
    chunks = list(response.streaming_content)  # type: ignore[attr-defined]
    body = b"".join(chunks).decode()
    assert numbers(body) <= AD_NUMBERS
    assert len(numbers(body)) == 1
    assert ORIGINAL not in body
    assert "Content-Length" not in response.headers


def test_a_file_response_serving_html(client: Client) -> None:
    response = ad_visit(client, "/file?gclid=abc")
    assert response.streaming
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert len(numbers(body) & AD_NUMBERS) == 1
    assert "Content-Length" not in response.headers


def test_dni_web_may_be_a_webconfig(engine: Engine) -> None:
    config = WebConfig(secret=SECRET, debug_header=True, cookie_name="v")
    with override_settings(DNI_ENGINE=engine, DNI_WEB=config):
        response = ad_visit(Client(headers={"User-Agent": BROWSER}))
    assert "v" in response.cookies
    assert debug(response)["pool"] == "41001"


def test_a_streamed_gzip_body(client: Client) -> None:
    response = ad_visit(client, "/stream?gclid=abc", **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(b"".join(response.streaming_content)).decode()  # type: ignore[attr-defined]
    assert len(numbers(body) & AD_NUMBERS) == 1
    assert ORIGINAL not in body


def test_a_skipped_view_is_untouched_and_loses_the_header(client: Client) -> None:
    response = ad_visit(client, "/skipped?gclid=abc")
    assert response.content.decode() == PAGE
    assert SKIP_HEADER not in response.headers
    assert not response.cookies


def test_a_tampered_landing_cookie_is_ignored(engine: Engine) -> None:
    with configured(engine):
        ad = Client(headers={"User-Agent": BROWSER})
        ad_visit(ad)
        landing = ad.cookies["dni_landing"].value
    # An ad landing signed with another secret, then a forged one: both mean nothing here.
    for forged in (landing, landing[:-4] + ("AAAA" if not landing.endswith("AAAA") else "BBBB")):
        with configured(Engine(POOLS), secret="another-secret-0123456789"):
            other = Client(headers={"User-Agent": BROWSER})
            other.cookies["dni_landing"] = forged
            response = other.get("/tyres")
        assert response.status_code == 200
        assert debug(response)["pool"] == CATCH_ALL


def test_an_overflowed_ad_visitor_stays_in_the_ad_pool_on_page_2(engine: Engine) -> None:
    with configured(engine):
        shown = set()
        for i in range(4):  # four people (four addresses: the client cap counts per address)
            visitor = Client(headers={"User-Agent": BROWSER}, REMOTE_ADDR=f"192.0.2.{i + 1}")
            shown |= numbers(ad_visit(visitor).content.decode())
        assert shown == AD_NUMBERS
        late = Client(headers={"User-Agent": BROWSER}, REMOTE_ADDR="192.0.2.5")
        first = ad_visit(late)
        assert debug(first)["outcome"] == "overflow"
        assert first.content.decode().count(ORIGINAL) == 1
        second = late.get("/tyres", headers={"Referer": "http://testserver/"})
        assert debug(second)["pool"] == "41001"
        assert ORIGINAL in second.content.decode()


def test_consent_refused_means_no_cookie_and_the_original_page(engine: Engine) -> None:
    asked: list[object] = []

    def consent(request: object) -> bool:
        asked.append(request)
        return False

    with configured(engine, consent=consent):
        response = ad_visit(Client(headers={"User-Agent": BROWSER}))
    assert response.content.decode() == PAGE
    assert not response.cookies
    assert asked
    assert isinstance(asked[0].native, HttpRequest)  # type: ignore[attr-defined]


def test_the_store_down_leaves_the_original_page() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.2, timeout=0.2)
    try:
        with configured(Engine(POOLS, store)):
            client = Client(headers={"User-Agent": BROWSER})
            for url in (AD, "/stream?gclid=abc"):
                response = ad_visit(client, url)
                assert response.status_code == 200
                body = b"".join(response) if response.streaming else response.content
                assert body.decode() == PAGE
                assert debug(response)["outcome"] == "store_unavailable"
    finally:
        store.close()


def test_an_exception_in_the_rewriter_leaves_the_original_page(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_the_rewriter(monkeypatch)
    for url in (AD, "/stream?gclid=abc"):
        response = ad_visit(client, url)
        assert response.status_code == 200
        body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        assert body.decode() == PAGE


def test_a_failure_applying_the_plan_puts_the_response_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = django_adapter._set_headers

    def half_then_fail(response: object, planned: object) -> None:
        applied(response, planned)  # type: ignore[arg-type]
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(django_adapter, "_set_headers", half_then_fail)
    response = ad_visit(client, "/cookie?gclid=abc")
    assert response.status_code == 200
    assert response.content.decode() == PAGE
    assert set(response.cookies) == {"basket"}
    assert response.headers["Cache-Control"] == "public, max-age=60, s-maxage=600"
    assert response.headers["ETag"] == '"v1"'
    assert "X-DNI" not in response.headers


def test_async_views_and_streams_through_the_async_path(engine: Engine) -> None:
    loop_threads: set[int] = set()
    consent_threads: set[int] = set()

    def consent(request: object) -> bool:  # runs where the store is called
        consent_threads.add(threading.get_ident())
        return True

    async def visit() -> tuple[str, str, str]:
        loop_threads.add(threading.get_ident())
        client = AsyncClient()  # its default headers are not sent as request headers
        first = await client.get(
            "/async?gclid=abc", headers={"User-Agent": BROWSER, "Referer": GOOGLE}
        )
        second = await client.get(
            "/astream", headers={"User-Agent": BROWSER, "Referer": "http://testserver/"}
        )
        chunks = [chunk async for chunk in second.streaming_content]  # type: ignore[attr-defined]
        return first.content.decode(), b"".join(chunks).decode(), debug(second)["outcome"]

    with configured(engine, consent=consent):
        first, second, outcome = asyncio.run(visit())
    (number,) = numbers(first)
    assert number in AD_NUMBERS
    assert numbers(second) == {number}
    assert outcome == "kept"
    assert consent_threads
    assert not consent_threads & loop_threads  # the visit ran off the event loop


def test_the_middleware_is_sync_and_async_capable() -> None:
    assert DNIMiddleware.sync_capable
    assert DNIMiddleware.async_capable
    with override_settings(DNI_ENGINE=Engine(POOLS), DNI_WEB={"secret": SECRET}):
        assert not iscoroutinefunction(DNIMiddleware(page))
        assert iscoroutinefunction(DNIMiddleware(async_page))


def test_a_dotted_path_names_the_engine(engine: Engine) -> None:
    global FACTORY_ENGINE
    FACTORY_ENGINE = engine
    for value in (f"{__name__}:FACTORY_ENGINE", f"{__name__}.make_engine"):
        with override_settings(DNI_ENGINE=value, DNI_WEB={"secret": SECRET}):
            assert DNIMiddleware(page).core is not None


FACTORY_ENGINE: Engine | None = None


def make_engine() -> Engine:
    assert FACTORY_ENGINE is not None
    return FACTORY_ENGINE


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DNI_ENGINE": None}, "DNI_ENGINE"),
        ({"DNI_ENGINE": "no_such_module:engine"}, "DNI_ENGINE"),
        ({"DNI_ENGINE": f"{__name__}:PAGE"}, "DNI_ENGINE"),
        ({"DNI_WEB": None}, "DNI_WEB"),
        ({"DNI_WEB": {}}, "secret"),
        ({"DNI_WEB": {"secret": "short"}}, "secret"),
        ({"DNI_WEB": {"secret": SECRET, "no_such_field": 1}}, "no_such_field"),
    ],
)
def test_a_missing_or_invalid_setting_is_named(
    engine: Engine, overrides: dict[str, object], named: str
) -> None:
    values = {"DNI_ENGINE": engine, "DNI_WEB": {"secret": SECRET}, **overrides}
    with override_settings(**values), pytest.raises(ImproperlyConfigured, match=named):
        DNIMiddleware(page)
