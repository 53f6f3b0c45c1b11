"""The Redis store: one lease pool shared by every worker process on every host.

:class:`RedisStore` implements the :class:`~dni_engine.stores.base.Store`
protocol on Redis or Redis Cluster. Each operation on a pool is one call of a Lua
script (``lua/pool.lua`` beside this module, whose header lists its keys,
arguments and replies; loaded once, called by SHA, reloaded after ``NOSCRIPT``)
that runs the visit algorithm of :mod:`dni_engine.stores.base` atomically on
the server, so its behaviour is that of
:class:`~dni_engine.stores.memory.MemoryStore`, checked by running the same
test-suite against both. :class:`AsyncRedisStore` is the same store on
``redis.asyncio`` for an event loop: every operation is written once, as a
generator that yields the commands of each round trip and receives their
replies, and each class drives those generators over its own client, so the
two behave alike (the same test-suite runs both) and may share a namespace.

**Keys.** Everything about one pool carries the pool's hash tag, so it lives
in one cluster slot (``<ns>`` is the ``namespace``, ``dni`` by default)::

    <ns>:{p:<pool>}:cfg        hash    terms, time watermark, lease sequence, counters
    <ns>:{p:<pool>}:order      hash    number -> index in the pool (API order)
    <ns>:{p:<pool>}:free       zset    free numbers by free-since (ties: API order)
    <ns>:{p:<pool>}:live       zset    live leases by expiry (ties: taken first)
    <ns>:{p:<pool>}:holder     hash    number -> its live lease
    <ns>:{p:<pool>}:visitors   hash    visitor -> their live lease in this pool (and a filler)
    <ns>:{p:<pool>}:log        zset    the lease log: leases by start time
    <ns>:{p:<pool>}:clients    hash    client key -> its live leases in the pool (the cap)
    <ns>:{p:<pool>}:n:<number> zset    the log per number, for attribution
    <ns>:{p:<pool>}:l:<seq>    hash    one lease record
    <ns>:{v:<visitor>}         string  the pool of the visitor's live lease (a hint)
    <ns>:{r}:pools|order|numbers|overflow   the registry: which pool owns a number
    <ns>:{c}:records|times|meta             the call log (``lua/calls.lua``)

A lease id is ``<pool>:<epoch>.<seq>``: the epoch is drawn at random each time
a pool's state is created, so ids are never reused after a loss. The lease log
is bounded per pool: at most ``log_capacity`` leases, and, checked every 16th
lease, leases whose window ended more than ``log_retention`` seconds ago leave
it, oldest first. A live lease pushed out of the log keeps its record until it
ends, so it can still be attributed. Redis must not evict these keys
(``maxmemory-policy noeviction``, the default, or a ``volatile-*`` policy:
only the hints carry a TTL); the store checks the policy at its first
registration and warns when it is ``allkeys-*`` (or that it could not check,
where ``CONFIG`` is refused).

**A visit** is one round trip in the common cases: the script of the pool
the visitor most likely holds a lease in (the pool named by the caller's
``hint``, else the claimed pool), pipelined with ``GETEX`` of the visitor's
hint key, which reads it and refreshes its expiry. That script keeps a live
lease there (or offers a last-touch switch) but takes none, since only the
hint key can tell whether the visitor holds a lease in another pool. When it
finds no lease, the hint key decides: naming another pool, that pool's
script runs next (the visitor keeps their lease there, or switches); naming
nothing, the claimed pool's script takes a number, pipelined with ``SET`` of
the new hint (a second round trip); without a claim the visit is
``no_match``. A visit without a hint and without a claim reads the hint key
first. A visitor id the caller minted for this request
(``hint=NEW_VISITOR``; the web integration passes it) cannot hold a lease, so
its first visit is the claimed pool's script and ``SET`` of the hint in one
round trip, and no round trip at all without a claim. The scripts are
authoritative: a wrong or stale hint (its lease ended, or it names a pool the
claim does not) costs a round trip, never a decision. Hints expire
``hint_ttl`` seconds of server time after the visitor's last visit. On a
standalone Redis the commands of a round trip are written to one pooled
connection at once and their raw replies read in order, without redis-py's
per-command and pipeline machinery (a store that built its client from a URL
also keeps the connections it used between calls, rather than taking each one
from the client's pool and giving it back: a connection the server closed
meanwhile is reconnected first; ``close`` gives them back; :class:`RedisStore`
then reads the replies straight from the socket with the connection's own
hiredis reader, and :class:`AsyncRedisStore` writes the commands on the
connection's stream itself, waiting only for what the transport buffered).
:class:`AsyncRedisStore` reads a round trip's replies from the connection's
stream with its hiredis reader, under one timeout, and the arguments every
visit of a pool starts with are packed once. On a cluster the commands go
through its pipeline (a script and the hint key live in two slots, maybe on
two nodes).

**What is not atomic.** Each script is atomic inside its pool; nothing spans
two pools, because two pools may live on two cluster nodes:

* *Last-touch switch* is three scripts: the held pool says the lease may
  switch (changing nothing), the new pool takes a free number (``new``,
  ``switched_from`` set, ``switched_in`` counted), then the old pool ends the
  old lease (``switched``, its number cooling, ``switched_out`` counted) in
  the same round trip as the hint update. Between the second and third step
  the visitor holds two live leases (no number is ever held twice). If the
  old lease ends otherwise meanwhile (its hold ran out, or ``recycle``
  displaced it), the third step finds nothing to end: the new lease still
  names it in ``switched_from``, the old one keeps the other end reason, and
  ``switched_in`` of the new pool exceeds ``switched_out`` of the old one by
  one. If the worker dies between the steps, the old lease is never renewed
  and simply runs out. When the new pool has no free number, a fourth script
  keeps the old lease, as the memory store does.
* *The hint* is written after the lease it names. Two requests of one visitor
  that race on their first visit and match two different pools can each take
  a lease, one in each pool; the hint then names one of them and the other
  runs out unrenewed. A hint lost (the write failed, or it expired while the
  engine's clock runs slower than the server's) makes the visitor's next visit
  look like a first visit outside the hinted pool: a match in the pool of the
  lease still keeps it (the script checks), a match elsewhere takes a second
  lease, a visit without a match gets ``no_match``.
* *Registration* writes the registry (checked atomically against every other
  pool's numbers) and then the pool's own keys, in two steps. It is meant for
  start-up, where every worker registers the same terms (idempotently).
* *Time*: the store's time never goes backwards inside one pool (a watermark
  in the pool's ``cfg``) and inside one ``RedisStore`` object; two pools on
  two hosts with skewed clocks keep their own watermarks.

**Time.** By default leases run on the engine's clock: the ``now`` given to
each operation is sent to the script (as ``repr(float)``, exactly), so
simulations and tests stay deterministic. Across hosts this needs synchronised
clocks: a host whose clock lags has its visits raised to the pool's watermark
(harmless), but a host running ahead moves the pool's time ahead for everyone,
so holds end early by the skew. With ``server_time=True`` the scripts read
Redis ``TIME`` instead and ignore ``now`` for leases, so workers whose clocks
drift apart still agree on who holds which number; the decision's ``at``,
``started`` and ``expires`` are then server time, which the calls you
attribute should use too. On a cluster each pool uses its own node's clock.

**Lost state.** Redis may forget a pool: a restart without persistence,
``FLUSHALL``, a failover to an empty replica, keys evicted under
``allkeys-*``. The store notices on the first operation that meets it: a
pool script finds the pool unregistered, a record it needs missing (a
visitor's or a due lease's record, the idlest leases' records, or counts of
free, held and live numbers that no longer add up when the pool looks
exhausted), or fails on what it finds. It then logs one error naming the
cause, drops what is left of the pool, registers it again from the terms it
was given (idempotent: many workers may do it at once) and runs the
operation again, so tracking resumes at once, without a restart. A visitor
the store forgot may still have their number on screen for up to one hold,
and the numbers go straight to new visitors; so until one hold has passed
since the pool's state was created, a call on its numbers is attributed with
a ``caveat`` and a confidence that counts that forgotten visitor as one more
candidate (``1/2`` for one lease). An empty namespace cannot tell a new
deployment from a flushed one, so state created by a first registration is
treated the same way unless the store was built with ``new_namespace=True``.
A pool's time stored far ahead of the registering engine's clock (a
poisoned time) is brought back to it at registration.

**Failures.** Building a store, and registering pools while Redis is down,
never fails on the network: pools are registered at the first operation Redis
answers, and :meth:`RedisStore.ready` says whether they are. Clients built
from a URL get short timeouts (``connect_timeout`` 50 ms, ``timeout`` 100 ms)
and no retries; a client you pass in is used as it is configured (give it the
same). When Redis fails, times out or is in a cluster failover, the operation
raises :class:`StoreError`, which :meth:`Engine.visit
<dni_engine.engine.Engine.visit>` turns into the outcome ``store_unavailable``
(the page keeps its numbers). A
:class:`~dni_engine.stores.breaker.CircuitBreaker` then fails every call at
once for ``breaker_open_seconds`` of monotonic wall time (not the engine's
clock), lets one probe through, and closes again when the probe succeeds, so a
dead Redis costs one timeout per interval rather than one per page view, and
the store recovers by itself. A script that timed out on the client may still
have run on the server: the lease it took is live, and the visitor's next
visit keeps it."""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Generator, Sequence
from importlib import resources
from typing import Any, Final, NamedTuple, TypeAlias, TypeVar, cast

from dni_engine.extras import MissingExtra

try:
    import redis
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.exceptions import (
        ClusterError,
        NoScriptError,
        OutOfMemoryError,
        ReadOnlyError,
        RedisClusterException,
        RedisError,
        TryAgainError,
    )
    from redis.retry import Retry
except ImportError as exc:
    raise MissingExtra("dni_engine.stores.redis", "redis", exc.name) from exc

from dni_engine._native import mypyc_attr
from dni_engine.calls import CallRecord
from dni_engine.errors import ConfigError, Problem
from dni_engine.leases import (
    MAX_CLOCK_SKEW,
    Attribution,
    ClaimLike,
    Decision,
    EndReason,
    Facts,
    Lease,
    PoolStats,
    PoolTerms,
    attribution_from,
    claim_facts,
    is_any_referrer,
)
from dni_engine.stores.base import (
    DEFAULT_CALL_CAPACITY,
    DEFAULT_CALL_RETENTION,
    NEW_VISITOR,
    ConflictKind,
    Forgotten,
    StoreError,
    conflict_problem,
    number_conflicts,
)
from dni_engine.stores.breaker import DEFAULT_OPEN_SECONDS, BreakerState, CircuitBreaker

_pack: Callable[[tuple[Any, ...]], bytes] | None
_Reader: type | None
_INCOMPLETE: object | None
_Push: type | None
try:  # the redis extra brings hiredis; without it, redis-py packs and parses
    from hiredis import Reader as _HiredisReader
    from hiredis import pack_command as _hiredis_pack
