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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from dni_engine.client import TOKEN_HEADER, PoolNumbersRequest, pool_json
from dni_engine.emulator.faults import FaultInjector, Faults
from dni_engine.emulator.inventory import DEFAULT_STOCK, Inventory
from dni_engine.emulator.refusal import Refusal
from dni_engine.emulator.registry import PoolRegistry
from dni_engine.errors import Problem
from dni_engine.referrers import ANY_VENDOR_DOMAIN, ANY_VENDOR_ID, CATALOGUE
from dni_engine.schema import NumberPool, NumberPoolRequest, Referrer, problems_from

logger = logging.getLogger("dni_engine.emulator")

MAX_BODY_BYTES = 1_000_000

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

    # ---- HTTP ------------------------------------------------------------------

    def _starlette(self) -> Starlette:
        routes: list[BaseRoute] = [
            Route(
                "/groups/{group_id:int}/numberpools",
                self._guarded(self._create_pool),
                methods=["POST"],
            ),
            Route(
                "/groups/{group_id:int}/numberpools",
                self._guarded(self._list_pools),
                methods=["GET"],
            ),
            Route("/numberpools/{pool_id:int}", self._guarded(self._get_pool), methods=["GET"]),
            Route(
                "/numberpools/{pool_id:int}/numbers",
                self._guarded(self._add_numbers),
                methods=["POST"],
            ),
            Route(
                "/numberpools/{pool_id:int}/numbers/{number_id:int}",
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
                return JSONResponse(refusal.to_json(), status_code=refusal.status)

        return guarded

    def _authenticate(self, request: Request) -> None:
        # The token is never written to a log or echoed in a message.
        token = request.headers.get(TOKEN_HEADER, "").strip()
        if not token:
            raise Refusal(401, f"missing {TOKEN_HEADER} header: send your organization's token")
        if self._tokens is not None and token not in self._tokens:
            raise Refusal(401, f"the {TOKEN_HEADER} header does not hold a valid token")

    async def _create_pool(self, request: Request) -> Response:
        group_id = int(request.path_params["group_id"])
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
        group_id = int(request.path_params["group_id"])
        return JSONResponse([pool_json(p) for p in self.registry.pools(group_id)])

    async def _get_pool(self, request: Request) -> Response:
        pool = self.registry.get(int(request.path_params["pool_id"]))
        return JSONResponse(pool_json(pool))

    async def _add_numbers(self, request: Request) -> Response:
        pool_id = int(request.path_params["pool_id"])
        body = _validate(PoolNumbersRequest, await _json_body(request), "request to add numbers")
        pool = self.registry.add_numbers(pool_id, body.quantity, body.phone_number_request)
        return JSONResponse(pool_json(pool))

    async def _remove_number(self, request: Request) -> Response:
        pool = self.registry.remove_number(
            int(request.path_params["pool_id"]), int(request.path_params["number_id"])
        )
        return JSONResponse(pool_json(pool))

    async def _referrers(self, request: Request) -> Response:
        return JSONResponse(
            [r.model_dump(mode="json", by_alias=True) for r in referrer_catalogue()]
        )


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Refusal(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise Refusal(400, "the request has no body", [Problem("$", "a JSON object is required")])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal(
            400, "the request body is not valid JSON", [Problem("$", f"not valid JSON: {exc}")]
        ) from None


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
        headers=exc.headers,
    )
