"""The vendor API emulator: its inventory, its state under threads, its HTTP edges, its CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest
from click.testing import CliRunner
from phonenumbers import PhoneNumberType, geocoder

from dni_engine.cli import cli
from dni_engine.emulator import (
    Emulator,
    EmulatorServer,
    Faults,
    Inventory,
    NumbersUnavailable,
    Refusal,
)
from dni_engine.emulator.app import MAX_BODY_BYTES, MAX_ID
from dni_engine.emulator.registry import PoolRegistry
from dni_engine.errors import ConfigError
from dni_engine.schema import (
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    NumberPool,
    NumberPoolRequest,
    PhoneNumberRequest,
)
from tests.conftest import EXAMPLES, ROOT, load_example

TOKEN = "emulator-test-token"
HEADERS = {"x-organization-token": TOKEN}


def wanted(match_type: str, country: str, **place: str) -> PhoneNumberRequest:
    return PhoneNumberRequest(
        number_type="international", match_type=match_type, iso_country=country, **place
    )


def seed_request(kind: str) -> NumberPoolRequest:
    return NumberPoolRequest.model_validate(load_example(f"{kind}.request"))


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as running:
        yield running


# ---- the inventory -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "types", "prefix", "description"),
    [
        (wanted("geographic", "GB", city="Bristol"), "geo", "+44117", "Bristol"),
        (wanted("geographic", "GB", city="bristol "), "geo", "+44117", "Bristol"),
        (wanted("geographic", "GB", area_code="024"), "geo", "+4424", "Coventry"),
        (wanted("geographic", "GB", area_code="01179"), "geo", "+441179", "Bristol"),
        (wanted("geographic", "US", city="Bristol", region="PA"), "geo", "+1", "Bristol, PA"),
        (wanted("geographic", "DE", city="München"), "geo", "+4989", "Munich"),
        (wanted("geographic", "IT", area_code="06"), "geo", "+3906", "Rome"),
        (wanted("tollfree", "GB"), "tollfree", "+44800", None),
        (wanted("tollfree", "US"), "tollfree", "+1", None),
        (wanted("national", "GB"), "national", "+4433", None),
        (wanted("national", "FR"), "national", "+33", None),
    ],
)
def test_numbers_are_valid_and_of_the_requested_kind_and_place(
    request_: PhoneNumberRequest, types: str, prefix: str, description: str | None
) -> None:
    kinds = {
        "geo": {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
        "tollfree": {PhoneNumberType.TOLL_FREE},
        "national": {PhoneNumberType.UAN},
    }[types]
    numbers = Inventory().allocate(request_, 25)
    assert len(set(numbers)) == 25
    assert numbers == sorted(numbers)
    for text in numbers:
        number = phonenumbers.parse(text, None)
        assert phonenumbers.is_valid_number(number), text
        assert phonenumbers.region_code_for_number(number) == request_.iso_country
        assert phonenumbers.number_type(number) in kinds
        assert text.startswith(prefix)
        if description is not None:
            assert geocoder.description_for_number(number, "en") == description


def test_a_number_is_never_handed_out_twice() -> None:
    inventory = Inventory(seed=3)
    bristol = wanted("geographic", "GB", city="Bristol")
    by_code = wanted("geographic", "GB", area_code="0117")  # the same numbers, asked differently
    handed = [
        n for _ in range(5) for req in (bristol, by_code) for n in inventory.allocate(req, 80)
    ]
    assert len(handed) == len(set(handed)) == 800
    assert inventory.issued == frozenset(handed)


def test_the_inventory_is_reproducible_from_its_seed() -> None:
    request = wanted("tollfree", "GB")
    assert Inventory(seed=5).allocate(request, 5) == Inventory(seed=5).allocate(request, 5)
    assert Inventory(seed=5).allocate(request, 5) != Inventory(seed=6).allocate(request, 5)


def test_runs_of_neighbouring_numbers_like_the_vendor() -> None:
    numbers = [int(n) for n in Inventory().allocate(wanted("geographic", "GB", city="Bristol"), 10)]
    assert numbers[-1] - numbers[0] < 100


def test_stock_runs_out_all_or_nothing() -> None:
    inventory = Inventory(stock=5)
    request = wanted("national", "GB")
    assert len(inventory.allocate(request, 3)) == 3
    with pytest.raises(NumbersUnavailable) as info:
        inventory.allocate(request, 3)
    assert info.value.status == 422
    assert [p.path for p in info.value.problems] == ["quantity"]
    assert "only 2 numbers left" in info.value.message
    assert len(inventory.allocate(request, 2)) == 2
    assert len(inventory.issued) == 5
    assert len(inventory.allocate(wanted("tollfree", "GB"), 5)) == 5  # stock is per locality


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (wanted("geographic", "GB", city="Atlantis"), "city", "no numbering data for a city"),
        (wanted("geographic", "US", city="Springfield", region="XX"), "region", "IL"),
        (wanted("geographic", "GB", area_code="099"), "area_code", "no geographic numbers"),
        (wanted("geographic", "GB", city="Bristol", area_code="024"), "area_code", "024"),
        (wanted("national", "US"), "match_type", "national numbers are not available in US"),
    ],
)
def test_unavailable_numbers_name_the_field(
    request_: PhoneNumberRequest, field: str, words: str
) -> None:
    with pytest.raises(NumbersUnavailable, match=words) as info:
        Inventory().allocate(request_, 1)
    assert [p.path for p in info.value.problems] == [f"phone_number_request.{field}"]


# ---- state under concurrency -----------------------------------------------------------


def test_concurrent_creations_keep_ids_names_and_numbers_unique() -> None:
    registry = PoolRegistry(Inventory())
    request = seed_request("geographic-city")
    refused: list[Refusal] = []

    def create(worker: int) -> None:
        for index in range(25):
            registry.create(1, request.model_copy(update={"name": f"w{worker} p{index}"}))
        try:
            registry.create(1, request.model_copy(update={"name": "Shared name"}))
        except Refusal as exc:
            refused.append(exc)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pools = registry.pools(1)
    assert len(pools) == 8 * 25 + 1
    assert len({p.id for p in pools}) == len(pools)
    assert [r.status for r in refused] == [409] * 7
    numbers = [n for p in pools for n in p.numbers]
    assert len({n.phone_number for n in numbers}) == len({n.id for n in numbers}) == len(numbers)


# ---- faults ------------------------------------------------------------------------------


def test_faults_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        Faults(latency=-1, error_rate=1.5, drop_rate=float("nan"), retry_after=-2)
    assert [p.path for p in info.value.problems] == [
        "latency",
        "error_rate",
        "drop_rate",
        "retry_after",
    ]
    assert Faults().describe() == "none"
    assert "30% 429/503" in Faults(error_rate=0.3).describe()


def test_injected_errors_carry_retry_after_and_do_not_act(server: EmulatorServer) -> None:
    server.emulator.faults = Faults(error_rate=1.0, retry_after=3)
    reply = httpx.post(
        f"{server.url}/groups/1/numberpools", json=load_example("national.request"), headers=HEADERS
    )
    assert reply.status_code in (429, 503)
    assert reply.headers["retry-after"] == "3"
    assert "injected fault" in reply.json()["message"]
    assert server.emulator.pools() == []


def test_a_dropped_connection_follows_the_action(server: EmulatorServer) -> None:
    server.emulator.faults = Faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{server.url}/groups/1/numberpools",
            json=load_example("national.request"),
            headers=HEADERS,
        )
    assert len(server.emulator.pools(1)) == 1
    assert server.emulator.fault_counts == {"drop": 1}


# ---- HTTP edges ----------------------------------------------------------------------------


def test_http_errors_are_json(server: EmulatorServer) -> None:
    url = server.url
    not_json = httpx.post(f"{url}/groups/1/numberpools", content=b"{nope", headers=HEADERS)
    assert not_json.status_code == 400
    assert not_json.json()["errors"][0]["field"] == "$"

    invalid = load_example("tollfree.request")
    invalid["replacement_configuration"]["replace_all_numbers"] = True
    del invalid["call_routes"]
    reply = httpx.post(f"{url}/groups/1/numberpools", json=invalid, headers=HEADERS)
    assert reply.status_code == 400
    fields = {e["field"] for e in reply.json()["errors"]}
    assert fields == {"replacement_configuration", "call_routes"}

    unknown = httpx.get(f"{url}/no/such/path", headers=HEADERS)
    assert unknown.status_code == 404
    assert "message" in unknown.json()
    wrong_method = httpx.put(f"{url}/reference/referrers", headers=HEADERS)
    assert wrong_method.status_code == 405

    too_big = httpx.post(f"{url}/groups/1/numberpools", content=b" " * 1_000_001, headers=HEADERS)
    assert too_big.status_code == 413


def test_pools_are_listed_per_group(server: EmulatorServer) -> None:
    for group, kind in ((1, "tollfree"), (2, "national"), (1, "geographic-city")):
        body = load_example(f"{kind}.request") | {"name": kind}
        httpx.post(f"{server.url}/groups/{group}/numberpools", json=body, headers=HEADERS)
    listed = httpx.get(f"{server.url}/v3/api/groups/1/numberpools", headers=HEADERS).json()
    assert [p["name"] for p in listed] == ["tollfree", "geographic-city"]
    assert httpx.get(f"{server.url}/groups/3/numberpools", headers=HEADERS).json() == []


# ---- what a body and a path may hold -------------------------------------------------------

CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024  # a 200 MB body, never held in memory: generated as it is sent


def in_process(emulator: Emulator, method: str, path: str, **options: Any) -> httpx.Response:
    """One request to ``emulator`` through httpx's ASGITransport (no socket)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=emulator.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as c:
            return await c.request(method, path, **options)

    return asyncio.run(go())