except ImportError:
    _pack = _Reader = _INCOMPLETE = _Push = None
else:
    _pack, _Reader = _hiredis_pack, _HiredisReader
    try:  # hiredis 3.2 and later class RESP3 push messages
        from hiredis import PushNotification as _PushNotification
    except ImportError:
        _Push = None
    else:
        _Push = _PushNotification
    try:  # what redis-py's hiredis reader answers while a reply is incomplete
        from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
    except ImportError:
        _INCOMPLETE = None
    else:
        _INCOMPLETE = _NOT_ENOUGH_DATA

__all__ = [
    "CALLS_SCRIPT",
    "DEFAULT_BREAKER_OPEN_SECONDS",
    "DEFAULT_CALL_CAPACITY",
    "DEFAULT_CALL_RETENTION",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_LOG_CAPACITY",
    "DEFAULT_LOG_RETENTION",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TIMEOUT",
    "POOL_SCRIPT",
    "REGISTRY_SCRIPT",
    "AsyncRedisClient",
    "AsyncRedisStore",
    "BreakerState",
    "CircuitBreaker",
    "RedisClient",
    "RedisStore",
]

log = logging.getLogger("dni_engine.stores.redis")

_T = TypeVar("_T")

RedisClient = redis.Redis | RedisCluster
"""A client the store accepts: standalone Redis or Redis Cluster."""
AsyncRedisClient = redis.asyncio.Redis | AsyncRedisCluster
"""A client the async store accepts: ``redis.asyncio``'s standalone or cluster client."""

DEFAULT_NAMESPACE: Final = "dni"
DEFAULT_CONNECT_TIMEOUT: Final = 0.05
DEFAULT_TIMEOUT: Final = 0.1
DEFAULT_LOG_CAPACITY: Final = 100_000
DEFAULT_LOG_RETENTION: Final = 30 * 86_400.0
DEFAULT_BREAKER_OPEN_SECONDS: Final = DEFAULT_OPEN_SECONDS
_UNREGISTERED_HINT_TTL: Final = 86_400

# Errors that mean "Redis cannot serve us right now": they open the breaker. Other
# errors are answers (a script error, a wrong key type): raised, but Redis is up.
_OUTAGES: Final[tuple[type[BaseException], ...]] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    OutOfMemoryError,
    RedisClusterException,
    OSError,
)
_CAUGHT: Final[tuple[type[BaseException], ...]] = (RedisError, *_OUTAGES)

_Gen: TypeAlias = Generator[Sequence[tuple[Any, ...]], list[Any], _T]
"""An operation: it yields each round trip's commands and receives their replies.

A failed round trip is thrown into it as :class:`StoreError`. Its value is the
operation's result. :class:`RedisStore` and :class:`AsyncRedisStore` drive the
same generators, so the algorithms are written once, without I/O.
"""

_POLICY: Final[Sequence[tuple[Any, ...]]] = (("CONFIG", "GET", "maxmemory-policy"),)
"""The round trip reading the eviction policy: sent to every node, and its failure is
answered (as the exception) rather than raised."""


def _missing_script(results: Sequence[object]) -> bool:
    """Whether a reply says a script is not loaded on the server (``NOSCRIPT``)."""
    return any(isinstance(r, NoScriptError) for r in results)


def _raise_first(results: Sequence[object]) -> None:
    """Raise the first error reply of a round trip, if any."""
    for result in results:
        if isinstance(result, Exception):
            raise result


# The visit arguments after the expiry for a visit without a claim, up to the client key
# (see the script's header): the claim's, then the trigger, log bounds and facts.
_NO_CLAIM_REST: Final = ("0", "0", "", "0", "-", "0", "0", "")
# The KEYS of the pool script, in its order.
_POOL_KEYS: Final = ("cfg", "free", "live", "holder", "visitors", "log", "order")

_Text = bytes | str
"""A value in a script reply (text, unless the client decodes responses)."""

# The counters of a ``stats`` reply, after its status and time: the names of the
# PoolStats fields they set, in the order the script's header lists them.
_STATS_FIELDS: Final = (
    "size",
    "live",
    "cooling",
    "free",
    "new",
    "kept",
    "overflows",
    "recycled",
    "displacements",
    "cooldowns_cut",
    "switched_in",
    "switched_out",
    "expired",
    "released",
    "capped",
)


class _Snapshot(NamedTuple):
    """One lease snapshot in a pool script reply, by the names the script's header lists.

    The lease's member, then its record's fields in the script's ``SNAPSHOT`` order.
    """

    member: _Text
    visitor_id: _Text
    number: _Text
    started: _Text
    last_activity: _Text
    expires: _Text
    ended: _Text | None
    end_reason: _Text | None
    displaced_by: _Text | None
    specificity: _Text
    source_index: _Text
    referrer_domain: _Text
    trigger: _Text | None
    facts: _Text | None


class _RegistryKeys(NamedTuple):
    """The registry's keys, in the order of the registry script's KEYS."""

    pools: str
    order: str
    numbers: str
    overflow: str


def _lua(name: str) -> str:
    """The text of the script ``lua/<name>``, shipped as package data beside this module."""
    return resources.files("dni_engine.stores").joinpath(f"lua/{name}").read_text(encoding="utf-8")


POOL_SCRIPT: Final = _lua("pool.lua")
"""The per-pool script: every operation on one pool (its header lists KEYS, ARGV and replies)."""

REGISTRY_SCRIPT: Final = _lua("registry.lua")
"""The registry script: which pool owns each number, checked and written atomically."""

CALLS_SCRIPT: Final = _lua("calls.lua")
"""The call log script: one record per call id, inserted, bounded and listed atomically."""


def _text(value: _Text) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _config_values(reply: object, name: str) -> list[str]:
    """The values of ``name`` in a ``CONFIG GET`` reply (a dict, or a dict per cluster node)."""
    if not isinstance(reply, dict):
        return []
    found: list[str] = []
    for key, value in reply.items():
        if isinstance(value, dict):
            found.extend(_config_values(value, name))
        elif isinstance(key, bytes | str) and _text(key) == name and isinstance(value, bytes | str):
            found.append(_text(value))
    return found


def _lease_id(pool_key: str, member: bytes | str) -> str:
    """The id of the lease with this member: ``<pool>:<epoch>.<seq>`` (or ``<pool>:<seq>``)."""
    epoch, dot, seq = _text(member).rpartition(".")
    return f"{pool_key}:{epoch}.{int(seq)}" if dot else f"{pool_key}:{int(seq)}"


class _ScriptFailed(StoreError):
    """A lease script raised an error on the server (Redis itself answered)."""


class _LostState(StoreError):
    """A pool script found the pool's state gone (``unregistered``) or partly missing."""

    def __init__(self, pool_key: str, cause: str) -> None:
        super().__init__(f"the lease state of pool {pool_key!r} was lost: {cause}")
        self.pool_key = pool_key
        self.cause = cause


