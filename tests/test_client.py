"""The vendor API client against the project's emulator, in-process and over loopback HTTP."""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, geocoder

from dni_engine.client import (
    AmbiguousResult,
    ApiError,
    AsyncClient,
    AuthError,
    Client,
    Conflict,
    ConnectionFailed,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    ValidationFailed,
    _create_pool_call,
    _error_from,
    _Exchange,
    _retry_after,
)
from dni_engine.emulator import Emulator, EmulatorServer, Faults
from dni_engine.errors import ConfigError, DniError
from dni_engine.schema import NumberPool, NumberPoolRequest, PhoneNumberRequest, pool_json
from tests.conftest import SEED_KINDS, load_example

TOKEN = "tok-5f1d0c9a-SECRET-e54f9d"
GROUP = 12462615
# Retries without waiting: the tests check what is retried, not how long it waits.
FAST = RetryPolicy(max_attempts=12, backoff=0.001, max_backoff=0.005, deadline=30)

NUMBER_TYPES = {
    "geographic": {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    "tollfree": {PhoneNumberType.TOLL_FREE},
    "national": {PhoneNumberType.UAN},
}
# Where each of the vendor's four example requests must get its numbers:
# (E.164 prefix, geocoder description or None).
PLACES = {
    "geographic-city": ("+44117", "Bristol"),
    "geographic-area-code": ("+4424", "Coventry"),
    "tollfree": ("+44800", None),
    "national": ("+4433", None),
}

R = TypeVar("R")


def seed_request(kind: str) -> NumberPoolRequest:
    """The vendor's example request of one kind."""
    return NumberPoolRequest.model_validate(load_example(f"{kind}.request"))


def named(request: NumberPoolRequest, name: str) -> NumberPoolRequest:
    return request.model_copy(update={"name": name})


def check_pool(pool: NumberPool, request: NumberPoolRequest, kind: str) -> None:
    """``pool`` is what ``request`` asked for: the echo, and valid numbers of the right
    kind, country and place."""
    assert NumberPool.model_validate(pool_json(pool)) == pool
    echo = request.to_pool(id=pool.id, group_id=pool.group_id, numbers=pool.numbers)
    assert pool == echo
    assert pool.status == "active"
    assert len(pool.numbers) == request.quantity == pool.quantity
    wanted = request.phone_number_request
    prefix, description = PLACES[kind]
    for item in pool.numbers:
        number = phonenumbers.parse(item.phone_number, None)
        assert phonenumbers.is_valid_number(number), item.phone_number
        assert phonenumbers.region_code_for_number(number) == wanted.iso_country
        assert phonenumbers.number_type(number) in NUMBER_TYPES[wanted.match_type]
        assert item.phone_number.startswith(prefix)
        if description is not None:
            assert geocoder.description_for_number(number, "en") == description
    assert len({n.phone_number for n in pool.numbers}) == len(pool.numbers)


def in_process(emulator: Emulator, use: Callable[[AsyncClient], Awaitable[R]], **options: Any) -> R:
    """Run ``use`` with an AsyncClient talking to ``emulator`` through ASGITransport."""

    async def go() -> R:
        transport = httpx.ASGITransport(app=emulator.app)
        async with AsyncClient(
            TOKEN, base_url="http://emulator.test", transport=transport, **options
        ) as client:
            return await use(client)

    return asyncio.run(go())


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A fresh emulator on a free loopback port, served from a background thread."""
    with EmulatorServer(Emulator()) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[Client]:
    with Client(TOKEN, base_url=server.url, retry=FAST) as c:
        yield c


# ---- the vendor's four requests -------------------------------------------------


def test_seed_requests_in_process(seed_kind: str) -> None:
    emulator = Emulator()
    request = seed_request(seed_kind)
    pool = in_process(emulator, lambda c: c.create_number_pool(GROUP, request))
    check_pool(pool, request, seed_kind)
    assert emulator.pools(GROUP) == [pool]


def test_seed_requests_over_loopback(seed_kind: str, client: Client) -> None:
    request = seed_request(seed_kind)
    pool = client.create_number_pool(GROUP, request)
    check_pool(pool, request, seed_kind)
    assert client.get_number_pool(pool.id) == pool
    assert client.list_number_pools(GROUP) == [pool]


def test_async_client_over_loopback(server: EmulatorServer) -> None:
    async def go() -> list[NumberPool]:
        async with AsyncClient(TOKEN, base_url=server.url, retry=FAST) as c:
            for index, kind in enumerate(SEED_KINDS):
                await c.create_number_pool(GROUP, named(seed_request(kind), f"pool {index}"))
            return await c.list_number_pools(GROUP)

    pools = asyncio.run(go())
    assert [p.name for p in pools] == [f"pool {i}" for i in range(len(SEED_KINDS))]
    for pool, kind in zip(pools, SEED_KINDS, strict=True):
        check_pool(pool, named(seed_request(kind), pool.name), kind)


def test_responses_have_the_seed_shape(server: EmulatorServer) -> None:
    for group, kind in enumerate(SEED_KINDS, start=GROUP):  # two examples share a name
        sent = load_example(f"{kind}.request")
        expected = load_example(f"{kind}.response")
        reply = httpx.post(
            f"{server.url}/v3/api/groups/{group}/numberpools",
            json=sent | {"name": expected["name"]},
            headers={"x-organization-token": TOKEN},
        )
        assert reply.status_code == 201
        body = reply.json()
        assert list(body) == list(expected)
        assert body["group_id"] == group
        for key in expected.keys() - {"id", "group_id", "numbers"}:
            assert body[key] == expected[key], key
        assert [list(n) for n in body["numbers"]] == [list(n) for n in expected["numbers"]]


def test_first_ids_continue_the_vendor_examples(client: Client) -> None:
    pool = client.create_number_pool(GROUP, seed_request("geographic-city"))
    expected = NumberPool.model_validate(load_example("geographic-city.response"))
    assert pool.id == expected.id
    assert [n.id for n in pool.numbers] == [n.id for n in expected.numbers]


# ---- other operations ------------------------------------------------------------


def test_add_and_remove_numbers(client: Client) -> None:
    request = seed_request("geographic-city")
    pool = client.create_number_pool(3, request)
    grown = client.add_pool_numbers(pool.id, 2, request.phone_number_request)
    assert grown.quantity == 5
    assert grown.numbers[:3] == pool.numbers
    check_pool(grown, request.model_copy(update={"quantity": 5}), "geographic-city")

    removed = grown.numbers[1]
    shrunk = client.remove_pool_number(pool.id, removed.id)
    assert shrunk.quantity == 4
    assert removed not in shrunk.numbers
    assert client.get_number_pool(pool.id) == shrunk

    again = client.add_pool_numbers(pool.id, 1, request.phone_number_request)
    assert removed.phone_number not in again.e164_numbers  # a removed number is never reissued

    for number in again.numbers[:-1]:
        client.remove_pool_number(pool.id, number.id)
    with pytest.raises(Conflict, match="last number"):
        client.remove_pool_number(pool.id, again.numbers[-1].id)


def test_referrer_catalogue(client: Client) -> None:
    got = {(r.id, r.name, r.domain) for r in client.referrers()}
    assert got == {
        (13, "Any", "*"),
        (1, "Google", "%google.%"),
        (2, "Bing", "%bing.%"),
        (3, "Yahoo", "%yahoo.%"),
        (14, "Twitter", "%twitter.com%"),
        (16, "LinkedIn", "%linkedin.com%"),
        (17, "Facebook", "%facebook.com%"),
    }


def test_find_and_ensure(client: Client, server: EmulatorServer) -> None:
    request = seed_request("national")
    assert client.find_number_pool(8, request.name) is None
    created = client.ensure_number_pool(8, request)
    assert client.find_number_pool(8, request.name.upper()) == created
    assert client.ensure_number_pool(8, request) == created  # repeated: nothing new
    assert server.emulator.pools(8) == [created]

    different = request.model_copy(update={"match_period": 45})
    with pytest.raises(Conflict, match="match_period") as info:
        client.ensure_number_pool(8, different)
    assert [p.path for p in info.value.field_errors] == ["match_period"]


def test_bad_arguments_are_config_errors(client: Client) -> None:
    with pytest.raises(ConfigError, match="group_id"):
        client.create_number_pool(-1, seed_request("tollfree"))
    with pytest.raises(ConfigError, match="quantity"):
        client.add_pool_numbers(1, 0, seed_request("tollfree").phone_number_request)
    with pytest.raises(ConfigError, match="token"):
        Client("   ")
    with pytest.raises(ConfigError, match="token"):
        Client("has space")


# ---- errors ------------------------------------------------------------------------


def test_400_surfaces_field_errors() -> None:
    broken = seed_request("tollfree").model_copy(update={"match_period": 0, "quantity": 0})
    with pytest.raises(ValidationFailed) as info:
        in_process(Emulator(), lambda c: c.create_number_pool(1, broken))
    error = info.value
    assert error.status == 400
    assert {p.path for p in error.field_errors} == {"match_period", "quantity"}
    assert "match_period" in str(error)
    assert "quantity" in str(error)
    assert isinstance(error, ApiError)
    assert isinstance(error, DniError)


def test_400_for_numbers_of_another_country(client: Client) -> None:
    pool = client.create_number_pool(1, seed_request("tollfree"))
    us = PhoneNumberRequest(number_type="international", match_type="tollfree", iso_country="US")
    with pytest.raises(ValidationFailed) as info:
        client.add_pool_numbers(pool.id, 1, us)
    assert [p.path for p in info.value.field_errors] == ["phone_number_request.iso_country"]


def test_401_without_a_valid_token() -> None:
    emulator = Emulator(tokens={TOKEN})

    async def wrong_token() -> None:
        async with AsyncClient(
            "not-the-token",
            base_url="http://emulator.test",
            transport=httpx.ASGITransport(app=emulator.app),
        ) as c:
            await c.referrers()

    with pytest.raises(AuthError) as info:
        asyncio.run(wrong_token())
    assert info.value.status == 401
    assert in_process(emulator, lambda c: c.referrers())  # the right token works

    async def no_header() -> httpx.Response:
        transport = httpx.ASGITransport(app=emulator.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e.test") as raw:
            return await raw.get("/reference/referrers")

    reply = asyncio.run(no_header())
    assert reply.status_code == 401
    assert "x-organization-token" in reply.json()["message"]


def test_404(client: Client) -> None:
    with pytest.raises(NotFound) as info:
        client.get_number_pool(424242)
    assert info.value.status == 404
    assert "424242" in info.value.message
    pool = client.create_number_pool(1, seed_request("tollfree"))
    with pytest.raises(NotFound, match="no number with id 1"):
        client.remove_pool_number(pool.id, 1)


def test_409_for_a_duplicate_name(client: Client) -> None:
    request = seed_request("geographic-area-code")
    client.create_number_pool(4, request)
    with pytest.raises(Conflict) as info:
        client.create_number_pool(4, named(request, request.name.lower()))
    assert info.value.status == 409
    assert "already has a number pool named" in info.value.message
    assert [p.path for p in info.value.field_errors] == ["name"]
    client.create_number_pool(5, request)  # unique per group only


def test_422_when_the_inventory_cannot_supply() -> None:
    request = seed_request("geographic-city").model_copy(update={"quantity": 6})
    with pytest.raises(ValidationFailed) as info:
        in_process(Emulator(stock=5), lambda c: c.create_number_pool(1, request))
    assert info.value.status == 422
    assert [p.path for p in info.value.field_errors] == ["quantity"]
    assert "only 5 numbers left" in info.value.message


# ---- retries -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["in-process", "loopback"])
def test_100_creations_through_30_percent_429_503(transport: str) -> None:
    emulator = Emulator(faults=Faults(error_rate=0.3, retry_after=0), seed=11)
    request = seed_request("tollfree")
    names = [f"Pool {i:03d}" for i in range(100)]
    if transport == "in-process":

        async def create_all(c: AsyncClient) -> list[NumberPool]:
            gate = asyncio.Semaphore(10)

            async def one(name: str) -> NumberPool:
                async with gate:
                    return await c.create_number_pool(GROUP, named(request, name))

            return list(await asyncio.gather(*(one(n) for n in names)))

        pools = in_process(emulator, create_all, retry=FAST)
    else:
        with (
            EmulatorServer(emulator) as running,
            Client(TOKEN, base_url=running.url, retry=FAST) as c,
        ):
            pools = [c.create_number_pool(GROUP, named(request, n)) for n in names]
    held = emulator.pools(GROUP)
    assert len(held) == 100
    assert sorted(p.name for p in held) == names
    assert {p.id for p in pools} == {p.id for p in held}
    injected = emulator.fault_counts
    assert injected.get("429", 0) + injected.get("503", 0) >= 20  # the faults really happened


def test_exhausted_retries_raise_the_last_error_and_create_nothing() -> None:
    emulator = Emulator(faults=Faults(error_rate=1.0, retry_after=0))
    policy = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.001)
    with pytest.raises((RateLimited, ServerError), match="gave up after 3 attempts"):
        in_process(
            emulator, lambda c: c.create_number_pool(1, seed_request("national")), retry=policy
        )
    assert emulator.pools() == []
    assert sum(emulator.fault_counts.values()) == 3


def test_connect_failures_are_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.001)
    caplog.set_level(logging.WARNING, logger="dni_engine.client")
    with (
        Client(TOKEN, base_url=f"http://127.0.0.1:{port}", retry=policy) as c,
        pytest.raises(ConnectionFailed, match="gave up after 3 attempts"),
    ):
        c.create_number_pool(1, seed_request("tollfree"))  # nothing was sent: safe to retry
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2


def test_retry_after_is_honoured_within_the_deadline() -> None:
    call = _create_pool_call(1, seed_request("tollfree"))
    request = httpx.Request("POST", "http://api.test/groups/1/numberpools")
    busy = httpx.Response(429, headers={"Retry-After": "2"}, request=request)

    exchange = _Exchange(call, RetryPolicy(backoff=0.001, deadline=60), TOKEN, httpx.Timeout(5))
    exchange.attempts = 1
    assert exchange.on_response(busy) == 2.0

    tight = _Exchange(call, RetryPolicy(backoff=0.001, deadline=1), TOKEN, httpx.Timeout(5))
    tight.attempts = 1
    with pytest.raises(RateLimited, match="deadline") as info:
        tight.on_response(busy)
    assert info.value.retry_after == 2.0


def test_retry_after_forms() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after("garbage") is None
    assert _retry_after(None) is None
    later = _retry_after(format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True))
    assert later is not None
    assert 60 < later <= 120
    assert _retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0.0


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=4.0)
    waits = [policy.delay(retry) for retry in range(1, 9) for _ in range(20)]
    assert all(0.5 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 100  # jittered, not one fixed schedule
    assert policy.delay(1, retry_after=30) == 30


def test_only_429_and_503_are_retried() -> None:
    call = _create_pool_call(1, seed_request("tollfree"))
    request = httpx.Request("POST", "http://api.test/groups/1/numberpools")
    for status, kind in ((500, ServerError), (502, ServerError), (400, ValidationFailed)):
        exchange = _Exchange(call, FAST, TOKEN, httpx.Timeout(5))
        exchange.attempts = 1
        with pytest.raises(kind):
            exchange.on_response(httpx.Response(status, json={"message": "no"}, request=request))
    for status in (429, 503):
        exchange = _Exchange(call, FAST, TOKEN, httpx.Timeout(5))
        exchange.attempts = 1
        wait = exchange.on_response(httpx.Response(status, request=request))
        assert wait is not None
        assert wait >= 0


# ---- ambiguous results: the server may have acted -------------------------------------


def test_dropped_connection_in_process_is_ambiguous() -> None:
    emulator = Emulator(faults=Faults(drop_rate=1.0))
    request = seed_request("tollfree")
    with pytest.raises(AmbiguousResult) as info:
        in_process(emulator, lambda c: c.create_number_pool(2, request), retry=FAST)
    assert info.value.pool_name == request.name
    assert info.value.group_id == 2
    assert len(emulator.pools(2)) == 1


def test_dropped_connection_is_ambiguous_and_never_duplicates(
    client: Client, server: EmulatorServer
) -> None:
    request = seed_request("geographic-city")
    server.emulator.faults = Faults(drop_rate=1.0)
    with pytest.raises(AmbiguousResult) as info:
        client.create_number_pool(9, request)
    error = info.value
    assert (error.pool_name, error.group_id, error.status) == (request.name, 9, None)
    assert request.name in str(error)
    assert "find_number_pool" in str(error)
    assert len(server.emulator.pools(9)) == 1  # the server acted once; the client did not repeat

    server.emulator.faults = Faults()
    pool = client.ensure_number_pool(9, request)
    assert server.emulator.pools(9) == [pool]


def test_ensure_under_dropped_connections_creates_each_pool_once(
    client: Client, server: EmulatorServer
) -> None:
    server.emulator.faults = Faults(drop_rate=0.3)
    request = seed_request("national")
    names = [f"Pool {i:02d}" for i in range(30)]
    pools = [client.ensure_number_pool(10, named(request, n)) for n in names]
    held = server.emulator.pools(10)
    assert sorted(p.name for p in held) == names
    assert {p.id for p in pools} == {p.id for p in held}
    assert server.emulator.fault_counts["drop"] >= 3


def test_read_timeout_is_ambiguous_and_ensure_cannot_duplicate() -> None:
    emulator = Emulator(faults=Faults(latency=0.5))
    request = seed_request("tollfree")
    with EmulatorServer(emulator) as running:
        timeout = httpx.Timeout(5.0, read=0.05)
        with Client(TOKEN, base_url=running.url, timeout=timeout, retry=FAST) as c:
            with pytest.raises(AmbiguousResult):
                c.create_number_pool(6, request)
            emulator.faults = Faults()
            pool = c.ensure_number_pool(6, request)
    # The server has finished the slow first request by now (stop() waits for it):
    # whichever of the two arrived second was refused as a duplicate name.
    assert emulator.pools(6) == [pool]


def test_get_requests_are_retried_after_a_drop(client: Client, server: EmulatorServer) -> None:
    pool = client.create_number_pool(1, seed_request("tollfree"))
    server.emulator.faults = Faults(drop_rate=0.5)
    for _ in range(10):
        assert client.get_number_pool(pool.id) == pool


# ---- the token stays secret -------------------------------------------------------------


def test_token_never_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "dni_engine"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[BaseException] = []
    request = seed_request("tollfree")
    emulator = Emulator(tokens={TOKEN})
    with EmulatorServer(emulator) as running:
        with Client(TOKEN, base_url=running.url, retry=FAST) as c:
            assert TOKEN not in repr(c)
            c.create_number_pool(1, request)
            emulator.faults = Faults(error_rate=0.5, retry_after=0)
            for group in range(2, 6):
                c.create_number_pool(group, request)
            emulator.faults = Faults(drop_rate=1.0)
            for action in (
                lambda: c.create_number_pool(7, request),
                lambda: c.get_number_pool(31849),
            ):
                with pytest.raises(ApiError) as info:
                    action()
                errors.append(info.value)
            emulator.faults = Faults()
            for action in (
                lambda: c.create_number_pool(1, request),
                lambda: c.get_number_pool(1),
                lambda: c.create_number_pool(1, request.model_copy(update={"quantity": 0})),
            ):
                with pytest.raises(ApiError) as info:
                    action()
                errors.append(info.value)
        with Client(TOKEN[::-1], base_url=running.url, retry=FAST) as wrong:
            assert TOKEN[::-1] not in repr(wrong)
            with pytest.raises(AuthError) as info:
                wrong.referrers()
            errors.append(info.value)
    assert {type(e).__name__ for e in errors} >= {
        "AmbiguousResult",
        "ConnectionFailed",
        "Conflict",
        "NotFound",
        "ValidationFailed",
        "AuthError",
    }
    formatter = logging.Formatter()
    assert len(caplog.records) > 20
    for record in caplog.records:
        assert TOKEN not in formatter.format(record)
        assert TOKEN[::-1] not in formatter.format(record)
    for error in errors:
        text = "".join(traceback.format_exception(error))
        for secret in (TOKEN, TOKEN[::-1]):
            assert secret not in str(error)
            assert secret not in repr(error)
            assert secret not in text


def test_a_server_message_quoting_the_token_is_redacted() -> None:
    request = httpx.Request("GET", "http://api.test/reference/referrers")
    reply = httpx.Response(
        401,
        json={
            "message": f"token {TOKEN} is revoked",
            "errors": [{"field": TOKEN, "message": TOKEN}],
        },
        request=request,
    )
    error = _error_from(reply, "list referrers", TOKEN)
    assert isinstance(error, AuthError)
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert "is revoked" in error.message
