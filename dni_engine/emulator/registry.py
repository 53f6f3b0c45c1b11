"""The emulator's number pools, held in memory and safe to use from many threads."""

from __future__ import annotations

import itertools
import threading

from dni_engine.emulator.inventory import Inventory
from dni_engine.emulator.refusal import Refusal
from dni_engine.errors import Problem
from dni_engine.schema import (
    MAX_QUANTITY,
    NumberPool,
    NumberPoolRequest,
    PhoneNumberRequest,
    PoolNumber,
)

__all__ = ["FIRST_NUMBER_ID", "FIRST_POOL_ID", "PoolRegistry"]

# The vendor's examples start here; ids carry on from them so that emulator
# output looks like the real thing.
FIRST_POOL_ID = 31849
FIRST_NUMBER_ID = 9570553


def _name_key(group_id: int, name: str) -> tuple[int, str]:
    # Names are unique per group regardless of case and surrounding spaces,
    # the same rule load_pools applies to a file of pools.
    return group_id, name.strip().casefold()


class PoolRegistry:
    """Number pools by id, with their numbers drawn from an :class:`Inventory`.

    Every method is atomic (one lock): two concurrent creations of the same
    name in a group give one pool and one 409. Refusals are :class:`Refusal`
    with the HTTP status the API answers with.
    """

    def __init__(
        self,
        inventory: Inventory,
        *,
        first_pool_id: int = FIRST_POOL_ID,
        first_number_id: int = FIRST_NUMBER_ID,
    ) -> None:
        self._inventory = inventory
        self._lock = threading.Lock()
        self._pools: dict[int, NumberPool] = {}
        self._names: dict[tuple[int, str], int] = {}
        self._pool_ids = itertools.count(first_pool_id)
        self._number_ids = itertools.count(first_number_id)

    def create(self, group_id: int, request: NumberPoolRequest) -> NumberPool:
        """Create a pool in ``group_id`` with ``request.quantity`` new numbers.

        409 when the group already has a pool of that name; 422 when the
        inventory cannot supply the numbers (nothing is created then).
        """
        key = _name_key(group_id, request.name)
        with self._lock:
            existing = self._names.get(key)
            if existing is not None:
                reason = f"group {group_id} already has a number pool named {request.name!r}"
                raise Refusal(409, f"{reason} (id {existing})", [Problem("name", reason)])
            numbers = self._inventory.allocate(request.phone_number_request, request.quantity)
            pool = request.to_pool(
                id=next(self._pool_ids),
                group_id=group_id,
                numbers=[PoolNumber(id=next(self._number_ids), phone_number=n) for n in numbers],
            )
            self._pools[pool.id] = pool
            self._names[key] = pool.id
        return pool

    def get(self, pool_id: int) -> NumberPool:
        """The pool with id ``pool_id``; 404 when there is none."""
        with self._lock:
            return self._get(pool_id)

    def pools(self, group_id: int | None = None) -> list[NumberPool]:
        """The pools of ``group_id`` (of every group if ``None``), oldest first."""
        with self._lock:
            return [p for p in self._pools.values() if group_id is None or p.group_id == group_id]

    def add_numbers(self, pool_id: int, quantity: int, request: PhoneNumberRequest) -> NumberPool:
        """Add ``quantity`` new numbers to a pool; ``quantity`` follows the count.

        400 when ``request`` is for another country than the pool's numbers or
        the pool would exceed the largest quantity; 404, 422 as for create.
        """
        with self._lock:
            pool = self._get(pool_id)
            if pool.country is not None and request.iso_country != pool.country:
                reason = (
                    f"the pool's numbers are in {pool.country}; a pool's numbers are all in "
                    "one country"
                )
                raise Refusal(
                    400,
                    f"cannot add {request.iso_country} numbers to pool {pool_id}",
                    [Problem("phone_number_request.iso_country", reason)],
                )
            if len(pool.numbers) + quantity > MAX_QUANTITY:
                reason = (
                    f"the pool has {len(pool.numbers)} numbers and may have at most {MAX_QUANTITY}"
                )
                raise Refusal(
                    400,
                    f"cannot add {quantity} numbers to pool {pool_id}",
                    [Problem("quantity", reason)],
                )
            added = [
                PoolNumber(id=next(self._number_ids), phone_number=n)
                for n in self._inventory.allocate(request, quantity)
            ]
            return self._replace(pool, [*pool.numbers, *added])

    def remove_number(self, pool_id: int, number_id: int) -> NumberPool:
        """Take the number with id ``number_id`` out of a pool, for good.

        404 when the pool or the number is unknown; 409 for the pool's last
        number (a pool keeps at least one; quantity is at least 1).
        """
        with self._lock:
            pool = self._get(pool_id)
            kept = [n for n in pool.numbers if n.id != number_id]
            if len(kept) == len(pool.numbers):
                raise Refusal(404, f"pool {pool_id} has no number with id {number_id}")
            if not kept:
                raise Refusal(
                    409,
                    f"number {number_id} is the last number of pool {pool_id}; "
                    "a pool keeps at least one",
                )
            return self._replace(pool, kept)

    def _get(self, pool_id: int) -> NumberPool:
        pool = self._pools.get(pool_id)
        if pool is None:
            raise Refusal(404, f"there is no number pool with id {pool_id}")
        return pool

    def _replace(self, pool: NumberPool, numbers: list[PoolNumber]) -> NumberPool:
        updated = pool.model_copy(update={"numbers": numbers, "quantity": len(numbers)})
        self._pools[pool.id] = updated
        return updated
