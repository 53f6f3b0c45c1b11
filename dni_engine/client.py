"""Thin, typed client of the vendor's Number Pool REST API, sync and async.

:class:`Client` and :class:`AsyncClient` send JSON built from the schema models
and return schema models (:class:`~dni_engine.schema.NumberPool`,
:class:`~dni_engine.schema.Referrer`). Everything but sending and sleeping is
shared between them in :class:`_Exchange`: building each attempt's request,
decoding the response, and deciding whether to try again.

Retries happen only when they are safe: when the request surely did not reach
the server (connection refused, connect timeout) and when the server answered
429 or 503 (it did not act), with capped, jittered exponential backoff that
honours ``Retry-After``, within an overall deadline. A GET may also be
repeated after a read failure. A POST or DELETE that may have reached the
server is never repeated blindly: the client raises :class:`AmbiguousResult`,
naming the pool, so the caller can check first -- :meth:`Client.ensure_number_pool`
does that check for pool creation and is safe to call again.

The token is sent only in the ``x-organization-token`` header. It never
appears in ``repr``, in log records or in exception text (a server message
that quotes it is redacted).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
import httpx
from pydantic import TypeAdapter, ValidationError

from dni_engine.errors import ConfigError, DniError, Problem
from dni_engine.schema import (
    TOKEN_HEADER,
    NumberPool,
    NumberPoolRequest,
    PhoneNumberRequest,
    PoolNumbersRequest,
    Referrer,
    pool_json,
    problems_from,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "TOKEN_HEADER",
    "AmbiguousResult",
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "InvalidResponse",
    "NotFound",
    "PoolNumbersRequest",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ValidationFailed",
    "pool_json",
]

DEFAULT_BASE_URL = "https://api.telmetrics.com/v3/api"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

logger = logging.getLogger("dni_engine.client")

T = TypeVar("T")


class ApiError(DniError):
    """The vendor API refused or failed a request.

    ``status`` is the HTTP status (``None`` when no response arrived),
    ``message`` the server's own message (or what went wrong on the way),
    ``field_errors`` the request fields the server blamed, ``operation`` what
    the client was doing (``create number pool 'X' in group 7``).
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        field_errors: Sequence[Problem] = (),
    ) -> None:
        self.message = message
        self.operation = operation
        self.status = status
        self.field_errors: tuple[Problem, ...] = tuple(field_errors)
        head = f"{operation} failed" if operation else "API request failed"
        if status is not None:
            head += f" with HTTP {status}"
        lines = [f"{head}: {message}", *(f"  {p}" for p in self.field_errors)]
        super().__init__("\n".join(lines))


class AuthError(ApiError):
    """401/403: the token is missing, wrong or not allowed to do this."""


class NotFound(ApiError):
    """404: no such pool, number or path."""


class Conflict(ApiError):
    """409: e.g. the group already has a pool of that name."""


class ValidationFailed(ApiError):
    """400/422: the server rejected the request; ``field_errors`` says where."""


