"""The circuit breaker on its own: where it is imported from, and what it logs.

Its state machine is tested in ``test_store_redis.py``, next to the outages it
guards against.
"""

from __future__ import annotations

import logging

import pytest

from dni_engine.leases import SimulatedClock
from dni_engine.stores.breaker import CircuitBreaker


def test_the_breaker_is_importable_from_each_public_place() -> None:
    from dni_engine import stores
    from dni_engine.stores import redis

    assert stores.CircuitBreaker is CircuitBreaker
    assert redis.CircuitBreaker is CircuitBreaker
    assert redis.BreakerState is stores.BreakerState
    store = redis.RedisStore("redis://127.0.0.1:1")  # building one never touches Redis
    assert type(store.breaker) is CircuitBreaker
    store.close()


def test_the_breaker_logs_under_the_name_and_logger_it_is_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = SimulatedClock()
    logger = logging.getLogger("dni_engine.tests.breaker")
    breaker = CircuitBreaker(1.0, ticks, name="the vendor API", logger=logger)
    with caplog.at_level(logging.INFO, logger="dni_engine.tests.breaker"):
        breaker.failed()
        ticks.advance(1.0)
        assert breaker.allow()
        breaker.succeeded()
    messages = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert messages == [
        "circuit open: failing fast for 1 s between probes",
        "circuit closed: the vendor API answers again",
    ]