def test_a_streamed_body_over_the_limit_is_refused_before_it_is_read_in_process() -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < HUGE:
            sent += CHUNK
            yield b" " * CHUNK

    emulator = Emulator()
    reply = in_process(emulator, "POST", "/groups/1/numberpools", content=body(), headers=HEADERS)
    assert reply.status_code == 413
    assert reply.headers["connection"] == "close"
    assert "larger than 1000000 bytes" in reply.json()["message"]
    assert MAX_BODY_BYTES < sent <= MAX_BODY_BYTES + CHUNK  # read up to the limit, no further
    assert emulator.pools() == []


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/groups/1/numberpools", HEADERS, 413),
        ("/groups/1/numberpools", {}, 401),  # refused before a byte of the body is read
        ("/groups/1/numberpools", HEADERS | {"content-type": "text/plain"}, 415),
        (f"/groups/{10**30}/numberpools", HEADERS, 404),
        ("/groups/1/numberpools/nowhere", HEADERS, 404),
    ],
)
def test_a_streamed_body_refused_over_http_is_not_read_to_its_end(
    server: EmulatorServer, path: str, headers: dict[str, str], status: int
) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        while sent < HUGE:
            sent += CHUNK
            yield b" " * CHUNK

    reply = httpx.post(f"{server.url}{path}", content=body(), headers=headers)
    assert reply.status_code == status
    assert reply.headers["connection"] == "close"
    # The server stopped reading and closed: the client could only push what the
    # sockets' buffers hold on top of what was read, far from the 200 MB.
    assert sent < HUGE // 4
    assert server.emulator.pools() == []


