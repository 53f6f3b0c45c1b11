"""The call webhook through real frameworks: Flask, Django, Starlette and FastAPI test clients.

A visitor lands from a Google ad on the site (a page view through the
middleware, which leases a number and keeps the landing's ``gclid``), then a
call to that number is posted to the webhook: as the generic signed JSON body
and as Twilio's status callback, signed by the ``twilio`` package.
"""

from __future__ import annotations

import abc
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from dni_engine import ConfigError, Engine, load_pools
from dni_engine.leases import SimulatedClock
from dni_engine.web import WebConfig
from dni_engine.web.calls import MAX_CALL_BODY, generic_call, sign, twilio_call
from tests.conftest import ROOT

POOLS_BYTES = (ROOT / "examples" / "site" / "pools.json").read_bytes()
SECRET = "the site's cookie secret, 32 b.."
CALL_SECRET = "the webhook's own secret, 32 by."
TWILIO_TOKEN = "12345678901234567890123456789012"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLE = "https://www.google.com/"
GCLID = "EAIaIQobChMI8a-test"
START = 1_780_000_000.0
PAGE = '<html><body><p>Call <a href="tel:+441174960000">0117 496 0000</a></p></body></html>'
UNKNOWN = "+442079460123"
FIELDS: dict[str, Any] = {
    "secret": SECRET,
    "call_secret": CALL_SECRET,
    "twilio_auth_token": TWILIO_TOKEN,
}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class Site(abc.ABC):
    """One framework's app behind the middleware, and a way to visit and post to it."""

    base = "http://testserver"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @abc.abstractmethod
    def get(self, path: str, headers: dict[str, str]) -> str:
        """The page at ``path``, as text."""

    @abc.abstractmethod
    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        """The status and the JSON answer of a ``POST`` of ``body`` to ``path``."""

    def land(self, path: str = f"/?gclid={GCLID}") -> str:
        """An ad visitor's page view: the number it shows."""
        page = self.get(path, {"User-Agent": BROWSER, "Referer": GOOGLE})
        found = re.findall(r'href="tel:([^"]+)"', page)
        assert found, page
        assert found[0] != "+441174960000", "no tracking number was shown"
        return str(found[0])

    def call(self, body: dict[str, Any], secret: str = CALL_SECRET) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        signature = sign(secret.encode(), raw)
        headers = {"Content-Type": "application/json", "X-DNI-Signature": signature}
        return self.post("/_dni/calls", raw, headers)

    def twilio(
        self, params: dict[str, str], *, url: str | None = None, token: str = TWILIO_TOKEN
    ) -> tuple[int, Any]:
        signed = url or f"{self.base}/_dni/calls/twilio"
        signature = RequestValidator(token).compute_signature(signed, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return self.post("/_dni/calls/twilio", urlencode(params).encode(), headers)


def _decoded(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


class FlaskSite(Site):
    base = "http://localhost"

    def __init__(self, engine: Engine, **fields: Any) -> None:
        from flask import Flask

        from dni_engine.web.flask import DNI

        super().__init__(engine)
        app = Flask(__name__)
        app.add_url_rule("/", "home", lambda: PAGE)
        DNI(app, engine, **{**FIELDS, **fields})
        self.client = app.test_client()

    def get(self, path: str, headers: dict[str, str]) -> str:
        return str(self.client.get(path, headers=headers).get_data(as_text=True))

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.client.post(path, data=body, headers=headers)
        return response.status_code, _decoded(response.get_data())


class DjangoSite(Site):
    def __init__(self, engine: Engine, **fields: Any) -> None:
        from django.test import Client

        from tests import test_web_django as django_site  # configures Django and its URLs

        super().__init__(engine)
        self.settings = django_site.configured(engine, **{**FIELDS, **fields})
        self.settings.enable()
        self.client = Client()

    def close(self) -> None:
        self.settings.disable()

    def get(self, path: str, headers: dict[str, str]) -> str:
        return str(self.client.get(path, headers=headers).content.decode())

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        kind = headers.pop("Content-Type")
        response = self.client.post(path, body, content_type=kind, headers=headers)
        return response.status_code, _decoded(response.content)


class AsgiSite(Site):
    def __init__(self, engine: Engine, framework: str = "starlette", **fields: Any) -> None:
        from starlette.responses import HTMLResponse
        from starlette.testclient import TestClient

        from dni_engine.web import ASGIMiddleware

        super().__init__(engine)
        app: Any
        if framework == "fastapi":
            from fastapi import FastAPI

            app = FastAPI()
            app.get("/", response_class=HTMLResponse)(lambda: PAGE)
        else:
            from starlette.applications import Starlette
            from starlette.routing import Route

            async def home(request: Any) -> HTMLResponse:
                return HTMLResponse(PAGE)

            app = Starlette(routes=[Route("/", home)])
        self.client = TestClient(
            ASGIMiddleware(app, engine, **{**FIELDS, **fields}), base_url=self.base
        )

    def get(self, path: str, headers: dict[str, str]) -> str:
        return str(self.client.get(path, headers=headers).text)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.client.post(path, content=body, headers=headers)
        return response.status_code, _decoded(response.content)


FRAMEWORKS: dict[str, Callable[..., Site]] = {
    "flask": FlaskSite,
    "django": DjangoSite,
    "starlette": AsgiSite,
    "fastapi": lambda engine, **fields: AsgiSite(engine, "fastapi", **fields),
}


def make_engine() -> Engine:
    return Engine(load_pools(POOLS_BYTES), clock=SimulatedClock(START))


@pytest.fixture(params=sorted(FRAMEWORKS))
def make_site(request: pytest.FixtureRequest) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def build(engine: Engine | None = None, **fields: Any) -> Site:
        site = FRAMEWORKS[request.param](engine or make_engine(), **fields)
        made.append(site)
        return site

    yield build
    for site in made:
        close = getattr(site, "close", None)
        if close is not None:
            close()


def test_a_signed_call_is_attributed_to_the_visitor_with_their_gclid(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    number = site.land()
    status, answer = site.call(
        {
            "call_id": "c-1",
            "number": number,
            "caller": "+447700900123",
            "started": iso(START + 60),
            "duration": 95,
        }
    )
    assert status == 200, answer
    attribution = answer["attribution"]
    assert attribution["kind"] == "lease"
    assert attribution["confidence"] == 1.0
    assert answer["replayed"] is False
    assert answer["reason"] is None
    facts = attribution["lease"]["facts"]
    assert dict(facts["click_ids"])["gclid"] == GCLID
    assert answer["call"] == {
        "call_id": "c-1",
        "number": number,
        "started": START + 60,
        "caller": "+447700900123",
        "duration": 95.0,
        "provider": "generic",
    }
    (record,) = site.engine.calls()
    assert record.call.call_id == "c-1"
    assert record.facts is not None
    assert record.facts.click_id("gclid") == GCLID
    assert record.to_json() == answer


def test_an_invalid_signature_is_403_logged_once_and_nothing_is_recorded(
    make_site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    site = make_site()
    number = site.land()
    body = {"call_id": "c-2", "number": number, "started": START + 5}
    with caplog.at_level(logging.WARNING, logger="dni_engine"):
        for _ in range(3):
            status, answer = site.call(body, secret="not the webhook's secret, 32 b..")
            assert status == 403
            assert answer == {"error": "invalid signature", "field": "X-DNI-Signature"}
        raw = json.dumps(body).encode()
        unsigned = site.post("/_dni/calls", raw, {"Content-Type": "application/json"})
        assert unsigned[0] == 403
        tampered = sign(CALL_SECRET.encode(), raw)
        other = json.dumps({**body, "number": UNKNOWN}).encode()
        swapped = site.post(
            "/_dni/calls", other, {"Content-Type": "application/json", "X-DNI-Signature": tampered}
        )
        assert swapped[0] == 403
        twilio_status, _ = site.twilio(
            {"CallSid": "CA1", "To": number, "From": "+447700900123", "CallStatus": "completed"},
            token="a token that is not the site's 00",
        )
        assert twilio_status == 403
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    # once per header and fault kind (missing, wrong), never once per delivery
    assert 1 <= len(refusals) <= 3, [r.getMessage() for r in refusals]
    assert site.engine.calls() == []


def test_a_replayed_delivery_is_attributed_once(make_site: Callable[..., Site]) -> None:
    site = make_site()
    number = site.land()
    body = {"call_id": "c-3", "number": number, "started": START + 30, "duration": 12}
    first = site.call(body)
    # Later, the visitor's hold is over and another visitor holds numbers: the retry
    # still answers the first attribution.
    assert isinstance(site.engine.clock, SimulatedClock)
    site.engine.clock.advance(3600)
    second = site.call(body)
    assert first[0] == second[0] == 200
    assert first[1]["replayed"] is False
    assert second[1]["replayed"] is True
    assert second[1]["attribution"] == first[1]["attribution"]
    assert second[1]["recorded"] == first[1]["recorded"]
    assert len(site.engine.calls()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"\xff\xfe", "body"),
        (json.dumps({"number": "+441174960101", "started": START}).encode(), "call_id"),
        (json.dumps({"call_id": "", "number": "x", "started": START}).encode(), "call_id"),
        (json.dumps({"call_id": "c", "started": START}).encode(), "number"),
        (json.dumps({"call_id": "c", "number": 441174960101, "started": START}).encode(), "number"),
        (json.dumps({"call_id": "c", "number": "+441174960101"}).encode(), "started"),
        (
            json.dumps(
                {"call_id": "c", "number": "+441174960101", "started": "2026-03-01T09:30:00"}
            ).encode(),
            "started",
        ),
        (
            json.dumps({"call_id": "c", "number": "+441174960101", "started": "soon"}).encode(),
            "started",
        ),
        (
            json.dumps(
                {"call_id": "c", "number": "+441174960101", "started": START, "duration": -1}
            ).encode(),
            "duration",
        ),
        (
            json.dumps(
                {"call_id": "c", "number": "+441174960101", "started": START, "caller": 7}
            ).encode(),
            "caller",
        ),
        (json.dumps({"call_id": "c" * 300, "number": "1", "started": START}).encode(), "call_id"),
    ],
)
def test_a_malformed_body_is_400_naming_the_field(
    make_site: Callable[..., Site], body: bytes, field: str
) -> None:
    site = make_site()
    headers = {
        "Content-Type": "application/json",
        "X-DNI-Signature": sign(CALL_SECRET.encode(), body),
    }
    status, answer = site.post("/_dni/calls", body, headers)
    assert status == 400, answer
    assert answer["field"] == field
    assert answer["error"]
    assert site.engine.calls() == []


def test_an_unknown_number_is_logged_unattributed(make_site: Callable[..., Site]) -> None:
    site = make_site()
    status, answer = site.call({"call_id": "c-4", "number": UNKNOWN, "started": START})
    assert status == 200
    assert answer["attribution"]["kind"] == "unknown"
    assert answer["attribution"]["lease"] is None
    assert answer["reason"] == "the number called is not a number of any pool"
    (record,) = site.engine.calls()
    assert record.call.number == UNKNOWN
    assert record.attribution.kind == "unknown"


def twilio_completed(number: str, sid: str, ended: float, duration: int) -> dict[str, str]:
    """A completed-call status callback as Twilio posts it."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "completed",
        "CallDuration": str(duration),
        "Direction": "inbound",
        "From": "+447700900123",
        "Caller": "+447700900123",
        "To": number,
        "Called": number,
        "ToCountry": "GB",
        "FromCountry": "GB",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
        "Timestamp": format_datetime(datetime.fromtimestamp(ended, UTC)),
    }


def test_a_twilio_status_callback_is_attributed(make_site: Callable[..., Site]) -> None:
    site = make_site()
    number = site.land()
    sid = "CA" + "1f" * 16
    params = twilio_completed(number, sid, START + 240, 120)
    status, answer = site.twilio(params)
    assert status == 200, answer
    assert answer["call"]["provider"] == "twilio"
    assert answer["call"]["call_id"] == sid
    assert answer["call"]["started"] == START + 120  # Timestamp less CallDuration
    assert answer["call"]["duration"] == 120.0
    assert answer["call"]["caller"] == "+447700900123"
    assert answer["attribution"]["kind"] == "lease"
    assert dict(answer["attribution"]["lease"]["facts"]["click_ids"])["gclid"] == GCLID
    again = site.twilio(params)
    assert again[0] == 200
    assert again[1]["replayed"] is True
    assert len(site.engine.calls()) == 1
    # A field Twilio signed but that was changed on the way: refused.
    forged = dict(params, CallDuration="9999")
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        f"{site.base}/_dni/calls/twilio", params
    )
    refused = site.post(
        "/_dni/calls/twilio",
        urlencode(forged).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert refused[0] == 403
    assert refused[1]["field"] == "X-Twilio-Signature"


def test_twilio_behind_a_proxy_checks_the_public_url(make_site: Callable[..., Site]) -> None:
    public = "https://www.shop.example"
    site = make_site(public_base_url=public)
    number = site.land()
    params = twilio_completed(number, "CA" + "2e" * 16, START + 60, 30)
    own = site.twilio(params)  # signed over the URL the app sees, not the public one
    assert own[0] == 403
    status, answer = site.twilio(params, url=f"{public}/_dni/calls/twilio")
    assert status == 200, answer
    assert answer["attribution"]["kind"] == "lease"


def test_malformed_twilio_deliveries_are_400_naming_the_field(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    for params, field in (
        ({"To": "+441174960101", "CallStatus": "completed"}, "CallSid"),
        ({"CallSid": "CA1", "CallStatus": "ringing"}, "To"),
        ({"CallSid": "CA1", "To": "+441174960101", "CallDuration": "long"}, "CallDuration"),
        ({"CallSid": "CA1", "To": "+441174960101", "Timestamp": "yesterday"}, "Timestamp"),
    ):
        status, answer = site.twilio(params)
        assert status == 400, (params, answer)
        assert answer["field"] == field
    assert site.engine.calls() == []


def test_a_ringing_delivery_without_timestamp_starts_when_it_arrives(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    number = site.land()
    params = {
        "CallSid": "CA" + "3d" * 16,
        "AccountSid": "AC" + "0" * 32,
        "To": number,
        "From": "+447700900123",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    status, answer = site.twilio(params)
    assert status == 200, answer
    assert answer["call"]["started"] == START
    assert answer["call"]["duration"] is None
    assert answer["attribution"]["kind"] == "lease"


def test_bounds_methods_and_routes(make_site: Callable[..., Site]) -> None:
    site = make_site()
    big = json.dumps({"call_id": "c", "number": "1", "started": START, "pad": "x" * MAX_CALL_BODY})
    raw = big.encode()
    headers = {
        "Content-Type": "application/json",
        "X-DNI-Signature": sign(CALL_SECRET.encode(), raw),
    }
    assert site.post("/_dni/calls", raw, headers)[0] == 413
    off = make_site(call_secret=None, twilio_auth_token=None)
    body = b"{}"
    status, _ = off.post(
        "/_dni/calls",
        body,
        {"Content-Type": "application/json", "X-DNI-Signature": sign(CALL_SECRET.encode(), body)},
    )
    assert status in (404, 405)  # not the webhook's: the application answers
    assert off.engine.calls() == []


def test_a_get_is_405() -> None:
    from starlette.testclient import TestClient

    from dni_engine.web import ASGIMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the webhook's path reached the application")

    client = TestClient(ASGIMiddleware(app, make_engine(), **FIELDS))
    response = client.get("/_dni/calls")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_the_webhook_never_raises_into_the_app() -> None:
    class Broken:
        """An engine whose call log fails in a way record_call does not expect."""

        def __init__(self) -> None:
            self.inner = make_engine()

        def record_call(self, call: Any) -> Any:
            raise RuntimeError("boom")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    from starlette.testclient import TestClient

    from dni_engine.web import ASGIMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the webhook's path reached the application")

    client = TestClient(ASGIMiddleware(app, Broken(), **FIELDS))  # type: ignore[arg-type]
    body = json.dumps({"call_id": "c", "number": "+441174960101", "started": START}).encode()
    response = client.post(
        "/_dni/calls",
        content=body,
        headers={"X-DNI-Signature": sign(CALL_SECRET.encode(), body)},
    )
    assert response.status_code == 500
    assert response.json()["field"] == "server"


def test_the_parsers_name_the_field() -> None:
    call = generic_call(
        b'{"call_id": "a", "number": "0117 496 0101", "started": "2026-03-01T09:30:00Z"}'
    )
    assert call.started == datetime(2026, 3, 1, 9, 30, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match=r"^started: has no UTC offset"):
        generic_call(b'{"call_id": "a", "number": "1", "started": "2026-03-01T09:30:00"}')
    twilio = twilio_call({"CallSid": "CA1", "To": "+441174960101"}, 42.0)
    assert (twilio.started, twilio.provider, twilio.caller) == (42.0, "twilio", "")
    with pytest.raises(ValueError, match=r"^CallSid: "):
        twilio_call({"To": "+441174960101"}, 42.0)


def test_config_checks_the_webhook_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        WebConfig(
            secret=SECRET,
            call_secret="short",
            twilio_auth_token="",
            public_base_url="ftp://x",
        )
    paths = {p.path for p in caught.value.problems}
    assert paths == {"call_secret", "twilio_auth_token", "public_base_url"}
    with pytest.raises(ConfigError) as same:
        WebConfig(secret=SECRET, call_secret=SECRET)
    assert [p.path for p in same.value.problems] == ["call_secret"]
    with pytest.raises(ConfigError) as no_prefix:
        WebConfig(secret=SECRET, call_secret=CALL_SECRET, endpoint_prefix=None)
    assert [p.path for p in no_prefix.value.problems] == ["endpoint_prefix"]


def test_the_twilio_route_without_the_extra_is_a_missing_extra_at_start_up() -> None:
    code = (
        "import sys; sys.modules['twilio'] = None\n"
        "from dni_engine import Engine, load_pools\n"
        "from dni_engine.extras import MissingExtra\n"
        "from dni_engine.web import WSGIMiddleware\n"
        "from dni_engine.web.calls import CallWebhook\n"  # the generic form needs no extra
        f"engine = Engine(load_pools(open({str(ROOT / 'examples/site/pools.json')!r}, 'rb')"
        ".read()))\n"
        f"WSGIMiddleware(None, engine, secret={SECRET!r}, call_secret={CALL_SECRET!r})\n"
        "try:\n"
        f"    WSGIMiddleware(None, engine, secret={SECRET!r}, twilio_auth_token='t')\n"
        "except MissingExtra as exc:\n"
        "    print(exc.extra, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.startswith("twilio dni_engine.web.twilio needs the 'twilio' extra"), (
        done.stdout + done.stderr
    )


def test_the_django_async_path_records_a_call() -> None:
    import asyncio

    from django.test import AsyncClient

    from tests import test_web_django as django_site

    engine = make_engine()
    body = json.dumps({"call_id": "c-async", "number": UNKNOWN, "started": START}).encode()

    async def post() -> tuple[int, Any]:
        response = await AsyncClient().post(
            "/_dni/calls",
            body,
            content_type="application/json",
            headers={"X-DNI-Signature": sign(CALL_SECRET.encode(), body)},
        )
        return response.status_code, json.loads(response.content)

    with django_site.configured(engine, **FIELDS):
        status, answer = asyncio.run(post())
    assert status == 200, answer
    assert answer["call"]["call_id"] == "c-async"
    assert [r.call.call_id for r in engine.calls()] == ["c-async"]
