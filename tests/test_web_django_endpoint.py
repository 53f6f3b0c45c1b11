"""The browser endpoint through ``DNIMiddleware`` in Django, sync and async."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from django.test import AsyncClient, Client

from dni_engine import Engine
from tests import test_web_django as site  # configures Django, its URLconf and pools

BODY = json.dumps(
    {
        "url": "http://testserver/?gclid=abc",
        "referrer": site.GOOGLE,
        "fragments": ["Call us on 0117 <b>496</b> 0000 or "],
        "links": ["tel:+441174960000"],
    }
)


def test_a_swap_is_answered_by_the_middleware() -> None:
    engine = Engine(site.POOLS)
    with site.configured(engine):
        client = Client(headers={"User-Agent": site.BROWSER})
        response = client.post("/_dni/swap", BODY, content_type="application/json")
        answer = json.loads(response.content)
        assert response.status_code == 200
        assert answer["number"] in site.AD_NUMBERS
        assert answer["links"] == [f"tel:{answer['number']}"]
        assert len(answer["fragments"][0]) == 3
        assert response.headers["Cache-Control"] == "private, no-store"
        assert {"dni_visitor", "dni_landing", "dni_number"} <= set(response.cookies)
        assert not response.cookies["dni_number"]["httponly"]
        # The page view that follows keeps the number the swap leased.
        page = client.get("/tyres", headers={"Referer": "http://testserver/"})
        assert site.numbers(page.content.decode()) == {answer["number"]}


def test_bounds_and_the_amp_number() -> None:
    engine = Engine(site.POOLS)
    with site.configured(engine):
        client = Client(headers={"User-Agent": site.BROWSER})
        bad = client.post("/_dni/swap", b"[]", content_type="application/json")
        assert bad.status_code == 400
        assert json.loads(bad.content)["field"] == "body"
        url = quote("http://testserver/?gclid=abc", safe="")
        amp = client.get(
            f"/_dni/number?url={url}", headers={"Origin": "https://a.cdn.ampproject.org"}
        )
        assert json.loads(amp.content)["phoneNumber"] in site.AD_NUMBERS
        assert amp.headers["Access-Control-Allow-Origin"] == "https://a.cdn.ampproject.org"
        assert amp.headers["Access-Control-Allow-Credentials"] == "true"
        assert client.get("/_dni/swap").status_code == 405


def test_the_async_path() -> None:
    engine = Engine(site.POOLS)

    async def run() -> tuple[int, dict[str, object]]:
        client = AsyncClient()
        response = await client.post(
            "/_dni/swap",
            BODY,
            content_type="application/json",
            headers={"User-Agent": site.BROWSER},
        )
        return response.status_code, json.loads(response.content)

    with site.configured(engine):
        status, answer = asyncio.run(run())
    assert status == 200
    assert answer["number"] in site.AD_NUMBERS, answer
