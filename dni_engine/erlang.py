"""Erlang B: the blocking probability of a loss system, to check simulations against theory.

A pool of ``n`` numbers held for a mean ``h`` seconds by visitors arriving at
``λ`` per second is an M/G/n/n loss system with offered load ``A = λ·h``
Erlangs; the share of visitors who find every number busy is Erlang B, whatever
the distribution of the hold time.
"""

from __future__ import annotations

import math

__all__ = ["erlang_b", "servers_for"]


def erlang_b(offered_load: float, servers: int) -> float:
    """Blocking probability B(A, n) for ``offered_load`` A Erlangs on ``servers`` n.

    Uses the stable recurrence ``B(A, 0) = 1``, ``B(A, k) = A·B / (k + A·B)``.
    Raises ``ValueError`` for a negative or non-finite load or negative servers.
    """
    if not math.isfinite(offered_load) or offered_load < 0:
        raise ValueError(f"offered load must be a finite number >= 0, not {offered_load!r}")
    if servers < 0:
        raise ValueError(f"servers must be >= 0, not {servers!r}")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def servers_for(offered_load: float, target_blocking: float) -> int:
    """The fewest servers whose Erlang B blocking is at most ``target_blocking``."""
    if not 0 < target_blocking <= 1:
        raise ValueError("target blocking must be in (0, 1]")
    if not math.isfinite(offered_load) or offered_load < 0:
        raise ValueError(f"offered load must be a finite number >= 0, not {offered_load!r}")
    blocking = 1.0
    servers = 0
    while blocking > target_blocking:
        servers += 1
        blocking = offered_load * blocking / (servers + offered_load * blocking)
    return servers
