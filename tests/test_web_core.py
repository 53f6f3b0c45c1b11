"""The framework-neutral core on PageRequest values: requests, cookies, headers, failures."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from dni_engine.errors import ConfigError
from dni_engine.landing import Landing
from dni_engine.leases import ClaimLike, Decision
from dni_engine.stores import MemoryStore
from dni_engine.stores.base import NEW_VISITOR
from dni_engine.web import DEBUG_HEADER, SKIP_HEADER, PageRequest, WebConfig, WebCore, skip
from dni_engine.web.core import (
    MAX_LANDING_COOKIE,
    PageView,
    ResponsePlan,
    decode_landing,
    decode_lease_hint,
    encode_landing,
    encode_lease_hint,
    parse_cookies,
)
from tests.web_site import BROWSER, CRAWLER, OVERFLOW, PAGE, SECRET, FlakyStore, make_engine

HTML = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "120")]


def request(
    url: str = "https://shop.example.com/?gclid=abc",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    user_agent: str | None = BROWSER,
    referrer: str | None = None,
) -> PageRequest:
    given = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    if user_agent is not None:
        given["user-agent"] = user_agent
    if referrer is not None:
        given["referer"] = referrer
    given.update(headers or {})
    return PageRequest(method, url, given, dict(cookies or {}))


def core(**fields: Any) -> WebCore:
    engine = fields.pop("engine", None) or make_engine()
    return WebCore(engine, WebConfig(secret=SECRET, **fields))


def view(web: WebCore, req: PageRequest | None = None) -> PageView:
    page = web.begin(req or request())
    assert page is not None
    return page


def cookies_of(plan: ResponsePlan) -> dict[str, str]:
    """The ``Set-Cookie`` headers of a plan by cookie name (the whole header value)."""
    out = {}
    for name, value in plan.headers:
        if name.lower() == "set-cookie":
            out[value.partition("=")[0]] = value
    return out


def values(plan: ResponsePlan, name: str) -> list[str]:
    return [v for n, v in plan.headers if n.lower() == name.lower()]


def cookie_value(header: str) -> str:
    return header.partition("=")[2].partition(";")[0]


def browse(web: WebCore, req: PageRequest, jar: dict[str, str]) -> ResponsePlan:
    """One page view with the cookies of ``jar``, which takes the cookies set."""
    req = PageRequest(req.method, req.url, req.headers, {**req.cookies, **jar})
    plan = view(web, req).respond(200, HTML)
    for name, header in cookies_of(plan).items():
        jar[name] = cookie_value(header)
    return plan


# ---- which requests are page views --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "page"),
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("get", {}, True),
        ("POST", {}, False),
        ("OPTIONS", {}, False),
        ("GET", {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}, True),
        ("GET", {"sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate"}, False),
        ("GET", {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors"}, False),
        ("GET", {"sec-fetch-dest": "image"}, False),
        ("GET", {"sec-fetch-dest": "script", "sec-fetch-mode": "no-cors"}, False),
        ("GET", {"sec-fetch-mode": "same-origin"}, False),
        ("GET", {"x-requested-with": "XMLHttpRequest"}, False),
        ("GET", {"accept": "application/json"}, False),
        ("GET", {"accept": "image/avif,image/webp,*/*;q=0"}, False),
        ("GET", {"accept": "text/html;q=0"}, False),
        ("GET", {"accept": "*/*"}, True),
        ("GET", {"accept": "text/*"}, True),
        ("GET", {"accept": "image/webp,image/apng,*/*;q=0.8"}, False),
        ("GET", {"accept": "application/json, text/plain, */*"}, False),
        ("GET", {"accept": "text/css,*/*;q=0.1"}, False),
        ("GET", {"accept": "application/xml, text/html;q=0.9, */*"}, True),
        ("GET", {"accept": "application/xhtml+xml"}, True),
        ("GET", {"accept": "TEXT/HTML"}, True),
        ("GET", {"accept": ""}, True),
    ],
)
def test_which_requests_may_be_page_views(method: str, headers: dict[str, str], page: bool) -> None:
    assert (core().begin(request(method=method, headers=headers)) is not None) is page


def test_skip_paths_are_never_touched() -> None:
    web = core(skip_paths=("/admin", "/static/"))
    assert web.begin(request("https://shop.example.com/admin/users")) is None
    assert web.begin(request("https://shop.example.com/static/a.html")) is None
    assert web.begin(request("https://shop.example.com/about")) is not None


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, [("Content-Type", "application/json")]),
        (200, [("Content-Type", "text/plain")]),
        (200, []),
        (301, [("Content-Type", "text/html"), ("Location", "/x")]),
        (304, [("Content-Type", "text/html")]),
        (404, [("Content-Type", "text/html")]),
        (500, [("Content-Type", "text/html")]),
        (200, [("Content-Type", "text/html"), (SKIP_HEADER, "1")]),
    ],
)
def test_only_html_200_responses_are_visits(status: int, headers: list[tuple[str, str]]) -> None:
    engine = make_engine()
    plan = view(core(engine=engine)).respond(status, headers)
    assert plan.decision is None
    assert plan.body is None
    assert not plan.touched
    assert plan.headers == [h for h in headers if h[0] != SKIP_HEADER]
    assert engine.stats().visits == 0


def test_xhtml_is_html() -> None:
    plan = view(core()).respond(200, [("Content-Type", "application/xhtml+xml")])
    assert plan.decision is not None


# ---- cookies ---------------------------------------------------------------------------


def test_a_new_visitor_gets_both_cookies_with_their_attributes() -> None:
    plan = view(core()).respond(200, HTML)
    assert plan.decision is not None
    assert plan.decision.outcome == "new"
    assert plan.body is not None
    set_cookies = cookies_of(plan)
    visitor = set_cookies["dni_visitor"]
    assert visitor.endswith("; Max-Age=31536000; Path=/; Secure; HttpOnly; SameSite=Lax")
    assert len(cookie_value(visitor)) == 22
    assert plan.decision.visitor_id == cookie_value(visitor)
    landing = set_cookies["dni_landing"]
    assert landing.endswith("; Max-Age=1800; Path=/; Secure; HttpOnly; SameSite=Lax")


def test_cookie_options_and_no_secure_on_http() -> None:
    web = core(
        cookie_name="v",
        landing_cookie_name="l",
        cookie_max_age=3600,
        cookie_domain="example.com",
        cookie_path="/shop",
        attribution_window=10,
    )
    plan = view(web, request("http://shop.example.com/?gclid=1")).respond(200, HTML)
    set_cookies = cookies_of(plan)
    assert set_cookies["v"].endswith(
        "; Max-Age=3600; Path=/shop; Domain=example.com; HttpOnly; SameSite=Lax"
    )
    assert set_cookies["l"].endswith(
        "; Max-Age=600; Path=/shop; Domain=example.com; HttpOnly; SameSite=Lax"
    )
    assert "Secure" not in set_cookies["v"]


def test_a_returning_visitor_keeps_id_and_number_and_gets_no_new_visitor_cookie() -> None:
    web = core()
    jar: dict[str, str] = {}
    first = browse(web, request(), jar)
    second = browse(web, request("https://shop.example.com/contact"), jar)
    assert first.decision is not None
    assert second.decision is not None
    assert second.decision.outcome == "kept"
    assert second.decision.number == first.decision.number
    assert second.decision.visitor_id == first.decision.visitor_id
    assert set(cookies_of(second)) == {"dni_landing", "dni_number", "dni_lease"}


class HintedStore:
    """A memory store recording the hint of each visit (a wrapper: see FlakyStore)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.hints: list[str | None] = []

    def visit(
        self, visitor_id: str, now: float, claim: ClaimLike | None, *, hint: str | None = None
    ) -> Decision:
        self.hints.append(hint)
        return self.inner.visit(visitor_id, now, claim, hint=hint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_lease_cookie_gives_the_store_its_hint() -> None:
    store = HintedStore()
    web = core(engine=make_engine(store=store))
    jar: dict[str, str] = {}
    first = browse(web, request(), jar)
    assert first.decision is not None
    assert first.decision.outcome == "new"
    assert store.hints == [NEW_VISITOR]  # a visitor id minted for this page view
    visitor, pool_key = first.decision.visitor_id, first.decision.pool_key
    lease = cookies_of(first)["dni_lease"]
    assert lease.endswith("; Max-Age=1800; Path=/; Secure; HttpOnly; SameSite=Lax")
    assert decode_lease_hint(cookie_value(lease), visitor, web.config.secret_bytes) == pool_key
    second = browse(web, request("https://shop.example.com/contact"), jar)
    assert second.decision is not None
    assert second.decision.outcome == "kept"
    assert store.hints[-1] == pool_key
    # A tampered cookie, or one signed for another visitor, is no hint; the visit is the same.
    for forged in (
        jar["dni_lease"][:-2] + "AA",
        encode_lease_hint("2", "someone else", web.config.secret_bytes),
        encode_lease_hint("2", visitor, b"another secret of 32 bytes or more!"),
    ):
        third = browse(web, request(), {**jar, "dni_lease": forged})
        assert third.decision is not None
        assert third.decision.outcome == "kept"
        assert store.hints[-1] is None
    # A wrong pool in a validly signed cookie costs the store time, never the decision.
    wrong = encode_lease_hint("2" if pool_key == "1" else "1", visitor, web.config.secret_bytes)
    fourth = browse(web, request(), {**jar, "dni_lease": wrong})
    assert fourth.decision is not None
    assert fourth.decision.outcome == "kept"
    assert fourth.decision.number == first.decision.number


def test_a_visitor_without_a_lease_has_the_lease_cookie_cleared() -> None:
    web = core(engine=make_engine(ad_numbers=1))
    assert view(web).respond(200, HTML).decision is not None  # takes the one ad number
    visitor = "v" * 22
    stale = encode_lease_hint("1", visitor, web.config.secret_bytes)
    cookies = {"dni_visitor": visitor, "dni_lease": stale}
    plan = view(web, request(cookies=cookies)).respond(200, HTML)
    assert plan.decision is not None
    assert plan.decision.outcome == "overflow"
    assert cookies_of(plan)["dni_lease"].startswith("dni_lease=; Max-Age=0;")
    refused = core(consent=lambda r: False)
    plan = view(refused, request(cookies=cookies)).respond(200, HTML)
    assert cookies_of(plan)["dni_lease"].startswith("dni_lease=; Max-Age=0;")


def test_lease_hint_values_are_checked() -> None:
    secret = b"k" * 32
    value = encode_lease_hint("pool-41001", "visitor", secret)
    assert decode_lease_hint(value, "visitor", secret) == "pool-41001"
    for bad in (None, 7, "", ".", "abc", value + "x", "x" * 500, "é." + value.split(".")[1]):
        assert decode_lease_hint(bad, "visitor", secret) is None
    assert decode_lease_hint(value, "other", secret) is None


def test_a_cookie_that_is_not_ours_is_replaced() -> None:
    plan = view(core(), request(cookies={"dni_visitor": "x" * 300})).respond(200, HTML)
    assert plan.decision is not None
    assert plan.decision.visitor_id != "x" * 300
    assert "dni_visitor" in cookies_of(plan)


def test_the_application_may_give_its_own_visitor_id() -> None:
    web = core(visitor_id=lambda req: req.cookies.get("session"))
    plan = view(web, request(cookies={"session": "user-42"})).respond(200, HTML)
    assert plan.decision is not None
    assert plan.decision.visitor_id == "user-42"
    assert "dni_visitor" not in cookies_of(plan)
    fallback = view(web).respond(200, HTML)  # None from the hook: the cookie
    assert fallback.decision is not None
    assert "dni_visitor" in cookies_of(fallback)


def test_a_crawler_gets_no_cookie_and_no_visit() -> None:
    engine = make_engine()
    for agent in (CRAWLER, "curl/8.5.0", None):
        plan = view(core(engine=engine), request(user_agent=agent)).respond(200, HTML)
        assert plan.decision is None
        assert plan.body is None
        assert plan.headers == HTML
    assert engine.stats().visits == 0


def test_consent_refused_or_raising_tracks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    asked: list[PageRequest] = []

    def refuse(req: PageRequest) -> bool:
        asked.append(req)
        return False

    def broken(req: PageRequest) -> bool:
        raise RuntimeError("consent service down")

    refusing = core(engine=engine, consent=refuse)
    raising = core(engine=engine, consent=broken)
    for web in (refusing, raising, raising):
        plan = view(web).respond(200, HTML)
        assert plan.decision is None
        assert plan.headers == HTML
    assert len(asked) == 1
    assert engine.stats().visits == 0
    assert caplog.text.count("consent hook raised") == 1
    given = view(core(engine=engine, consent=lambda req: True)).respond(200, HTML)
    assert given.decision is not None


# ---- the landing cookie and first touch --------------------------------------------------


def test_landing_cookie_round_trip_and_rejections() -> None:
    key = SECRET.encode()
    landing = Landing("https://shop.example.com/?gclid=1", "https://www.google.com/", 10.0, 20.5)
    value = encode_landing(landing, key)
    assert decode_landing(value, key) == landing
    payload, _, mac = value.partition(".")
    assert decode_landing(value, b"another secret of 32 bytes......") is None
    assert decode_landing(payload, key) is None  # unsigned
    assert decode_landing(payload + ".", key) is None
    tampered = json.dumps(["https://shop.example.com/", None, 10.0, 20.5]).encode()
    forged = base64.urlsafe_b64encode(tampered).rstrip(b"=").decode() + "." + mac
    assert decode_landing(forged, key) is None
    assert decode_landing("x" * (MAX_LANDING_COOKIE + 1), key) is None
    for garbage in (None, 12, "", ".", "a.b.c", "é.é"):
        assert decode_landing(garbage, key) is None


def test_a_long_landing_is_cut_to_fit_the_cookie() -> None:
    key = SECRET.encode()
    landing = Landing(
        "https://shop.example.com/?gclid=1&" + "x" * 2040,
        "https://r.example/" + "é" * 1000,
        1.0,
        2.0,
    )
    value = encode_landing(landing, key)
    assert len(value) <= MAX_LANDING_COOKIE
    back = decode_landing(value, key)
    assert back is not None
    assert back.url.startswith("https://shop.example.com/?gclid=1&")


def test_the_ad_visitor_who_found_the_ad_pool_full_stays_with_it_on_page_2() -> None:
    web = core(engine=make_engine(ad_numbers=1))
    first = browse(web, request(), {})
    assert first.decision is not None
    assert first.decision.outcome == "new"
    jar: dict[str, str] = {}
    landing = browse(web, request("https://shop.example.com/?gclid=second"), jar)
    assert landing.decision is not None
    assert (landing.decision.outcome, landing.decision.pool_key) == ("overflow", "1")
    page2 = browse(
        web,
        request("https://shop.example.com/contact", referrer="https://shop.example.com/"),
        jar,
    )
    assert page2.decision is not None
    assert page2.decision.pool_key == "1"
    assert page2.decision.number == OVERFLOW
    # Without the landing cookie the same page view is the catch-all pool's.
    del jar["dni_landing"]
    alone = browse(web, request("https://shop.example.com/contact"), jar)
    assert alone.decision is not None
    assert alone.decision.pool_key == "2"


@pytest.mark.parametrize("how", ["tampered", "unsigned", "other-secret", "expired"])
def test_a_bad_landing_cookie_is_ignored(how: str) -> None:
    engine = make_engine(ad_numbers=1)
    web = core(engine=engine)
    browse(web, request(), {})  # fills the ad pool
    jar: dict[str, str] = {}
    browse(web, request("https://shop.example.com/?gclid=2"), jar)
    value = jar["dni_landing"]
    payload, _, mac = value.partition(".")
    if how == "tampered":
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        data[0] = "https://shop.example.com/?gclid=forged"
        raw = json.dumps(data, separators=(",", ":")).encode()
        jar["dni_landing"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac
    elif how == "unsigned":
        jar["dni_landing"] = payload
    elif how == "other-secret":
        landing = decode_landing(value, SECRET.encode())
        assert landing is not None
        jar["dni_landing"] = encode_landing(landing, b"another secret of 32 bytes......")
    else:
        landing = decode_landing(value, SECRET.encode())
        assert landing is not None
        gone = Landing(landing.url, landing.referrer, landing.started - 7200, landing.seen - 7200)
        jar["dni_landing"] = encode_landing(gone, SECRET.encode())
    page2 = browse(web, request("https://shop.example.com/contact"), jar)
    assert page2.decision is not None
    assert page2.decision.pool_key == "2"  # matched on this page view alone
    landing = decode_landing(jar["dni_landing"], SECRET.encode())
    assert landing is not None
    assert landing.url == "https://shop.example.com/contact"


def test_a_new_external_landing_starts_a_new_context() -> None:
    web = core()
    jar: dict[str, str] = {}
    browse(web, request(), jar)
    browse(web, request("https://shop.example.com/b", referrer="https://news.example.org/"), jar)
    landing = decode_landing(jar["dni_landing"], SECRET.encode())
    assert landing is not None
    assert (landing.url, landing.referrer) == (
        "https://shop.example.com/b",
        "https://news.example.org/",
    )


# ---- headers --------------------------------------------------------------------------------


def test_caching_headers_are_made_private() -> None:
    headers = [
        ("Content-Type", "text/html"),
        ("Cache-Control", "public, max-age=600, s-maxage=3600"),
        ("Cache-Control", "must-revalidate"),
        ("Vary", "Accept-Encoding"),
        ("Surrogate-Control", "max-age=86400"),
        ("CDN-Cache-Control", "max-age=86400"),
        ("ETag", '"abc"'),
        ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
        ("Content-Length", "100"),
    ]
    plan = view(core()).respond(200, headers)
    assert values(plan, "cache-control") == ["private, max-age=600, must-revalidate"]
    assert values(plan, "vary") == ["Accept-Encoding, Cookie"]
    assert values(plan, "surrogate-control") == values(plan, "cdn-cache-control") == []
    assert values(plan, "etag") == ['W/"abc"']
    assert values(plan, "content-md5") == values(plan, "content-length") == []
    assert plan.whole(90, changed=True)[-1] == ("Content-Length", "90")
    assert ("ETag", '"abc"') in plan.whole(100, changed=False)


@pytest.mark.parametrize(
    ("given", "cache", "vary"),
    [
        ([], "private", "Cookie"),
        ([("Cache-Control", "no-store"), ("Vary", "cookie")], "private, no-store", "cookie"),
        ([("Cache-Control", "private, no-cache"), ("Vary", "*")], "private, no-cache", "*"),
        ([("Cache-Control", "max-age=0, proxy-revalidate")], "private, max-age=0", "Cookie"),
    ],
)
def test_caching_merge(given: list[tuple[str, str]], cache: str, vary: str) -> None:
    plan = view(core()).respond(200, [("Content-Type", "text/html"), *given])
    assert values(plan, "cache-control") == [cache]
    assert values(plan, "vary") == [vary]


def test_a_weak_etag_stays_and_no_number_keeps_length_and_etag() -> None:
    plan = view(core()).respond(200, [*HTML, ("ETag", 'W/"x"')])
    assert values(plan, "etag") == ['W/"x"']
    # A visit without a number (the catch-all pool is full, no overflow there): the
    # cookies and privacy headers, but the body and its validators as they are.
    engine = make_engine()
    web = core(engine=engine)
    for _ in range(3):
        browse(web, request("https://shop.example.com/"), {})
    full = view(web, request("https://shop.example.com/")).respond(200, [*HTML, ("ETag", '"y"')])
    assert full.decision is not None
    assert full.decision.number == OVERFLOW  # overflow: the number is the overflow one
    store = FlakyStore()
    store.down = True
    down = view(core(engine=make_engine(store=store))).respond(200, [*HTML, ("ETag", '"y"')])
    assert down.decision is not None
    assert down.decision.outcome == "store_unavailable"
    assert down.body is None
    assert values(down, "etag") == ['"y"']
    assert values(down, "content-length") == ["120"]


def test_the_opt_out_header_is_always_removed() -> None:
    for status in (200, 404):
        headers = [("Content-Type", "text/html"), ("x-dni-skip", "1")]
        plan = view(core()).respond(status, headers)
        assert plan.headers == [("Content-Type", "text/html")]
        assert plan.decision is None


def test_the_debug_header() -> None:
    plan = view(core(debug_header=True)).respond(200, HTML)
    assert values(plan, DEBUG_HEADER) == ["outcome=new; pool=1; source=0"]
    bot = view(core(debug_header=True), request(user_agent=CRAWLER)).respond(200, HTML)
    assert values(bot, DEBUG_HEADER) == ["outcome=bot"]
    assert cookies_of(bot) == {}
    refused = view(core(debug_header=True, consent=lambda r: False)).respond(200, HTML)
    assert values(refused, DEBUG_HEADER) == ["outcome=no_consent"]
    assert values(view(core()).respond(200, HTML), DEBUG_HEADER) == []


def test_head_is_answered_like_get_without_a_body() -> None:
    plan = view(core(), request(method="HEAD")).respond(200, [*HTML, ("ETag", '"e"')])
    assert plan.decision is not None
    assert plan.decision.number is not None
    assert plan.body is None
    assert set(cookies_of(plan)) == {"dni_visitor", "dni_landing", "dni_number", "dni_lease"}
    assert values(plan, "content-length") == []
    assert values(plan, "etag") == ['W/"e"']


# ---- failures -----------------------------------------------------------------------------


def test_store_down_leaves_the_page(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    store.down = True
    plan = view(core(engine=make_engine(store=store))).respond(200, HTML)
    assert plan.decision is not None
    assert plan.decision.outcome == "store_unavailable"
    assert plan.body is None


class _Garbage(Mapping[str, str]):
    def __getitem__(self, key: str) -> str:
        raise RuntimeError("broken headers")

    def __iter__(self) -> Any:
        raise RuntimeError("broken headers")

    def __len__(self) -> int:
        raise RuntimeError("broken headers")


@pytest.mark.parametrize(
    "req",
    [
        PageRequest(None, None, None, None),  # type: ignore[arg-type]
        PageRequest("GET", "http://[::1", {}, {}),
        PageRequest("GET", "https://shop.example.com/", _Garbage(), _Garbage()),
        PageRequest("GET", "https://shop.example.com/", {"accept": None}, {}),  # type: ignore[dict-item]
        PageRequest(b"GET", b"/", {}, {}),  # type: ignore[arg-type]
        PageRequest("GET", "/relative", {"user-agent": BROWSER}, {"dni_landing": "\x00."}),
    ],
)
def test_garbage_never_raises(req: PageRequest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)
    web = core()
    page = web.begin(req)
    if page is not None:
        for status, headers in [
            (200, HTML),
            (200, None),
            ("200", HTML),
            (200, [("Content-Type", None)]),
            (200, [(1, 2)]),
            (200, [("Content-Type", "text/html"), ("Cache-Control", 3)]),
        ]:
            plan = page.respond(status, headers)  # type: ignore[arg-type]
            assert isinstance(plan, ResponsePlan)
            if plan.decision is None and headers is not None:
                assert plan.headers == headers


def test_a_broken_hook_does_not_break_the_page() -> None:
    def broken(req: PageRequest) -> str:
        raise RuntimeError("no session")

    plan = view(core(visitor_id=broken)).respond(200, HTML)
    assert plan.decision is not None
    assert "dni_visitor" in cookies_of(plan)


def test_respond_async_calls_the_store_off_the_loop() -> None:
    store = FlakyStore()
    page = view(core(engine=make_engine(store=store)))
    plan = asyncio.run(page.respond_async(200, HTML))
    assert plan.decision is not None
    assert plan.decision.outcome == "new"
    assert store.threads
    assert all(t is not threading.main_thread() for t in store.threads)


# ---- config and opt-out --------------------------------------------------------------------


def test_config_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        WebConfig(
            cookie_name="bad name",
            cookie_max_age=0,
            cookie_path="shop",
            attribution_window=-1,
            consent="yes",  # type: ignore[arg-type]
            skip_paths=("admin",),
            max_buffer=-1,
        )
    paths = {p.path for p in caught.value.problems}
    assert paths == {
        "secret",
        "cookie_name",
        "cookie_max_age",
        "cookie_path",
        "attribution_window",
        "consent",
        "skip_paths[0]",
        "max_buffer",
    }
    with pytest.raises(ConfigError, match="at least 16"):
        WebConfig(secret="short")


def test_parse_cookies() -> None:
    assert parse_cookies('a=1; b="two"; a=3; junk; =x; c=') == {"a": "1", "b": "two", "c": ""}
    assert parse_cookies(None) == {}


def test_skip_marks_views_and_protocol_apps() -> None:
    class Response:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

    @skip
    def page() -> Response:
        return Response()

    assert page().headers == {SKIP_HEADER: "1"}

    seen: list[Any] = []

    @skip
    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b""]

    wsgi_app({"wsgi.version": (1, 0)}, lambda status, headers, exc=None: seen.append(headers))
    assert seen == [[("Content-Type", "text/html"), (SKIP_HEADER, "1")]]


def test_skip_marks_async_views_and_asgi_apps() -> None:
    asyncio.run(_skip_marks_async_views_and_asgi_apps())


async def _skip_marks_async_views_and_asgi_apps() -> None:
    class Response:
        headers: dict[str, str]

        def __init__(self) -> None:
            self.headers = {}

    @skip
    async def page() -> Response:
        return Response()

    assert (await page()).headers == {SKIP_HEADER: "1"}
    sent: list[dict[str, Any]] = []

    @skip
    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def record(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    await asgi_app({"type": "http"}, receive, record)
    assert sent[0]["headers"] == [(b"X-DNI-Skip", b"1")]


# ---- Engine.stream ---------------------------------------------------------------------------


def test_engine_stream_gives_the_whole_page_rewrite_or_none() -> None:
    engine = make_engine()
    decision = engine.visit("v", "https://shop.example.com/?gclid=1", None, BROWSER)
    stream = engine.stream(decision)
    assert stream is not None
    page = PAGE.encode()
    out = b"".join(stream.feed(page[i : i + 7]) for i in range(0, len(page), 7)) + stream.close()
    assert out.decode() == engine.rewrite(PAGE, decision)
    assert out.decode() != PAGE
    latin = engine.stream(decision, encoding="latin-1")
    assert latin is not None
    bot = engine.visit("v", "https://shop.example.com/", None, CRAWLER)
    for nothing in (bot, None, "decision", decision._replace(pool_key="99")):
        assert engine.stream(nothing) is None
    assert engine.stream(decision, encoding="no-such-codec") is None


def test_importing_the_web_package_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dni_engine.web\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'flask', 'django', 'starlette', 'fastapi', 'werkzeug',"
        " 'anyio', 'httpx'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_a_landing_cookie_over_its_cap_keeps_the_click_id_at_the_end_of_the_query() -> None:
    padding = "&".join(f"p{i}={'x' * 40}" for i in range(80))
    url = f"https://www.example.com/landing?{padding}&gclid=CLICK-AT-THE-END"
    landing = Landing(url, "https://www.google.com/", 1.0, 1.0)
    value = encode_landing(landing, SECRET.encode())
    assert len(value) <= MAX_LANDING_COOKIE
    back = decode_landing(value, SECRET.encode())
    assert back is not None
    assert "gclid=CLICK-AT-THE-END" in back.url
