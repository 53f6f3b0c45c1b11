"""Public test harness: pool builders, strategies, a reference oracle, state machines, servers.

The pool builders (:mod:`dni_engine.testing.pools`) need only the core install
and are importable from here; ``strategies`` and ``state_machine`` need the
``testing`` extra (hypothesis), ``redis_server`` the ``testing`` extra and a
``redis-server`` binary.
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
    "pool_document",
    "source",
]
