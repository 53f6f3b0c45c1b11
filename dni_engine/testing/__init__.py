"""Public test harness: hypothesis strategies, a reference oracle, state machines, servers.

Import its modules by name (``from dni_engine.testing import oracle, strategies``):
:mod:`~dni_engine.testing.oracle` needs no extra, while
:mod:`~dni_engine.testing.strategies`, :mod:`~dni_engine.testing.state_machine` and
:mod:`~dni_engine.testing.redis_server` need the ``testing`` extra (and the servers a
``redis-server`` binary).
"""

__all__ = ["oracle", "redis_server", "state_machine", "strategies"]
