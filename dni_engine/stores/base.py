"""The ``Store`` protocol: where lease state lives, one atomic operation at a time.

Every method is one coarse, atomic operation on plain values (``str``,
``float``, the frozen records of :mod:`dni_engine.leases`), so a networked
store can run each as a single round trip, such as one server-side script,
and the embedded :class:`~dni_engine.stores.memory.MemoryStore` as one locked
call. No method calls back into the host mid-operation.

The lease rules are those of :mod:`dni_engine.leases`. ``visit`` in full, for
a visitor ``v`` at time ``now`` with an optional claim on pool ``P`` and an
optional ``client`` key ``c`` (who sent the visit: an opaque string, a keyed
hash of their network and user agent; ``None``: unknown):

1. ``now`` is raised to the latest time the store has seen (time never goes
   backwards inside a store).
2. If ``v`` holds a live lease ``L`` (``now < L.expires``, not ended): when
   :func:`~dni_engine.leases.may_switch` allows it and ``P`` has a number free
   right now and ``c`` is not capped in ``P`` (step 4a), ``L`` ends
   (``switched``, its number starts cooling at ``now``) and ``v`` gets a
   ``new`` lease in ``P`` with ``switched_from = L``.
   Otherwise ``L.last_activity = now``, ``L.expires = now + hold`` and the
   outcome is ``kept``, with ``L``'s pool, number and source.
3. Without a claim: ``no_match``.
4. Leases of ``P`` whose hold ran out end (``expired``, at their ``expires``,
   which is when their number becomes free).
4a. The client cap: when ``c`` is given, ``P``'s ``client_cap`` is not ``0``
   and ``c`` holds ``client_cap`` live leases of ``P``, the outcome is
   ``capped``: no number, nothing taken, cut short or displaced, and ``P``
   counts it (``capped``). A lease remembers the client of the visit that
   started it; a client's count in ``P`` is the live leases of ``P`` started
   with its key, so a lease ending by any path (expired, released, displaced,
   switched, forgotten, or gone with a lost state) leaves the count. A
   returning visitor (step 2) is never capped.
5. A number of ``P`` free since ``f`` is available when ``f + cooldown <= now``;
   the one free longest (lowest ``f``; ties in ``PoolTerms.numbers`` order) is
   leased: ``new``. Numbers never leased count as free since forever.
6. Otherwise :func:`~dni_engine.leases.exhausted_action` decides: ``overflow``
   or ``fallback`` count an overflow and give the overflow number or none;
   ``cut_cooldown`` leases the cooling number free longest, ``displace`` ends
   the live lease with the lowest ``expires`` (``displaced``, at ``now``,
   ``displaced_by`` the new lease) and leases its number; both are
   ``recycled``.

A lease is added to the lease log when it starts; the log keeps at least every
lease whose attribution window could still hold a call, within the store's
bound. A lease keeps the :class:`~dni_engine.leases.Facts` of the
:class:`~dni_engine.leases.Claim` that started it (other claims carry none).

**The call log** keeps one :class:`~dni_engine.calls.CallRecord` per call id:
``record_call`` inserts a record unless its call id is already logged (one
atomic operation, so concurrent deliveries of one call keep one record) and
answers the logged one. It is bounded: at most ``call_capacity`` records (the
call that started first goes first) and none that started more than
``call_retention`` seconds (:data:`DEFAULT_CALL_RETENTION`, 90 days, by default)
before the latest record's ``recorded`` time.

**Forgetting a visitor** (``forget``, erasure on request) removes, in one
operation per pool and one on the call log, every trace of the visitor: their
live lease ends as a release would (its number goes back to the pool and cools
down, so a caller still looking at it is not attributed to the next visitor)
and is deleted with every entry of the lease log naming the visitor (their
:class:`~dni_engine.leases.Facts` go with them); other leases naming one of
theirs in ``displaced_by`` lose that link, in the lease log and in the call
log; every call record whose attribution names the visitor (as its lease or as
a candidate) is deleted whole, caller number included. The pool counters are
anonymous and stay (the ended live lease counts as ``released``);
``on_lease_closed`` is not called for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable

from dni_engine.calls import CallRecord
from dni_engine.errors import DniError, Problem
from dni_engine.leases import Attribution, ClaimLike, Decision, Lease, PoolStats, PoolTerms

__all__ = [
    "DEFAULT_CALL_CAPACITY",
    "DEFAULT_CALL_RETENTION",
    "NEW_VISITOR",
    "AsyncStore",
    "ConflictKind",
    "Forgotten",
    "Store",
    "StoreError",
    "call_names_visitor",
    "conflict_problem",
    "number_conflicts",
]

DEFAULT_CALL_RETENTION: Final = 90 * 86_400.0
"""Seconds a call stays in a store's call log by default (90 days)."""
DEFAULT_CALL_CAPACITY: Final = 100_000
"""How many calls a store's call log keeps by default."""
NEW_VISITOR: Final = "\x00new"
"""The ``hint`` of a visit by a visitor id minted for this very request (no state can exist).

Any other hint names the pool the caller believes holds the visitor's live lease.
"""


