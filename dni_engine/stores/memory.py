"""The embedded store: lease state in this process's memory.

The default store of an :class:`~dni_engine.engine.Engine`, for a site served
by one process. One lock makes each operation atomic (a visitor's session can
move between pools, so a per-pool lock would not be enough, and each operation
is short). Per pool, two priority queues give every operation O(log n) in the
pool size, and O(1) when times arrive in order (the common case, see
:class:`_Queue`):

* ``free``: ``(free_since, order, number)`` for each number without a lease;
  the top is the number free longest, available once its cooldown is over.
* ``live``: ``(expires, seq, lease)`` for each lease, lazily: renewing a lease
  only moves its ``expires``; an entry whose key is out of date is pushed back
  with the true key when it reaches the top, and entries of leases that ended
  otherwise are dropped there. The top is then the lease idle longest, which is
  both the next to expire and the one ``recycle`` displaces.

Each pool also counts its live leases per client key (a dict, touched only
when a lease starts or ends), for the client cap of :class:`Store.visit`.

Expired leases are ended as time moves (each operation on a pool ends those
whose hold ran out, and :meth:`MemoryStore.purge` ends all), so memory holds the
live leases, at most one heap entry per number, and the lease log. The log is a
ring buffer of ``log_capacity`` leases indexed per number by start time, so
attribution is a binary search plus a walk over the leases that started within
one hold of the call. ``on_lease_closed`` receives each lease once when the
store ends it, outside the lock.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import os
import secrets
import threading
import warnings
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar, cast

from dni_engine._frozen import Frozen
from dni_engine.calls import CallRecord
from dni_engine.errors import ConfigError, Problem
from dni_engine.leases import (
    MAX_CLOCK_SKEW,
    Attribution,
    Claim,
    ClaimLike,
    Decision,
    EndReason,
    Facts,
    Lease,
    PoolStats,
    PoolTerms,
    _new_lease,
    attribution_from,
    exhausted_action,
    leased,
    may_switch,
)
from dni_engine.rules.compile import Match
from dni_engine.stores.base import (
    DEFAULT_CALL_CAPACITY,
    DEFAULT_CALL_RETENTION,
    Forgotten,
    StoreError,
    call_names_visitor,
    number_conflicts,
)

log = logging.getLogger("dni_engine.stores.memory")

__all__ = [
    "DEFAULT_CALL_CAPACITY",
    "DEFAULT_CALL_RETENTION",
    "DEFAULT_LOG_CAPACITY",
    "MemoryStore",
    "StoreFootprint",
]

# The stacklevel that blames a deprecated property's caller: a compiled property
# runs in no frame of its own, so there the caller's frame is the first one.
_CALLER: Final = 2 if __file__.endswith(".py") else 1

# The process a store was built in is compared with this one on each visit (a
# plain int comparison); ``os.register_at_fork`` keeps it current in children.
_pid = os.getpid()
_fork_warned: list[bool] = []


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)

DEFAULT_LOG_CAPACITY = 100_000
# Decisions are built straight from a tuple (as ``leases.leased`` does): the named
# tuple's own constructor is a Python function, called on every visit otherwise.
# (Final: the compiled module reads these without a look-up in its globals.)
_new_tuple: Final = tuple.__new__
_Decision: Final = Decision
# The heap functions of the queues' out-of-order entries, bound once (no module
# attribute look-up per call).
_heappop: Final = heapq.heappop
_heappush: Final = heapq.heappush
_INF: Final = math.inf
_NEVER: Final = -math.inf  # "free since forever": numbers never leased


def _unlinked(record: CallRecord, lease_ids: set[str]) -> CallRecord | None:
    """``record`` without ``displaced_by`` links to ``lease_ids``, or ``None`` if it has none."""
    attribution = record.attribution
    leases = (attribution.lease, *attribution.candidates)
    if not any(x is not None and x.displaced_by in lease_ids for x in leases):
        return None

    def clear(lease: Lease) -> Lease:
        if lease.displaced_by in lease_ids:
            return dataclasses.replace(lease, displaced_by=None)
        return lease

    lease = attribution.lease
    return dataclasses.replace(
        record,
        attribution=dataclasses.replace(
            attribution,
            lease=None if lease is None else clear(lease),
            candidates=tuple(clear(c) for c in attribution.candidates),
        ),
    )


def _pool_key(claim: ClaimLike) -> str:
    """``claim.pool_key``: read natively from a :class:`Claim` or a rules ``Match`` (what
    the engine passes), by look-up from another claim."""
    if type(claim) is Match:  # the type narrowed: the compiled module reads the field
        return claim.pool_key
    if type(claim) is Claim:
        return claim.pool_key
    return claim.pool_key


class _Lease:
    """The mutable state of one lease (snapshots are :class:`Lease`)."""

    __slots__ = (
        "client",
        "displaced_by",
        "end_reason",
        "ended",
        "expires",
        "facts",
        "last_activity",
        "lease_id",
        "number",
        "pool",
        "referrer_domain",
        "seq",
        "source_index",
        "specificity",
        "started",
        "trigger",
        "visitor_id",
    )

    def __init__(
        self,
        seq: int,
        pool: _Pool,
        number: str,
        visitor_id: str,
        now: float,
        claim: ClaimLike,
        facts: Facts | None,
        client: str | None,
    ) -> None:
        self.seq = seq
        self.lease_id = pool.id_prefix + str(seq)
        self.pool = pool
        self.number = number
        self.visitor_id = visitor_id
        self.started = now
        self.last_activity = now
        self.expires = now + pool.hold
        self.ended: float | None = None
        self.end_reason: EndReason | None = None
        self.displaced_by: str | None = None
        # The same reads three times: on a rules Match (what the engine passes) or a
        # Claim, the type narrowed, the compiled module reads the fields natively; on
        # another ClaimLike by attribute look-ups.
        if type(claim) is Match or type(claim) is Claim:
            self.specificity = claim.specificity
            self.source_index = claim.source_index
            self.referrer_domain = claim.referrer_domain
            self.trigger = claim.trigger
        else:
            self.specificity = claim.specificity
            self.source_index = claim.source_index
            self.referrer_domain = claim.referrer_domain
            self.trigger = claim.trigger
        self.facts = facts
        self.client = client


_T = TypeVar("_T")


def _rank(entry: tuple[float, int, object]) -> tuple[float, int]:
    return entry[0], entry[1]


class _Queue(Generic[_T]):
    """A priority queue of ``(key, tie-break, item)`` entries, least first.

    Tie-breaks are unique, so the order of entries is total and items are
    never compared. Entries pushed in order (after the last one pushed in
    order: a store's time only moves forward) are appended to three parallel
    lists in O(1), without building a tuple per entry, and taken from their
    head; any other entry goes to a heap. The least entry heads one of the two.

    A popped item's slot is cleared at once, so the queue holds no item it
    gave out; the lists drop their popped prefix once it is over half of
    them (and over 32 entries): O(1) amortized per entry.
    """

    __slots__ = ("head", "heap", "items", "keys", "ties")

    def __init__(self, entries: list[tuple[float, int, _T]]) -> None:
        entries.sort(key=_rank)
        self.keys: list[float] = [entry[0] for entry in entries]
        self.ties: list[int] = [entry[1] for entry in entries]
        self.items: list[_T | None] = [entry[2] for entry in entries]
        self.head = 0  # the lists' first entry not yet popped
        self.heap: list[tuple[float, int, _T]] = []

    def __len__(self) -> int:
        return len(self.keys) - self.head + len(self.heap)

    def least_key(self) -> float:
        """The key of the least entry; infinity when the queue is empty."""
        keys = self.keys
        head = self.head
        heap = self.heap
        if heap:
            top = heap[0][0]
            if head < len(keys):
                first = keys[head]
                return first if first < top else top
            return top
        return keys[head] if head < len(keys) else _INF

    def _heap_first(self) -> bool:
        """Whether the least entry is the heap's (the heap must not be empty)."""
        keys = self.keys
        head = self.head
        if head >= len(keys):
            return True
        top = self.heap[0]
        first = keys[head]
        return top[0] < first or (top[0] == first and top[1] < self.ties[head])

    def peek(self) -> tuple[float, int, _T]:
        """The least entry, left in place (the queue must not be empty)."""
        if self.heap and self._heap_first():
            return self.heap[0]
        head = self.head
        return self.keys[head], self.ties[head], cast(_T, self.items[head])

    def pop(self) -> tuple[float, int, _T]:
        """Remove and return the least entry (the queue must not be empty)."""
        if self.heap and self._heap_first():
            return _heappop(self.heap)
        head = self.head
        key, tie = self.keys[head], self.ties[head]
        return key, tie, self._take(head)

    def pop_item(self) -> _T:
        """Remove the least entry and return its item (the queue must not be empty).

        :meth:`pop` without building the entry's tuple.
        """
        if self.heap and self._heap_first():
            return _heappop(self.heap)[2]
        return self._take(self.head)

    def _take(self, head: int) -> _T:
        """Remove the lists' first entry (at ``head``) and return its item."""
        items = self.items
        item = items[head]
        items[head] = None
        head += 1
        if head > 32 and head * 2 > len(items):
            del self.keys[:head], self.ties[:head], items[:head]
            head = 0
        self.head = head
        return cast(_T, item)

    def push(self, key: float, tie: int, item: _T) -> None:
        """Add an entry (its tie-break unique in the queue)."""
        keys = self.keys
        if self.head < len(keys):
            last = keys[-1]
            if not (last < key or (last == key and self.ties[-1] < tie)):
                _heappush(self.heap, (key, tie, item))
                return
        keys.append(key)
        self.ties.append(tie)
        self.items.append(item)

    def entries(self) -> list[tuple[float, int, _T]]:
        """Every entry, in no particular order."""
        head = self.head
        listed = zip(self.keys[head:], self.ties[head:], self.items[head:], strict=True)
        return [*((key, tie, cast(_T, item)) for key, tie, item in listed), *self.heap]


class _Pool:
    """One pool's terms, queues and counters."""

    __slots__ = (
        "cap",
        "capped",
        "clients",
        "cooldown",
        "cooldowns_cut",
        "displacements",
        "epoch",
        "expired",
        "free",
        "hold",
        "holder",
        "id_prefix",
        "kept",
        "key",
        "last_touch",
        "live",
        "name",
        "new",
        "order",
        "overflow_number",
        "overflows",
        "recycled",
        "released",
        "switched_in",
        "switched_out",
        "terms",
    )

    def __init__(self, terms: PoolTerms, epoch: str) -> None:
        self.epoch = epoch
        self.id_prefix = epoch + "."
        self.free: _Queue[str] = _Queue([])
        self.live: _Queue[_Lease] = _Queue([])
        self.holder: dict[str, _Lease] = {}
        self.order: dict[str, int] = {}
        self.new = self.kept = self.overflows = self.recycled = self.displacements = 0
        self.cooldowns_cut = self.switched_in = self.switched_out = 0
        self.expired = self.released = self.capped = 0
        # client key -> how many live leases of this pool were started with it
        self.clients: dict[str, int] = {}
        self.apply(terms)

    def apply(self, terms: PoolTerms) -> None:
        """Take on ``terms``: new numbers start free, dropped ones leave the free queue."""
        self.terms = terms
        self.key = terms.key
        self.name = terms.name
        self.hold = terms.hold_seconds
        self.cooldown = terms.cooldown_seconds
        self.overflow_number = terms.overflow_number if terms.policy == "overflow" else None
        self.last_touch = terms.touch == "last_touch"
        self.cap = terms.client_cap
        known = self.order
        self.order = {number: index for index, number in enumerate(terms.numbers)}
        free = [(s, self.order[n], n) for s, _, n in self.free.entries() if n in self.order]
        free.extend(
            (_NEVER, index, n)
            for n, index in self.order.items()
            if n not in known and n not in self.holder
        )
        self.free = _Queue(free)


def _uncount(pool: _Pool, client: str) -> None:
    """One live lease of ``client`` in ``pool`` ended (call under the lock)."""
    clients = pool.clients
    left = clients.get(client, 0) - 1
    if left > 0:
        clients[client] = left
    else:
        clients.pop(client, None)


class _NumberLog:
    """The leases of one number in the log, by start time (a list with a moving head).

    Entries before ``head`` were evicted: a lease's slot is cleared when it is
    evicted, so the number's log holds no lease the lease log dropped, and the
    evicted prefix is dropped once it is over half the lists (O(1) amortized).
    """

    __slots__ = ("head", "leases", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.leases: list[_Lease | None] = []  # None before ``head`` only
        self.head = 0

    def __len__(self) -> int:
        return len(self.leases) - self.head

    def evict(self, lease: _Lease) -> None:
        """Drop ``lease``, the oldest entry (the global log evicts in start order)."""
        leases = self.leases
        head = self.head
        if leases[head] is lease:
            leases[head] = None
            head += 1
        else:  # not reached while starts are monotonic; kept correct regardless
            index = leases.index(lease, head)
            del leases[index], self.starts[index]
        if head > 32 and head * 2 > len(leases):
            del leases[:head], self.starts[:head]
            head = 0
        self.head = head

    def lease(self, index: int) -> _Lease:
        """The lease at ``index`` (at or after ``head``)."""
        return cast(_Lease, self.leases[index])

    def window(self) -> list[_Lease]:
        """The logged leases, oldest first."""
        return cast("list[_Lease]", self.leases[self.head :])


@dataclass(frozen=True, slots=True)
class StoreFootprint(Frozen):
    """What a :class:`MemoryStore` holds right now (its own counters, for capacity checks).

    ``live_leases``: leases not yet ended; ``visitors``: entries in the
    visitor index; ``free_entries``/``live_entries``: heap sizes; ``log_entries``:
    leases in the lease log; ``numbers_total``: numbers of all pools;
    ``numbers_logged``: numbers with leases in the lease log.
    """

    pools: int
    numbers_total: int
    live_leases: int
    visitors: int
    free_entries: int
    live_entries: int
    log_entries: int
    numbers_logged: int

    @property
    def numbers(self) -> int:
        """Deprecated alias of :attr:`numbers_total`, for one release."""
        warnings.warn(
            "StoreFootprint.numbers is deprecated; use numbers_total",
            DeprecationWarning,
            stacklevel=_CALLER,
        )
        return self.numbers_total


def _kept(lease: _Lease, visitor_id: str, now: float) -> Decision:
    """Keep ``lease`` (live at ``now``): renew its hold and count it; its ``kept`` decision."""
    held = lease.pool
    lease.last_activity = now
    expires = lease.expires = now + held.hold
    held.kept += 1
    return _new_tuple(
        _Decision,
        (
            visitor_id,
            now,
            "kept",
            lease.number,
            held.key,
            held.name,
            lease.source_index,
            lease.referrer_domain,
            lease.trigger,
            lease.lease_id,
            lease.started,
            expires,
            None,
            None,
        ),
    )


class MemoryStore:
    """Thread-safe in-memory :class:`~dni_engine.stores.base.Store` (the embedded default).

    ``log_capacity`` bounds the lease log (the oldest lease is dropped first);
    ``call_capacity`` bounds the call log (the call that started first is
    dropped first) and ``call_retention`` (seconds, ``0`` for none) drops
    calls that started that long before the latest record's ``recorded``
    time;
    ``on_lease_closed`` is called with each lease the store ends (expired,
    displaced, switched, released), outside the lock; its exceptions are
    logged, never raised. Leases are ended lazily as time moves, so a lease
    reaches it after the next operation on its pool past its expiry (or a
    :meth:`purge`).

    Lease ids are ``<epoch>.<seq>``, the epoch random per store, so ids stay
    unique across restarts and stores. The state lives in this process only:
    a store used in a process forked after it was created (a web server's
    workers, say) holds a copy that other processes do not see, and is
    warned about once; share leases between processes with
    :class:`~dni_engine.stores.redis.RedisStore`.
    """

    def __init__(
        self,
        *,
        log_capacity: int = DEFAULT_LOG_CAPACITY,
        on_lease_closed: Callable[[Lease], object] | None = None,
        call_capacity: int = DEFAULT_CALL_CAPACITY,
        call_retention: float = DEFAULT_CALL_RETENTION,
    ) -> None:
        problems: list[Problem] = []
        if not (isinstance(log_capacity, int) and log_capacity >= 1):
            problems.append(Problem("log_capacity", "must be a whole number >= 1"))
        if not (isinstance(call_capacity, int) and call_capacity >= 1):
            problems.append(Problem("call_capacity", "must be a whole number >= 1"))
        if not (
            isinstance(call_retention, int | float)
            and math.isfinite(call_retention)
            and call_retention >= 0
        ):
            problems.append(Problem("call_retention", "must be a number of seconds >= 0"))
        if problems:
            raise ConfigError(problems)
        self._lock = threading.Lock()
        # The lock's methods, bound once: the per-visit paths call them without a look-up.
        self._acquire: Callable[[], bool] = self._lock.acquire
        self._release: Callable[[], None] = self._lock.release
        self._pools: dict[str, _Pool] = {}
        self._pool_of_number: dict[str, _Pool] = {}
        self._visitors: dict[str, _Lease] = {}
        # The lease log, a ring buffer: ``_logged`` lists it oldest first. Until it
        # holds ``log_capacity`` leases they are appended (and ``_log_next`` is 0);
        # then each new lease takes the slot ``_log_next``, the oldest lease's.
        self._log: list[_Lease] = []
        self._log_next = 0
        self._by_number: dict[str, _NumberLog] = {}
        self._capacity = log_capacity
        self._seq = 0  # the last lease's sequence number (a plain int: cheaper than a counter)
        self._epoch = secrets.token_hex(4)
        self._pid = os.getpid()
        self._now = _NEVER
        self._max_hold = 0.0
        self._sink = on_lease_closed
        self._closed: list[_Lease] = []
        self._calls: dict[str, CallRecord] = {}
        # (started, call id), sorted: calls that started at one time are listed by id,
        # as the Redis store lists them.
        self._call_order: list[tuple[float, str]] = []
        self._call_capacity = call_capacity
        self._call_retention = float(call_retention)
        self._calls_now = _NEVER

    # ---- configuration ----------------------------------------------------------

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        """Add or update a pool (see :meth:`Store.register_pool`)."""
        with self._lock:
            problems = number_conflicts(terms, [p.terms for p in self._pools.values()])
            if problems:
                raise ConfigError(problems)
            if now is not None and self._now > now + MAX_CLOCK_SKEW:
                self._repair_time(now)
            pool = self._pools.get(terms.key)
            if pool is None:
                pool = self._pools[terms.key] = _Pool(terms, self._epoch)
            else:
                pool.apply(terms)
            for number in [n for n, p in self._pool_of_number.items() if p is pool]:
                del self._pool_of_number[number]
            for number in terms.numbers:
                self._pool_of_number[number] = pool
            self._max_hold = max(self._max_hold, terms.hold_seconds)

    def _repair_time(self, now: float) -> None:
        """Bring a poisoned store time (far ahead of ``now``) back to ``now``.

        Leases and free numbers stamped in that future are brought back too, so
        the numbers run out and rest in real time again. Call under the lock.
        """
        log.warning("the store's time was far ahead of the clock (a poisoned time); brought back")
        self._now = now
        for pool in self._pools.values():
            until = now + pool.hold
            for lease in pool.holder.values():
                if lease.expires > until:
                    lease.last_activity = min(lease.last_activity, now)
                    lease.expires = until
            pool.live = _Queue([(x.expires, seq, x) for _, seq, x in pool.live.entries()])
            pool.free = _Queue([(min(s, now), i, n) for s, i, n in pool.free.entries()])

    def ready(self) -> bool:
        """Always True: the embedded store is this process's memory."""
        return True

    @property
    def pool_keys(self) -> tuple[str, ...]:
        """Keys of the registered pools, in registration order."""
        return tuple(self._pools)

    # ---- the per-visit operation --------------------------------------------------

    def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        """Take, keep, switch or recycle a number (see :class:`Store`); ``hint`` is ignored."""
        facts = claim.facts if type(claim) is Claim else None  # claim_facts, written out
        return self._visit_with(visitor_id, now, claim, facts, client)

    def _visit_with(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        facts: Facts | None,
        client: str | None,
    ) -> Decision:
        """:meth:`visit` with the facts of the lease it may start given apart from the claim.

        The engine's path: exactly what :meth:`visit` answers for a
        :class:`Claim` with the fields of ``claim`` and ``facts``, without
        building that claim for every visit.
        """
        if self._pid != _pid:
            self._forked()
        self._acquire()  # ``with self._lock``, written out: the compiled block costs more
        try:
            decision = self._visit(visitor_id, now, claim, facts, client)
            closed = self._closed
            if closed:
                self._closed = []
        finally:
            self._release()
        if closed:
            self._deliver(closed)
        return decision

    def _keep(self, visitor_id: str, now: float) -> Decision | None:
        """The ``kept`` decision of a visitor whose live lease needs no claim, else ``None``.

        The engine's fast path for a returning visitor: a live lease in a
        ``first_touch`` pool is kept whatever the visit matches, so the visit
        need not be matched. Exactly what :meth:`visit` does for that visitor;
        ``None`` (nothing changed but the store's time, which that visit would
        move the same way) when the lease is not live or its pool is
        ``last_touch``. Keeping a lease ends no other lease.
        """
        if self._pid != _pid:
            self._forked()
        if visitor_id not in self._visitors:
            # A new visitor, read without the lock (one dict look-up is atomic): a
            # lease another thread gives them now is found by the visit that follows.
            return None
        self._acquire()  # ``with self._lock``, written out (as in :meth:`_visit_with`)
        try:
            if now > self._now:
                self._now = now
            else:
                now = self._now
            lease = self._visitors.get(visitor_id)
            if lease is None or lease.ended is not None or now >= lease.expires:
                return None
            held = lease.pool
            if held.last_touch:
                return None
            return _kept(lease, visitor_id, now)
        finally:
            self._release()

    def _visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        facts: Facts | None,
        client: str | None,
    ) -> Decision:
        if now > self._now:
            self._now = now
        else:
            now = self._now
        lease = self._visitors.get(visitor_id)
        if lease is not None and lease.ended is None and now < lease.expires:
            held = lease.pool
            if held.last_touch and may_switch(
                "last_touch", held.key, lease.specificity, lease.referrer_domain, claim
            ):
                assert claim is not None  # may_switch is False without a claim
                switched = self._switch(lease, claim, facts, now, client)
                if switched is not None:
                    return switched
            return _kept(lease, visitor_id, now)
        if claim is None:
            return Decision(visitor_id, now, "no_match")
        pool_key = _pool_key(claim)
        pool = self._pools.get(pool_key)
        if pool is None:
            raise StoreError.unregistered(pool_key)
        if pool.live.least_key() <= now:
            self._expire(pool, now)
        if client is not None and pool.cap and pool.clients.get(client, 0) >= pool.cap:
            pool.capped += 1
            return leased(
                visitor_id,
                now,
                "capped",
                None,
                pool.key,
                pool.name,
                claim.source_index,
                claim.referrer_domain,
                claim.trigger,
            )
        free = pool.free
        if free.least_key() + pool.cooldown > now:
            return self._exhausted(pool, visitor_id, now, claim, facts, client)
        pool.new += 1
        lease = self._open(pool, free.pop_item(), visitor_id, now, claim, facts, client)
        at: object = now  # boxed once for both fields (the compiled module boxes per use)
        return _new_tuple(
            _Decision,
            (
                visitor_id,
                at,
                "new",
                lease.number,
                pool.key,
                pool.name,
                lease.source_index,
                lease.referrer_domain,
                lease.trigger,
                lease.lease_id,
                at,
                lease.expires,
                None,
                None,
            ),
        )

    def _pool(self, key: str) -> _Pool:
        pool = self._pools.get(key)
        if pool is None:
            raise StoreError.unregistered(key)
        return pool

    def _forked(self) -> None:
        """This store was built in another process: warn once that leases are not shared."""
        self._pid = os.getpid()
        if not _fork_warned:
            _fork_warned.append(True)
            log.warning(
                "a MemoryStore built before a fork is used in a child process: each process "
                "now leases the same numbers on its own, so two visitors may see one number; "
                "share leases between processes with RedisStore"
            )

    def _exhausted(
        self,
        pool: _Pool,
        visitor_id: str,
        now: float,
        claim: ClaimLike,
        facts: Facts | None,
        client: str | None,
    ) -> Decision:
        action = exhausted_action(pool.terms.policy, len(pool.free) > 0, bool(pool.holder))
        if action == "cut_cooldown":
            number = pool.free.pop_item()
            pool.recycled += 1
            pool.cooldowns_cut += 1
            return self._lease_decision(
                "recycled", self._open(pool, number, visitor_id, now, claim, facts, client)
            )
        if action == "displace":
            victim = self._idlest(pool)
            if victim is not None:
                pool.live.pop()
                seq = self._seq = self._seq + 1
                self._close(victim, now, "displaced", displaced_by=pool.id_prefix + str(seq))
                pool.recycled += 1
                pool.displacements += 1
                lease = self._open(pool, victim.number, visitor_id, now, claim, facts, client, seq)
                return self._lease_decision("recycled", lease, displaced=victim.lease_id)
        pool.overflows += 1
        return leased(
            visitor_id,
            now,
            "overflow",
            pool.overflow_number,
            pool.key,
            pool.name,
            claim.source_index,
            claim.referrer_domain,
            claim.trigger,
        )

    def _switch(
        self, lease: _Lease, claim: ClaimLike, facts: Facts | None, now: float, client: str | None
    ) -> Decision | None:
        """Move a live lease to the claim's pool if that pool has a number free now.

        A client at the claimed pool's cap does not move (the lease is kept).
        """
        target = self._pool(claim.pool_key)
        self._expire(target, now)
        free = target.free
        if free.least_key() + target.cooldown > now:
            return None
        if client is not None and target.cap and target.clients.get(client, 0) >= target.cap:
            return None
        old = lease.pool
        self._close(lease, now, "switched")
        self._free(old, lease.number, now)
        old.switched_out += 1
        number = free.pop_item()
        target.new += 1
        target.switched_in += 1
        new = self._open(target, number, lease.visitor_id, now, claim, facts, client)
        return self._lease_decision("new", new, switched_from=lease.lease_id)

    @staticmethod
    def _lease_decision(
        outcome: Literal["new", "recycled"],
        lease: _Lease,
        displaced: str | None = None,
        switched_from: str | None = None,
    ) -> Decision:
        pool = lease.pool
        return leased(
            lease.visitor_id,
            lease.started,
            outcome,
            lease.number,
            pool.key,
            pool.name,
            lease.source_index,
            lease.referrer_domain,
            lease.trigger,
            lease.lease_id,
            lease.started,
            lease.expires,
            displaced,
            switched_from,
        )

    # ---- lease bookkeeping --------------------------------------------------------

    def _open(
        self,
        pool: _Pool,
        number: str,
        visitor_id: str,
        now: float,
        claim: ClaimLike,
        facts: Facts | None,
        client: str | None,
        seq: int = 0,
    ) -> _Lease:
        """Start ``visitor_id``'s lease of ``number`` (no longer free or held) and log it.

        ``seq`` is the lease's sequence number when the caller drew it (a
        displacing lease names itself in the lease it ends); ``0``, never one,
        draws the next.
        """
        if seq == 0:
            seq = self._seq = self._seq + 1
        lease = _Lease(seq, pool, number, visitor_id, now, claim, facts, client)
        if client is not None:
            clients = pool.clients
            clients[client] = clients.get(client, 0) + 1
        pool.holder[number] = lease
        pool.live.push(lease.expires, seq, lease)
        self._visitors[visitor_id] = lease
        log_ = self._log
        by_number = self._by_number
        if len(log_) >= self._capacity:  # full: the lease takes the oldest one's slot
            slot = self._log_next
            oldest = log_[slot]
            log_[slot] = lease
            slot += 1
            self._log_next = slot if slot < len(log_) else 0
            evicted_from = by_number[oldest.number]
            evicted_from.evict(oldest)
            if not evicted_from:
                del by_number[oldest.number]
        else:
            log_.append(lease)
        entries = by_number.get(number)
        if entries is None:
            entries = by_number[number] = _NumberLog()
        entries.starts.append(now)
        entries.leases.append(lease)
        return lease

    def _logged(self) -> list[_Lease]:
        """The leases in the log, oldest first (a new list; call under the lock)."""
        log_, at = self._log, self._log_next
        return log_[at:] + log_[:at]

    def _drop_closed(self, before: float) -> int:
        """Drop the oldest leases from the lease log while their windows closed by ``before``.

        For an owner that attributes no call at a time before ``before`` from
        now on, and reads the log no other way (a simulation's run: its calls
        come in time order, and its store is nobody else's). :meth:`attribute`
        at ``at`` finds the logged leases of the number with ``started <= at <
        expires``, and the number's live lease whether logged or not; a lease
        whose ``expires`` is at most ``before`` is never among the first, and
        one that is live is added as before, so no answer changes while the
        memory of the leases is given back. Leases go oldest first, up to the
        first whose window is still open: O(1) amortized per lease. Returns
        how many were dropped.
        """
        with self._lock:
            log_ = self._log
            size = len(log_)
            start = self._log_next
            by_number = self._by_number
            dropped = 0
            while dropped < size:
                slot = start + dropped
                lease = log_[slot if slot < size else slot - size]
                if lease.expires > before:
                    break
                entries = by_number[lease.number]
                entries.evict(lease)
                if not entries:
                    del by_number[lease.number]
                dropped += 1
            if dropped:
                if start == 0:
                    del log_[:dropped]
                else:  # a full ring: oldest first again, then appended to until full
                    self._log = (log_[start:] + log_[:start])[dropped:]
                    self._log_next = 0
            return dropped

    def _close(
        self, lease: _Lease, at: float, reason: EndReason, displaced_by: str | None = None
    ) -> None:
        lease.ended = at
        lease.end_reason = reason
        lease.displaced_by = displaced_by
        if self._visitors.get(lease.visitor_id) is lease:
            del self._visitors[lease.visitor_id]
        pool = lease.pool
        if pool.holder.get(lease.number) is lease:
            del pool.holder[lease.number]
        if lease.client is not None:
            _uncount(pool, lease.client)
        if reason == "expired":
            pool.expired += 1
        elif reason == "released":
            pool.released += 1
        if self._sink is not None:
            self._closed.append(lease)

    @staticmethod
    def _free(pool: _Pool, number: str, since: float) -> None:
        index = pool.order.get(number)
        if index is not None:  # a number dropped from the pool is not leased again
            pool.free.push(since, index, number)

    def _expire(self, pool: _Pool, now: float) -> None:
        """End the leases of ``pool`` whose hold ran out by ``now``; free their numbers.

        The common path of every new lease, so :meth:`_close` and :meth:`_free`
        are written out here.
        """
        live, free, holder, order = pool.live, pool.free, pool.holder, pool.order
        visitors = self._visitors
        while live.least_key() <= now:
            lease = live.pop_item()
            if lease.ended is not None:
                continue
            expires = lease.expires
            if expires > now:
                live.push(expires, lease.seq, lease)  # renewed: its entry's tie-break is its seq
                continue
            lease.ended = expires
            lease.end_reason = "expired"
            number = lease.number
            if visitors.get(lease.visitor_id) is lease:
                del visitors[lease.visitor_id]
            if holder.get(number) is lease:
                del holder[number]
            if lease.client is not None:
                _uncount(pool, lease.client)
            pool.expired += 1
            if self._sink is not None:
                self._closed.append(lease)
            index = order.get(number)
            if index is not None:  # a number dropped from the pool is not leased again
                free.push(expires, index, number)

    @staticmethod
    def _idlest(pool: _Pool) -> _Lease | None:
        """The live lease with the lowest ``expires``, left at the top of ``pool.live``."""
        live = pool.live
        while len(live) > 0:
            key, seq, lease = live.peek()
            if lease.ended is not None:
                live.pop()
            elif key != lease.expires:
                live.pop()
                live.push(lease.expires, seq, lease)
            else:
                return lease
        return None

    def _take_closed(self) -> list[_Lease]:
        """The leases ended by this operation (call under the lock; delivered after it)."""
        closed = self._closed
        if closed:
            self._closed = []
        return closed

    def _deliver(self, closed: list[_Lease]) -> None:
        sink = self._sink
        if sink is None:
            return
        for lease in closed:
            try:
                sink(self._snapshot(lease))
            except Exception:
                log.exception("on_lease_closed failed for lease %s", lease.lease_id)

    def _snapshot(self, lease: _Lease) -> Lease:
        ended, reason = lease.ended, lease.end_reason
        if ended is None and lease.expires <= self._now:
            ended, reason = lease.expires, "expired"  # ran out; not yet noticed by its pool
        return _new_lease(
            lease.lease_id,
            lease.pool.key,
            lease.number,
            lease.visitor_id,
            lease.started,
            lease.last_activity,
            lease.expires,
            ended,
            reason,
            lease.displaced_by,
            lease.specificity,
            lease.source_index,
            lease.referrer_domain,
            lease.trigger,
            lease.facts,
        )

    # ---- the other operations -----------------------------------------------------

    def release(self, visitor_id: str, now: float) -> Lease | None:
        """End ``visitor_id``'s live lease now; its number starts cooling. ``None`` if none."""
        with self._lock:
            now = max(now, self._now)
            self._now = now
            lease = self._visitors.get(visitor_id)
            if lease is None or lease.ended is not None or now >= lease.expires:
                result = None
            else:
                self._close(lease, now, "released")
                self._free(lease.pool, lease.number, now)
                result = self._snapshot(lease)
            closed = self._take_closed()
        if closed:
            self._deliver(closed)
        return result

    def attribute(self, number: str, at: float) -> Attribution:
        """Attribute a call to ``number`` at ``at`` (see :func:`attribution_from`)."""
        with self._lock:
            pool = self._pool_of_number.get(number)
            if pool is None:
                owners = [p.key for p in self._pools.values() if p.terms.overflow_number == number]
                if owners:  # one overflow number may serve several pools: then no pool is named
                    return Attribution(
                        number, at, "overflow", owners[0] if len(owners) == 1 else None
                    )
                return Attribution(number, at, "unknown")
            found: list[_Lease] = []
            entries = self._by_number.get(number)
            if entries is not None:
                # Leases on one number follow each other, and a lease's window
                # ends at most one hold after the next lease started: walk back
                # from the last lease that started by ``at`` until that bound.
                index = bisect_right(entries.starts, at, entries.head) - 1
                next_start = math.inf
                while index >= entries.head and at < next_start + self._max_hold:
                    lease = entries.lease(index)
                    if at < lease.expires:
                        found.append(lease)
                    next_start = lease.started
                    index -= 1
                found.reverse()
            holder = pool.holder.get(number)
            if holder is not None and holder not in found and holder.started <= at:
                found.append(holder)  # a live lease already pushed out of a tiny log
            return attribution_from(number, at, pool.key, [self._snapshot(x) for x in found])

    def _catch_up(self, pool_key: str, now: float) -> tuple[_Pool, float]:
        """The pool of ``pool_key`` with the leases that ran out by ``now`` ended.

        ``now`` is moved up to the store's latest time (and becomes it); the
        pool and that time are returned. Call under the lock.
        """
        now = max(now, self._now)
        self._now = now
        pool = self._pool(pool_key)
        self._expire(pool, now)
        return pool, now

    def live_leases(self, pool_key: str, now: float) -> int:
        """How many leases of ``pool_key`` are live at ``now``: :attr:`PoolStats.live`, alone.

        For sampling occupancy often (a simulation does, every simulated
        minute) without building the whole :class:`PoolStats`.
        """
        with self._lock:
            pool, now = self._catch_up(pool_key, now)
            live = len(pool.holder)
            closed = self._take_closed()
        if closed:
            self._deliver(closed)
        return live

    def stats(self, pool_key: str, now: float) -> PoolStats:
        """Counters and occupancy of ``pool_key`` at ``now``."""
        with self._lock:
            pool, now = self._catch_up(pool_key, now)
            cooling = (
                sum(1 for since, _, _ in pool.free.entries() if since + pool.cooldown > now)
                if pool.cooldown > 0
                else 0
            )
            result = PoolStats(
                pool.key,
                now,
                len(pool.order),
                len(pool.holder),
                cooling,
                len(pool.free) - cooling,
                pool.new,
                pool.kept,
                pool.overflows,
                pool.recycled,
                pool.displacements,
                pool.cooldowns_cut,
                pool.switched_in,
                pool.switched_out,
                pool.expired,
                pool.released,
                pool.capped,
            )
            closed = self._take_closed()
        if closed:
            self._deliver(closed)
        return result

    def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        """Leases in the log, oldest first, filtered (see :class:`Store`)."""
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        with self._lock:
            if number is not None:
                entries = self._by_number.get(number)
                pool_leases = entries.window() if entries is not None else []
            else:
                pool_leases = self._logged()
            return [
                self._snapshot(lease)
                for lease in pool_leases
                if (pool_key is None or lease.pool.key == pool_key)
                and lease.started < high
                and lease.expires > low
            ]

    # ---- the call log ----------------------------------------------------------------

    def record_call(self, record: CallRecord) -> CallRecord:
        """Keep ``record`` unless its call id is logged; return the logged one (see :class:`Store`).

        A call id already in the log returns that record with ``replayed=True``.
        """
        call_id = record.call.call_id
        with self._lock:
            found = self._calls.get(call_id)
            if found is not None:
                return dataclasses.replace(found, replayed=True)
            kept = dataclasses.replace(record, replayed=False, stored=True)
            self._calls[call_id] = kept
            insort(self._call_order, (record.call.started, call_id))
            if record.recorded > self._calls_now:
                self._calls_now = record.recorded
            self._trim_calls()
            return kept

    def _trim_calls(self) -> None:
        """Drop calls over the bound, then calls older than the retention (under the lock)."""
        order = self._call_order
        drop = len(order) - self._call_capacity
        if self._call_retention > 0:
            cutoff = self._calls_now - self._call_retention
            drop = max(drop, bisect_left(order, (cutoff,)))
        if drop > 0:
            for _, call_id in order[:drop]:
                del self._calls[call_id]
            del order[:drop]

    def find_call(self, call_id: str) -> CallRecord | None:
        """The logged record of ``call_id``, or ``None``."""
        with self._lock:
            return self._calls.get(call_id)

    def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """Logged calls that started in ``[since, until)``, oldest first, by pool and number.

        Calls that started at the same time are listed by call id.
        """
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        with self._lock:
            order = self._call_order
            start = bisect_left(order, (low,))
            found: list[CallRecord] = []
            for started, call_id in order[start:]:
                if started >= high:
                    break
                record = self._calls[call_id]
                attribution = record.attribution
                if pool_key is not None and attribution.pool_key != pool_key:
                    continue
                if number is not None and attribution.number != number:
                    continue
                found.append(record)
            return found

    # ---- erasure ------------------------------------------------------------------

    def forget(self, visitor_id: str, now: float) -> Forgotten:
        """Remove every trace of ``visitor_id`` (see :class:`Store`); idempotent.

        The live lease ends as a release would (its number cools down) and
        ``on_lease_closed`` is not called for it.
        """
        with self._lock:
            now = max(now, self._now)
            self._now = now
            released = 0
            lease = self._visitors.get(visitor_id)
            if lease is not None and lease.ended is None:
                live = now < lease.expires
                at = now if live else lease.expires  # one that ran out ends as it would have
                sink = self._sink
                self._sink = None  # the visitor's lease goes to no one
                try:
                    self._close(lease, at, "released" if live else "expired")
                finally:
                    self._sink = sink
                self._free(lease.pool, lease.number, at)
                released = 1 if live else 0
            logged = self._logged()
            theirs = [x for x in logged if x.visitor_id == visitor_id]
            if theirs:
                gone = {id(x) for x in theirs}
                ids = {x.lease_id for x in theirs}
                self._log = [x for x in logged if id(x) not in gone]
                self._log_next = 0
                for x in theirs:
                    entries = self._by_number.get(x.number)
                    if entries is None:
                        continue
                    index = entries.leases.index(x, entries.head)
                    del entries.leases[index], entries.starts[index]
                    if not entries:
                        del self._by_number[x.number]
                for other in self._log:
                    if other.displaced_by in ids:
                        other.displaced_by = None
                for pool in self._pools.values():
                    for other in pool.holder.values():
                        if other.displaced_by in ids:
                            other.displaced_by = None
            for pool in self._pools.values():
                # heap entries of ended leases are dropped lazily; drop the visitor's now
                queued = pool.live.entries()
                if any(e[2].visitor_id == visitor_id for e in queued):
                    pool.live = _Queue([e for e in queued if e[2].visitor_id != visitor_id])
            calls: list[str] = []
            lease_ids = {x.lease_id for x in theirs}
            for call_id, record in self._calls.items():
                if call_names_visitor(record, visitor_id):
                    calls.append(call_id)
                    attribution = record.attribution
                    lease_ids.update(
                        c.lease_id
                        for c in (attribution.lease, *attribution.candidates)
                        if c is not None and c.visitor_id == visitor_id
                    )
            for call_id in calls:
                del self._calls[call_id]
            if calls:
                dropped = set(calls)
                self._call_order = [e for e in self._call_order if e[1] not in dropped]
            if lease_ids:
                for call_id, record in list(self._calls.items()):
                    cleared = _unlinked(record, lease_ids)
                    if cleared is not None:
                        self._calls[call_id] = cleared
            return Forgotten(visitor_id, released, len(theirs), len(calls))

    def purge(self, now: float) -> int:
        """End every lease whose hold ran out by ``now``; return how many ended."""
        with self._lock:
            now = max(now, self._now)
            self._now = now
            pools = self._pools.values()
            before = sum(pool.expired for pool in pools)
            for pool in pools:
                self._expire(pool, now)
            ended = sum(pool.expired for pool in pools) - before
            closed = self._take_closed()
        if closed:
            self._deliver(closed)
        return ended

    def footprint(self) -> StoreFootprint:
        """Sizes of everything the store holds (see :class:`StoreFootprint`)."""
        with self._lock:
            pools = self._pools.values()
            return StoreFootprint(
                pools=len(self._pools),
                numbers_total=sum(len(p.order) for p in pools),
                live_leases=sum(len(p.holder) for p in pools),
                visitors=len(self._visitors),
                free_entries=sum(len(p.free) for p in pools),
                live_entries=sum(len(p.live) for p in pools),
                log_entries=len(self._log),
                numbers_logged=len(self._by_number),
            )

    def __repr__(self) -> str:
        return f"MemoryStore(pools={len(self._pools)}, log_capacity={self._capacity})"