@functools.lru_cache(maxsize=1024)
def _facts_text(facts: Facts | None) -> str:
    """A lease's facts as the compact JSON its record keeps (``''`` for none); cached."""
    if facts is None:
        return ""
    return json.dumps(facts.to_json(), separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def _facts_from(text: str) -> Facts | None:
    """The facts of a lease record's JSON; ``None`` when it cannot be read (logged)."""
    try:
        return Facts.from_json(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        log.warning("a lease record's facts cannot be read (%s); the lease has none", exc)
        return None


def _record_from(text: str) -> CallRecord:
    """A call record from the call log's JSON (:class:`StoreError` when it cannot be read)."""
    try:
        return CallRecord.from_json(json.loads(text))
    except ValueError as exc:
        raise StoreError(f"a call record in Redis cannot be read: {exc}") from exc


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


_POOL_SHA: Final = _sha(POOL_SCRIPT)
_REGISTRY_SHA: Final = _sha(REGISTRY_SCRIPT)
_CALLS_SHA: Final = _sha(CALLS_SCRIPT)
# The KEYS of the call log script, in its order.
_CALL_KEYS: Final = ("records", "times", "meta")


@mypyc_attr(native_class=False)  # mypyc: a native class cannot subclass str
class _PackedHead(str):
    """The name ``EVALSHA`` heading a command whose first ``size`` arguments are packed once.

    A pool's visit command starts with the same arguments on every visit of one
    kind (the script's SHA, its key, the operation, the key prefix, the mode, the
    claim and the pool's hold): :func:`_packed_head`
    packs them in the Redis protocol once (``packed``, without the array's
    length), and :func:`_pack_round` packs only the rest of each command. To
    everything else (redis-py's own packing, a cluster pipeline) it is the
    string ``EVALSHA``.
    """

    packed: bytes
    size: int


def _packed_head(head: tuple[Any, ...]) -> tuple[Any, ...]:
    """``head`` (a command's first arguments) led by a :class:`_PackedHead` when hiredis packs."""
    if _pack is None:
        return head
    name = _PackedHead(head[0])
    whole = _pack(head)
    name.packed = whole[whole.index(b"\n") + 1 :]  # after the array's length
    name.size = len(head)
    return (name, *head[1:])


def _pack_round(commands: Sequence[tuple[Any, ...]]) -> bytes:
    """``commands`` in the Redis protocol, packed by hiredis, a :class:`_PackedHead`'s once."""
    pack: Any = _pack  # set whenever this is called (a cast here would cost each call)
    chunks: list[bytes] = []
    for command in commands:
        name = command[0]
        if type(name) is _PackedHead:
            tail = pack(command[name.size :])
            chunks += (b"*%d\r\n" % len(command), name.packed, tail[tail.index(b"\n") + 1 :])
        else:
            chunks.append(pack(command))
    return b"".join(chunks)


def _packed(conn: Any, commands: Sequence[tuple[Any, ...]]) -> Any:
    """``commands`` in the Redis protocol, as one write's chunks (packed as redis-py does)."""
    if _pack is None:
        return conn.pack_commands(commands)
    return [_pack_round(commands)]


def _round_trip(conn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` on ``conn`` in one write and read every reply with redis-py.

    Error replies come back in their place, as exception objects.
    """
    conn.send_packed_command(_packed(conn, commands))
    results: list[Any] = []
    for _ in commands:
        try:
            results.append(conn.read_response())
        except redis.exceptions.ResponseError as exc:
            results.append(exc)
    return results


def _send_direct(pool: redis.ConnectionPool, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` on one of ``pool``'s connections in one write; read every reply.

    The cheap path of a standalone client: one connection, one packed write,
    the raw replies in order (an error reply in its place, as an exception
    object), without the per-command work of redis-py's client and pipeline.
    A connection that fails mid-way is disconnected before it goes back to the
    pool, so no reply is ever read by the wrong command.
    """
    conn: Any = pool.get_connection()  # redis-py leaves its connection untyped
    try:
        return _round_trip(conn, commands)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


class _Wire:
    """A kept connection and, when redis-py reads it with hiredis, its socket and reader.

    With both at hand a round trip is one ``sendall`` and as many ``recv_into``
    as the replies need, parsed by the connection's own hiredis reader (error
    replies come back as exception objects, classed as redis-py classes
    them; RESP3 push messages, which nothing here subscribes to, are skipped),
    without redis-py's per-reply wrappers; otherwise (another parser, a redis-py
    that keeps them elsewhere) the connection's own ``send_packed_command`` and
    ``read_response`` serve.
    """

    __slots__ = ("buffer", "conn", "poll", "reader", "sock")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        sock = getattr(conn, "_sock", None)
        reader = getattr(getattr(conn, "_parser", None), "_reader", None)
        fast = (
            _INCOMPLETE is not None
            and isinstance(sock, socket.socket)
            and _Reader is not None
            and isinstance(reader, _Reader)
        )
        self.sock: socket.socket | None = sock if fast else None
        self.reader: Any = reader if fast else None
        self.poll: Any = None
        self.buffer = bytearray(0)
        if fast:
            self.poll = select.poll()
            self.poll.register(sock, select.POLLIN)
            self.buffer = bytearray(65_536)

    def current(self) -> bool:
        """Whether the socket and reader are still the connection's (it did not reconnect)."""
        conn = self.conn
        return (
            self.sock is not None
            and getattr(conn, "_sock", None) is self.sock
            and getattr(getattr(conn, "_parser", None), "_reader", None) is self.reader
        )

    def stale(self, current: bool) -> bool:
        """Whether the connection is out of step with the server: readable before we sent.

        ``current`` is what :meth:`current` answers. A socket the server closed
        reads as ready (end of file), as does one holding bytes nobody asked
        for; either way it must not be used.
        """
        if current:
            return bool(self.poll.poll(0)) or bool(self.reader.has_data())
        try:
            return bool(self.conn.can_read())
        except (RedisError, OSError):
            return True

    def exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write and read their replies (error replies as objects).

        The wire is one :meth:`_Kept.take` answered: its socket and reader, if
        any, are the connection's (checked there, once per round trip).
        """
        sock = self.sock
        if sock is None:
            return _round_trip(self.conn, commands)
        reader, buffer = self.reader, self.buffer
        count = len(commands)
        results = []
        try:
            sock.sendall(_pack_round(commands))
            while True:
                reply = reader.gets()
                if reply is _INCOMPLETE:
                    size = sock.recv_into(buffer)
                    if not size:
                        raise redis.exceptions.ConnectionError("Connection closed by server.")
                    reader.feed(buffer, 0, size)
                    continue
                if _Push is not None and isinstance(reply, _Push):
                    continue  # RESP3 out-of-band news (none is asked for): not a reply
                results.append(reply)
                if len(results) == count:
                    return results
        except TimeoutError as exc:  # socket.timeout
            raise redis.exceptions.TimeoutError(f"Timeout talking to Redis: {exc}") from exc
        except OSError as exc:
            raise redis.exceptions.ConnectionError(f"Error talking to Redis: {exc}") from exc


class _Kept:
    """Connections a store took from the pool of the client it built, kept between calls.

    Taking a connection from redis-py's pool and giving it back costs more than a
    round trip's own client work; a store that owns its client keeps the
    connections it used in a list of its own instead (one per thread at a time:
    ``pop`` and ``append`` are atomic) and gives them back at :meth:`close`.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.idle: list[_Wire] = []

    def take(self) -> _Wire:
        """A connection ready to send: a kept one still in step with the server, or the pool's."""
        if self.pid != os.getpid():
            # A forked child never uses its parent's sockets (the pool resets itself too).
            self.pid, self.idle = os.getpid(), []
        try:
            wire = self.idle.pop()
        except IndexError:
            return _Wire(self.pool.get_connection())
        current = wire.current()
        if wire.stale(current):  # closed by the server meanwhile, say: the pool reconnects it
            wire.conn.disconnect()
            self.pool.release(wire.conn)
            return _Wire(self.pool.get_connection())
        return wire if current else _Wire(wire.conn)

    def close(self) -> None:
        """Give every kept connection back to the pool."""
        idle, self.idle = self.idle, []
        if self.pid == os.getpid():
            for wire in idle:
                self.pool.release(wire.conn)


def _send_kept(kept: _Kept, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """:func:`_send_direct` on a connection of ``kept``, kept again after a full exchange."""
    wire = kept.take()
    try:
        results = wire.exchange(commands)
    except BaseException:
        wire.conn.disconnect()
        kept.pool.release(wire.conn)
        raise
    kept.idle.append(wire)
    return results


class _RedisBase(abc.ABC):
    """What :class:`RedisStore` and :class:`AsyncRedisStore` share: everything but the I/O.

    Every operation is a generator (:data:`_Gen`) that yields the commands of
    one round trip and receives their replies (a failure is thrown into it as
    :class:`StoreError`), so the visit algorithm, healing and reply parsing are
    written once; each subclass drives the generators over its own client.
    """

    def __init__(
        self,
        client: object,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        cluster: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        server_time: bool = False,
        log_capacity: int = DEFAULT_LOG_CAPACITY,
        log_retention: float = DEFAULT_LOG_RETENTION,
        hint_ttl: float | None = None,
        breaker_open_seconds: float = DEFAULT_BREAKER_OPEN_SECONDS,
        breaker_clock: Callable[[], float] = time.monotonic,
        new_namespace: bool = False,
        call_capacity: int = DEFAULT_CALL_CAPACITY,
        call_retention: float = DEFAULT_CALL_RETENTION,
    ) -> None:
        problems: list[Problem] = []
        if not namespace or "{" in namespace or "}" in namespace:
            problems.append(Problem("namespace", "must be a non-empty string without braces"))
        for name, value in (("connect_timeout", connect_timeout), ("timeout", timeout)):
            if not (math.isfinite(value) and value > 0):
                problems.append(Problem(name, "must be a positive number of seconds"))
        if not (isinstance(log_capacity, int) and log_capacity >= 1):
            problems.append(Problem("log_capacity", "must be a whole number >= 1"))
        if not (math.isfinite(log_retention) and log_retention >= 0):
            problems.append(Problem("log_retention", "must be a number of seconds >= 0"))
        if hint_ttl is not None and not (math.isfinite(hint_ttl) and hint_ttl >= 1):
            problems.append(Problem("hint_ttl", "must be a number of seconds >= 1"))
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
        self._owned = isinstance(client, str)
        if isinstance(client, str):
            options: dict[str, Any] = {
                "socket_connect_timeout": connect_timeout,
                "socket_timeout": timeout,
                "retry": Retry(NoBackoff(), 0),
            }
            self._client: Any = self._connect(client, cluster, options)
        else:
            self._client = client
        self._cluster = self._is_cluster(self._client)
        # A standalone client's pool serves our commands directly (see _send_direct); a
        # single-connection client goes through redis-py's own path, which locks it.
        self._direct = not self._cluster and getattr(self._client, "connection", None) is None
        self._ns = namespace
        self._server_time = server_time
        self._capacity = str(log_capacity)
        self._call_capacity = str(call_capacity)
        self._call_retention = repr(float(call_retention))
        self._call_keys = tuple(f"{namespace}:{{c}}:{name}" for name in _CALL_KEYS)
        self._retention = repr(float(log_retention))
        self._hint_ttl = None if hint_ttl is None else math.ceil(hint_ttl)
        self._max_hold = 0.0
        self._ttl = self._hint_ttl or _UNREGISTERED_HINT_TTL
        self._breaker = CircuitBreaker(
            breaker_open_seconds, breaker_clock, name="Redis", logger=log
        )
        self._heads: dict[str, tuple[Any, ...]] = {}
        self._visit_heads: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        # Each pool's hold as registered here: its text (as the pool's cfg keeps it) and value.
        self._holds: dict[str, tuple[str, float]] = {}
        registry = f"{namespace}:{{r}}"
        self._registry = _RegistryKeys._make(f"{registry}:{name}" for name in _RegistryKeys._fields)
        self._now = -math.inf
        # What this object registered: the terms it heals a lost pool from, the
        # pools Redis has not confirmed yet, and pools another worker's conflict refused.
        self._terms: dict[str, PoolTerms] = {}
        self._pending: dict[str, PoolTerms] = {}
        # The registering clock's time of a pending pool, for its deferred registration.
        self._pending_at: dict[str, float] = {}
        self._refused: dict[str, str] = {}
        self._number_owner: dict[str, str] = {}
        self._overflow_users: dict[str, list[str]] = {}
        self._trust_first = new_namespace
        self._policy_checked = False
        self._lock = threading.Lock()
        self._down_logged = False
        self.losses = 0
        """Losses of pool state this object detected (and healed)."""

    @abc.abstractmethod
    def _connect(self, url: str, cluster: bool, options: dict[str, Any]) -> Any:
        """A client for ``url`` with ``options`` (a subclass builds its kind)."""

    @abc.abstractmethod
    def _is_cluster(self, client: object) -> bool:
        """Whether ``client`` is a Redis Cluster client (a subclass knows its kinds)."""

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker in front of Redis (its state and counters)."""
        return self._breaker

    def _head(self, pool_key: str) -> tuple[Any, ...]:
        """``EVALSHA``, the script, the pool's keys and its key prefix: a pool command's start."""
        head = self._heads.get(pool_key)
        if head is None:
            prefix = f"{self._ns}:{{p:{pool_key}}}"
            keys = [f"{prefix}:{name}" for name in _POOL_KEYS]
            head = self._heads[pool_key] = ("EVALSHA", _POOL_SHA, len(keys), *keys)
        return head

    def _visit_head(self, pool_key: str, mode: str, claim: str, hold: str) -> tuple[Any, ...]:
        """``EVALSHA``, the script, the pool's first key (cfg), ``visit``, the key prefix,
        the mode, the claim (``-``, ``here`` or ``other``) and the pool's hold as registered.

        The script builds a visit's other keys from the prefix (each key sent costs the
        script more than one built). Led by a :class:`_PackedHead` when hiredis packs:
        these arguments, the same on every such visit of the pool, are packed once.
        """
        key = (pool_key, mode, claim, hold)
        head = self._visit_heads.get(key)
        if head is None:
            # The same on every such visit of the pool: packed once (see _PackedHead).
            evalsha, sha, _, cfg = self._head(pool_key)[:4]
            head = self._visit_heads[key] = _packed_head(
                (evalsha, sha, 1, cfg, "visit", self._prefix(pool_key), mode, claim, hold)
            )
        return head

    def _prefix(self, pool_key: str) -> str:
        return f"{self._ns}:{{p:{pool_key}}}"

    def _hint(self, visitor_id: str) -> str:
        return f"{self._ns}:{{v:{visitor_id}}}"

    def _script(self, pool_key: str, op: str, now: float | None, *args: str) -> tuple[Any, ...]:
        """The command running ``op`` of the pool script on ``pool_key``."""
        clock = "" if now is None or self._server_time else repr(float(now))
        return (*self._head(pool_key), op, self._prefix(pool_key), clock, *args)

    def _fail_fast(self) -> None:
        """Raise :class:`StoreError` at once while the breaker is open."""
        breaker = self._breaker
        if not breaker.allow():
            raise StoreError(
                f"Redis is unavailable; failing fast for up to {breaker.open_seconds:g} s "
                "after the last failure"
            )

    def _failure(self, exc: BaseException) -> StoreError:
        """The :class:`StoreError` for a round trip that failed with ``exc``; the breaker notes it.

        An outage opens the breaker; an answer (a script error, a wrong key
        type) means Redis is up, except ``BUSY`` (a script running too long).
        """
        breaker = self._breaker
        if isinstance(exc, _OUTAGES):
            breaker.failed()
            return StoreError(f"Redis did not answer: {exc}")
        breaker.succeeded()
        if isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("BUSY"):
            breaker.failed()
        elif isinstance(exc, redis.exceptions.ResponseError) and "script" in str(exc):
            return _ScriptFailed(f"Redis refused a lease operation: {exc}")
        return StoreError(f"Redis refused a lease operation: {exc}")

    def _policy_checked_now(self, reply: object) -> None:
        """Warn when Redis may evict keys without a TTL: evicted lease state is lost state.

        ``reply`` is that of ``CONFIG GET maxmemory-policy`` (on every node of a
        cluster), or the error that refused it.
        """
        if isinstance(reply, BaseException):
            log.warning(
                "could not check Redis maxmemory-policy (%s); it must not evict keys "
                "without a TTL (use noeviction or a volatile-* policy)",
                reply,
            )
            return
        policies = sorted(set(_config_values(reply, "maxmemory-policy")))
        risky = [p for p in policies if p.startswith("allkeys")]
        if risky:
            log.warning(
                "Redis maxmemory-policy is %s: it may evict lease state, which the store then "
                "detects as lost and rebuilds; set maxmemory-policy noeviction (or volatile-*) "
                "so that leases are not forgotten",
                ", ".join(risky),
            )

    def _raise_now(self, now: float) -> float:
        """``now`` raised to the latest time this object has seen (time never goes back).

        With server time the caller's clock is not tracked: only the server's is.
        """
        if self._server_time:
            return now
        if now > self._now or self._now > now + MAX_CLOCK_SKEW:
            # The second case is a time this object took from a poisoned pool (a pool's
            # time is repaired at registration): the caller's clock is trusted again.
            self._now = now
            return now
        return self._now

    def _saw(self, at: float) -> float:
        """Note a pool's time from a reply; one far ahead of this object's is not adopted."""
        if self._now < at <= self._now + MAX_CLOCK_SKEW:
            self._now = at
        return at

    def _add_terms(self, terms: PoolTerms) -> None:
        """Keep ``terms`` to register (and heal from); :class:`ConfigError` for a local conflict."""
        problems = number_conflicts(terms, self._terms.values())
        if problems:
            raise ConfigError(problems)
        with self._lock:
            self._terms[terms.key] = terms
            self._holds[terms.key] = (repr(float(terms.hold_seconds)), float(terms.hold_seconds))
            self._refused.pop(terms.key, None)
            self._pending[terms.key] = terms
            self._index_numbers()
            self._max_hold = max(self._max_hold, terms.hold_seconds)
            if self._hint_ttl is None:
                # A hint may outlive its lease (the script checks); it should not die first.
                self._ttl = math.ceil(2 * self._max_hold) + 60

    def _drop_terms(self, key: str) -> None:
        """Forget the terms of ``key`` again (Redis refused them)."""
        with self._lock:
            del self._terms[key]
            self._holds.pop(key, None)
            self._pending.pop(key, None)
            self._index_numbers()

    def _registering_failed(self, exc: StoreError) -> None:
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "Redis cannot register pools now (%s); they are registered when it "
                "answers, and visits get no number until then",
                exc,
            )

    def _index_numbers(self) -> None:
        """Which known pool owns each number, and which use each overflow number."""
        owner: dict[str, str] = {}
        users: dict[str, list[str]] = {}
        for key, terms in self._terms.items():
            for number in terms.numbers:
                owner[number] = key
            if terms.overflow_number is not None and terms.policy == "overflow":
                users.setdefault(terms.overflow_number, []).append(key)
        self._number_owner = owner
        self._overflow_users = users

    def _register_pending(self, now: float | None = None, *, strict: bool = False) -> _Gen[None]:
        """Register the pools Redis has not confirmed yet (the first operation it answers).

        A conflict with another worker's pool raises :class:`ConfigError` when
        ``strict``; otherwise it is logged and the pool refused.
        """
        for key, terms in list(self._pending.items()):
            at = self._pending_at.get(key) if now is None else now
            try:
                yield from self._register_remote(terms, at, trusted=self._trust_first)
            except ConfigError as exc:
                if strict:
                    raise
                with self._lock:
                    self._pending.pop(key, None)
                    self._refused[key] = str(exc)
                log.error("pool %r cannot be registered: %s", key, exc)
            else:
                with self._lock:
                    if self._pending.get(key) is terms:
                        del self._pending[key]
                        self._pending_at.pop(key, None)
        if not self._policy_checked:
            self._policy_checked = True
            self._policy_checked_now((yield _POLICY)[0])

    def _register_remote(self, terms: PoolTerms, now: float | None, *, trusted: bool) -> _Gen[None]:
        """Write the registry and the pool's own keys (two steps, both idempotent)."""
        registry = self._registry
        reply = (
            yield [
                (
                    "EVALSHA",
                    _REGISTRY_SHA,
                    len(registry),
                    *registry,
                    terms.key,
                    terms.overflow_number or "",
                    *terms.numbers,
                )
            ]
        )[0]
        if _text(reply[0]) == "problems":
            problems = []
            for k in range(1, len(reply), 3):
                kind, number, other = (_text(x) for x in reply[k : k + 3])
                problems.append(
                    conflict_problem(terms.key, cast(ConflictKind, kind), number, other)
                )
            raise ConfigError(problems)
        overflow = terms.overflow_number if terms.policy == "overflow" else None
        reply = (
            yield [
                self._script(
                    terms.key,
                    "register",
                    now,
                    terms.name,
                    repr(float(terms.hold_seconds)),
                    repr(float(terms.cooldown_seconds)),
                    terms.policy,
                    overflow or "",
                    terms.touch,
                    secrets.token_hex(4),
                    "1" if trusted else "0",
                    repr(MAX_CLOCK_SKEW),
                    str(terms.client_cap),
                    *terms.numbers,
                )
            ]
        )[0]
        if _text(reply) == "repaired":
            log.warning(
                "pool %r had a time far ahead of the clock (a poisoned time); brought back to it",
                terms.key,
            )

    def _ready(self) -> _Gen[bool]:
        """True when Redis answers and every pool registered here is in place (see ``ready``)."""
        if self._pending:
            yield from self._register_pending()
        keys = list(self._terms)
        if not keys:
            yield [("PING",)]
            return not self._refused
        found = yield [("EXISTS", f"{self._prefix(k)}:cfg") for k in keys]
        for key, exists in zip(keys, found, strict=True):
            if not exists:
                yield from self._heal(_LostState(key, "unregistered"))
        return not self._pending and not self._refused

    def _heal(self, lost: _LostState) -> _Gen[None]:
        """Reset a pool whose state was lost and register it again from its terms."""
        key = lost.pool_key
        terms = self._terms[key]
        self.losses += 1
        if lost.cause == "unregistered":
            cause = (
                "its keys are gone (Redis restarted without persistence, was flushed, "
                "failed over to an empty replica, or evicted them)"
            )
        else:
            cause = f"{lost.cause} went missing (keys evicted or deleted)"
            yield [self._script(key, "reset", None, *terms.numbers)]
        log.error(
            "Redis lost the lease state of pool %r: %s; registering it again. Calls "
            "within one match_period are attributed with lowered confidence",
            key,
            cause,
        )
        try:
            yield from self._register_remote(terms, None, trusted=False)
        except ConfigError as exc:  # another worker registered its numbers meanwhile
            with self._lock:
                self._refused[key] = str(exc)
            log.error("pool %r cannot be registered again: %s", key, exc)
            raise StoreError(f"pool {key!r} was refused by Redis: {exc}") from exc

    def _pool_keys(self) -> _Gen[tuple[str, ...]]:
        """Keys of the pools registered in this namespace (see ``pool_keys``)."""
        reply = (yield [("LRANGE", self._registry.order, 0, -1)])[0]
        listed = tuple(_text(key) for key in reply)
        missing = tuple(key for key in self._terms if key not in listed)
        return missing + listed if missing else listed

    def _healing(self, operation: Callable[[], _Gen[_T]]) -> _Gen[_T]:
        """Run ``operation``; if it finds a pool's state lost, heal the pool and run it again.

        Pools Redis has not confirmed yet are registered first (an outage then
        raises :class:`StoreError` at once, through the breaker).
        """
        if self._pending:
            yield from self._register_pending()
        try:
            return (yield from operation())
        except _LostState as lost:
            yield from self._heal(lost)
            return (yield from operation())

    def _visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        hint: str | None,
        client: str | None = None,
    ) -> _Gen[Decision]:
        now = self._raise_now(now)
        key = f"{self._ns}:{{v:{visitor_id}}}"
        if hint == NEW_VISITOR:
            # A visitor id minted for this request: nothing of it can be stored anywhere.
            if claim is None:
                return Decision(visitor_id, now, "no_match")
            return (yield from self._take(visitor_id, now, claim, key, client))
        target = hint if hint is not None and hint in self._terms else None
        if target is None and claim is not None:
            target = claim.pool_key
        if target is None:
            # Round trip 1 reads the hint and refreshes its expiry in the same command.
            held = (yield [("GETEX", key, "EX", self._ttl)])[0]
            if held is None:
                return Decision(visitor_id, now, "no_match")
            return (yield from self._visit_held(visitor_id, now, claim, _text(held), key, client))
        # Round trip 1: the likely pool's script, which keeps a lease there but takes none
        # (nothing else is known yet), with the hint read and refreshed beside it.
        hold = self._holds.get(target)
        command = self._visit_command(target, visitor_id, now, claim, "held", client, hold)
        # (_pool_replies inline: the commonest round trip, one generator fewer)
        try:
            replies = yield [command, ("GETEX", key, "EX", self._ttl)]
        except _ScriptFailed as exc:
            self._raise_lost(target, exc)
            raise
        reply, held = replies
        status = self._checked(target, reply, False)
        at = now if status == "unregistered" else self._times(reply, now, hold)
        if status == "switch":
            assert claim is not None  # the script offers a switch only for a claim elsewhere
            return (yield from self._switch(visitor_id, target, reply, claim, key, client))
        if status not in ("none", "unregistered"):
            return self._decision(visitor_id, target, reply, claim, at=at)
        held_key = None if held is None else _text(held)
        if held_key is not None and held_key != target:
            return (yield from self._visit_held(visitor_id, now, claim, held_key, key, client))
        # No live lease in the pool the hint names, nor any other hint: a first visit.
        if claim is None:
            if held_key is not None:
                yield [("DEL", key)]
            return Decision(visitor_id, self._raise_now(now), "no_match")
        return (yield from self._take(visitor_id, now, claim, key, client))

    def _visit_held(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        held_key: str,
        key: str,
        client: str | None,
    ) -> _Gen[Decision]:
        """A visit of a visitor whose hint key names ``held_key``: run its script first."""
        reply = yield from self._visit_in(
            held_key, visitor_id, now, claim, "visit", None, strict=False, client=client
        )
        status = _text(reply[0])
        if status == "switch":
            assert claim is not None  # the script offers a switch only for a claim elsewhere
            return (yield from self._switch(visitor_id, held_key, reply, claim, key, client))
        if status not in ("none", "unregistered"):
            return self._decision(visitor_id, held_key, reply, claim)
        # The hint was stale: no live lease in that pool (and no claim on it).
        if claim is None:
            yield [("DEL", key)]
            return Decision(visitor_id, self._raise_now(now), "no_match")
        return (yield from self._take(visitor_id, now, claim, key, client))

    def _visit_command(
        self,
        pool_key: str,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        mode: str,
        client: str | None = None,
        hold: tuple[str, float] | None = None,
    ) -> tuple[Any, ...]:
        """The command running the visit script in ``pool_key``: every argument, in order.

        ``mode``: ``visit`` (steps 2-6, offering a last-touch switch for a claim
        elsewhere), ``held`` (steps 2-3 only: a lease is kept, none is taken),
        ``keep`` (steps 2-6 without the offer) or ``switch_in`` (take a free
        number for a switch, or answer ``nofree``). ``client`` is the visit's
        client key, the last argument: the cap is checked and counted inside the
        script, with no command of its own. ``hold``: the pool's hold as
        :meth:`_add_terms` keeps it, looked up by the caller (for :meth:`_times`).
        """
        if self._server_time:
            clock = expires = held_for = ""
        else:
            # The lease's expiry as the script would compute it (now + the pool's hold, the
            # same double), used when the pool's hold and time are these: no formatting there.
            clock = repr(now)
            held_for, expires = ("", "") if hold is None else (hold[0], repr(now + hold[1]))
        if claim is None:
            head = self._visit_head(pool_key, mode, "-", held_for)
            if mode == "held":  # held takes no lease: nothing after the expiry is read
                return (*head, clock, visitor_id, expires)
            return (*head, clock, visitor_id, expires, *_NO_CLAIM_REST, client or "")
        here = "here" if claim.pool_key == pool_key else "other"
        head = self._visit_head(pool_key, mode, here, held_for)
        if mode == "held":
            # Steps 2-3 only: no lease is taken, so neither the trigger, the log bounds,
            # the facts nor the client key are read (nor sent), and the claim's terms only
            # for a claim on another pool (to offer a last-touch switch).
            if here == "here":
                return (*head, clock, visitor_id, expires)
            referrer = claim.referrer_domain
            return (
                *head,
                clock,
                visitor_id,
                expires,
                str(claim.specificity),
                str(claim.source_index),
                referrer,
                "1" if is_any_referrer(referrer) else "0",
            )
        referrer = claim.referrer_domain
        trigger = claim.trigger
        return (
            *head,
            clock,
            visitor_id,
            expires,
            str(claim.specificity),
            str(claim.source_index),
            referrer,
            "1" if is_any_referrer(referrer) else "0",
            "-" if trigger is None else "+" + trigger,
            self._capacity,
            self._retention,
            _facts_text(claim_facts(claim)),
            client or "",
        )

    def _visit_in(
        self,
        pool_key: str,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        mode: str,
        hint: str | None,
        *,
        strict: bool = True,
        client: str | None = None,
    ) -> _Gen[list[Any]]:
        """Run the visit script in ``pool_key``; with ``hint``, point it at ``pool_key``.

        ``mode``: see :meth:`_visit_command`. A pool that is not registered is a
        :class:`StoreError` when ``strict``, else the reply ``unregistered``.
        """
        hold = self._holds.get(pool_key)
        command = self._visit_command(pool_key, visitor_id, now, claim, mode, client, hold)
        if hint is None:
            reply = yield from self._pool_reply(pool_key, [command], strict)
        else:
            refresh = ("SET", hint, pool_key, "EX", self._ttl)
            reply = yield from self._pool_reply(pool_key, [command, refresh], strict)
        if _text(reply[0]) != "unregistered":
            self._times(reply, now, hold)
        return reply

    def _times(self, reply: list[Any], now: float, hold: tuple[str, float] | None) -> float:
        """The pool time of a visit script's ``reply``, noted (see :meth:`_saw`).

        A ``kept`` reply answers the time as ``''`` when it is the one the
        command sent (``now``), and its expiry as ``''`` when that is the one
        sent too (``now`` plus ``hold``): both are put in ``reply`` as numbers,
        so that no caller parses them (parsing a float is not free).
        """
        at = reply[1]
        if at:
            return self._saw(float(at))
        reply[1] = now
        if hold is not None and len(reply) > 9 and not reply[9]:
            reply[9] = now + hold[1]
        return now

    def _pool_reply(
        self, pool_key: str, commands: Sequence[tuple[Any, ...]], strict: bool = True
    ) -> _Gen[list[Any]]:
        """The reply of a pool script (the first of ``commands``); see :meth:`_pool_replies`."""
        reply: list[Any] = (yield from self._pool_replies(pool_key, commands, strict))[0]
        return reply

    def _pool_replies(
        self, pool_key: str, commands: Sequence[tuple[Any, ...]], strict: bool = True
    ) -> _Gen[list[Any]]:
        """The replies of ``commands``, the first a pool script's, checked for lost state.

        A pool registered through this object whose state is gone or partly
        missing (or whose script failed on it) raises :class:`_LostState`, for
        :meth:`_healing` to heal (or a store's ``_run_healing``). Another pool
        that is not registered is a :class:`StoreError` when ``strict``, else the
        reply ``unregistered``.
        """
        try:
            replies = yield commands
        except _ScriptFailed as exc:
            self._raise_lost(pool_key, exc)
            raise
        self._checked(pool_key, replies[0], strict)
        return replies

    def _raise_lost(self, pool_key: str, exc: _ScriptFailed) -> None:
        """Raise :class:`_LostState` for a failed script of a pool registered here."""
        if pool_key in self._terms:
            raise _LostState(pool_key, f"a record its script needs ({exc})") from exc

    def _checked(self, pool_key: str, reply: list[Any], strict: bool) -> str:
        """The status of a pool script's ``reply``, checked for lost state (see _pool_replies)."""
        status = _text(reply[0])
        if status == "lost" or status == "unregistered":
            refused = self._refused.get(pool_key)
            if refused is not None:
                raise StoreError(f"pool {pool_key!r} was refused by Redis: {refused}")
            if pool_key in self._terms:
                raise _LostState(
                    pool_key, "unregistered" if status == "unregistered" else _text(reply[1])
                )
            if strict or status == "lost":
                raise StoreError.unregistered(pool_key)
        return status

    def _take(
        self, visitor_id: str, now: float, claim: ClaimLike, hint: str, client: str | None
    ) -> _Gen[Decision]:
        """A visit run in the claimed pool: keep a lease there, or take one (steps 4-6).

        :meth:`_visit_in` with ``hint``, inline: the round trip of every first visit.
        """
        pool_key = claim.pool_key
        hold = self._holds.get(pool_key)
        command = self._visit_command(pool_key, visitor_id, now, claim, "visit", client, hold)
        try:
            replies = yield [command, ("SET", hint, pool_key, "EX", self._ttl)]
        except _ScriptFailed as exc:
            self._raise_lost(pool_key, exc)
            raise
        reply = replies[0]
        self._checked(pool_key, reply, True)  # strict: an unregistered pool raises
        return self._decision(visitor_id, pool_key, reply, claim, at=self._times(reply, now, hold))

    def _switch(
        self,
        visitor_id: str,
        held_key: str,
        offer: list[Any],
        claim: ClaimLike,
        hint: str,
        client: str | None,
    ) -> _Gen[Decision]:
        """Last touch: take in the claimed pool, then end the old lease (see the module doc)."""
        old = offer[7]
        old_id = _lease_id(held_key, old)
        target = claim.pool_key
        now = self._raise_now(float(offer[1]))
        reply = yield from self._visit_in(
            target, visitor_id, now, claim, "switch_in", None, client=client
        )
        status = _text(reply[0])
        if status in ("new", "kept"):
            now = self._raise_now(float(reply[1]))
            ending = self._script(held_key, "switch_out", now, _text(old))
            yield from self._pool_reply(
                held_key, [ending, ("SET", hint, target, "EX", self._ttl)], False
            )
            if status == "new":
                return self._decision(visitor_id, target, reply, claim, switched_from=old_id)
            return self._decision(visitor_id, target, reply, claim)
        # The claimed pool has no number free right now: the visitor keeps their lease.
        reply = yield from self._visit_in(held_key, visitor_id, now, claim, "keep", None)
        if _text(reply[0]) == "kept":
            return self._decision(visitor_id, held_key, reply, claim)
        # Their lease ended in between (another worker recycled it): a first visit.
        return (yield from self._take(visitor_id, now, claim, hint, client))

    def _decision(
        self,
        visitor_id: str,
        pool_key: str,
        reply: list[Any],
        claim: ClaimLike | None,
        switched_from: str | None = None,
        at: float | None = None,
    ) -> Decision:
        """The decision of a ``visit`` reply, read by position (the per-visit path).

        The positions are those of the ``visit`` replies in the script's header,
        their compact times filled in by :meth:`_times`; ``at`` is the reply's pool
        time when the caller has read it already.
        """
        status = _text(reply[0])
        if at is None:
            at = float(reply[1])
        number = None if reply[2] is None else _text(reply[2])
        name = _text(reply[3])
        if status == "overflow" or status == "capped":
            assert claim is not None  # an exhausted pool or a cap answers a claim only
            return Decision(
                visitor_id,
                at,
                "capped" if status == "capped" else "overflow",
                number,
                pool_key,
                name,
                claim.source_index,
                claim.referrer_domain,
                claim.trigger,
            )
        lease_id = _lease_id(pool_key, reply[7])
        started, expires = float(reply[8]), float(reply[9])
        if status == "kept":
            trigger = reply[6]
            return Decision(
                visitor_id,
                at,
                "kept",
                number,
                pool_key,
                name,
                int(reply[4]),
                _text(reply[5]),
                None if trigger is None else _text(trigger),
                lease_id,
                started,
                expires,
            )
        assert claim is not None  # a lease starts from a claim only
        displaced = _lease_id(pool_key, reply[10]) if len(reply) > 10 else None
        return Decision(
            visitor_id,
            at,
            "recycled" if status == "recycled" else "new",
            number,
            pool_key,
            name,
            claim.source_index,
            claim.referrer_domain,
            claim.trigger,
            lease_id,
            started,
            expires,
            displaced,
            switched_from,
        )

    def _release(self, visitor_id: str, now: float) -> _Gen[Lease | None]:
        now = self._raise_now(now)
        hint = self._hint(visitor_id)
        held = (yield [("GET", hint)])[0]
        if held is None:
            return None
        pool_key = _text(held)
        ending = self._script(pool_key, "release", now, visitor_id)
        reply = yield from self._pool_reply(pool_key, [ending, ("DEL", hint)], strict=False)
        if _text(reply[0]) != "released":  # no live lease there (or a hint gone stale)
            return None
        self._saw(float(reply[1]))
        return self._snapshots(pool_key, reply)[0]

    def _attribute(self, number: str, at: float) -> _Gen[Attribution]:
        pool_key = self._number_owner.get(number)
        if pool_key is None:
            # A number of a pool another worker registered: ask the registry.
            registry = self._registry
            owner, users = yield [
                ("HGET", registry.numbers, number),
                ("HGET", registry.overflow, number),
            ]
            if owner is None:
                if users is None:
                    known = self._overflow_users.get(number)
                    if known is None:
                        return Attribution(number, at, "unknown")
                    keys = known
                else:
                    keys = json.loads(users)
                return Attribution(number, at, "overflow", keys[0] if len(keys) == 1 else None)
            pool_key = _text(owner)
        command = self._script(pool_key, "attribute", None, number, repr(float(at)))
        reply = yield from self._pool_reply(pool_key, [command], strict=False)
        if _text(reply[0]) == "unregistered":
            return Attribution(number, at, "pool", pool_key)
        found = attribution_from(number, at, pool_key, self._snapshots(pool_key, reply, 5))
        since, trusted, hold = _text(reply[2]), _text(reply[3]), float(reply[4])
        if trusted == "1" or (since and at >= float(since) + hold):
            return found
        began = f"at {float(since):.17g}" if since else "just now"
        caveat = (
            f"the pool's lease state was created {began} in an empty store (new, or lost and "
            "rebuilt): a visitor it does not know may hold this number until one hold later"
        )
        confidence = 1.0 / (len(found.candidates) + 1)
        return dataclasses.replace(
            found, confidence=confidence if found.lease else 0.0, caveat=caveat
        )

    def _snapshots(self, pool_key: str, reply: list[Any], start: int = 2) -> list[Lease]:
        """Leases from a script reply ``[status, pool time, ..., snapshot...]``.

        The snapshots (:class:`_Snapshot`) start at ``start``.
        """
        horizon = max(float(reply[1]), self._now)
        width = len(_Snapshot._fields)
        leases = []
        for k in range(start, len(reply), width):
            snap = _Snapshot._make(reply[k : k + width])
            expires = float(snap.expires)
            ended = None if snap.ended is None else float(snap.ended)
            reason = None if snap.end_reason is None else cast(EndReason, _text(snap.end_reason))
            if ended is None and expires <= horizon:  # ran out; not yet noticed by its pool
                ended, reason = expires, "expired"
            by, trigger = snap.displaced_by, snap.trigger
            leases.append(
                Lease(
                    lease_id=_lease_id(pool_key, snap.member),
                    pool_key=pool_key,
                    number=_text(snap.number),
                    visitor_id=_text(snap.visitor_id),
                    started=float(snap.started),
                    last_activity=float(snap.last_activity),
                    expires=expires,
                    ended=ended,
                    end_reason=reason,
                    displaced_by=None if by is None else _lease_id(pool_key, by),
                    specificity=int(snap.specificity),
                    source_index=int(snap.source_index),
                    referrer_domain=_text(snap.referrer_domain),
                    trigger=None if trigger is None else _text(trigger),
                    facts=None if snap.facts is None else _facts_from(_text(snap.facts)),
                )
            )
        return leases

    def _stats(self, pool_key: str, now: float) -> _Gen[PoolStats]:
        now = self._raise_now(now)
        reply = yield from self._pool_reply(pool_key, [self._script(pool_key, "stats", now)])
        at = self._saw(float(reply[1]))
        counts = reply[2 : 2 + len(_STATS_FIELDS)]
        named = {name: int(count) for name, count in zip(_STATS_FIELDS, counts, strict=True)}
        return PoolStats(pool_key=pool_key, at=at, **named)

    def _leases(
        self,
        number: str | None,
        pool_key: str | None,
        since: float | None,
        until: float | None,
    ) -> _Gen[list[Lease]]:
        """Leases in the log, oldest first, filtered (see ``leases``)."""
        if self._pending:
            yield from self._register_pending()
        pools = (yield from self._pool_keys()) if pool_key is None else (pool_key,)
        if not pools:
            return []
        low = repr(-math.inf if since is None else float(since))
        high = repr(math.inf if until is None else float(until))
        commands = [self._script(p, "leases", None, number or "", low, high) for p in pools]
        replies = yield commands
        ordered: list[tuple[float, int, int, Lease]] = []
        for index, (key, reply) in enumerate(zip(pools, replies, strict=True)):
            if _text(reply[0]) in ("unregistered", "lost"):
                continue
            # The script lists a pool's leases by start time, then in the order taken.
            for position, lease in enumerate(self._snapshots(key, reply)):
                ordered.append((lease.started, index, position, lease))
        ordered.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in ordered]

    # ---- the call log ----------------------------------------------------------------

    def _calls_command(self, op: str, *args: str) -> tuple[Any, ...]:
        keys = self._call_keys
        return ("EVALSHA", _CALLS_SHA, len(keys), *keys, op, *args)

    def _record_call(self, record: CallRecord) -> _Gen[CallRecord]:
        """Log ``record`` unless its call id is logged (see ``record_call``)."""
        kept = dataclasses.replace(record, replayed=False, stored=True)
        text = json.dumps(kept.to_json(), separators=(",", ":"), ensure_ascii=False)
        command = self._calls_command(
            "record",
            record.call.call_id,
            repr(float(record.call.started)),
            text,
            repr(float(record.recorded)),
            self._call_capacity,
            self._call_retention,
        )
        reply = (yield [command])[0]
        if _text(reply[0]) == "exists":
            return dataclasses.replace(_record_from(_text(reply[1])), replayed=True)
        return kept

    def _find_call(self, call_id: str) -> _Gen[CallRecord | None]:
        """The logged record of ``call_id``, or ``None``."""
        reply = (yield [self._calls_command("find", call_id)])[0]
        if _text(reply[0]) != "found":
            return None
        return _record_from(_text(reply[1]))

    def _calls(
        self,
        since: float | None,
        until: float | None,
        pool_key: str | None,
        number: str | None,
    ) -> _Gen[list[CallRecord]]:
        """Logged calls that started in ``[since, until)`` (see ``calls``)."""
        low = repr(-math.inf if since is None else float(since))
        high = repr(math.inf if until is None else float(until))
        reply = (yield [self._calls_command("list", low, high)])[0]
        found: list[CallRecord] = []
        for text in reply[1:]:
            record = _record_from(_text(text))
            attribution = record.attribution
            if pool_key is not None and attribution.pool_key != pool_key:
                continue
            if number is not None and attribution.number != number:
                continue
            found.append(record)
        return found

    # ---- erasure ------------------------------------------------------------------

    def _forget(self, visitor_id: str, now: float) -> _Gen[Forgotten]:
        now = self._raise_now(now)
        pools = yield from self._pool_keys()
        released = removed = 0
        ids: list[str] = []
        if pools:
            replies = yield [self._script(p, "forget", now, visitor_id) for p in pools]
            for key, reply in zip(pools, replies, strict=True):
                if _text(reply[0]) == "forgot":  # else unregistered: nothing of it is stored
                    self._saw(float(reply[1]))
                    released += int(reply[2])
                    removed += int(reply[3])
                    ids.extend(_lease_id(key, member) for member in reply[4:])
        inside = json.dumps(visitor_id, ensure_ascii=False)[1:-1]
        _, calls = yield [
            ("DEL", self._hint(visitor_id)),
            self._calls_command("forget", visitor_id, inside, *ids),
        ]
        return Forgotten(visitor_id, released, removed, int(calls[1]))

    def _purge(self, now: float) -> _Gen[int]:
        """End every lease whose hold ran out by ``now``, in every pool (see ``purge``)."""
        if self._pending:
            yield from self._register_pending()
        now = self._raise_now(now)
        pools = yield from self._pool_keys()
        if not pools:
            return 0
        replies = yield [self._script(p, "purge", now) for p in pools]
        return sum(int(reply[2]) for reply in replies if _text(reply[0]) == "purged")

    def __repr__(self) -> str:
        kind = "cluster" if self._cluster else "redis"
        return (
            f"{type(self).__name__}({kind}, namespace={self._ns!r}, breaker={self._breaker.state})"
        )