class StoreError(DniError):
    """A store cannot carry out an operation (back end down, pool not registered...)."""

    @classmethod
    def unregistered(cls, pool_key: str) -> StoreError:
        """The error for an operation on a pool the store does not know."""
        return cls(f"pool {pool_key!r} is not registered with this store")


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What forgetting one visitor removed.

    ``leases_released``: live leases ended (their numbers went back to the
    pool); ``log_entries_removed``: leases deleted from the lease log (the
    live one included when it was logged); ``calls_removed``: call records
    deleted from the call log. ``error`` is ``None`` when everything was
    removed, else why the store failed (what was removed before the failure
    is not counted; forgetting again is safe, it is idempotent).
    """

    visitor_id: str
    leases_released: int = 0
    log_entries_removed: int = 0
    calls_removed: int = 0
    error: str | None = None

    @property
    def complete(self) -> bool:
        """True when the store removed everything (no ``error``)."""
        return self.error is None

    def to_json(self) -> dict[str, object]:
        """The counts as a JSON object."""
        return {
            "visitor_id": self.visitor_id,
            "leases_released": self.leases_released,
            "log_entries_removed": self.log_entries_removed,
            "calls_removed": self.calls_removed,
            "complete": self.complete,
            "error": self.error,
        }


def call_names_visitor(record: CallRecord, visitor_id: str) -> bool:
    """True when ``record``'s attribution names ``visitor_id`` (its lease or a candidate)."""
    attribution = record.attribution
    lease = attribution.lease
    if lease is not None and lease.visitor_id == visitor_id:
        return True
    return any(c.visitor_id == visitor_id for c in attribution.candidates)


ConflictKind = Literal["number", "overflow_number", "tracking_number"]
"""Why two pools cannot share a store: one's tracking number is the other's
tracking number (``number``) or overflow number (``overflow_number``), or one's
overflow number is the other's tracking number (``tracking_number``)."""


def conflict_problem(pool_key: str, kind: ConflictKind, number: str, other: str) -> Problem:
    """The configuration problem of ``pool_key`` for one conflict with pool ``other``."""
    where = f"pool {pool_key!r}"
    if kind == "number":
        return Problem(f"{where}.numbers", f"{number} already belongs to pool {other!r}")
    if kind == "overflow_number":
        return Problem(f"{where}.numbers", f"{number} is the overflow number of pool {other!r}")
    return Problem(f"{where}.overflow_number", f"{number} is a tracking number of pool {other!r}")


def number_conflicts(terms: PoolTerms, others: Iterable[PoolTerms]) -> list[Problem]:
    """Every reason ``terms`` cannot join a store holding the pools ``others``.

    A tracking number belongs to one pool only, and an overflow number is no
    pool's tracking number (pools may share one overflow number). Pools with
    ``terms.key`` among ``others`` are skipped: re-registering updates a pool.
    """
    problems: list[Problem] = []
    overflow = terms.overflow_number
    for other in others:
        if other.key == terms.key:
            continue
        theirs = set(other.numbers)
        for number in terms.numbers:
            if number in theirs:
                problems.append(conflict_problem(terms.key, "number", number, other.key))
            if number == other.overflow_number:
                problems.append(conflict_problem(terms.key, "overflow_number", number, other.key))
        if overflow is not None and overflow in theirs:
            problems.append(conflict_problem(terms.key, "tracking_number", overflow, other.key))
    return problems


