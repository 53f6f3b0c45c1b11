"""Where lease state lives: the :class:`Store` protocol and its implementations.

:class:`MemoryStore` is the embedded store; the shared one,
:class:`~dni_engine.stores.redis.RedisStore`, is imported from
:mod:`dni_engine.stores.redis` (it needs redis-py). :class:`CircuitBreaker`
fails calls fast while a back end is down; :class:`Forgotten` says what
forgetting a visitor removed.
"""

from dni_engine.stores.base import Forgotten, Store, StoreError
from dni_engine.stores.breaker import BreakerState, CircuitBreaker
from dni_engine.stores.memory import MemoryStore, StoreFootprint

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Forgotten",
    "MemoryStore",
    "Store",
    "StoreError",
    "StoreFootprint",
]