def raw_exchange(server: EmulatorServer, head: str, body: bytes = b"") -> str:
    """Send ``head`` (and ``body``) on a fresh socket and read one answer (head and body)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        # A server waiting for more of the body would time out here.
        while not _complete(answer):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {answer!r}"
            answer += chunk
    return answer.decode()


def _complete(answer: bytes) -> bool:
    head, blank, rest = answer.partition(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    ]
    return bool(blank) and len(rest) >= lengths[0]


def test_a_declared_length_over_the_limit_is_refused_at_once(server: EmulatorServer) -> None:
    answer = raw_exchange(
        server,
        f"POST /groups/1/numberpools HTTP/1.1\nHost: emulator\n{TOKEN_LINE}"
        f"Content-Type: application/json\nContent-Length: {HUGE}\n",
    )  # and not one byte of the body
    assert answer.startswith("HTTP/1.1 413 ")
    assert "connection: close" in answer.lower()


def test_a_chunked_body_is_answered_once_it_passes_the_limit(server: EmulatorServer) -> None:
    chunk = b" " * CHUNK
    pieces = MAX_BODY_BYTES // CHUNK + 1  # just past the limit; the body's end is never sent
    answer = raw_exchange(
        server,
        f"POST /groups/1/numberpools HTTP/1.1\nHost: emulator\n{TOKEN_LINE}"
        "Content-Type: application/json\nTransfer-Encoding: chunked\n",
        f"{CHUNK:x}\r\n".encode().join([b"", *[chunk + b"\r\n"] * pieces]),
    )
    assert answer.startswith("HTTP/1.1 413 ")


TOKEN_LINE = f"x-organization-token: {TOKEN}\n"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_a_body_that_is_not_json_is_unsupported(server: EmulatorServer, content_type: str) -> None:
    body = (EXAMPLES / "pools" / "national.request.json").read_bytes()
    headers = HEADERS | {"content-type": content_type}
    reply = httpx.post(f"{server.url}/groups/1/numberpools", content=body, headers=headers)
    assert reply.status_code == 415
    assert "application/json" in reply.json()["message"]
    assert server.emulator.pools() == []
    adding = httpx.post(
        f"{server.url}/numberpools/1/numbers", content=b"{}", headers=headers
    )  # checked before the pool is looked up: nothing of the body is read
    assert adding.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "Application/JSON; charset=UTF-8", "application/json;charset=utf8"],
)
def test_a_json_body_creates_a_pool(server: EmulatorServer, content_type: str | None) -> None:
    body = (EXAMPLES / "pools" / "national.request.json").read_bytes()
    headers = HEADERS | ({"content-type": content_type} if content_type else {})
    reply = httpx.post(f"{server.url}/groups/1/numberpools", content=body, headers=headers)
    assert reply.status_code == 201, reply.text  # no Content-Type at all: read as JSON


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
    ],
)
def test_deeply_nested_json_is_a_400(server: EmulatorServer, body: bytes) -> None:
    for reply in (
        httpx.post(f"{server.url}/groups/1/numberpools", content=body, headers=HEADERS),
        in_process(Emulator(), "POST", "/groups/1/numberpools", content=body, headers=HEADERS),
    ):
        assert reply.status_code == 400
        assert reply.json()["errors"] == [
            {
                "field": "$",
                "message": f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep",
            }
        ]


def test_nesting_up_to_the_limit_is_read() -> None:
    body = b'{"a": ' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH
    reply = in_process(Emulator(), "POST", "/groups/1/numberpools", content=body, headers=HEADERS)
    assert reply.status_code == 400
    assert "nested" not in reply.text  # read, then found not to be a pool request
    assert "a" in {e["field"] for e in reply.json()["errors"]}


@pytest.mark.parametrize("digits", [MAX_JSON_INT_DIGITS + 1, 5000])
def test_an_integer_of_too_many_digits_is_a_400(server: EmulatorServer, digits: int) -> None:
    body = b'{"quantity": -' + b"7" * digits + b"}"
    for reply in (
        httpx.post(f"{server.url}/groups/1/numberpools", content=body, headers=HEADERS),
        in_process(Emulator(), "POST", "/groups/1/numberpools", content=body, headers=HEADERS),
    ):
        assert reply.status_code == 400
        assert reply.json()["errors"] == [
            {"field": "$", "message": f"an integer has more than {MAX_JSON_INT_DIGITS} digits"}
        ]


def test_integers_up_to_the_limit_and_huge_floats_are_read(server: EmulatorServer) -> None:
    for number in (b"9" * MAX_JSON_INT_DIGITS, b"1e5000"):
        reply = httpx.post(
            f"{server.url}/groups/1/numberpools",
            content=b'{"quantity": ' + number + b"}",
            headers=HEADERS,
        )
        assert reply.status_code == 400  # read, then found not to be a pool request
        assert "quantity" in {e["field"] for e in reply.json()["errors"]}


def test_ids_in_paths_are_bounded(server: EmulatorServer) -> None:
    url = server.url
    assert httpx.get(f"{url}/groups/{MAX_ID}/numberpools", headers=HEADERS).json() == []
    body = load_example("national.request")
    for too_big in (str(MAX_ID + 1), "9" * 40, "9" * 5000):
        listing = httpx.get(f"{url}/groups/{too_big}/numberpools", headers=HEADERS)
        assert listing.status_code == 404
        assert "ids are whole numbers from 0 to 9223372036854775807" in listing.json()["message"]
        creating = httpx.post(f"{url}/groups/{too_big}/numberpools", json=body, headers=HEADERS)
        assert creating.status_code == 404
        for method, path in (
            ("GET", f"/numberpools/{too_big}"),
            ("POST", f"/numberpools/{too_big}/numbers"),
            ("DELETE", f"/numberpools/31849/numbers/{too_big}"),
        ):
            reply = httpx.request(method, f"{url}{path}", headers=HEADERS, json={})
            assert reply.status_code == 404, (method, path)
            assert len(reply.json()["message"]) < 200
    assert httpx.get(f"{url}/numberpools/-1", headers=HEADERS).status_code == 404
    assert httpx.get(f"{url}/v3/api/numberpools/abc", headers=HEADERS).status_code == 404
    assert server.emulator.pools() == []


# ---- the command line ------------------------------------------------------------------------


def test_emulator_and_pools_create_commands_as_processes(tmp_path: Path) -> None:
    env = {**os.environ, "DNI_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "dni_engine.cli"]
    emulator = subprocess.Popen(
        [
            *command,
            "emulator",
            "--port",
            "0",
            "--seed",
            "4",
            "--error-rate",
            "0.3",
            "--retry-after",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert emulator.stdout is not None
        banner = emulator.stdout.readline()
        assert "listening on http://127.0.0.1:" in banner
        assert "30% 429/503 (Retry-After 0 s)" in banner
        url = banner.split("listening on ")[1].split()[0]
        created = subprocess.run(
            [*command, "pools", "create", "--group", "77", "--base-url", url,
             str(EXAMPLES / "pools" / "national.request.json")],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        pool = NumberPool.model_validate(json.loads(created.stdout))
        assert pool.group_id == 77
        assert all(n.startswith("+4433") for n in pool.e164_numbers)
        listed = httpx.get(f"{url}/groups/77/numberpools", headers=HEADERS).json()
        assert listed == [json.loads(created.stdout)]
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()
            raise
    assert emulator.returncode in (0, -signal.SIGTERM)  # a clean stop on SIGTERM


def test_pools_create_needs_the_token_from_the_environment() -> None:
    runner = CliRunner()
    path = str(EXAMPLES / "pools" / "tollfree.request.json")
    result = runner.invoke(
        cli, ["pools", "create", "--group", "1", path], env={"DNI_API_TOKEN": ""}
    )
    assert result.exit_code == 2  # nothing was tried: a usage error
    assert "DNI_API_TOKEN" in result.output
    assert "--token" not in runner.invoke(cli, ["pools", "create", "--help"]).output


def test_pools_create_prints_the_pool_and_is_safe_to_rerun(server: EmulatorServer) -> None:
    runner = CliRunner()
    path = str(EXAMPLES / "pools" / "geographic-city.request.json")
    args = ["pools", "create", "--group", "5", "--base-url", server.url, path]
    first = runner.invoke(cli, args, env={"DNI_API_TOKEN": TOKEN})
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, args, env={"DNI_API_TOKEN": TOKEN})
    assert again.exit_code == 0, again.output
    assert json.loads(first.output) == json.loads(again.output)
    assert len(server.emulator.pools(5)) == 1

    response = str(EXAMPLES / "pools" / "geographic-city.response.json")
    wrong = runner.invoke(
        cli, ["pools", "create", "--group", "5", "--base-url", server.url, response],
        env={"DNI_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert "expected one pool request" in wrong.output
