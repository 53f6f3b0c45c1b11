"""Injected faults: latency, 429/503 answers and connections dropped after the server acted.

:class:`FaultInjector` wraps the emulator's ASGI app. Each request first waits
``latency`` seconds; then, with probability ``error_rate``, it is answered 429
or 503 (half each, with ``Retry-After``) *without* reaching the API, as a
gateway or rate limiter would; otherwise, with probability ``drop_rate``, the
API handles it (a pool is created) and the connection is then cut before the
response body is sent.

Over a real socket the cut is a real one: the status line and headers go out,
then the server closes the connection and the client sees a truncated response.
In-process (httpx's ``ASGITransport``, which re-raises app exceptions) the
same fault surfaces as :class:`ConnectionDropped`, an
``httpx.RemoteProtocolError``: the error an httpx client gets from the real cut.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections import Counter
from dataclasses import dataclass

import anyio
import httpx

from dni_engine.extras import MissingExtra

try:
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:
    raise MissingExtra("dni_engine.emulator", "emulator", exc.name) from exc

from dni_engine.errors import ConfigError, DniError, Problem

__all__ = ["ConnectionDropped", "FaultInjector", "Faults"]

logger = logging.getLogger("dni_engine.emulator")


class ConnectionDropped(DniError, httpx.RemoteProtocolError):
    """The emulator cut the connection after acting on the request (injected fault)."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults the emulator injects; the default injects none.

    ``latency``: seconds added before each request is handled.
    ``error_rate``: share of requests answered 429 or 503 without being acted on.
    ``drop_rate``: share of the remaining requests whose connection is cut
    after the server acted on them.
    ``retry_after``: whole seconds sent in ``Retry-After`` with 429/503.
    Raises :class:`~dni_engine.errors.ConfigError` for values out of range.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.latency) and self.latency >= 0):
            problems.append(Problem("latency", "must be a number of seconds, 0 or more"))
        for name in ("error_rate", "drop_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                problems.append(Problem(name, f"must be a share from 0 to 1, not {value!r}"))
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            problems.append(Problem("retry_after", "must be a whole number of seconds, 0 or more"))
        if problems:
            raise ConfigError(problems)

    @property
    def active(self) -> bool:
        """True when any fault is configured."""
        return bool(self.latency or self.error_rate or self.drop_rate)

    def describe(self) -> str:
        """One line for humans: ``latency 0.2 s, 30% 429/503 (Retry-After 1 s)...``."""
        parts = []
        if self.latency:
            parts.append(f"latency {self.latency:g} s")
        if self.error_rate:
            parts.append(f"{self.error_rate:.0%} 429/503 (Retry-After {self.retry_after} s)")
        if self.drop_rate:
            parts.append(f"{self.drop_rate:.0%} connections dropped after acting")
        return ", ".join(parts) or "none"


class FaultInjector:
    """ASGI middleware injecting :class:`Faults` into an app's HTTP requests.

    ``faults`` may be replaced at any time (it applies from the next request);
    ``counts`` tallies what was injected (``"429"``, ``"503"``, ``"drop"``).
    """

    def __init__(self, app: ASGIApp, faults: Faults, *, seed: int | None = 0) -> None:
        self.app = app
        self.faults = faults
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection, injecting the configured faults."""
        faults = self.faults
        if scope["type"] != "http" or not faults.active:
            await self.app(scope, receive, send)
            return
        with self._lock:
            fail = self._rng.random() < faults.error_rate
            status = self._rng.choice((429, 503))
            drop = self._rng.random() < faults.drop_rate
        if faults.latency:
            await anyio.sleep(faults.latency)
        what = f"{scope['method']} {scope['path']}"
        if fail:
            self._count(str(status))
            logger.warning("injected fault: answered %s with %d", what, status)
            reason = "too many requests" if status == 429 else "service unavailable"
            response = JSONResponse(
                {"message": f"{reason} (injected fault); retry after {faults.retry_after} s"},
                status_code=status,
                headers={"Retry-After": str(faults.retry_after)},
            )
            await response(scope, receive, send)
            return
        if not drop:
            await self.app(scope, receive, send)
            return
        answered: list[int] = []

        async def head_only(message: Message) -> None:
            # The status line and headers reach the wire; the body never does.
            if message["type"] == "http.response.start":
                answered.append(int(message["status"]))
                await send(message)

        await self.app(scope, receive, head_only)
        self._count("drop")
        status_text = str(answered[0]) if answered else "no response"
        logger.warning("injected fault: dropped the connection after %s (%s)", what, status_text)
        raise ConnectionDropped(
            f"the emulator dropped the connection after acting on {what} "
            f"({status_text}; injected fault)"
        )

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1
