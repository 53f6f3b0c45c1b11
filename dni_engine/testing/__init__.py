"""Public test harness: pool builders, strategies, a reference oracle, state machines, servers.

The pool builders (:mod:`dni_engine.testing.pools`) need only the core install and are
importable from here. Import the other modules by name
(``from dni_engine.testing import oracle, strategies``): :mod:`~dni_engine.testing.oracle`
needs no extra, while :mod:`~dni_engine.testing.strategies`,
:mod:`~dni_engine.testing.state_machine` and :mod:`~dni_engine.testing.redis_server` need
the ``testing`` extra (and the servers a ``redis-server`` binary).
"""

from dni_engine.testing.pools import (
    EXAMPLE_COUNTRIES,
    PoolArguments,
    build_pool,
    example_numbers,
    pool_document,
    source,
)

__all__ = [
    "EXAMPLE_COUNTRIES",
    "PoolArguments",
    "build_pool",
    "example_numbers",
    "oracle",
    "pool_document",
    "redis_server",
    "source",
    "state_machine",
    "strategies",
]
