"""The client cap end to end: one script sending fresh cookies from one address.

The example apps (``examples/web/``, whose engine keeps the default cap of 3
live leases per client in each pool) are served by real servers on loopback:
the FastAPI app under ``uvicorn`` and the Django project under ``gunicorn``
(one worker each, leases in memory), and the Flask app under ``gunicorn -w 2``
on the test session's ``redis-server`` (two workers sharing the pool).

A script sends 1,000 first visits from ``127.0.0.1`` with a browser user agent,
each an ad landing (a ``gclid``, a Google referrer) with no cookie or a fresh
visitor cookie: half as page views, half through the browser endpoint
(``POST /_dni/swap``, as the page script asks). The ad pool has 4 numbers: at
most 3 of the script's visits take one, the others are ``capped`` (or refused
by the endpoint's rate limit) and show the site's own number. A person coming
from ``127.0.0.2`` still gets the fourth number by page view; another, from
``127.0.0.3``, then finds the pool full through the endpoint: ``overflow``,
the pool's policy, not ``capped``.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dni_engine.testing.redis_server import RedisServer, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "examples" / "web"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLE = "https://www.google.com/"
ORIGINAL = "+441174960000"
AD_NUMBERS = {f"+44117496010{i}" for i in range(1, 5)}
CAP = 3
VISITS = 1_000


@dataclass
class Server:
    app: str
    base: str
    workers: int
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _command(app: str, port: int, workers: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if app == "flask":
        return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", bind,
                "--chdir", str(WEB), "flask_app:app"]  # fmt: skip
    if app == "django":
        return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", bind,
                "--chdir", str(WEB / "django_site"), "shopsite.wsgi"]  # fmt: skip
    return [sys.executable, "-m", "uvicorn", "--workers", str(workers), "--host", "127.0.0.1",
            "--port", str(port), "--app-dir", str(WEB), "fastapi_app:app"]  # fmt: skip


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    """Until every worker answered (each request on a new connection)."""
    pids: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{server.app} server exited:\n{server.tail()}")
        try:
            response = httpx.get(
                f"{server.base}/api/stock", headers={"Connection": "close"}, timeout=2
            )
            if response.status_code == 200:
                pids.add(response.headers["X-Worker-Pid"])
                if len(pids) == server.workers:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{server.app} server not ready ({pids}):\n{server.tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the server's own process group (its workers)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(params=["fastapi", "django", "flask-redis-2-workers"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    kind = str(request.param)
    app = kind.partition("-")[0]
    workers = 2 if kind.endswith("2-workers") else 1
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DNI_SECRET": "client-cap-secret-0123456789",
        "DNI_DEBUG": "1",
        "DJANGO_DEBUG": "0",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("DNI_REDIS_URL", None)
    if "redis" in kind:
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        env["DNI_REDIS_URL"] = redis_server.url
        env["DNI_REDIS_NAMESPACE"] = f"cap-{app}-{port}"
        env["DNI_REDIS_TIMEOUT"] = "2"  # generous on a loaded machine: this test is about the cap
    with tempfile.NamedTemporaryFile(prefix=f"dni-cap-{app}-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        process = subprocess.Popen(
            _command(app, port, workers),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(kind, f"http://127.0.0.1:{port}", workers, process, log_path)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def _from(address: str) -> httpx.Client:
    """A keep-alive client whose connections come from ``address`` (any of 127.0.0.0/8)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=address),
        headers={"User-Agent": BROWSER},
        timeout=20,
    )


def _outcome(response: httpx.Response) -> str | None:
    fields = dict(
        part.strip().partition("=")[::2]
        for part in response.headers.get("X-DNI", "").split(";")
        if part.strip()
    )
    return fields.get("outcome")


def _page_view(client: httpx.Client, base: str, visit: int) -> tuple[str, str | None, str]:
    """One ad landing as a page view: the number its ``tel:`` link shows, its outcome, worker."""
    response = client.get(f"{base}/?gclid=cap-{visit}", headers={"Referer": GOOGLE})
    assert response.status_code == 200, response.text
    targets = set(re.findall(r'href="tel:([^"]+)"', response.text))
    assert len(targets) == 1, targets
    return targets.pop(), _outcome(response), response.headers["X-Worker-Pid"]


def _swap(client: httpx.Client, base: str, visit: int) -> tuple[int, str | None, str | None]:
    """One ad landing through the browser endpoint: the status, the number and the outcome."""
    response = client.post(
        f"{base}/_dni/swap",
        json={
            "url": f"{base}/?gclid=cap-{visit}",
            "referrer": GOOGLE,
            "fragments": ["Call 0117 496 0000"],
            "links": ["tel:01174960000"],
        },
    )
    if response.status_code == 429:  # the endpoint's own rate limit: no visit at all
        return 429, None, None
    assert response.status_code == 200, response.text
    answer = response.json()
    return 200, answer["number"], answer["outcome"]


def test_one_address_sending_fresh_cookies_takes_at_most_the_cap(server: Server) -> None:
    numbers: list[str] = []
    outcomes: Counter[str | None] = Counter()
    workers: set[str] = set()
    statuses: Counter[int] = Counter()
    with _from("127.0.0.1") as script:
        for visit in range(VISITS):
            script.cookies.clear()  # a first visit every time...
            if visit % 4 == 1:  # ...with no cookie or a fresh (never seen) visitor cookie
                script.cookies.set("dni_visitor", secrets.token_urlsafe(16))
            if visit % 2 == 0:
                number, outcome, worker = _page_view(script, server.base, visit)
                workers.add(worker)
                statuses[200] += 1
            else:
                status, swapped, outcome = _swap(script, server.base, visit)
                statuses[status] += 1
                number = swapped or ORIGINAL
            outcomes[outcome] += 1
            numbers.append(number)
    taken = [n for n in numbers if n != ORIGINAL]
    assert len(taken) == CAP, (outcomes, server.tail())
    assert set(taken) <= AD_NUMBERS
    assert len(set(taken)) == CAP  # each a lease of its own
    assert outcomes["new"] == CAP
    assert outcomes["capped"] == statuses[200] - CAP, outcomes
    assert outcomes["overflow"] == outcomes["recycled"] == 0
    assert statuses[200] >= VISITS // 2 + 100  # every page view, and the endpoint's burst
    if server.workers == 2:
        # gunicorn's sync workers close each connection: the page views spread over both
        assert len(workers) == 2, workers

    # Real people elsewhere are served: the fourth ad number, then the full pool's policy.
    with _from("127.0.0.2") as person:
        number, outcome, _ = _page_view(person, server.base, VISITS)
        assert (number in AD_NUMBERS - set(taken), outcome) == (True, "new"), server.tail()
        again, kept, _ = _page_view(person, server.base, VISITS)
        assert (again, kept) == (number, "kept")
    with _from("127.0.0.3") as other:
        status, swapped, outcome = _swap(other, server.base, VISITS + 1)
        assert (status, swapped, outcome) == (200, None, "overflow")