@runtime_checkable
class Store(Protocol):
    """Holds all lease state; each method is one atomic operation."""

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        """Add a pool, or update its terms (idempotent).

        New numbers start free; numbers dropped from the pool are no longer
        leased (a live lease on one runs out normally). A number may belong to
        one pool only, and an overflow number must not be any pool's leased
        number: :class:`~dni_engine.errors.ConfigError` otherwise. ``now``,
        when given, is the registering clock's time: a pool time stored more
        than :data:`~dni_engine.leases.MAX_CLOCK_SKEW` ahead of it was poisoned
        and is brought back to it (with the leases and free numbers stamped in
        that future).
        """
        ...

    def ready(self) -> bool:
        """True when the store answers and every registered pool is in place; never raises."""
        ...

    def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        """Take, keep, switch or recycle a number for one visit (see the module doc).

        ``client`` is the visit's client key for the cap of step 4a (``None``:
        no cap applies, and the lease counts for no client).

        ``hint`` is untrusted advice that may save a networked store a round
        trip: the key of the pool the caller believes holds the visitor's live
        lease, or :data:`NEW_VISITOR` for a visitor id minted for this request.
        A wrong or stale pool hint may cost time, never change the decision; a
        store may ignore hints. Raises :class:`StoreError` for a claim on a
        pool that is not registered.
        """
        ...

    def release(self, visitor_id: str, now: float) -> Lease | None:
        """End ``visitor_id``'s live lease now (``released``); return it, or ``None``."""
        ...

    def attribute(self, number: str, at: float) -> Attribution:
        """Attribute a call to the E.164 ``number`` at ``at`` (live or past) from the lease log."""
        ...

    def stats(self, pool_key: str, now: float) -> PoolStats:
        """Counters and occupancy of one pool at ``now`` (expired leases are ended first)."""
        ...

    def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        """Leases in the log, oldest first, filtered by number, pool and window overlap.

        ``since``/``until`` keep leases whose window ``[started, expires)``
        overlaps ``[since, until)``.
        """
        ...

    def record_call(self, record: CallRecord) -> CallRecord:
        """Log ``record`` unless its call id is logged; answer the logged record.

        Insert-if-absent by ``record.call.call_id``, atomically: the record
        logged first is answered (``replayed=True`` when it was there before).
        """
        ...

    def find_call(self, call_id: str) -> CallRecord | None:
        """The logged record of ``call_id``, or ``None``."""
        ...

    def forget(self, visitor_id: str, now: float) -> Forgotten:
        """Remove every trace of ``visitor_id`` (see the module doc); idempotent.

        Raises :class:`StoreError` when the back end fails (forgetting again
        then finishes the job).
        """
        ...

    def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """Logged calls that started in ``[since, until)``, oldest first.

        ``pool_key`` keeps calls attributed to that pool (lease or pool level),
        ``number`` calls to that E.164 number.
        """
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """A :class:`Store` whose operations are coroutines.

    :class:`~dni_engine.stores.redis.AsyncRedisStore` is one. Every method
    but ``register_pool`` (no I/O: pools are registered by the first
    operation the back end answers) has the contract of its :class:`Store`
    namesake and is awaited.
    """

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        """Add a pool, or update its terms, to register at the first operation (no I/O)."""

    async def ready(self) -> bool:
        """True when the back end answers and holds every pool; never raises."""
        ...

    async def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        """As :meth:`Store.visit`."""
        ...

    async def release(self, visitor_id: str, now: float) -> Lease | None:
        """As :meth:`Store.release`."""
        ...

    async def attribute(self, number: str, at: float) -> Attribution:
        """As :meth:`Store.attribute`."""
        ...

    async def stats(self, pool_key: str, now: float) -> PoolStats:
        """As :meth:`Store.stats`."""
        ...

    async def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        """As :meth:`Store.leases`."""
        ...

    async def record_call(self, record: CallRecord) -> CallRecord:
        """As :meth:`Store.record_call`."""
        ...

    async def find_call(self, call_id: str) -> CallRecord | None:
        """As :meth:`Store.find_call`."""
        ...

    async def forget(self, visitor_id: str, now: float) -> Forgotten:
        """As :meth:`Store.forget`."""
        ...

    async def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """As :meth:`Store.calls`."""
        ...
