"""The emulator's HTTP API: the vendor's Number Pool paths as a Starlette app.

Paths (served at the root and under ``/v3/api``, so either form of base URL
works):

==========  ==========================================  ==========================
``POST``    ``/groups/{group_id}/numberpools``           create a pool (201)
``GET``     ``/groups/{group_id}/numberpools``           the group's pools (a list)
``GET``     ``/numberpools/{pool_id}``                   one pool
``POST``    ``/numberpools/{pool_id}/numbers``           add numbers (200, the pool)
``DELETE``  ``/numberpools/{pool_id}/numbers/{id}``      remove a number (200, the pool)
``GET``     ``/reference/referrers``                     the referrer catalogue
==========  ==========================================  ==========================

Every request needs an ``x-organization-token`` header (401 without). Errors
are ``{"message": ..., "errors": [{"field": ..., "message": ...}]}``.

Bodies are JSON: a ``Content-Type`` other than ``application/json`` (any
``charset`` but UTF-8 included) is answered 415; a body without one is read as
JSON. A body over :data:`MAX_BODY_BYTES` is answered 413 as soon as its
``Content-Length`` or the bytes read so far pass the limit, without reading
the rest (the connection is then closed). JSON nested deeper than
:data:`~dni_engine.schema.MAX_JSON_DEPTH` or holding an integer of more than
:data:`~dni_engine.schema.MAX_JSON_INT_DIGITS` digits (the limits of pool
files) is answered 400. Ids in paths are whole numbers
from 0 to :data:`MAX_ID`; any other id names nothing (404).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dni_engine.extras import MissingExtra

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import BaseRoute, Mount, Route
    from starlette.types import ASGIApp
except ImportError as exc:
    raise MissingExtra("dni_engine.emulator", "emulator", exc.name) from exc

from dni_engine.emulator.faults import FaultInjector, Faults
from dni_engine.emulator.inventory import DEFAULT_STOCK, Inventory
from dni_engine.emulator.refusal import Refusal
from dni_engine.emulator.registry import PoolRegistry
from dni_engine.errors import Problem
from dni_engine.referrers import ANY_VENDOR_DOMAIN, ANY_VENDOR_ID, CATALOGUE
from dni_engine.schema import (
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    TOKEN_HEADER,
    NumberPool,
    NumberPoolRequest,
    PoolNumbersRequest,
    Referrer,
    pool_json,
    problems_from,
)

__all__ = ["MAX_BODY_BYTES", "MAX_ID", "Emulator", "referrer_catalogue"]

logger = logging.getLogger("dni_engine.emulator")

MAX_BODY_BYTES = 1_000_000
"""Largest request body read, in bytes; a larger one is answered 413."""
MAX_ID = 2**63 - 1
"""Largest group, pool or number id in a path (a signed 64-bit integer)."""

_ID = re.compile(r"[0-9]{1,19}")

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


def referrer_catalogue() -> list[Referrer]:
    """The vendor's referrer catalogue, ``Any`` included, by ``Id``."""
    items = [{"Id": ANY_VENDOR_ID, "name": "Any", "domain": ANY_VENDOR_DOMAIN}]
    items += [
        {"Id": e.vendor_id, "name": e.name, "domain": e.vendor_domain}
        for e in CATALOGUE
        if e.vendor_id is not None and e.vendor_domain is not None
    ]
    return sorted((Referrer.model_validate(item) for item in items), key=lambda r: r.id)