class RedisStore(_RedisBase):
    """A :class:`~dni_engine.stores.base.Store` on Redis or Redis Cluster (see the module doc).

    ``client`` is a ``redis.Redis``, a ``redis.cluster.RedisCluster``, or a URL
    (``redis://host:port/db``; with ``cluster=True`` the URL of one cluster
    node), for which a client with ``connect_timeout`` and ``timeout`` (seconds)
    and no retries is built. ``namespace`` prefixes every key, so several
    stores can share one Redis. ``server_time`` runs leases on Redis ``TIME``
    instead of the ``now`` given to each operation. ``log_capacity`` bounds
    each pool's lease log; ``log_retention`` (seconds, 0 for none) drops
    leases whose window ended that long ago. ``hint_ttl`` (seconds) is how long
    a visitor's pool hint outlives their last visit; by default twice the
    longest ``match_period`` registered through this object plus a minute.
    ``breaker_open_seconds`` and ``breaker_clock`` configure the
    :class:`~dni_engine.stores.breaker.CircuitBreaker`. ``new_namespace=True``
    promises that the namespace never held leases (a new deployment, a test),
    so the state this object creates at its first registration is trusted at
    once; otherwise state created in an empty namespace counts as possibly lost
    (see *Lost state* in the module doc), because an empty Redis cannot tell a
    new deployment from a flushed one. ``call_capacity`` bounds the call log
    and ``call_retention`` (seconds, 0 for none; 90 days by default) drops
    calls that started that long before the latest call's ``recorded`` time.

    Building a store never touches Redis, and neither does registering a pool
    while Redis is down: the pool is registered at the first operation Redis
    answers. Every method raises :class:`StoreError` when Redis fails (never
    a Redis exception); ``register_pool`` raises :class:`ConfigError` like
    the memory store, at once for a conflict with a pool registered through
    this object, and when Redis answers for one with a pool of another worker.
    Thread-safe: one object may serve every thread of a worker.
    """

    def __init__(
        self,
        client: RedisClient | str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        cluster: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        server_time: bool = False,
        log_capacity: int = DEFAULT_LOG_CAPACITY,
        log_retention: float = DEFAULT_LOG_RETENTION,
        hint_ttl: float | None = None,
        breaker_open_seconds: float = DEFAULT_BREAKER_OPEN_SECONDS,
        breaker_clock: Callable[[], float] = time.monotonic,
        new_namespace: bool = False,
        call_capacity: int = DEFAULT_CALL_CAPACITY,
        call_retention: float = DEFAULT_CALL_RETENTION,
    ) -> None:
        super().__init__(
            client,
            namespace=namespace,
            cluster=cluster,
            connect_timeout=connect_timeout,
            timeout=timeout,
            server_time=server_time,
            log_capacity=log_capacity,
            log_retention=log_retention,
            hint_ttl=hint_ttl,
            breaker_open_seconds=breaker_open_seconds,
            breaker_clock=breaker_clock,
            new_namespace=new_namespace,
            call_capacity=call_capacity,
            call_retention=call_retention,
        )
        # Only the pool of a client this store built: a client passed in may share a
        # bounded pool with other code, which connections kept out of it would starve.
        self._kept: _Kept | None = (
            _Kept(self._client.connection_pool) if self._direct and self._owned else None
        )

    def _connect(self, url: str, cluster: bool, options: dict[str, Any]) -> Any:
        if cluster:
            return RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, **options)

    def _is_cluster(self, client: object) -> bool:
        return isinstance(client, RedisCluster)

    @property
    def client(self) -> RedisClient:
        """The Redis client this store talks through."""
        return cast(RedisClient, self._client)

    # ---- I/O: each operation's generator driven over the client ------------------------

    def _run(self, operation: _Gen[_T]) -> _T:
        """Drive ``operation``: send each round trip it yields, give it the replies."""
        try:
            commands = next(operation)
            while True:
                try:
                    replies = self._execute(commands)
                except StoreError as exc:
                    commands = operation.throw(exc)
                else:
                    commands = operation.send(replies)
        except StopIteration as done:
            return cast(_T, done.value)

    def _run_healing(self, operation: Callable[[], _Gen[_T]]) -> _T:
        """``self._run(self._healing(operation))``, a generator fewer when nothing is pending.

        The pool a lost state names is healed by a run of its own, then ``operation`` runs again.
        """
        if self._pending:
            return self._run(self._healing(operation))
        try:
            return self._run(operation())
        except _LostState as lost:
            self._run(self._heal(lost))
            return self._run(operation())

    def _execute(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one round trip (a pipeline for several) behind the breaker.

        Scripts missing on the server (``NOSCRIPT``: a restart, a failover,
        ``SCRIPT FLUSH``) are loaded and the commands sent again; the commands
        are idempotent up to the failed script, which did not run. Failures
        raise :class:`StoreError` (see :meth:`_failure`).
        """
        if commands is _POLICY:
            return [self._policy()]
        self._fail_fast()
        try:
            results = self._send(commands)
            for result in results:
                if isinstance(result, Exception):  # rare: look closer
                    if _missing_script(results):
                        self._load_scripts()
                        results = self._send(commands)
                    _raise_first(results)
                    break
        except _CAUGHT as exc:
            raise self._failure(exc) from exc
        self._breaker.succeeded()
        return results

    def _send(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        client = self._client
        kept = self._kept
        if kept is not None:
            return _send_kept(kept, commands)
        if self._direct:
            return _send_direct(client.connection_pool, commands)
        if len(commands) == 1:
            # redis-py leaves execute_command untyped; its reply is whatever the command gives.
            run: Callable[..., Any] = client.execute_command
            try:
                return [run(*commands[0])]
            except NoScriptError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))

    def _load_scripts(self) -> None:
        for script in (POOL_SCRIPT, REGISTRY_SCRIPT, CALLS_SCRIPT):
            self._client.script_load(script)

    def _policy(self) -> object:
        """``CONFIG GET maxmemory-policy`` (on every node of a cluster), or why it failed."""
        try:
            if self._cluster:
                return self._client.config_get(
                    "maxmemory-policy", target_nodes=RedisCluster.ALL_NODES
                )
            return self._client.config_get("maxmemory-policy")
        except RedisError as exc:
            return exc

    # ---- the Store protocol -------------------------------------------------------------

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        """Add or update a pool (see :meth:`Store.register_pool`); idempotent across workers.

        While Redis is down the pool is kept here and registered by the first
        operation Redis answers (no error is raised: the outage shows as
        ``store_unavailable`` visits, and :meth:`ready` is False until then).
        """
        self._add_terms(terms)
        try:
            self._run(self._register_pending(now, strict=True))
        except ConfigError:
            self._drop_terms(terms.key)
            raise
        except StoreError as exc:
            self._registering_failed(exc)

    def ready(self) -> bool:
        """True when Redis answers and every pool registered here is in place; never raises.

        Cheap enough for a health endpoint: one round trip (plus registering
        pools Redis has not confirmed yet, and healing any whose state is gone).
        """
        try:
            return self._run(self._ready())
        except Exception:
            return False

    @property
    def pool_keys(self) -> tuple[str, ...]:
        """Keys of the pools registered in this namespace, in registration order.

        Pools registered through this object come first when Redis has
        forgotten them (they are registered again at their next operation).
        """
        return self._run(self._pool_keys())

    def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        """Take, keep, switch or recycle a number (see :class:`Store` and the module doc).

        ``client`` goes to the pool script as its last argument: the cap is
        checked and counted inside the script, with no command of its own.
        ``hint``: the pool the caller believes holds the visitor's lease (one
        registered through this object, else ignored), or
        :data:`~dni_engine.stores.base.NEW_VISITOR`; see *A visit* in the module doc.
        """
        if self._pending:
            return self._run(
                self._healing(lambda: self._visit(visitor_id, now, claim, hint, client))
            )
        # _run_healing inline (the per-request operation): no closure when nothing is lost
        try:
            return self._run(self._visit(visitor_id, now, claim, hint, client))
        except _LostState as lost:
            self._run(self._heal(lost))
            return self._run(self._visit(visitor_id, now, claim, hint, client))

    def release(self, visitor_id: str, now: float) -> Lease | None:
        """End ``visitor_id``'s live lease now; its number starts cooling. ``None`` if none."""
        return self._run_healing(lambda: self._release(visitor_id, now))

    def attribute(self, number: str, at: float) -> Attribution:
        """Attribute a call to ``number`` at ``at`` from the lease log, as the memory store does.

        Within one hold of the time the pool's state was created in an empty
        namespace (after a loss, or without ``new_namespace``) a visitor the
        store forgot may hold the number: the confidence then counts them as
        one more candidate and ``caveat`` says so.
        """
        return self._run_healing(lambda: self._attribute(number, at))

    def stats(self, pool_key: str, now: float) -> PoolStats:
        """Counters and occupancy of ``pool_key`` at ``now`` (expired leases are ended first).

        The counters are kept in Redis, so every worker sharing the pool reports the same.
        """
        return self._run_healing(lambda: self._stats(pool_key, now))

    def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        """Leases in the log, oldest first, filtered (see :class:`Store`).

        Leases of different pools that started at the same time are listed in
        pool registration order.
        """
        return self._run(self._leases(number, pool_key, since, until))

    def record_call(self, record: CallRecord) -> CallRecord:
        """Log ``record`` unless its call id is logged (one script call); answer the logged one.

        A call id already in the log answers that record with ``replayed=True``.
        """
        return self._run(self._record_call(record))

    def find_call(self, call_id: str) -> CallRecord | None:
        """The logged record of ``call_id``, or ``None``."""
        return self._run(self._find_call(call_id))

    def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """Logged calls that started in ``[since, until)``, oldest first (see :class:`Store`).

        Calls that started at the same time are listed by call id.
        """
        return self._run(self._calls(since, until, pool_key, number))

    def forget(self, visitor_id: str, now: float) -> Forgotten:
        """Remove every trace of ``visitor_id`` (see :class:`Store`); idempotent.

        One script per pool (pipelined: each runs in its pool's slot) finds the
        visitor's leases by scanning that pool's lease log, then the visitor's
        hint is deleted and one script on the call log deletes the records
        naming them: the cost grows with the log sizes, which suits a rare
        request, not a per-visit path. Raises :class:`StoreError` when Redis
        fails; forgetting again finishes the job.
        """
        return self._run_healing(lambda: self._forget(visitor_id, now))

    def purge(self, now: float) -> int:
        """End every lease whose hold ran out by ``now``, in every pool; return how many ended."""
        return self._run(self._purge(now))

    def close(self) -> None:
        """Close the client if this store built it from a URL (with the connections it kept)."""
        if self._owned:
            kept = self._kept
            if kept is not None:
                kept.close()
            self._client.close()


