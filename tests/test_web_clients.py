"""Who a request comes from (trusted proxies, IPv6 /64), its keyed hash, the rate limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from dni_engine.errors import ConfigError
from dni_engine.web import ASGIMiddleware, PageRequest, WebConfig, WebCore, WSGIMiddleware
from dni_engine.web.clients import (
    RateLimiter,
    client_address,
    client_key,
    client_network,
    parse_networks,
    rotating_key,
)
from tests.web_site import BROWSER, SECRET, make_engine

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ff::/48"])


# ---- the client's address ------------------------------------------------------------------


def test_the_socket_peer_is_the_client_by_default() -> None:
    headers = {"x-forwarded-for": "198.51.100.7"}
    assert client_address("203.0.113.5", headers) == "203.0.113.5"


def test_a_forged_forwarding_header_from_an_untrusted_peer_changes_nothing() -> None:
    headers = {"x-forwarded-for": "198.51.100.7", "forwarded": "for=198.51.100.8"}
    assert client_address("203.0.113.5", headers, PROXIES) == "203.0.113.5"
    assert client_address("203.0.113.5", headers, PROXIES, "forwarded") == "203.0.113.5"


def test_a_trusted_proxy_names_the_client() -> None:
    headers = {"x-forwarded-for": "198.51.100.7"}
    assert client_address("10.1.2.3", headers, PROXIES) == "198.51.100.7"


def test_the_chain_is_read_right_to_left_over_trusted_hops() -> None:
    # The client forged the first entry; the CDN edge (10.9.9.9) appended the real one.
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.9.9.9"}
    assert client_address("10.1.2.3", headers, PROXIES) == "198.51.100.7"


def test_an_unnamed_hop_ends_the_walk_at_the_last_trusted_proxy() -> None:
    headers = {"x-forwarded-for": "198.51.100.7, unknown, 10.9.9.9"}
    assert client_address("10.1.2.3", headers, PROXIES) == "10.9.9.9"


def test_a_trusted_proxy_without_the_header_is_the_client() -> None:
    assert client_address("10.1.2.3", {}, PROXIES) == "10.1.2.3"


def test_the_forwarded_header() -> None:
    headers = {
        "forwarded": 'for=6.6.6.6, for="[2001:db8:1:2::7]:4711";proto=https, for=10.9.9.9:80'
    }
    assert client_address("10.1.2.3", headers, PROXIES, "forwarded") == "2001:db8:1:2::7"
    obfuscated = {"forwarded": "for=_hidden, for=10.9.9.9"}
    assert client_address("10.1.2.3", obfuscated, PROXIES, "forwarded") == "10.9.9.9"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("::ffff:203.0.113.5", {}) == "203.0.113.5"
    headers = {"x-forwarded-for": "198.51.100.7:5555"}
    assert client_address("10.0.0.1", headers, PROXIES) == "198.51.100.7"
    headers = {"x-forwarded-for": "[2001:db8::1]:443"}
    assert client_address("10.0.0.1", headers, PROXIES) == "2001:db8::1"


def test_a_unix_socket_peer_is_trusted_only_when_configured() -> None:
    headers = {"x-forwarded-for": "198.51.100.7"}
    assert client_address(None, headers, PROXIES) is None
    assert client_address(None, headers, PROXIES, unix_trusted=True) == "198.51.100.7"
    assert client_address("", headers, (), unix_trusted=True) == "198.51.100.7"


def test_garbage_never_raises() -> None:
    for peer in ("", "not an address", "999.1.1.1", "[::1", "\x00"):
        assert client_address(peer, {"x-forwarded-for": "\x00, ,,"}, PROXIES) is None
    long_chain = {"x-forwarded-for": ", ".join(["10.0.0.1"] * 10_000)}
    assert client_address("10.0.0.2", long_chain, PROXIES) == "10.0.0.1"


def test_an_ipv6_client_is_its_64() -> None:
    assert client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_network("203.0.113.5") == "203.0.113.5"
    assert client_network(None) == client_network("garbage") == ""


def test_the_client_key_hides_the_address_and_rotates_daily() -> None:
    key = rotating_key(b"k" * 32, 1_000.0)
    a = client_key("203.0.113.5", BROWSER, key)
    assert len(a) == 32
    assert set(a) <= set("0123456789abcdef")
    assert a == client_key("203.0.113.5", BROWSER, rotating_key(b"k" * 32, 80_000.0))
    assert a != client_key("203.0.113.5", BROWSER, rotating_key(b"k" * 32, 90_000.0))
    assert a != client_key("203.0.113.5", BROWSER + " other", key)
    assert a != client_key("203.0.113.6", BROWSER, key)
    assert a != client_key("203.0.113.5", BROWSER, rotating_key(b"j" * 32, 1_000.0))


def test_trusted_proxies_are_checked_all_at_once() -> None:
    with pytest.raises(ValueError, match=r"trusted_proxies\[1\].*trusted_proxies\[2\]"):
        parse_networks(["10.0.0.0/8", "10.0.0.0/33", 7, "unix"])
    with pytest.raises(ValueError, match="must be a list"):
        parse_networks("10.0.0.0/8")
    with pytest.raises(ConfigError) as raised:
        WebConfig(
            secret=SECRET,
            trusted_proxies=("nope",),
            forwarded_header="x-real-ip",
            endpoint_rate_limit=0,
        )
    text = str(raised.value)
    for name in ("trusted_proxies[0]", "forwarded_header", "endpoint_rate_limit"):
        assert name in text
    listed: Any = ["unix", "::1"]  # a list is accepted and kept as a tuple
    assert WebConfig(secret=SECRET, trusted_proxies=listed).trusted_proxies == ("unix", "::1")


# ---- the rate limiter ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_request_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # one request every 10 s, a burst of 6
    assert [limiter.check("a") for _ in range(6)] == [0.0] * 6
    wait = limiter.check("a")
    assert wait == pytest.approx(10.0)
    assert limiter.check("b") == 0.0  # another client is not held up
    clock.now += 9.9
    assert limiter.check("a") == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.check("a") == 0.0
    assert limiter.check("a") == pytest.approx(10.0)


def test_refused_requests_are_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    limiter.check("a")
    limiter.check("a")
    for _ in range(1_000):
        assert limiter.check("a") > 0.0
    clock.now += 30.0
    assert limiter.check("a") == 0.0


def test_the_table_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(1, max_clients=100, clock=clock)
    for n in range(10_000):
        limiter.check(f"client-{n}")
    assert len(limiter) == 100
    assert limiter.check("client-9999") > 0.0  # the latest are kept


def test_bad_limits() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="per_minute"):
            RateLimiter(bad)  # type: ignore[arg-type]


# ---- through the frameworks ------------------------------------------------------------------

SWAP = {"url": "https://shop.example.com/?gclid=x", "referrer": "", "fragments": [], "links": []}


def starlette_client(peer: str, **options: Any) -> TestClient:
    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = ASGIMiddleware(
        Starlette(routes=[Route("/", home)]), make_engine(), secret=SECRET, **options
    )
    return TestClient(app, base_url="https://shop.example.com", client=(peer, 50_000))


def test_the_endpoint_answers_429_over_the_limit_asgi() -> None:
    client = starlette_client("203.0.113.5", endpoint_rate_limit=5)
    headers = {"user-agent": BROWSER}
    statuses = [client.post("/_dni/swap", json=SWAP, headers=headers) for _ in range(8)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 3
    refused = statuses[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["cache-control"] == "private, no-store"
    assert json.loads(refused.content) == {"error": "too many requests", "field": "client"}
    # Another user agent from the same address is another client.
    other = client.post("/_dni/swap", json=SWAP, headers={"user-agent": BROWSER + " Edg/131"})
    assert other.status_code == 200
    # Pages are not rate limited.
    assert client.get("/", headers=headers).status_code == 200


def test_a_forged_header_does_not_escape_the_limit_but_a_trusted_proxy_speaks_for_many() -> None:
    forged = starlette_client("203.0.113.5", endpoint_rate_limit=3)
    codes = [
        forged.post(
            "/_dni/swap",
            json=SWAP,
            headers={"user-agent": BROWSER, "x-forwarded-for": f"198.51.100.{n}"},
        ).status_code
        for n in range(6)
    ]
    assert codes == [200] * 3 + [429] * 3
    proxied = starlette_client("10.0.0.1", endpoint_rate_limit=3, trusted_proxies=("10.0.0.0/8",))
    codes = [
        proxied.post(
            "/_dni/swap",
            json=SWAP,
            headers={"user-agent": BROWSER, "x-forwarded-for": f"198.51.100.{n}"},
        ).status_code
        for n in range(6)
    ]
    assert codes == [200] * 6


def test_the_endpoint_answers_429_over_the_limit_wsgi() -> None:
    flask = Flask(__name__)
    flask.add_url_rule("/", "home", lambda: "ok")
    flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
        flask.wsgi_app, make_engine(), secret=SECRET, endpoint_rate_limit=4
    )
    client = flask.test_client()
    base = {"REMOTE_ADDR": "2001:db8:1:2::10", "HTTP_USER_AGENT": BROWSER}
    codes = [client.post("/_dni/swap", json=SWAP, environ_base=base).status_code for _ in range(4)]
    # Another host of the same IPv6 /64 is the same client.
    same_64 = {**base, "REMOTE_ADDR": "2001:db8:1:2::99"}
    codes.append(client.post("/_dni/swap", json=SWAP, environ_base=same_64).status_code)
    other_64 = {**base, "REMOTE_ADDR": "2001:db8:1:3::10"}
    codes.append(client.post("/_dni/swap", json=SWAP, environ_base=other_64).status_code)
    assert codes == [200, 200, 200, 200, 429, 200]


def test_the_limit_can_be_turned_off() -> None:
    client = starlette_client("203.0.113.5", endpoint_rate_limit=None)
    headers = {"user-agent": BROWSER}
    codes = {client.post("/_dni/swap", json=SWAP, headers=headers).status_code for _ in range(200)}
    assert codes == {200}


def test_the_core_client_of_a_request() -> None:
    core = WebCore(make_engine(), WebConfig(secret=SECRET, trusted_proxies=("10.0.0.0/8",)))
    a = PageRequest("GET", "https://a.example/", {"user-agent": BROWSER}, {}, "203.0.113.5")
    b = PageRequest(
        "GET",
        "https://a.example/",
        {"user-agent": BROWSER, "x-forwarded-for": "203.0.113.5"},
        {},
        "10.0.0.1",
    )
    assert core.client(a) == core.client(b)
    c = PageRequest("GET", "https://a.example/", {"user-agent": BROWSER}, {}, "203.0.113.6")
    assert core.client(a) != core.client(c)