class RateLimited(ApiError):
    """429 after the retries the policy allows; ``retry_after`` is the server's wish (s)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(ApiError):
    """5xx (after the retries the policy allows, for 503)."""


class ConnectionFailed(ApiError):
    """The API could not be reached, and nothing was changed by this request."""


class InvalidResponse(ApiError):
    """The API answered success with a body that is not what its contract says."""


class AmbiguousResult(ApiError):
    """A request that changes data may have reached the server, but no answer came back.

    It was not retried, because repeating it could act twice. ``pool_name``,
    ``group_id`` and ``pool_id`` name what it concerned; check (e.g. with
    :meth:`Client.find_number_pool`) before doing it again.
    """

    def __init__(
        self,
        message: str,
        *,
        pool_name: str | None = None,
        group_id: int | None = None,
        pool_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.pool_name = pool_name
        self.group_id = group_id
        self.pool_id = pool_id
        super().__init__(message, **kwargs)


_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    The n-th retry waits a random time between half and all of
    ``min(max_backoff, backoff * 2**(n-1))`` seconds, or ``Retry-After`` if the
    server asked for longer. No more than ``max_attempts`` attempts are made,
    and none that would start after ``deadline`` seconds from the first; each
    attempt's timeouts are cut to the time left.
    """

    max_attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 10.0
    deadline: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        problems = []
        if self.max_attempts < 1:
            problems.append(Problem("max_attempts", "must be at least 1"))
        for name in ("backoff", "max_backoff", "deadline"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                problems.append(Problem(name, "must be a number of seconds, 0 or more"))
        if problems:
            raise ConfigError(problems)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        wait = self.rng.uniform(ceiling / 2, ceiling)
        return max(wait, retry_after or 0.0)


_POOL = TypeAdapter(NumberPool)
_POOLS = TypeAdapter(list[NumberPool])
_REFERRERS = TypeAdapter(list[Referrer])


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API operation: what to send, how to read the answer, how to name it."""

    method: str
    path: str
    operation: str
    decoder: TypeAdapter[T]
    body: Any = None
    pool_name: str | None = None
    group_id: int | None = None
    pool_id: int | None = None
    check_hint: str = ""

    @property
    def idempotent(self) -> bool:
        """May this call be repeated after a failure in mid-exchange?"""
        return self.method == "GET"


def _check_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError([Problem(name, f"must be a non-negative integer, not {value!r}")])
    return value


def _create_pool_call(group_id: int, request: NumberPoolRequest) -> _Call[NumberPool]:
    _check_id("group_id", group_id)
    return _Call(
        "POST",
        f"/groups/{group_id}/numberpools",
        f"create number pool {request.name!r} in group {group_id}",
        _POOL,
        body=request.model_dump(mode="json", by_alias=True),
        pool_name=request.name,
        group_id=group_id,
        check_hint=(
            f"check with find_number_pool({group_id}, {request.name!r}), or call "
            "ensure_number_pool, which is safe to repeat, before creating it again"
        ),
    )


def _get_pool_call(pool_id: int) -> _Call[NumberPool]:
    _check_id("pool_id", pool_id)
    return _Call("GET", f"/numberpools/{pool_id}", f"get number pool {pool_id}", _POOL)


def _list_pools_call(group_id: int) -> _Call[list[NumberPool]]:
    _check_id("group_id", group_id)
    return _Call(
        "GET", f"/groups/{group_id}/numberpools", f"list number pools of group {group_id}", _POOLS
    )


def _referrers_call() -> _Call[list[Referrer]]:
    return _Call("GET", "/reference/referrers", "list referrers", _REFERRERS)


def _add_numbers_call(
    pool_id: int, quantity: int, phone_number_request: PhoneNumberRequest
) -> _Call[NumberPool]:
    _check_id("pool_id", pool_id)
    try:
        body = PoolNumbersRequest(quantity=quantity, phone_number_request=phone_number_request)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None
    return _Call(
        "POST",
        f"/numberpools/{pool_id}/numbers",
        f"add {quantity} numbers to number pool {pool_id}",
        _POOL,
        body=body.model_dump(mode="json", by_alias=True),
        pool_id=pool_id,
        check_hint=f"check the pool's numbers with get_number_pool({pool_id}) before adding again",
    )


def _remove_number_call(pool_id: int, number_id: int) -> _Call[NumberPool]:
    _check_id("pool_id", pool_id)
    _check_id("number_id", number_id)
    return _Call(
        "DELETE",
        f"/numberpools/{pool_id}/numbers/{number_id}",
        f"remove number {number_id} from number pool {pool_id}",
        _POOL,
        pool_id=pool_id,
        check_hint=f"check the pool's numbers with get_number_pool({pool_id})",
    )


# Failures that happen before any byte of the request is sent: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Failures where the request cannot be sent at all: retrying cannot help.
_UNSENDABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class _Exchange(Generic[T]):
    """One call through its attempts, without I/O.

    The clients loop: :meth:`request` -> send -> :meth:`on_response` or
    :meth:`on_transport_error`, each of which returns the seconds to sleep
    before the next attempt, ``None`` when done (then :meth:`result`), or
    raises the :class:`ApiError` to give the caller.
    """

    def __init__(
        self,
        call: _Call[T],
        policy: RetryPolicy,
        token: str,
        timeout: httpx.Timeout,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call = call
        self._policy = policy
        self._token = token
        self._timeout = timeout
        self._clock = clock
        self._started = clock()
        self.attempts = 0

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The next attempt's request, its timeouts cut to the deadline's time left."""
        self.attempts += 1
        left = max(self._policy.deadline - (self._clock() - self._started), 0.001)

        def cut(value: float | None) -> float:
            return left if value is None else min(value, left)

        timeout = httpx.Timeout(
            connect=cut(self._timeout.connect),
            read=cut(self._timeout.read),
            write=cut(self._timeout.write),
            pool=cut(self._timeout.pool),
        )
        return http.build_request(
            self.call.method,
            self.call.path,
            json=self.call.body,
            headers={TOKEN_HEADER: self._token},
            timeout=timeout,
        )

    def on_response(self, response: httpx.Response) -> float | None:
        """``None`` for a success; else seconds to wait before retrying, or raise."""
        call = self.call
        logger.debug(
            "%s %s -> %d (attempt %d)", call.method, call.path, response.status_code, self.attempts
        )
        if response.is_success:
            return None
        error = _error_from(response, call.operation, self._token)
        if response.status_code in (429, 503):
            return self._retry_or_raise(error, _retry_after(response.headers.get("retry-after")))
        raise error

    def on_transport_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after ``exc``, or raise."""
        call = self.call
        what = f"{type(exc).__name__}: {self._redact(str(exc)) or 'no detail'}"
        logger.debug("%s %s -> %s (attempt %d)", call.method, call.path, what, self.attempts)
        if isinstance(exc, _UNSENDABLE):
            raise ConnectionFailed(what, operation=call.operation) from exc
        if isinstance(exc, _NOT_SENT) or call.idempotent:
            failed = ConnectionFailed(f"could not reach the API ({what})", operation=call.operation)
            try:
                return self._retry_or_raise(failed)
            except ConnectionFailed as final:
                raise final from exc
        raise AmbiguousResult(
            f"the connection failed after the request was sent ({what}), so the API may or may "
            f"not have done it; {call.check_hint}",
            operation=call.operation,
            pool_name=call.pool_name,
            group_id=call.group_id,
            pool_id=call.pool_id,
        ) from exc

    def result(self, response: httpx.Response) -> T:
        """Decode a success response into the call's model."""
        operation = self.call.operation
        try:
            data = response.json()
        except ValueError:
            raise InvalidResponse(
                "the response body is not JSON", operation=operation, status=response.status_code
            ) from None
        try:
            return self.call.decoder.validate_python(data)
        except ValidationError as exc:
            raise InvalidResponse(
                "the response does not match the API's schema",
                operation=operation,
                status=response.status_code,
                field_errors=problems_from(exc),
            ) from None

    def _retry_or_raise(self, error: ApiError, retry_after: float | None = None) -> float:
        policy = self._policy
        attempts = self.attempts
        if attempts >= policy.max_attempts:
            raise _annotated(error, f"gave up after {attempts} attempts")
        wait = policy.delay(attempts, retry_after)
        if self._clock() - self._started + wait > policy.deadline:
            raise _annotated(error, f"gave up after {attempts} attempts: deadline reached")
        call = self.call
        logger.warning(
            "%s: %s; retrying in %.3f s (attempt %d of %d)",
            call.operation,
            error.message if error.status is None else f"HTTP {error.status}",
            wait,
            attempts + 1,
            policy.max_attempts,
        )
        return wait

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


def _annotated(error: ApiError, note: str) -> ApiError:
    """``error`` with ``note`` appended to its message, same type and fields."""
    kwargs: dict[str, Any] = {
        "operation": error.operation,
        "status": error.status,
        "field_errors": error.field_errors,
    }
    if isinstance(error, RateLimited):
        kwargs["retry_after"] = error.retry_after
    return type(error)(f"{error.message} ({note})", **kwargs)


def _retry_after(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (delay-seconds or an HTTP date), ``None`` if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _error_from(response: httpx.Response, operation: str, token: str) -> ApiError:
    """The :class:`ApiError` for a failed response, reading the server's message and
    field errors from a JSON body when there is one. The token is redacted."""

    def clean(text: Any) -> str:
        out = str(text).strip()
        return out.replace(token, "<token>") if token else out

    try:
        body: Any = response.json()
    except ValueError:
        body = None
    message = ""
    problems: list[Problem] = []
    if isinstance(body, dict):
        for key in ("message", "Message", "error", "detail", "title"):
            if isinstance(body.get(key), str) and body[key].strip():
                message = clean(body[key])
                break
        errors = body.get("errors") or body.get("Errors")
        if isinstance(errors, list):
            for item in errors:
                if isinstance(item, dict):
                    where = item.get("field") or item.get("path") or item.get("loc") or "$"
                    why = item.get("message") or item.get("reason") or item.get("msg") or ""
                    problems.append(Problem(clean(where), clean(why)))
                else:
                    problems.append(Problem("$", clean(item)))
        elif isinstance(errors, dict):
            for where, why in errors.items():
                reasons = why if isinstance(why, list) else [why]
                problems.extend(Problem(clean(where), clean(r)) for r in reasons)
    if not message:
        text = "" if isinstance(body, dict | list) else clean(response.text[:200])
        message = text or response.reason_phrase or "no message"
    status = response.status_code
    kind = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    if kind is RateLimited:
        return RateLimited(
            message,
            operation=operation,
            status=status,
            field_errors=problems,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    return kind(message, operation=operation, status=status, field_errors=problems)


def _check_token(token: str) -> str:
    # The reasons never quote the token: a mistyped token is still a secret.
    if not isinstance(token, str) or not token.strip():
        raise ConfigError([Problem("token", "the API token is empty")])
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        raise ConfigError(
            [Problem("token", "the API token may hold only printable ASCII, without spaces")]
        )
    return token


def _same_pool(request: NumberPoolRequest, pool: NumberPool) -> NumberPool:
    """``pool`` if it is what ``request`` would create; else raise :class:`Conflict`."""
    fields = {"name", "match_period", "quantity", "replacement_configuration", "call_routes"}
    wanted = request.to_pool(id=pool.id, group_id=pool.group_id, numbers=pool.numbers)
    ours = wanted.model_dump(mode="json", include=fields | {"sms_routes"})
    theirs = pool.model_dump(mode="json", include=fields | {"sms_routes"})
    differ = sorted(k for k in ours if ours[k] != theirs.get(k))
    if differ:
        raise Conflict(
            f"group {pool.group_id} already has a number pool named {pool.name!r} (id {pool.id}) "
            f"with a different {', '.join(differ)}",
            operation=f"ensure number pool {request.name!r} in group {pool.group_id}",
            status=409,
            field_errors=[Problem(k, "differs from the existing pool") for k in differ],
        )
    return pool


def _named(pools: list[NumberPool], name: str) -> NumberPool | None:
    key = name.strip().casefold()
    return next((p for p in pools if p.name.strip().casefold() == key), None)


class _Base:
    """Settings shared by both clients; the token is kept out of ``repr``."""

    def __init__(
        self, token: str, base_url: str, timeout: float | httpx.Timeout, retry: RetryPolicy | None
    ) -> None:
        self._token = _check_token(token)
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, token=<hidden>)"

    def _exchange(self, call: _Call[T]) -> _Exchange[T]:
        return _Exchange(call, self.retry, self._token, self._timeout)

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "timeout": self._timeout,
            "headers": {"accept": "application/json", "user-agent": "dni-engine"},
        }


class Client(_Base):
    """Synchronous client of the Number Pool API.

    ``token`` is the organization's API token; ``timeout`` seconds or an
    ``httpx.Timeout`` per attempt; ``transport`` an optional httpx transport
    (local address, proxy, TLS settings); ``retry`` the :class:`RetryPolicy`
    (the default one when ``None``). Use as a context manager, or call
    :meth:`close`. Every method raises :class:`ApiError` (or a subclass) on
    failure, and :class:`~dni_engine.errors.ConfigError` for bad arguments.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(token, base_url, timeout, retry)
        self._http = httpx.Client(transport=transport, **self._client_options())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        exchange = self._exchange(call)
        while True:
            request = exchange.request(self._http)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = exchange.on_transport_error(exc)
            else:
                wait = exchange.on_response(response)
                if wait is None:
                    return exchange.result(response)
                delay = wait
            time.sleep(delay)

    def create_number_pool(self, group_id: int, request: NumberPoolRequest) -> NumberPool:
        """Create a pool in ``group_id``; returns it with its numbers.

        Raises :class:`Conflict` if the group has a pool of that name, and
        :class:`AmbiguousResult` if the connection failed after sending.
        """
        return self._run(_create_pool_call(group_id, request))

    def get_number_pool(self, pool_id: int) -> NumberPool:
        """The pool with id ``pool_id`` (:class:`NotFound` if none)."""
        return self._run(_get_pool_call(pool_id))

    def list_number_pools(self, group_id: int) -> list[NumberPool]:
        """Every pool of ``group_id``."""
        return self._run(_list_pools_call(group_id))

    def find_number_pool(self, group_id: int, name: str) -> NumberPool | None:
        """The pool of ``group_id`` named ``name`` (any case), or ``None``."""
        return _named(self.list_number_pools(group_id), name)

    def ensure_number_pool(self, group_id: int, request: NumberPoolRequest) -> NumberPool:
        """Create the pool unless the group already has it; safe to call again.

        After an ambiguous failure, or a 409, the group's pools are listed: a
        pool of that name with the same settings is returned, one with other
        settings raises :class:`Conflict`. If none is found the pool is created
        again, which cannot duplicate it: the API refuses a second pool of one
        name in a group, so a first attempt still in flight ends in a 409.
        """
        error: ApiError | None = None
        for _ in range(self.retry.max_attempts):
            try:
                return self.create_number_pool(group_id, request)
            except (AmbiguousResult, Conflict) as exc:
                error = exc
            existing = self.find_number_pool(group_id, request.name)
            if existing is not None:
                return _same_pool(request, existing)
        assert error is not None
        raise error

    def referrers(self) -> list[Referrer]:
        """The vendor's referrer catalogue."""
        return self._run(_referrers_call())

    def add_pool_numbers(
        self, pool_id: int, quantity: int, phone_number_request: PhoneNumberRequest
    ) -> NumberPool:
        """Add ``quantity`` numbers of ``phone_number_request``'s kind; returns the pool."""
        return self._run(_add_numbers_call(pool_id, quantity, phone_number_request))

    def remove_pool_number(self, pool_id: int, number_id: int) -> NumberPool:
        """Remove the number with id ``number_id`` from a pool; returns the pool."""
        return self._run(_remove_number_call(pool_id, number_id))


class AsyncClient(_Base):
    """Asynchronous twin of :class:`Client` (same methods, awaited).

    ``transport`` may be ``httpx.ASGITransport(app=Emulator().app)`` to talk to
    the emulator in-process. Use with ``async with``, or call :meth:`aclose`.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(token, base_url, timeout, retry)
        self._http = httpx.AsyncClient(transport=transport, **self._client_options())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        exchange = self._exchange(call)
        while True:
            request = exchange.request(self._http)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = exchange.on_transport_error(exc)
            else:
                wait = exchange.on_response(response)
                if wait is None:
                    return exchange.result(response)
                delay = wait
            await anyio.sleep(delay)

    async def create_number_pool(self, group_id: int, request: NumberPoolRequest) -> NumberPool:
        """See :meth:`Client.create_number_pool`."""
        return await self._run(_create_pool_call(group_id, request))

    async def get_number_pool(self, pool_id: int) -> NumberPool:
        """See :meth:`Client.get_number_pool`."""
        return await self._run(_get_pool_call(pool_id))

    async def list_number_pools(self, group_id: int) -> list[NumberPool]:
        """See :meth:`Client.list_number_pools`."""
        return await self._run(_list_pools_call(group_id))

    async def find_number_pool(self, group_id: int, name: str) -> NumberPool | None:
        """See :meth:`Client.find_number_pool`."""
        return _named(await self.list_number_pools(group_id), name)

    async def ensure_number_pool(self, group_id: int, request: NumberPoolRequest) -> NumberPool:
        """See :meth:`Client.ensure_number_pool`."""
        error: ApiError | None = None
        for _ in range(self.retry.max_attempts):
            try:
                return await self.create_number_pool(group_id, request)
            except (AmbiguousResult, Conflict) as exc:
                error = exc
            existing = await self.find_number_pool(group_id, request.name)
            if existing is not None:
                return _same_pool(request, existing)
        assert error is not None
        raise error

    async def referrers(self) -> list[Referrer]:
        """See :meth:`Client.referrers`."""
        return await self._run(_referrers_call())

    async def add_pool_numbers(
        self, pool_id: int, quantity: int, phone_number_request: PhoneNumberRequest
    ) -> NumberPool:
        """See :meth:`Client.add_pool_numbers`."""
        return await self._run(_add_numbers_call(pool_id, quantity, phone_number_request))

    async def remove_pool_number(self, pool_id: int, number_id: int) -> NumberPool:
        """See :meth:`Client.remove_pool_number`."""
        return await self._run(_remove_number_call(pool_id, number_id))