async def _read_replies_async(conn: Any, count: int) -> list[Any]:
    """The next ``count`` replies on ``conn``, error replies in their place as exceptions.

    When redis-py reads the connection with hiredis, the replies are read
    straight from its stream by that reader, all under one timeout (the
    connection's ``socket_timeout``), without redis-py's per-reply timeout and
    wrappers; error replies come back as the reader classes them (as redis-py
    does), RESP3 push messages (nothing here subscribes to any) are skipped.
    Otherwise each reply is read with the connection's ``read_response``.
    """
    stream = getattr(conn, "_reader", None)
    reader = getattr(getattr(conn, "_parser", None), "_reader", None)
    if (
        _INCOMPLETE is None
        or _Reader is None
        or not isinstance(reader, _Reader)
        or not isinstance(stream, asyncio.StreamReader)
    ):
        results: list[Any] = []
        for _ in range(count):
            try:
                results.append(await conn.read_response())
            except redis.exceptions.ResponseError as exc:
                results.append(exc)
        return results
    results, parse = [], cast(Any, reader)  # (mypy narrowed the reader to object)
    try:
        async with asyncio.timeout(conn.socket_timeout):
            while True:
                reply = parse.gets()
                if reply is _INCOMPLETE:
                    data = await stream.read(65_536)
                    if not data:
                        raise redis.exceptions.ConnectionError("Connection closed by server.")
                    parse.feed(data)
                    continue
                if _Push is not None and isinstance(reply, _Push):
                    continue  # RESP3 out-of-band news (none is asked for): not a reply
                results.append(reply)
                if len(results) == count:
                    return results
    except TimeoutError:  # asyncio's, and a socket's
        raise redis.exceptions.TimeoutError("Timeout reading from socket") from None
    except OSError as exc:
        raise redis.exceptions.ConnectionError(f"Error while reading from socket: {exc}") from exc


