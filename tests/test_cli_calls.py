"""``calls``, ``report`` and ``export`` as subprocesses on the Redis store of a running site.

The site is an ASGI app behind the middleware on a shared ``redis-server``:
visitors land on it from ads, the telephony system posts their calls to the
call webhook, and the commands, in processes of their own, read the call log
the site's workers wrote.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from dni_engine.exports import GOOGLE_CALLS_HEADER, GOOGLE_CLICKS_HEADER, MICROSOFT_HEADER
from dni_engine.testing.redis_server import RedisServer
from dni_engine.web import ASGIMiddleware
from dni_engine.web.calls import sign
from tests.test_cli_live import GOOGLE, HUMAN, USAGE, Site

CALL_SECRET = "the webhook's own secret, 32 by."
PAGE = '<html><body><a href="tel:+441174960000">0117 496 0000</a></body></html>'
BING = "https://www.bing.com/"


class WebSite(Site):
    """The site of :mod:`tests.test_cli_live` with its web front: pages and the webhook."""

    def __init__(self, server: RedisServer) -> None:
        super().__init__(server)

        async def home(request: Any) -> HTMLResponse:
            return HTMLResponse(PAGE)

        app = ASGIMiddleware(
            Starlette(routes=[Route("/", home)]),
            self.engine,
            secret="the site's cookie secret, 32 b..",
            call_secret=CALL_SECRET,
        )
        self.web = TestClient(app, base_url="http://testserver")

    def land(self, query: str, referrer: str = GOOGLE) -> str:
        """A new visitor's landing; the number the page showed them."""
        self.web.cookies.clear()
        page = self.web.get(f"/?{query}", headers={"User-Agent": HUMAN, "Referer": referrer})
        (number,) = re.findall(r'href="tel:([^"]+)"', page.text)
        return str(number)

    def call(self, call_id: str, number: str, started: float, duration: float) -> Any:
        body = json.dumps(
            {
                "call_id": call_id,
                "number": number,
                "caller": "+447700900123",
                "started": started,
                "duration": duration,
            }
        ).encode()
        answer = self.web.post(
            "/_dni/calls",
            content=body,
            headers={"X-DNI-Signature": sign(CALL_SECRET.encode(), body)},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def site(redis_server: RedisServer) -> Iterator[WebSite]:
    made = WebSite(redis_server)
    yield made
    client = redis_server.client()
    keys = list(client.scan_iter(f"{made.namespace}:*"))
    if keys:
        client.delete(*keys)


def calls_made(site: WebSite) -> dict[str, Any]:
    """Three calls: a Google ad visitor's, a Microsoft ad visitor's, one to no pool's number."""
    google = site.land("gclid=Cj0-google-1&utm_campaign=winter")
    bing = site.land("msclkid=ms-click-1", BING)
    now = time.time()  # the calls come after both landings, while the visitors hold numbers
    return {
        "google": site.call("c-google", google, now, 95),
        "short": site.call("c-short", google, now + 1, 5),
        "bing": site.call("c-bing", bing, now + 2, 120),
        "unknown": site.call("c-unknown", "+442079460123", now + 3, 30),
        "started": now,
    }


def test_calls_lists_the_log_the_webhook_wrote(site: WebSite) -> None:
    made = calls_made(site)
    listed = site.json("calls")
    assert isinstance(listed, list)
    assert [r["call"]["call_id"] for r in listed] == ["c-google", "c-short", "c-bing", "c-unknown"]
    assert listed == [r.to_json() for r in site.engine.calls()]
    google = listed[0]["attribution"]
    assert dict(google["lease"]["facts"]["click_ids"])["gclid"] == "Cj0-google-1"
    assert listed[3]["attribution"]["kind"] == "unknown"
    pool = str(made["google"]["attribution"]["pool_key"])
    by_pool = site.json("calls", "--pool", pool)
    assert isinstance(by_pool, list)
    assert [r["call"]["call_id"] for r in by_pool] == ["c-google", "c-short"]
    later = site.json("calls", "--since", repr(made["started"] + 1.5))
    assert isinstance(later, list)
    assert [r["call"]["call_id"] for r in later] == ["c-bing", "c-unknown"]
    table = site.run("calls")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[-1] == "4 calls"
    assert "c-unknown" in table.stdout


def test_report_agrees_with_the_engine(site: WebSite, tmp_path: Path) -> None:
    calls_made(site)
    shown = site.json("report")
    assert isinstance(shown, dict)
    mine = site.engine.report().to_json()
    # The pools' counters are the store's; both read them at once, nothing visits between.
    assert shown == mine
    assert shown["calls"] == 4
    assert shown["attributed"] == 3
    assert shown["unattributed"] == 1
    assert {row["label"] for row in shown["by_campaign"]} >= {"winter"}
    as_csv = site.run("report", "--csv", "-o", str(tmp_path / "report.csv"))
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "report.csv").read_text())))
    assert rows == site.engine.report().csv_rows()
    text = site.run("report", "--plot", str(tmp_path / "report.png"))
    assert text.returncode == 0, text.stderr
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    assert site.run("report", "--json", "--csv").returncode == USAGE
    zone = site.run("report", "--time-zone", "Mars/Olympus")
    assert zone.returncode == USAGE
    assert "'--time-zone'" in zone.stderr