class Emulator:
    """A local, in-memory stand-in for the vendor's Number Pool API.

    ``app`` is the ASGI app: serve it with uvicorn (``dni-engine emulator``,
    :class:`~dni_engine.emulator.server.EmulatorServer`) or call it in-process
    with ``httpx.ASGITransport(app=emulator.app)``. ``faults`` (settable at any
    time) injects latency, 429/503 and dropped connections; ``tokens``, if
    given, are the only tokens accepted; ``stock`` and ``seed`` configure the
    :class:`~dni_engine.emulator.inventory.Inventory`. State lives in memory
    and is safe to share between threads.
    """

    def __init__(
        self,
        *,
        faults: Faults | None = None,
        tokens: Iterable[str] | None = None,
        stock: int = DEFAULT_STOCK,
        seed: int | None = 0,
    ) -> None:
        self.inventory = Inventory(stock=stock, seed=seed)
        self.registry = PoolRegistry(self.inventory)
        self._tokens = frozenset(tokens) if tokens is not None else None
        self._injector = FaultInjector(self._starlette(), faults or Faults(), seed=seed)

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (faults included)."""
        return self._injector

    @property
    def faults(self) -> Faults:
        """The faults injected from the next request on."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector.faults = faults

    @property
    def fault_counts(self) -> dict[str, int]:
        """How many faults were injected, by kind (``"429"``, ``"503"``, ``"drop"``)."""
        return dict(self._injector.counts)

    def pools(self, group_id: int | None = None) -> list[NumberPool]:
        """The pools held (of one group, or all), oldest first."""
        return self.registry.pools(group_id)

    def _starlette(self) -> Starlette:
        routes: list[BaseRoute] = [
            # Ids are read by _path_id, not by starlette's int convertor, so that an
            # id out of range is a 404 naming it rather than an error converting it.
            Route(
                "/groups/{group_id}/numberpools",
                self._guarded(self._create_pool),
                methods=["POST"],
            ),
            Route(
                "/groups/{group_id}/numberpools",
                self._guarded(self._list_pools),
                methods=["GET"],
            ),
            Route("/numberpools/{pool_id}", self._guarded(self._get_pool), methods=["GET"]),
            Route(
                "/numberpools/{pool_id}/numbers",
                self._guarded(self._add_numbers),
                methods=["POST"],
            ),
            Route(
                "/numberpools/{pool_id}/numbers/{number_id}",
                self._guarded(self._remove_number),
                methods=["DELETE"],
            ),
            Route("/reference/referrers", self._guarded(self._referrers), methods=["GET"]),
        ]
        return Starlette(
            routes=[*routes, Mount("/v3/api", routes=routes)],
            exception_handlers={HTTPException: _http_error},
        )

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` behind the token check, with refusals rendered as JSON errors."""

        async def guarded(request: Request) -> Response:
            try:
                self._authenticate(request)
                return await endpoint(request)
            except Refusal as refusal:
                if refusal.status >= 500 or refusal.status == 401:
                    logger.info("%s %s: %s", request.method, request.url.path, refusal.message)
                return JSONResponse(
                    refusal.to_json(), status_code=refusal.status, headers=_closing(request)
                )

        return guarded

    def _authenticate(self, request: Request) -> None:
        # The token is never written to a log or echoed in a message.
        token = request.headers.get(TOKEN_HEADER, "").strip()
        if not token:
            raise Refusal(401, f"missing {TOKEN_HEADER} header: send your organization's token")
        if self._tokens is not None and token not in self._tokens:
            raise Refusal(401, f"the {TOKEN_HEADER} header does not hold a valid token")

    async def _create_pool(self, request: Request) -> Response:
        group_id = _path_id(request, "group_id", "group")
        body = _validate(NumberPoolRequest, await _json_body(request), "number pool request")
        pool = self.registry.create(group_id, body)
        logger.info(
            "created number pool %d %r in group %d with %d numbers",
            pool.id,
            pool.name,
            group_id,
            len(pool.numbers),
        )
        return JSONResponse(pool_json(pool), status_code=201)

    async def _list_pools(self, request: Request) -> Response:
        group_id = _path_id(request, "group_id", "group")
        return JSONResponse([pool_json(p) for p in self.registry.pools(group_id)])

    async def _get_pool(self, request: Request) -> Response:
        pool = self.registry.get(_path_id(request, "pool_id", "number pool"))
        return JSONResponse(pool_json(pool))

    async def _add_numbers(self, request: Request) -> Response:
        pool_id = _path_id(request, "pool_id", "number pool")
        body = _validate(PoolNumbersRequest, await _json_body(request), "request to add numbers")
        pool = self.registry.add_numbers(pool_id, body.quantity, body.phone_number_request)
        return JSONResponse(pool_json(pool))

    async def _remove_number(self, request: Request) -> Response:
        pool = self.registry.remove_number(
            _path_id(request, "pool_id", "number pool"), _path_id(request, "number_id", "number")
        )
        return JSONResponse(pool_json(pool))

    async def _referrers(self, request: Request) -> Response:
        return JSONResponse(
            [r.model_dump(mode="json", by_alias=True) for r in referrer_catalogue()]
        )


def _path_id(request: Request, name: str, what: str) -> int:
    """The id ``name`` of the request's path; 404 unless it is a whole number 0..MAX_ID."""
    text = str(request.path_params[name])
    if _ID.fullmatch(text) and int(text) <= MAX_ID:
        return int(text)
    shown = text if len(text) <= 40 else f"{text[:40]}..."
    raise Refusal(
        404, f"there is no {what} with id {shown!r}: ids are whole numbers from 0 to {MAX_ID}"
    )


async def _json_body(request: Request) -> Any:
    """The request body read as JSON, within the limits of the module notes."""
    _check_content_type(request.headers.get("content-type"))
    raw = await _read_body(request)
    if not raw.strip():
        raise Refusal(400, "the request has no body", [Problem("$", "a JSON object is required")])
    try:
        data = json.loads(raw, parse_int=_parse_int)
    except _TooManyDigits:
        raise _unreadable(f"an integer has more than {MAX_JSON_INT_DIGITS} digits") from None
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal(
            400, "the request body is not valid JSON", [Problem("$", f"not valid JSON: {exc}")]
        ) from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise _too_deep()
    return data


def _check_content_type(value: str | None) -> None:
    """415 unless ``value`` is missing or ``application/json`` (with a UTF-8 charset, if any)."""
    if value is None:
        return
    media_type, *params = (part.strip().lower() for part in value.split(";"))
    charsets = [p.partition("=")[2].strip().strip('"') for p in params if p.startswith("charset=")]
    if media_type == "application/json" and all(c in ("utf-8", "utf8") for c in charsets):
        return
    shown = value if len(value) <= 80 else f"{value[:80]}..."
    raise Refusal(
        415,
        f"the request body must be application/json (UTF-8), not {shown!r}",
        [Problem("$", "send Content-Type: application/json")],
    )


async def _read_body(request: Request) -> bytes:
    """The request body; 413 as soon as it is known to exceed :data:`MAX_BODY_BYTES`."""
    too_big = Refusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "").strip()
    if re.fullmatch(r"[0-9]+", declared) and (len(declared) > 18 or int(declared) > MAX_BODY_BYTES):
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_big  # the rest is never read
    request.state.body_read = True
    return bytes(body)


def _closing(request: Request) -> dict[str, str]:
    """``Connection: close`` for an answer that leaves the request's body unread.

    Without it the server would keep the connection and read (and discard)
    whatever the client still sends; closing it tells the client to stop.
    """
    headers = request.headers
    sends_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
    return (
        {"Connection": "close"}
        if sends_body and not getattr(request.state, "body_read", False)
        else {}
    )


class _TooManyDigits(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _TooManyDigits(text[:20])
    return int(text)


def _depth(data: Any) -> int:
    """How deep arrays and objects nest in ``data`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            if depth + 1 > MAX_JSON_DEPTH:
                break
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _unreadable(reason: str) -> Refusal:
    return Refusal(400, f"the request body is refused: {reason}", [Problem("$", reason)])


def _too_deep() -> Refusal:
    return _unreadable(f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep")


def _validate(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise Refusal(400, f"the {what} is invalid: {count}", problems) from None


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path 404, wrong method 405) as JSON, like the API's own."""
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"message": f"{exc.detail}: {request.method} {request.url.path}"},
        status_code=exc.status_code,
        headers={**(exc.headers or {}), **_closing(request)},
    )