async def _send_direct_async(pool: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """:func:`_send_direct` on a ``redis.asyncio`` connection pool (untyped in redis-py)."""
    conn: Any = await pool.get_connection()
    try:
        await conn.send_packed_command(_packed(conn, commands))
        return await _read_replies_async(conn, len(commands))
    except BaseException as exc:
        # Cancelled or failed with replies unread: the connection must not be reused.
        await conn.disconnect()
        raise exc  # named: compiled, a bare raise after an await re-raises a freed exception
    finally:
        await pool.release(conn)


class _AsyncKept:
    """:class:`_Kept` for ``redis.asyncio``: connections kept between calls, on one loop.

    The asynchronous pool's lock, counters and readiness check cost more than a
    round trip's own client work too. The store serves one event loop, so
    ``pop`` and ``append`` (with no ``await`` between taking and checking) need
    no lock; a kept connection is checked with ``can_read`` before it is used.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.idle: list[Any] = []

    async def take(self) -> Any:
        """A connection ready to send: a kept one still in step with the server, or the pool's."""
        if self.pid != os.getpid():
            self.pid, self.idle = os.getpid(), []
        try:
            conn = self.idle.pop()
        except IndexError:
            return await self.pool.get_connection()
        try:
            # redis-py before 8 names the check can_read_destructive (8 deprecates that name)
            check = getattr(conn, "can_read", None) or conn.can_read_destructive
            stale = await check()  # closed by the server meanwhile, say
        except (RedisError, OSError):
            stale = True
        if stale:  # the pool reconnects it
            await conn.disconnect()
            await self.pool.release(conn)
            return await self.pool.get_connection()
        return conn

    async def close(self) -> None:
        """Give every kept connection back to the pool."""
        idle, self.idle = self.idle, []
        if self.pid == os.getpid():
            for conn in idle:
                await self.pool.release(conn)


async def _write_async(conn: Any, commands: Sequence[tuple[Any, ...]]) -> None:
    """Write ``commands`` on a ``redis.asyncio`` connection, in one write.

    redis-py bounds each write with ``asyncio.wait_for``, which runs it as a
    task of its own (a turn of the event loop more per round trip); a small
    write goes straight into the socket, so here only what the transport had to
    buffer is waited for, bounded the same way. A connection whose writer is not
    at hand (or closing) is written through redis-py.
    """
    writer = getattr(conn, "_writer", None)
    if _pack is None or not isinstance(writer, asyncio.StreamWriter) or writer.is_closing():
        await conn.send_packed_command(_packed(conn, commands))
        return
    try:
        writer.write(_pack_round(commands))
        if writer.transport.get_write_buffer_size():
            await asyncio.wait_for(writer.drain(), conn.socket_timeout)
    except TimeoutError:  # asyncio's, and a socket's
        raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        raise redis.exceptions.ConnectionError(f"Error while writing to socket: {exc}") from exc


async def _send_kept_async(kept: _AsyncKept, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """:func:`_send_direct_async` on a connection of ``kept``, kept again after a full exchange."""
    conn = await kept.take()
    try:
        await _write_async(conn, commands)
        results = await _read_replies_async(conn, len(commands))
    except BaseException as exc:
        # Cancelled or failed with replies unread: the connection must not be reused.
        await conn.disconnect()
        await kept.pool.release(conn)
        raise exc  # named: compiled, a bare raise after an await re-raises a freed exception
    kept.idle.append(conn)
    return results


class AsyncRedisStore(_RedisBase):
    """The Redis store on ``redis.asyncio``: :class:`RedisStore`'s behaviour, awaited.

    The same options, scripts, keys, visit algorithm, healing, breaker and
    ``NOSCRIPT`` reload as :class:`RedisStore` (one implementation drives
    both), so the two can share a namespace. ``client`` is a
    ``redis.asyncio.Redis``, a ``redis.asyncio.cluster.RedisCluster``, or a URL
    (with ``cluster=True`` for a cluster node's). Every operation is a
    coroutine raising :class:`StoreError` when Redis fails, except
    :meth:`register_pool`, which does no I/O: the pools are registered by the
    first operation Redis answers, so a conflict with another worker's pool
    is logged and the pool refused (:meth:`ready` False) rather than raised.
    Use one object per event loop: its connections belong to the loop that
    opened them. :class:`~dni_engine.engine.Engine` awaits it in its ``a*``
    methods (:meth:`Engine.avisit <dni_engine.engine.Engine.avisit>`).
    """

    def __init__(
        self,
        client: AsyncRedisClient | str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        cluster: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        server_time: bool = False,
        log_capacity: int = DEFAULT_LOG_CAPACITY,
        log_retention: float = DEFAULT_LOG_RETENTION,
        hint_ttl: float | None = None,
        breaker_open_seconds: float = DEFAULT_BREAKER_OPEN_SECONDS,
        breaker_clock: Callable[[], float] = time.monotonic,
        new_namespace: bool = False,
        call_capacity: int = DEFAULT_CALL_CAPACITY,
        call_retention: float = DEFAULT_CALL_RETENTION,
    ) -> None:
        super().__init__(
            client,
            namespace=namespace,
            cluster=cluster,
            connect_timeout=connect_timeout,
            timeout=timeout,
            server_time=server_time,
            log_capacity=log_capacity,
            log_retention=log_retention,
            hint_ttl=hint_ttl,
            breaker_open_seconds=breaker_open_seconds,
            breaker_clock=breaker_clock,
            new_namespace=new_namespace,
            call_capacity=call_capacity,
            call_retention=call_retention,
        )
        # As RedisStore: only the pool of a client this store built.
        self._akept: _AsyncKept | None = (
            _AsyncKept(self._client.connection_pool) if self._direct and self._owned else None
        )

    def _connect(self, url: str, cluster: bool, options: dict[str, Any]) -> Any:
        options = {**options, "retry": AsyncRetry(NoBackoff(), 0)}
        if cluster:
            return AsyncRedisCluster.from_url(url, **options)
        return redis.asyncio.Redis.from_url(url, **options)

    def _is_cluster(self, client: object) -> bool:
        return isinstance(client, AsyncRedisCluster)

    @property
    def client(self) -> AsyncRedisClient:
        """The Redis client this store talks through."""
        return cast(AsyncRedisClient, self._client)

    # ---- I/O --------------------------------------------------------------------------

    async def _run(self, operation: _Gen[_T]) -> _T:
        """Drive ``operation`` as :meth:`RedisStore._run` does, awaiting each round trip."""
        try:
            commands = next(operation)
            while True:
                try:
                    replies = await self._execute(commands)
                except StoreError as exc:
                    commands = operation.throw(exc)
                else:
                    commands = operation.send(replies)
        except StopIteration as done:
            return cast(_T, done.value)

    async def _run_healing(self, operation: Callable[[], _Gen[_T]]) -> _T:
        """:meth:`RedisStore._run_healing`, awaited."""
        if self._pending:
            return await self._run(self._healing(operation))
        try:
            return await self._run(operation())
        except _LostState as lost:
            await self._run(self._heal(lost))
            return await self._run(operation())

    async def _execute(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """:meth:`RedisStore._execute`, awaited (a timeout is an outage, as there)."""
        if commands is _POLICY:
            return [await self._policy()]
        self._fail_fast()
        try:
            results = await self._send(commands)
            for result in results:
                if isinstance(result, Exception):  # rare: look closer
                    if _missing_script(results):
                        await self._load_scripts()
                        results = await self._send(commands)
                    _raise_first(results)
                    break
        except _CAUGHT as exc:
            raise self._failure(exc) from exc
        self._breaker.succeeded()
        return results

    async def _send(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        client = self._client
        kept = self._akept
        if kept is not None:
            return await _send_kept_async(kept, commands)
        if self._direct:
            return await _send_direct_async(client.connection_pool, commands)
        if len(commands) == 1:
            run: Callable[..., Any] = client.execute_command
            try:
                return [await run(*commands[0])]
            except NoScriptError as exc:
                return [exc]
        pipe = client.pipeline()
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def _load_scripts(self) -> None:
        for script in (POOL_SCRIPT, REGISTRY_SCRIPT, CALLS_SCRIPT):
            await self._client.script_load(script)

    async def _policy(self) -> object:
        try:
            if self._cluster:
                return await self._client.config_get(
                    "maxmemory-policy", target_nodes=AsyncRedisCluster.ALL_NODES
                )
            return await self._client.config_get("maxmemory-policy")
        except RedisError as exc:
            return exc

    # ---- the Store protocol, awaited ---------------------------------------------------

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        """Add or update a pool; no I/O: the first operation Redis answers registers it.

        Raises :class:`ConfigError` at once for a conflict with a pool
        registered through this object; a conflict with another worker's pool
        is logged when Redis answers, and the pool refused (see the class doc).
        ``now`` is kept for that registration.
        """
        self._add_terms(terms)
        with self._lock:
            if now is None:
                self._pending_at.pop(terms.key, None)
            else:
                self._pending_at[terms.key] = now

    async def ready(self) -> bool:
        """As :meth:`RedisStore.ready`; never raises."""
        try:
            return await self._run(self._ready())
        except Exception:
            return False

    async def pool_keys(self) -> tuple[str, ...]:
        """As :attr:`RedisStore.pool_keys` (a coroutine here, not a property)."""
        return await self._run(self._pool_keys())

    async def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        """As :meth:`RedisStore.visit`: one round trip in the common cases."""
        return await self._run_healing(lambda: self._visit(visitor_id, now, claim, hint, client))

    async def release(self, visitor_id: str, now: float) -> Lease | None:
        """As :meth:`RedisStore.release`."""
        return await self._run_healing(lambda: self._release(visitor_id, now))

    async def attribute(self, number: str, at: float) -> Attribution:
        """As :meth:`RedisStore.attribute`."""
        return await self._run_healing(lambda: self._attribute(number, at))

    async def stats(self, pool_key: str, now: float) -> PoolStats:
        """As :meth:`RedisStore.stats`."""
        return await self._run_healing(lambda: self._stats(pool_key, now))

    async def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        """As :meth:`RedisStore.leases`."""
        return await self._run(self._leases(number, pool_key, since, until))

    async def record_call(self, record: CallRecord) -> CallRecord:
        """As :meth:`RedisStore.record_call`."""
        return await self._run(self._record_call(record))

    async def find_call(self, call_id: str) -> CallRecord | None:
        """As :meth:`RedisStore.find_call`."""
        return await self._run(self._find_call(call_id))

    async def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """As :meth:`RedisStore.calls`."""
        return await self._run(self._calls(since, until, pool_key, number))

    async def forget(self, visitor_id: str, now: float) -> Forgotten:
        """As :meth:`RedisStore.forget`."""
        return await self._run_healing(lambda: self._forget(visitor_id, now))

    async def purge(self, now: float) -> int:
        """As :meth:`RedisStore.purge`."""
        return await self._run(self._purge(now))

    async def close(self) -> None:
        """Close the client if this store built it from a URL (with the connections it kept)."""
        if self._owned:
            kept = self._akept
            if kept is not None:
                await kept.close()
            await self._client.aclose()
