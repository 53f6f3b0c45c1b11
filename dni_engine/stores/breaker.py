"""A circuit breaker: fail calls to a back end at once while it is down, and probe it.

:class:`CircuitBreaker` knows nothing of what it guards: the caller asks
:meth:`~CircuitBreaker.allow` before each call and reports how it went with
:meth:`~CircuitBreaker.succeeded` or :meth:`~CircuitBreaker.failed`. Its time
is an injected monotonic clock, so tests move it by hand.
:class:`~dni_engine.stores.redis.RedisStore` puts one in front of Redis.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Final, Literal

from dni_engine.errors import ConfigError, Problem

__all__ = ["DEFAULT_OPEN_SECONDS", "BreakerState", "CircuitBreaker"]

log = logging.getLogger("dni_engine.stores.breaker")

DEFAULT_OPEN_SECONDS: Final = 1.0
"""How long a breaker fails fast after a failure before it lets a probe through."""

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Fails calls fast while the back end is down, and probes it once per interval.

    Closed, every call goes through. After a failure it is *open* for
    ``open_seconds`` of ``clock`` (monotonic wall time, never the engine's
    clock): :meth:`allow` says no at once. Then one call is let through as a
    probe (*half open*): :meth:`succeeded` closes the breaker, :meth:`failed`
    opens it again; if the probe never reports, another is let through one
    interval later. Thread-safe; the closed path takes no lock.

    ``name`` is what the back end is called in the breaker's log records
    (INFO, on ``logger``), when it opens and when it closes again.
    """

    __slots__ = (
        "_clock",
        "_lock",
        "_log",
        "_name",
        "_open_until",
        "_probing",
        "failures",
        "open_seconds",
        "rejected",
    )

    def __init__(
        self,
        open_seconds: float = DEFAULT_OPEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "the back end",
        logger: logging.Logger = log,
    ) -> None:
        if not (math.isfinite(open_seconds) and open_seconds >= 0):
            raise ConfigError([Problem("breaker_open_seconds", "must be a number of seconds >= 0")])
        self.open_seconds = float(open_seconds)
        self._clock = clock
        self._name = name
        self._log = logger
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._probing = False
        self.failures = 0
        """Failed calls so far (each one opened the breaker)."""
        self.rejected = 0
        """Calls refused without trying, while the breaker was open."""

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` (failing fast) or ``half_open`` (a probe is out)."""
        if self._open_until is None:
            return "closed"
        return "half_open" if self._probing else "open"

    def allow(self) -> bool:
        """True if a call may go to the back end now (it must then report back)."""
        if self._open_until is None:
            return True
        with self._lock:
            if self._open_until is None:
                return True
            now = self._clock()
            if now >= self._open_until:
                self._open_until = now + self.open_seconds
                self._probing = True
                return True
            self.rejected += 1
            return False

    def succeeded(self) -> None:
        """The back end answered: close the breaker."""
        if self._open_until is not None:
            with self._lock:
                if self._open_until is not None:
                    self._log.info("circuit closed: %s answers again", self._name)
                self._open_until = None
                self._probing = False

    def failed(self) -> None:
        """The back end failed: fail fast for the next ``open_seconds``."""
        with self._lock:
            if self._open_until is None:
                # INFO only: the caller warns once per outage; this is the detail.
                self._log.info(
                    "circuit open: failing fast for %g s between probes", self.open_seconds
                )
            self.failures += 1
            self._probing = False
            self._open_until = self._clock() + self.open_seconds

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.state}, failures={self.failures}, rejected={self.rejected})"