def test_exports_match_the_templates_and_count_what_is_left_out(site: WebSite) -> None:
    made = calls_made(site)
    started = datetime.fromtimestamp(made["started"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    clicks = site.run(
        "export",
        "google-ads-clicks",
        "--conversion-name",
        "Phone call",
        "--min-duration",
        "30",
        "--value",
        "40",
        "--currency",
        "GBP",
    )
    assert clicks.returncode == 0, clicks.stderr
    rows = list(csv.reader(io.StringIO(clicks.stdout)))
    assert rows[0] == ["Parameters:TimeZone=UTC"]
    assert tuple(rows[1]) == GOOGLE_CLICKS_HEADER
    assert rows[2:] == [["Cj0-google-1", "Phone call", started, "40.00", "GBP"]]
    assert clicks.stderr.startswith("1 call exported, 3 left out (")
    assert "1 shorter than the minimum duration" in clicks.stderr
    calls = site.run(
        "export", "google-ads-calls", "--conversion-name", "Calls", "--time-zone", "Europe/London"
    )
    assert calls.returncode == 0, calls.stderr
    rows = list(csv.reader(io.StringIO(calls.stdout)))
    assert rows[0] == ["Parameters:TimeZone=Europe/London"]
    assert tuple(rows[1]) == GOOGLE_CALLS_HEADER
    assert [row[0] for row in rows[2:]] == ["+447700900123", "+447700900123"]
    microsoft = site.run("export", "microsoft-ads", "--conversion-name", "Calls")
    assert microsoft.returncode == 0, microsoft.stderr
    rows = list(csv.reader(io.StringIO(microsoft.stdout)))
    assert rows[0] == ["Parameters:TimeZone=+0000"]
    assert tuple(rows[1]) == MICROSOFT_HEADER
    assert [row[0] for row in rows[2:]] == ["ms-click-1"]


def test_export_usage_errors_name_the_option(site: WebSite) -> None:
    for args, option in (
        (["--currency", "pounds"], "--currency"),
        (["--time-zone", "Nowhere/Else"], "--time-zone"),
        (["--conversion-name", " "], "--conversion-name"),
        (["--region", "GB"], "--region"),
    ):
        done = site.run("export", "google-ads-clicks", "--conversion-name", "Calls", *args)
        assert done.returncode == USAGE, done.stderr
        assert f"'{option}'" in done.stderr, done.stderr
    done = site.run(
        "export", "microsoft-ads", "--conversion-name", "C", "--time-zone", "Europe/Paris"
    )
    assert done.returncode == USAGE
    assert "'--time-zone'" in done.stderr
