"""``Engine``: the facade a web backend embeds.

An engine is built once from the pools, compiles their rules, registers each
pool's lease terms with a store (in memory unless one is given), and then
answers, per request:

* :meth:`Engine.visit`: which number this page view shows (a :class:`Decision`);
* :meth:`Engine.attribute_call`: which visit a call came from (an :class:`Attribution`);
* :meth:`Engine.explain`: why each pool and source matched a visit or not.

The per-request methods never raise into the host: a store failure gives the
outcome ``store_unavailable`` (the page keeps its own numbers), a visitor id no
store could hold gives ``invalid_visitor``, a time that is not a real one is
replaced by the clock's, any other value of the wrong type counts as missing,
and any other failure is treated as "no match"; each kind of problem is logged
once (a store outage again after the store has recovered).

Lease options are set per pool (:class:`PoolOptions`), falling back to the
engine-wide defaults: the exhaustion ``policy`` (``fallback``, ``overflow``,
``recycle``), the ``overflow_number``, a ``cooldown`` in minutes, the ``touch``
mode (``first_touch``, ``last_touch``), a matching ``priority`` and the
``client_cap``: how many live leases of the pool one client may hold (a visit
names its client with ``Engine.visit(..., client=)``; the web integration
passes a keyed hash of the request's network and user agent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import inspect
import logging
import math
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar, cast, overload
from urllib.parse import unquote

import phonenumbers

from dni_engine._frozen import Frozen, field_values, restore_fields
from dni_engine.bots import DEFAULT_CRAWLERS, Crawlers
from dni_engine.calls import _MAX_REFERRER_READ, _MAX_URL_READ, Call, CallRecord
from dni_engine.errors import ConfigError, Problem
from dni_engine.facts import landing_facts
from dni_engine.leases import (
    DEFAULT_CLIENT_CAP,
    OUTCOMES,
    Attribution,
    Claim,
    ClaimLike,
    Clock,
    Decision,
    Facts,
    Lease,
    Outcome,
    Policy,
    PoolStats,
    PoolTerms,
    TouchMode,
    minutes,
    system_clock,
)
from dni_engine.phone import e164, parse_number
from dni_engine.report import Report, build_report
from dni_engine.rewrite import ByteRewriteStream, compile_rewriter
from dni_engine.rules import Explanation, Match, RuleSet, compile_pools
from dni_engine.schema import AnyPool, NumberPool, check_pool_set
from dni_engine.stores.base import AsyncStore, Forgotten, Store, StoreError, number_conflicts
from dni_engine.stores.memory import MemoryStore

__all__ = [
    "DEFAULT_CLIENT_CAP",
    "DEFAULT_MAX_CLOCK_SKEW",
    "MAX_CLIENT_KEY",
    "MAX_DIALLED",
    "MAX_VISITOR_ID",
    "Engine",
    "EngineStats",
    "Moment",
    "PoolOptions",
]

log = logging.getLogger("dni_engine.engine")

Moment = float | int | datetime
"""A time given to the engine: float seconds (as its clock gives), or a ``datetime``."""

DEFAULT_MAX_CLOCK_SKEW: Final = 60.0
"""Seconds a given time may run ahead of the engine's clock (``Engine(max_clock_skew=)``)."""
MAX_VISITOR_ID: Final = 256
"""The longest visitor id, in characters; a longer one is an ``invalid_visitor``."""
MAX_CLIENT_KEY: Final = 256
"""The longest client key, in characters; a longer one (or a non-string) applies no cap."""
_MAX_HINT: Final = 256  # a longer store hint names no pool: ignored
MAX_DIALLED: Final = 512
"""The longest dialled text :meth:`Engine.attribute_call` reads; a longer one is ``unknown``."""

_Page = TypeVar("_Page")
_R = TypeVar("_R")
_Prepared: TypeAlias = tuple[Decision | None, str, float, Match | None, Facts | None]
"""A visit up to the store: its decision when it needs no store (else ``None``), then
the visitor, the time, the match and the landing's facts.

The facts are ``None`` without a match, or when the landing had none to record. A
tuple of fixed length, which compiled code passes back without building an object."""
_ON_LOOP_WAIT: Final = 30.0  # seconds a worker thread waits for the store's loop


@dataclass(frozen=True, slots=True)
class PoolOptions(Frozen):
    """Lease options of one pool; ``None`` takes the engine-wide default.

    ``cooldown`` is in minutes; ``priority`` breaks ties between equally
    specific matches (higher wins) before registration order does;
    ``client_cap`` is how many live leases of the pool one client may hold
    (``0``: no cap; see :meth:`Engine.visit`).
    """

    policy: Policy | None = None
    overflow_number: str | None = None
    cooldown: float | None = None
    touch: TouchMode | None = None
    priority: int | None = None
    client_cap: int | None = None


@dataclass(frozen=True, slots=True)
class EngineStats(Frozen):
    """Visit outcomes and each pool's stats from the store.

    ``outcomes`` maps every outcome (zeros included) to its count: the ones a
    store answers from the store's counters (every process sharing the store),
    the others from this process (see :meth:`Engine.stats`); ``visits`` is
    their sum. ``process_outcomes`` counts every outcome this process
    answered. The ``pools`` counters come from the store; when it failed,
    ``pools`` is empty and ``store_error`` names the failure.
    """

    at: float
    visits: int
    outcomes: Mapping[str, int]
    pools: tuple[PoolStats, ...]
    process_outcomes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    store_error: str | None = None

    def __getstate__(self) -> list[object]:
        """The field values, each read-only view as a dict; first, the views' places.

        A ``MappingProxyType`` does not pickle (nor deep-copy); the dict of its
        items does, and :meth:`__setstate__` views it again.
        """
        values = field_values(self)
        views = [i for i, value in enumerate(values) if isinstance(value, MappingProxyType)]
        for i in views:
            values[i] = dict(cast("Mapping[str, int]", values[i]))
        return [views, *values]

    def __setstate__(self, state: list[object]) -> None:
        """Set the fields to ``state`` as :meth:`__getstate__` gives it."""
        values = state[1:]
        for i in cast("list[int]", state[0]):
            values[i] = MappingProxyType(cast("dict[str, int]", values[i]))
        restore_fields(self, values)


class Engine:
    """Decides which number each visitor sees, and which visit each call came from.

    ``pools`` are :class:`~dni_engine.schema.NumberPool` (their numbers are
    leased) or :class:`~dni_engine.schema.NumberPoolRequest` (no numbers yet:
    their matching visits get the ``overflow`` outcome, the overflow number if
    the policy is ``overflow``). ``store`` holds the lease state (a new
    :class:`~dni_engine.stores.memory.MemoryStore` by default); ``clock``
    returns float seconds (:func:`~dni_engine.leases.system_clock` by default).
    ``options`` maps a pool key (``str(pool.id)``, or the name of a request) or
    a pool name to its :class:`PoolOptions`.
    ``max_clock_skew`` is how many seconds a given ``at`` may run ahead of the
    clock before it is rejected as not a real time (``math.inf``: no bound).
    ``crawlers`` (a :class:`~dni_engine.bots.Crawlers`) is who counts as a crawler:
    the default policy unless the site adds, exempts or accepts headless browsers.
    ``client_cap`` (:data:`DEFAULT_CLIENT_CAP`, 3) is how many live leases of
    each pool one client may hold (``0``: no cap; a pool's
    :class:`PoolOptions` may set its own); it applies to visits that name
    their ``client`` (see :meth:`visit`).

    Raises :class:`~dni_engine.errors.ConfigError` listing every invalid option.
    """

    def __init__(
        self,
        pools: Iterable[AnyPool],
        store: Store | AsyncStore | None = None,
        *,
        policy: Policy = "fallback",
        overflow_number: str | None = None,
        cooldown: float = 0.0,
        touch: TouchMode = "first_touch",
        options: Mapping[str, PoolOptions] | None = None,
        clock: Clock | None = None,
        max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
        crawlers: Crawlers | None = None,
        client_cap: int = DEFAULT_CLIENT_CAP,
    ) -> None:
        pool_list = list(pools)
        if crawlers is not None and not isinstance(crawlers, Crawlers):
            raise ConfigError([Problem("crawlers", "must be a dni_engine.Crawlers")])
        self._crawlers: Crawlers = DEFAULT_CRAWLERS if crawlers is None else crawlers
        self._clock: Clock = system_clock if clock is None else clock
        self._max_skew = _skew(max_clock_skew)
        self._horizon = -math.inf  # the latest clock reading plus the skew (see _moment)
        self._rejected_times = 0
        # An asynchronous store is awaited by the a* methods (avisit ...); the others reach
        # it through _OnLoop, from a worker thread, on the loop the a* methods ran on.
        self._astore: AsyncStore | None = None
        self._on_loop: _OnLoop | None = None
        if store is not None and _is_async(store):
            self._astore = cast(AsyncStore, store)
            self._on_loop = _OnLoop(self._astore)
            self._store: Store = self._on_loop
        else:
            self._store = MemoryStore() if store is None else cast(Store, store)
        self._store_takes_client = _takes_client(
            self._store if self._astore is None else self._astore
        )
        # A store written before visits took a hint is called without one.
        self._hints = self._astore is not None or _takes_hint(self._store)
        # A store doing I/O is called off the event loop by the a* methods.
        self._threaded = self._astore is None and not isinstance(self._store, MemoryStore)
        # The embedded store itself (not a subclass, which may answer visits its own
        # way): a returning visitor's live first-touch lease is kept without matching.
        self._memory: MemoryStore | None = self._store if type(self._store) is MemoryStore else None
        # The rules between pools that ``dni-engine validate`` applies (one set of checks).
        # Unique names are the API's rule for creating pools; here a name is only a
        # label, and options given by an ambiguous name are refused below.
        clashes = check_pool_set(pool_list)
        if clashes:
            raise ConfigError(clashes)
        keys = [pool.key for pool in pool_list]
        resolved = _resolve_options(pool_list, keys, options or {})
        priorities = {key: o.priority for key, o in resolved.items() if o.priority is not None}
        self._rules = compile_pools(pool_list, priorities or None)
        # What a stored landing URL keeps besides click ids and utm_*: the trigger parameters.
        self._kept_params: frozenset[str] = self._rules.param_names
        # The facts of recent landings, by url then referrer as given (at most
        # _FACTS_MEMO_SIZE of them, counted in _facts_remembered; emptied when full):
        # two look-ups, which unlike one by a (url, referrer) pair build and hash no
        # tuple. A miss reads the landing without facts_of's own cache (see _facts_of).
        self._facts_memo: dict[str | None, dict[str | None, Facts]] = {}
        self._facts_remembered = 0
        self._pools: dict[str, AnyPool] = dict(zip(self._rules.pool_keys, pool_list, strict=True))
        problems: list[Problem] = []
        if type(client_cap) is not int or client_cap < 0:
            problems.append(Problem("client_cap", f"{client_cap!r} is not a whole number >= 0"))
            client_cap = 0
        defaults = PoolOptions(policy, overflow_number, cooldown, touch, client_cap=client_cap)
        terms: dict[str, PoolTerms] = {}
        for key, pool in self._pools.items():
            try:
                terms[key] = _terms(key, pool, resolved.get(key, PoolOptions()), defaults)
            except ConfigError as exc:
                problems.extend(exc.problems)
        # Conflicts between these pools are found here, before a store is asked
        # (a networked store may be unreachable at start-up; it registers later).
        registered: list[PoolTerms] = []
        for pool_terms in terms.values():
            problems.extend(number_conflicts(pool_terms, registered))
            registered.append(pool_terms)
        if problems:
            raise ConfigError(problems)
        started = self._clock()
        for pool_terms in terms.values():
            self._store.register_pool(pool_terms, started)
        self._terms: Mapping[str, PoolTerms] = MappingProxyType(terms)
        self._countries = tuple(
            sorted({c for pool in pool_list if (c := pool.country) is not None})
        )
        self._numbers = frozenset(
            n
            for t in terms.values()
            for n in (*t.numbers, *((t.overflow_number,) if t.overflow_number else ()))
        )
        # Compiled once here so a page rewrite is a dictionary look-up and a scan.
        self._rewriters = {key: compile_rewriter(pool) for key, pool in self._pools.items()}
        self._counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        # The outcomes answered since they were last added to _counts (see _count).
        self._uncounted: list[str] = []
        self._count_lock = threading.Lock()
        self._logged: set[str] = set()

    # ---- the per-visit path ---------------------------------------------------------

    def visit(
        self,
        visitor_id: object,
        url: object = "",
        referrer: object = None,
        user_agent: object = None,
        at: object = None,
        *,
        client: object = None,
        hint: object = None,
    ) -> Decision:
        """Decide the number for one page view by ``visitor_id``; never raises.

        ``url`` is the landing URL, ``referrer`` the HTTP referrer, ``at`` the
        time (the engine's clock when ``None``). A crawler or an empty user
        agent gives ``bot`` without touching the store. A visitor with a live
        lease keeps it (``kept``) whatever this visit matches, unless the lease's
        pool is ``last_touch`` and the visit matches another pool more
        specifically. Otherwise a matching visit takes a number (``new``), or the
        exhausted pool's policy applies (``overflow``, ``recycled``), unless
        ``client`` already holds the pool's ``client_cap`` live leases:
        ``capped``, no number (the page keeps its own), nobody displaced.

        Every argument is typed ``object`` because it is untrusted:

        * ``visitor_id`` must be a non-empty ``str`` (a subclass is copied to a
          plain one) of at most :data:`MAX_VISITOR_ID` characters that UTF-8 can
          encode (no lone surrogates); anything else gives ``invalid_visitor``
          before anything else is looked at (no match, no store call, no number);
        * ``url``, ``referrer`` and ``user_agent``: anything but a string counts
          as missing (no match, no referrer, a bot);
        * ``at`` must be a real time: an ``int`` or ``float`` (not ``bool``),
          finite, or an aware ``datetime``, at most ``max_clock_skew`` seconds
          ahead of the clock. Any other time is counted (:attr:`rejected_times`),
          logged once, and the visit is answered at the clock's time;
        * ``client``: who sent the visit, an opaque key (the web integration's
          :meth:`~dni_engine.web.core.WebCore.cap_client`, a keyed hash; never
          a raw address); a non-empty ``str`` of at most :data:`MAX_CLIENT_KEY`
          characters. Anything else applies no cap (and the lease counts for
          no client); so does a store whose ``visit`` takes no client (a
          store written before the cap; warned about once);
        * ``hint`` is advice for the store (see :meth:`Store.visit
          <dni_engine.stores.base.Store.visit>`): the key of the pool the caller
          believes holds the visitor's lease, or
          :data:`~dni_engine.stores.base.NEW_VISITOR` for a visitor id minted for
          this request. A networked store saves round trips with it; a wrong
          one costs time, never the decision. Anything but a short ``str`` is
          ignored.
        """
        done, visitor, now, match, facts = self._prepare(visitor_id, url, referrer, user_agent, at)
        if done is not None:
            return self._count(done)
        try:
            decision = self._store_visit(visitor, now, match, facts, self._client_of(client), hint)
        except Exception:
            decision = self._store_failed(visitor, now, match)
        else:
            self._answers_again()
        return self._count(decision)

    async def avisit(
        self,
        visitor_id: object,
        url: object = "",
        referrer: object = None,
        user_agent: object = None,
        at: object = None,
        *,
        client: object = None,
        hint: object = None,
    ) -> Decision:
        """:meth:`visit` for an event loop: the same arguments and contract; never raises.

        An asynchronous store (:class:`~dni_engine.stores.redis.AsyncRedisStore`)
        is awaited; a store doing I/O (:class:`~dni_engine.stores.redis.RedisStore`)
        is called on a worker thread; the memory store directly.
        """
        done, visitor, now, match, facts = self._prepare(visitor_id, url, referrer, user_agent, at)
        if done is not None:
            return self._count(done)
        try:
            key = self._client_of(client)
            astore = self._astore
            if astore is not None:
                self.bind_loop()
                claim = _claim(match, facts)
                given = self._hint_of(hint)
                if given is None:
                    if key is None:
                        decision = await astore.visit(visitor, now, claim)
                    else:
                        decision = await astore.visit(visitor, now, claim, key)
                elif key is None:
                    decision = await astore.visit(visitor, now, claim, hint=given)
                else:
                    decision = await astore.visit(visitor, now, claim, key, hint=given)
            elif self._threaded:
                decision = await _in_thread(
                    lambda: self._store_visit(visitor, now, match, facts, key, hint)
                )
            else:
                decision = self._store_visit(visitor, now, match, facts, key, hint)
        except Exception:
            decision = self._store_failed(visitor, now, match)
        else:
            self._answers_again()
        return self._count(decision)

    def _prepare(
        self, visitor_id: object, url: object, referrer: object, user_agent: object, at: object
    ) -> _Prepared:
        """A visit up to the store: its decision without one, else what the store is asked."""
        now = 0.0
        visitor = ""
        try:
            if at is None:
                now = self._clock()
            elif type(at) is float and at - at == 0.0 and at <= self._horizon:
                now = at  # finite, and not beyond the clock: the common case
            else:
                now = self._moment(at)
            if (
                type(visitor_id) is str
                and 0 < len(visitor_id) <= MAX_VISITOR_ID
                and visitor_id.isascii()
            ):
                visitor = visitor_id
            else:
                visitor = _visitor_id(visitor_id)
            if type(user_agent) is not str:
                user_agent = _plain_text(user_agent)
            if not visitor:
                return (Decision(visitor, now, "invalid_visitor"), visitor, now, None, None)
            if self._crawlers.is_bot(user_agent):
                return (Decision(visitor, now, "bot"), visitor, now, None, None)
            kept = self._kept(visitor, now)
            if kept is not None:
                return (kept, visitor, now, None, None)
            match = self._match(url, referrer, user_agent)
            facts = None if match is None else self._facts(url, referrer)
            return (None, visitor, now, match, facts)
        except Exception:
            self._log_once("visit", "a visit failed; treated as no match")
            return (Decision(visitor, now, "no_match"), visitor, now, None, None)

    def _hint_of(self, hint: object) -> str | None:
        """``hint`` when the store takes hints and it may name a pool, else ``None``."""
        if self._hints and type(hint) is str and 0 < len(hint) <= _MAX_HINT:
            return hint
        return None

    def _client_of(self, client: object) -> str | None:
        """``client`` as the store's client key, or ``None``: no cap applies (see :meth:`visit`)."""
        if client is None:
            return None
        key: str | None
        if type(client) is str and 0 < len(client) <= MAX_CLIENT_KEY and client.isascii():
            key = client  # the web integration's hex digest: the common case
        else:
            key = _client_key(client)
        if key is not None and not self._store_takes_client:
            self._warn_once(
                "client",
                f"{type(self._store).__name__}.visit takes no client key: "
                "the client cap does not apply to its visits",
            )
            return None
        return key

    def _store_visit(
        self,
        visitor: str,
        now: float,
        match: Match | None,
        facts: Facts | None,
        client: str | None,
        hint: object,
    ) -> Decision:
        memory = self._memory
        if memory is not None:
            # The embedded store takes the facts apart from the match: no claim is built.
            return memory._visit_with(visitor, now, match, facts, client)
        claim = _claim(match, facts)
        given = self._hint_of(hint)
        store = self._store
        if given is None:
            if client is None:
                return store.visit(visitor, now, claim)
            return store.visit(visitor, now, claim, client)
        if client is None:
            return store.visit(visitor, now, claim, hint=given)
        return store.visit(visitor, now, claim, client, hint=given)

    def _answers_again(self) -> None:
        logged = self._logged
        if logged and "store" in logged:  # (an empty set is the common case: no set look-up)
            logged.discard("store")
            log.warning("the lease store answers again")

    def _count(self, decision: Decision) -> Decision:
        # No lock per visit: appending to a list is atomic. The outcomes are added
        # to the counts _COUNT_BATCH at a time, and before the counts are read.
        uncounted = self._uncounted
        uncounted.append(decision.outcome)
        if len(uncounted) >= _COUNT_BATCH:
            with self._count_lock:
                self._add_uncounted()
        return decision

    def _add_uncounted(self) -> None:
        """Add the outcomes answered since the last call to the counts (under the lock).

        Other threads only append meanwhile, so the first ``n`` outcomes seen
        are removed exactly: each outcome is counted once. A value that is not
        an outcome (from a store that does not keep the contract) is not counted.
        """
        uncounted = self._uncounted
        n = len(uncounted)
        if n == 0:
            return
        batch = uncounted[:n]
        del uncounted[:n]
        counts = self._counts
        for outcome in set(batch):  # (a batch mostly holds one or two outcomes)
            if outcome in counts:
                counts[outcome] += batch.count(outcome)

    def bind_loop(self) -> None:
        """Let the engine's synchronous methods reach an asynchronous store from worker threads.

        Called on the event loop the store runs on (the ``a*`` methods call it
        themselves): until then, and on that loop's own thread, a synchronous
        method finds the store unavailable. Does nothing for other stores.
        """
        on_loop = self._on_loop
        if on_loop is not None:
            with contextlib.suppress(RuntimeError):  # not on an event loop: nothing to bind
                on_loop.loop = asyncio.get_running_loop()

    async def _awaited(
        self, call: Callable[[], _R], make: Callable[[AsyncStore], Coroutine[Any, Any, _R]]
    ) -> _R:
        """One store operation from an event loop: awaited, on a worker thread, or direct."""
        astore = self._astore
        if astore is not None:
            self.bind_loop()
            return await make(astore)
        if self._threaded:
            return await _in_thread(call)
        return call()

    def _kept(self, visitor: str, now: float) -> Decision | None:
        """A returning visitor's ``kept`` decision from the embedded store, without matching.

        ``None`` when the store is another one, or the visitor has no live lease
        that any visit keeps (then the visit is matched and goes to the store).
        The visit's match could not change a ``kept`` outcome in a
        ``first_touch`` pool, so skipping it changes nothing but the cost.
        """
        memory = self._memory
        if memory is None:
            return None
        try:
            kept = memory._keep(visitor, now)
        except Exception:  # the store's own visit then answers (or fails) as usual
            return None
        if kept is not None and "store" in self._logged:
            self._logged.discard("store")
            log.warning("the lease store answers again")
        return kept

    def _match(self, url: object, referrer: object, user_agent: object) -> Match | None:
        if type(url) is not str:
            url = _plain_text(url)
        if type(referrer) is not str:
            referrer = _plain_text(referrer)
        try:
            return self._rules.match(url, referrer, user_agent, check_bots=False)
        except Exception:  # the matcher promises not to raise; a visit must not fail anyway
            self._log_once("match", "matching a visit failed; treated as no match")
            return None

    def _facts(self, url: object, referrer: object) -> Facts | None:
        """The attribution facts a matched visit's lease records; ``None`` for none.

        The facts are those of ``url`` and ``referrer`` (:func:`~dni_engine.calls.facts_of`);
        a landing without any (no URL, no referrer) records none: it claims
        with the match alone.
        """
        try:
            page = url if type(url) is str else _plain_text(url)
            source = referrer if type(referrer) is str else _plain_text(referrer)
            memo = self._facts_memo
            by_source = memo.get(page)
            facts = None if by_source is None else by_source.get(source)
            if facts is None:
                facts = _facts_of(page, source, self._kept_params)
                if _no_facts(facts):
                    facts = _NO_FACTS  # nothing to record (found once per remembered landing)
                if (page is None or len(page) <= _MAX_REMEMBERED) and (
                    source is None or len(source) <= _MAX_REMEMBERED
                ):
                    if self._facts_remembered >= _FACTS_MEMO_SIZE:
                        memo.clear()
                        self._facts_remembered = 0
                        by_source = None
                    if by_source is None:
                        by_source = memo[page] = {}
                    by_source[source] = facts
                    self._facts_remembered += 1
            return None if facts is _NO_FACTS else facts
        except Exception:  # facts_of promises not to raise; a visit must not fail anyway
            self._log_once("facts", "a visit's attribution facts failed; the lease has none")
            return None

    def _moment(self, at: object) -> float:
        """``at`` in float seconds when it is a real time, else the clock's time.

        A real time is a finite ``int`` or ``float`` (not ``bool``; subclasses
        are read without calling their methods) or an aware ``datetime``, no
        later than the clock's time plus ``max_clock_skew``. The bound is
        checked against the latest clock reading first, so the clock is read
        only for a time beyond that. Any other time is counted, logged once
        (a warning) and replaced by the clock's time.
        """
        value = _real_seconds(at)
        if value is not None and value <= self._horizon:
            return value
        now = self._clock()
        horizon = now + self._max_skew
        if horizon > self._horizon:
            self._horizon = horizon
        if value is not None and value <= horizon:
            return value
        with self._count_lock:
            self._rejected_times += 1
        self._warn_once(
            "time",
            "a time that is not a real time, or more than "
            f"{self._max_skew:g} s ahead of the clock, was given; answered at the clock's time",
        )
        return now

    def _store_failed(self, visitor_id: str, now: float, match: Match | None) -> Decision:
        self._log_once("store", "the lease store failed; visits get no number until it answers")
        if match is None:
            return Decision(visitor_id, now, "store_unavailable")
        return Decision(
            visitor_id,
            now,
            "store_unavailable",
            None,
            match.pool_key,
            match.pool_name,
            match.source_index,
            match.referrer_domain,
            match.trigger,
        )

    def _log_once(self, kind: str, message: str) -> None:
        # Called from an ``except`` block. A store outage is an operational
        # event (a warning naming the cause); anything else is a bug worth a
        # traceback. Either way once, not once per page view.
        if kind not in self._logged:
            self._logged.add(kind)
            if kind == "store":
                log.warning("%s (%s)", message, _cause())
            else:
                log.exception(message)

    def _warn_once(self, kind: str, message: str) -> None:
        # A caller's bad value, not a bug here: a warning without a traceback,
        # the first time only.
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s", message)

    @property
    def rejected_times(self) -> int:
        """How many times given to this engine were not real times (see :meth:`visit`).

        Each was answered at the clock's time instead, so it moved no store's time.
        """
        with self._count_lock:
            return self._rejected_times

    def attribute_call(self, number: object, at: object = None) -> Attribution:
        """Attribute a call to ``number`` at ``at`` (default: now); never raises.

        ``number`` may be written in any common form of a pool's country
        (``0117 409 0162``) or in E.164, or be a ``tel:`` (``tel://``), ``sip:``
        or ``sips:`` URI as a telephony system reports it (parameters such as
        ``;ext=``, headers, percent-encoding and visual separators are read;
        ``;phone-context=+...`` completes a local number). Anything but a string,
        or a text over :data:`MAX_DIALLED` characters, is ``unknown``. The call
        goes to the lease whose window holds it (confidence 1.0, or ``1/n`` with
        the other candidates when recycling left ``n`` leases on the number
        then); to the pool only when no lease covers it; ``unknown`` for a number
        of no pool. ``at`` may lie in the past (calls are attributed later from
        the lease log); it follows the time rules of :meth:`visit` otherwise.
        """
        asked = self._dialled(number, at)
        if type(asked) is Attribution:
            return asked
        text, now = cast(tuple[str, float], asked)
        try:
            return self._store.attribute(text, now)
        except Exception:
            return self._unattributed(text, now)

    async def aattribute_call(self, number: object, at: object = None) -> Attribution:
        """:meth:`attribute_call` for an event loop (the store as :meth:`avisit` calls it)."""
        asked = self._dialled(number, at)
        if type(asked) is Attribution:
            return asked
        text, now = cast(tuple[str, float], asked)
        try:
            return await self._awaited(
                lambda: self._store.attribute(text, now), lambda s: s.attribute(text, now)
            )
        except Exception:
            return self._unattributed(text, now)

    def _dialled(self, number: object, at: object) -> Attribution | tuple[str, float]:
        """The E.164 number and time to attribute, or the attribution without the store."""
        now = 0.0
        text = ""
        try:
            now = self._clock() if at is None else self._moment(at)
            dialled = number if type(number) is str else _plain_text(number)
            if dialled is None:
                return Attribution("", now, "unknown")
            text = self._normalise(dialled)
            return (text, now)
        except Exception:
            self._log_once("attribute", "attributing a call failed; reported as unknown")
            return Attribution(text, now, "unknown")

    def _unattributed(self, text: str, now: float) -> Attribution:
        self._log_once("store", "the lease store failed; calls cannot be attributed")
        return Attribution(text, now, "store_unavailable")

    def _normalise(self, number: str) -> str:
        if number in self._numbers:
            return number
        if len(number) > MAX_DIALLED:
            return number
        for written in _dialled_forms(number):
            for country in (*self._countries, None):
                try:
                    candidate = e164(parse_number(written, country))
                except ValueError:
                    continue
                if candidate in self._numbers:
                    return candidate
        return number.strip()

    # ---- the rest of the facade -------------------------------------------------

    def explain(
        self, url: object = "", referrer: object = None, user_agent: object = None
    ) -> Explanation:
        """Why each pool and source matched this visit or not (``str()`` reads as a report).

        Never raises: values that are not strings count as missing, and a visit
        that cannot be explained gives an explanation without a match.
        """
        try:
            return self._rules.explain(
                url if type(url) is str else _plain_text(url),
                referrer if type(referrer) is str else _plain_text(referrer),
                user_agent if type(user_agent) is str else _plain_text(user_agent),
            )
        except Exception:  # the matcher promises not to raise; explain must not either
            self._log_once("explain", "explaining a visit failed; reported as no match")
            return Explanation("", None, None, None, None, None, False, False, None)

    @overload
    def rewrite(self, html: str, decision: object) -> str: ...
    @overload
    def rewrite(self, html: _Page, decision: object) -> _Page: ...
    def rewrite(self, html: object, decision: object) -> object:
        """``html`` with the decision's pool's numbers swapped for its tracking number.

        Swaps in text and ``tel:``/``callto:`` link targets only, keeping each
        number's written format (see :mod:`dni_engine.rewrite`). A decision with
        no number (no match, bot, exhausted pool under ``fallback``, store down)
        returns ``html`` itself, unchanged; so does anything that is not a
        :class:`Decision` or a page that is not a string (logged once), and any
        failure. Never raises.
        """
        return self._swap(html, decision, True)

    @overload
    def rewrite_text(self, text: str, decision: object) -> str: ...
    @overload
    def rewrite_text(self, text: _Page, decision: object) -> _Page: ...
    def rewrite_text(self, text: object, decision: object) -> object:
        """Like :meth:`rewrite`, for plain text (an email body, an SMS template)."""
        return self._swap(text, decision, False)

    def _swap(self, page: object, decision: object, html: bool) -> object:
        # The fields are read as plain objects: a decision built by hand may hold
        # anything, and a compiled build would check their declared types.
        fields = cast("tuple[object, ...]", decision) if type(decision) is Decision else ()
        if len(fields) != _DECISION_FIELDS:
            self._warn_once(
                "rewrite", "a page was given no Decision to rewrite with; left as it is"
            )
            return page
        number, key = fields[_NUMBER_FIELD], fields[_POOL_KEY_FIELD]
        if number is None or key is None:
            return page
        text = page if type(page) is str else _plain_text(page)
        if text is None or type(number) is not str or type(key) is not str:
            self._warn_once(
                "rewrite-value",
                "a page that is not a string, or a decision whose number or pool is not "
                "a string, was given to rewrite; left as it is",
            )
            return page
        rewriter = self._rewriters.get(key)
        if rewriter is None:
            return page
        try:
            if html:
                swapped = rewriter.rewrite_html(text, number)
            else:
                swapped = rewriter.rewrite_text(text, number)
        except Exception:  # the rewriter promises not to raise; a page must be served anyway
            self._log_once("rewrite-failed", "rewriting a page failed; left as it is")
            return page
        return page if swapped is text else swapped

    def stream(self, decision: object, *, encoding: str = "utf-8") -> ByteRewriteStream | None:
        """A byte stream rewriting one HTML page for ``decision``, or ``None``; never raises.

        The stream (see :meth:`.Rewriter.stream_bytes`) takes the page in pieces
        of bytes of ``encoding`` and gives out the bytes of :meth:`rewrite` of
        the whole page. ``None`` when the decision shows no number (no match,
        bot, exhausted pool under ``fallback``, store down), is not a
        :class:`Decision`, names no pool of this engine, when the pool has
        nothing to swap, or when ``encoding`` is not a codec Python knows.
        """
        fields = cast("tuple[object, ...]", decision) if type(decision) is Decision else ()
        if len(fields) != _DECISION_FIELDS:
            return None
        number, key = fields[_NUMBER_FIELD], fields[_POOL_KEY_FIELD]
        if type(number) is not str or not number or type(key) is not str:
            return None
        rewriter = self._rewriters.get(key)
        if rewriter is None or not (rewriter.numbers or rewriter.replace_all):
            return None
        try:
            return rewriter.stream_bytes(number, encoding=encoding)
        except Exception:  # an unknown codec, or a bug: the page passes through
            self._warn_once("stream", "a page could not be streamed for rewriting; left as it is")
            return None

    def end_session(self, visitor_id: object, at: object = None) -> Lease | None:
        """End ``visitor_id``'s live lease now (e.g. on logout); return it, or ``None``.

        Like :meth:`visit` it may run on every request, so it never raises: an
        invalid visitor id (see :meth:`visit`) gives ``None`` without asking the
        store, ``at`` follows the time rules of :meth:`visit`, and a store
        failure is logged once and gives ``None``.
        """
        visitor = _visitor_id(visitor_id)
        try:
            now = self._clock() if at is None else self._moment(at)
        except Exception:
            self._log_once("end_session", "ending a session failed; nothing was ended")
            return None
        if not visitor:
            return None
        try:
            return self._store.release(visitor, now)
        except Exception:
            self._log_once("store", "the lease store failed; a session could not be ended")
            return None

    def forget(self, visitor_id: object) -> Forgotten:
        """Erase ``visitor_id`` from the store (a privacy request); say what was removed.

        Removes the visitor's live lease (its number goes back to the pool and
        cools down, as on :meth:`end_session`), their leases in the lease log
        with the attribution facts they carry, and every call record whose
        attribution names them (the whole record, caller number included); see
        :mod:`dni_engine.stores.base`. Idempotent: forgetting again, or an
        unknown visitor, reports zeros. Raises ``ValueError`` for an invalid
        visitor id (see :meth:`visit`), and nothing else: when the store fails,
        the answer's ``error`` says why (forget again once it is back).
        """
        visitor = _visitor_id(visitor_id)
        if not visitor:
            raise ValueError(
                f"visitor_id: must be a non-empty string of at most {MAX_VISITOR_ID} characters"
            )
        try:
            return self._store.forget(visitor, float(self._clock()))
        except Exception as exc:
            log.error("the lease store failed; visitor could not be forgotten: %s", exc)
            return Forgotten(visitor, error=f"{type(exc).__name__}: {exc}")

    def stats(self, at: Moment | None = None) -> EngineStats:
        """Outcome counts and every pool's stats at ``at`` (default: now).

        The outcomes a store answers (``new``, ``kept``, ``overflow``,
        ``recycled``, ``capped``) are the store's own counters, summed over this engine's
        pools: with a shared store, every worker reports the same totals. The
        outcomes decided before the store (``no_match``, ``bot``, invalid
        input, ``store_unavailable``) are counted by this process; so are all
        of :attr:`EngineStats.process_outcomes`. Never raises: when the store
        fails, ``pools`` is empty, ``store_error`` says why and ``outcomes``
        are this process's counts.
        """
        now = self._clock() if at is None else self._moment(at)
        with self._count_lock:
            self._add_uncounted()
            counts = dict(self._counts)
        outcomes = dict(counts)
        try:
            pools = tuple(self._store.stats(key, now) for key in self._pools)
        except Exception as exc:
            return EngineStats(
                now,
                sum(counts.values()),
                MappingProxyType(outcomes),
                (),
                MappingProxyType(counts),
                f"{type(exc).__name__}: {exc}",
            )
        outcomes["new"] = sum(p.new for p in pools)
        outcomes["kept"] = sum(p.kept for p in pools)
        outcomes["overflow"] = sum(p.overflows for p in pools)
        outcomes["recycled"] = sum(p.recycled for p in pools)
        outcomes["capped"] = sum(p.capped for p in pools)
        return EngineStats(
            now,
            sum(outcomes.values()),
            MappingProxyType(outcomes),
            pools,
            MappingProxyType(counts),
        )

    def ready(self) -> bool:
        """True when the store answers and holds every pool: a health check; never raises.

        With :class:`~dni_engine.stores.redis.RedisStore` this is one round
        trip; it also registers pools Redis has not confirmed yet.
        """
        try:
            return bool(self._store.ready())
        except Exception:
            return False

    async def aready(self) -> bool:
        """:meth:`ready` for an event loop (the store as :meth:`avisit` calls it); never raises."""
        try:
            return bool(await self._awaited(self._store.ready, lambda s: s.ready()))
        except Exception:
            return False

    def pool_stats(self, pool: str, at: Moment | None = None) -> PoolStats:
        """Stats of one pool, by key or name (see :meth:`stats`); ``at`` as in :meth:`visit`."""
        now = self._clock() if at is None else self._moment(at)
        return self._store.stats(self.pool_key(pool), now)

    def leases(
        self,
        *,
        number: str | None = None,
        pool: str | None = None,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> list[Lease]:
        """The lease log, oldest first, filtered by number, pool (key or name) and window."""
        return self._store.leases(
            number=None if number is None else self._normalise(number),
            pool_key=None if pool is None else self.pool_key(pool),
            since=None if since is None else _seconds(since),
            until=None if until is None else _seconds(until),
        )

    # ---- the call log ----------------------------------------------------------------

    def record_call(self, call: Call) -> CallRecord:
        """Attribute ``call`` at ``call.started`` and keep it in the store's call log, once.

        Idempotent by ``call.call_id``: a call id already in the log returns
        that first record with ``replayed=True``, attributing and storing
        nothing again (two deliveries racing may both attribute, a read; the
        store keeps one record and both answer it). The call is attributed
        as :meth:`attribute_call` does (``started`` follows its time rules).
        Invalid input raises ``ValueError`` naming the field
        (``call_id: ...``), before anything is stored; that is the only
        exception. When the store fails the answer is the attribution made
        (``store_unavailable`` if the store failed then too) with
        ``stored=False``, and the failure is logged once.
        """
        if not isinstance(call, Call):
            raise ValueError(f"call: must be a Call, not {type(call).__name__}")
        call.validate()
        try:
            found = self._store.find_call(call.call_id)
        except Exception:
            self._call_log_failed()
            found = None
        if found is not None:
            return dataclasses.replace(found, replayed=True)
        record = self._call_record(call, self.attribute_call(call.number, call.started))
        try:
            return self._store.record_call(record)
        except Exception:
            self._call_log_failed()
            return dataclasses.replace(record, stored=False)

    async def arecord_call(self, call: Call) -> CallRecord:
        """:meth:`record_call` for an event loop (the store as :meth:`avisit` calls it)."""
        if not isinstance(call, Call):
            raise ValueError(f"call: must be a Call, not {type(call).__name__}")
        call.validate()
        call_id = call.call_id
        try:
            found = await self._awaited(
                lambda: self._store.find_call(call_id), lambda s: s.find_call(call_id)
            )
        except Exception:
            self._call_log_failed()
            found = None
        if found is not None:
            return dataclasses.replace(found, replayed=True)
        attribution = await self.aattribute_call(call.number, call.started)
        record = self._call_record(call, attribution)
        try:
            return await self._awaited(
                lambda: self._store.record_call(record), lambda s: s.record_call(record)
            )
        except Exception:
            self._call_log_failed()
            return dataclasses.replace(record, stored=False)

    def _call_record(self, call: Call, attribution: Attribution) -> CallRecord:
        try:
            recorded = float(self._clock())
        except Exception:
            recorded = call.started
        return CallRecord(call, attribution, recorded)

    def _call_log_failed(self) -> None:
        self._log_once("calls", "the call log failed; a call could not be recorded")

    def calls(
        self,
        since: Moment | None = None,
        until: Moment | None = None,
        *,
        pool: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        """The call log, oldest first: calls that started in ``[since, until)``.

        ``pool`` (key or name; ``KeyError`` for neither) keeps the calls
        attributed to that pool, lease or pool level; ``number`` (as dialled,
        normalised like :meth:`attribute_call`) the calls to that number.
        Raises :class:`~dni_engine.stores.base.StoreError` when the store fails.
        """
        return self._store.calls(
            None if since is None else _seconds(since),
            None if until is None else _seconds(until),
            None if pool is None else self.pool_key(pool),
            None if number is None else self._normalise(number),
        )

    def report(
        self,
        since: Moment | None = None,
        until: Moment | None = None,
        *,
        time_zone: str = "UTC",
    ) -> Report:
        """The attribution report of the calls that started in ``[since, until)``.

        Calls by pool, source, campaign and day (in ``time_zone``, an IANA
        name), the attributed, pool-level and late shares, the confidence mix
        and each pool's overflow share of sessions (the store's counters; see
        :mod:`dni_engine.report` for the exact terms). Raises
        :class:`~dni_engine.stores.base.StoreError` when the store cannot list
        the calls; pool counters the store cannot give are left out.
        """
        records = self.calls(since, until)
        stats = self.stats()
        names = {key: pool.name for key, pool in self._pools.items()}
        sources: dict[tuple[str, int], str] = {}
        for key, pool in self._pools.items():
            for index, tracking in enumerate(pool.replacement_configuration.tracking_sources):
                triggers = ", ".join(tracking.url_triggers or ())
                label = f"{pool.name} #{index}: {tracking.referrer_domain}"
                sources[(key, index)] = f"{label} [{triggers}]" if triggers else label
        return build_report(
            records,
            stats.pools,
            names=names,
            sources=sources,
            since=None if since is None else _seconds(since),
            until=None if until is None else _seconds(until),
            time_zone=time_zone,
        )

    def pool_key(self, pool: str) -> str:
        """The key of a pool given by key or name; ``KeyError`` naming it otherwise."""
        if pool in self._pools:
            return pool
        for key, candidate in self._pools.items():
            if candidate.name == pool:
                return key
        raise KeyError(f"no pool with key or name {pool!r}")

    def pool(self, key: str) -> AnyPool:
        """The pool model with this key (or name)."""
        return self._pools[self.pool_key(key)]

    @property
    def pools(self) -> Mapping[str, AnyPool]:
        """The pools by key, in registration order."""
        return MappingProxyType(self._pools)

    @property
    def terms(self) -> Mapping[str, PoolTerms]:
        """The lease terms registered for each pool, by key."""
        return self._terms

    @property
    def rules(self) -> RuleSet:
        """The compiled matcher."""
        return self._rules

    @property
    def crawlers(self) -> Crawlers:
        """Who counts as a crawler for this engine (``DEFAULT_CRAWLERS`` unless given)."""
        return self._crawlers

    @property
    def store(self) -> Store:
        """The lease store."""
        return self._store

    @property
    def awaits_store(self) -> bool:
        """True when the store is asynchronous: :meth:`avisit` and the ``a*`` methods await it."""
        return self._astore is not None

    @property
    def clock(self) -> Clock:
        """The clock used when no ``at`` is given."""
        return self._clock

    def outcome_count(self, outcome: Outcome) -> int:
        """How many visits this engine answered with ``outcome``."""
        with self._count_lock:
            self._add_uncounted()
            return self._counts[outcome]

    def __repr__(self) -> str:
        return f"Engine(pools={list(self._pools)}, store={self._store!r})"


def _is_async(store: object) -> bool:
    """Whether ``store``'s operations are coroutines (an :class:`AsyncStore`)."""
    redis_module = sys.modules.get("dni_engine.stores.redis")
    if redis_module is not None and isinstance(store, redis_module.AsyncRedisStore):
        return True
    return inspect.iscoroutinefunction(getattr(type(store), "visit", None))


async def _in_thread(call: Callable[[], _R]) -> _R:
    """Run ``call`` on a worker thread: anyio's when installed (asyncio or trio), else asyncio's."""
    try:
        import anyio.to_thread  # optional: present wherever ASGI frameworks are
    except ImportError:
        return await asyncio.get_running_loop().run_in_executor(None, call)
    return await anyio.to_thread.run_sync(call)


class _OnLoop:
    """A :class:`Store` over an :class:`AsyncStore`, for the engine's synchronous methods.

    Each operation runs on the event loop the engine's ``a*`` methods last ran
    on, submitted from the calling worker thread, which waits for it (as a web
    framework's thread-pooled handlers do). On that loop's own thread, or
    before any ``a*`` method ran, an operation raises :class:`StoreError`: it
    could only block the loop it waits for. ``register_pool`` does no I/O and
    runs anywhere.
    """

    def __init__(self, store: AsyncStore) -> None:
        self.inner = store
        self.loop: asyncio.AbstractEventLoop | None = None

    def _call(self, make: Callable[[], Coroutine[Any, Any, _R]]) -> _R:
        loop = self.loop
        if loop is None or loop.is_closed():
            raise StoreError(
                "an asynchronous store answers on its event loop: use the engine's async "
                "methods (avisit, arecord_call, aattribute_call, aready) there"
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise StoreError(
                "an asynchronous store cannot be waited for on its own event loop: "
                "use the engine's async methods (avisit ...)"
            )
        future = asyncio.run_coroutine_threadsafe(make(), loop)
        try:
            return future.result(_ON_LOOP_WAIT)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise StoreError("the asynchronous store's event loop did not answer") from exc

    def register_pool(self, terms: PoolTerms, now: float | None = None) -> None:
        self.inner.register_pool(terms, now)

    def ready(self) -> bool:
        try:
            return self._call(self.inner.ready)
        except StoreError:
            return False

    def visit(
        self,
        visitor_id: str,
        now: float,
        claim: ClaimLike | None,
        client: str | None = None,
        *,
        hint: str | None = None,
    ) -> Decision:
        return self._call(lambda: self.inner.visit(visitor_id, now, claim, client, hint=hint))

    def release(self, visitor_id: str, now: float) -> Lease | None:
        return self._call(lambda: self.inner.release(visitor_id, now))

    def attribute(self, number: str, at: float) -> Attribution:
        return self._call(lambda: self.inner.attribute(number, at))

    def stats(self, pool_key: str, now: float) -> PoolStats:
        return self._call(lambda: self.inner.stats(pool_key, now))

    def leases(
        self,
        *,
        number: str | None = None,
        pool_key: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Lease]:
        return self._call(
            lambda: self.inner.leases(number=number, pool_key=pool_key, since=since, until=until)
        )

    def record_call(self, record: CallRecord) -> CallRecord:
        return self._call(lambda: self.inner.record_call(record))

    def find_call(self, call_id: str) -> CallRecord | None:
        return self._call(lambda: self.inner.find_call(call_id))

    def forget(self, visitor_id: str, now: float) -> Forgotten:
        return self._call(lambda: self.inner.forget(visitor_id, now))

    def calls(
        self,
        since: float | None = None,
        until: float | None = None,
        pool_key: str | None = None,
        number: str | None = None,
    ) -> list[CallRecord]:
        return self._call(lambda: self.inner.calls(since, until, pool_key, number))

    def __repr__(self) -> str:
        return repr(self.inner)


def _takes_hint(store: Store) -> bool:
    """Whether ``store.visit`` takes the ``hint`` keyword (every store of this package does)."""
    if type(store).__module__.startswith("dni_engine.stores."):
        return True  # (a compiled method may not tell its signature)
    try:
        parameter = inspect.signature(store.visit).parameters.get("hint")
    except (TypeError, ValueError, AttributeError):
        return False
    return parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY


def _cause() -> str:
    """The exception being handled, in one line."""
    exc = sys.exc_info()[1]
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown cause"


def _seconds(at: Moment) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("a datetime given as a time must carry a timezone")
        return at.timestamp()
    value = float(at)
    if not math.isfinite(value):
        raise ValueError(f"time {at!r} is not a finite number of seconds")
    return value


_NO_FACTS: Final = Facts()


def _facts_of(url: str | None, referrer: str | None, keep: frozenset[str]) -> Facts:
    """:func:`~dni_engine.calls.facts_of` for a plain ``str`` or ``None``, without its cache.

    The engine remembers the facts of recent landings itself, and most landings
    it misses on are seen once (a click id each): the cache would only add its
    look-up and keep the facts alive. The same reads and the same answer.
    """
    page = url[:_MAX_URL_READ] if url is not None else ""
    source = referrer[:_MAX_REFERRER_READ] if referrer is not None else ""
    try:
        return landing_facts(page, source, keep)
    except Exception:  # never on the per-visit path's account
        return Facts()


def _no_facts(facts: Facts) -> bool:
    """Whether ``facts`` (a :class:`Facts`, not a subclass) equals ``Facts()``: field by field,
    without the dataclass comparison's two tuples."""
    return not (
        facts.landing_url
        or facts.referrer_host
        or facts.referrer_class
        or facts.paid
        or facts.click_ids
        or facts.utm
    )


_FACTS_MEMO_SIZE: Final = 1024
_COUNT_BATCH: Final = 64  # outcomes appended before they are added to the counts
_MAX_REMEMBERED: Final = 2048  # longer landings are not remembered as they are sent


def _claim(match: Match | None, facts: Facts | None) -> ClaimLike | None:
    """The claim a visit makes of a store: the match, with the landing's facts if any."""
    if match is None or facts is None:
        return match
    return Claim(
        match.pool_key,
        match.specificity,
        match.source_index,
        match.referrer_domain,
        match.trigger,
        facts,
    )


_DECISION_FIELDS: Final = len(Decision._fields)
_NUMBER_FIELD: Final = Decision._fields.index("number")
_POOL_KEY_FIELD: Final = Decision._fields.index("pool_key")


def _skew(value: object) -> float:
    """``max_clock_skew`` checked: seconds >= 0 (``math.inf``: no bound)."""
    if type(value) is bool or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError([Problem("max_clock_skew", f"{value!r} is not a number of seconds >= 0")])
    return float(value)


def _plain_text(value: object) -> str | None:
    """``value`` as a plain ``str``: itself, a copy of a ``str`` subclass, else ``None``.

    A subclass is copied by ``str``'s own method, so none of its methods run.
    """
    if type(value) is str:
        return value
    if value is None or not issubclass(type(value), str):
        return None
    try:
        return str.__str__(cast(str, value))
    except Exception:  # a class that only claims to be a str
        return None


def _takes_client(store: object) -> bool:
    """Whether ``store.visit`` takes a client key (a store written before the cap may not)."""
    if isinstance(store, MemoryStore):
        return True
    try:
        inspect.signature(store.visit).bind("visitor", 0.0, None, "client")  # type: ignore[attr-defined]
    except TypeError:
        return False
    except Exception:  # no signature to read (a builtin, a compiled method): assume it does
        return True
    return True


def _client_key(value: object) -> str | None:
    """``value`` as a client key, or ``None`` when it is not one (see ``Engine.visit``)."""
    text = _plain_text(value)
    if text is None or not 0 < len(text) <= MAX_CLIENT_KEY:
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no store could hold it
            return None
    return text


def _visitor_id(value: object) -> str:
    """``value`` as a visitor id, or ``''`` when it is not a valid one (see ``Engine.visit``)."""
    text = _plain_text(value)
    if text is None or not 0 < len(text) <= MAX_VISITOR_ID:
        return ""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no store could hold it
            return ""
    return text


def _real_seconds(at: object) -> float | None:
    """``at`` in float seconds when it is a finite number or an aware datetime, else ``None``.

    ``bool`` is not a time. Subclasses of ``int``, ``float`` and ``datetime`` are
    read through the base type's own methods (a ``datetime``'s ``tzinfo`` is
    consulted for its offset, inside a guard).
    """
    kind = type(at)
    try:
        if kind is float:
            value = cast(float, at)
        elif kind is bool:
            return None
        elif kind is int:
            value = float(cast(int, at))
        elif issubclass(kind, float):
            value = float.__float__(cast(float, at))
        elif issubclass(kind, int):
            value = int.__float__(cast(int, at))
        elif issubclass(kind, datetime):
            moment = cast(datetime, at)
            if datetime.utcoffset(moment) is None:  # naive: no way to tell which instant
                return None
            value = datetime.timestamp(moment)
        else:
            return None
    except Exception:  # an int too large for a float, a tzinfo that fails
        return None
    return value if value - value == 0.0 else None


_SIP_SCHEMES: Final = ("sip", "sips")


def _dialled_forms(text: str) -> list[str]:
    """The number texts to try for a dialled ``text``: a ``tel:``/``sip:``/``sips:`` URI's
    number (with a ``phone-context`` prefix first, for a local number), else ``text``."""
    scheme, colon, rest = text.strip().partition(":")
    scheme = scheme.strip().lower()
    if not colon or (scheme != "tel" and scheme not in _SIP_SCHEMES):
        return [text]
    if rest.startswith("//"):
        rest = rest[2:]
    rest = rest.partition("?")[0]  # headers
    if scheme in _SIP_SCHEMES:
        rest = rest.partition("@")[0].partition(":")[0]  # the user part, without a password
    number, _, parameters = rest.partition(";")
    number = unquote(number).strip()
    forms = [number]
    if not number.startswith("+"):
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            context = unquote(value).strip()
            if name.strip().lower() == "phone-context" and context.startswith("+"):
                forms.insert(0, context + number)
                break
    return forms


def _resolve_options(
    pools: list[AnyPool], keys: list[str], options: Mapping[str, PoolOptions]
) -> dict[str, PoolOptions]:
    """Options by pool key, from a mapping keyed by pool key or name."""
    by_name: dict[str, list[str]] = {}
    for key, pool in zip(keys, pools, strict=True):
        by_name.setdefault(pool.name, []).append(key)
    resolved: dict[str, PoolOptions] = {}
    problems: list[Problem] = []
    for name, value in options.items():
        where = f"options[{name!r}]"
        if not isinstance(value, PoolOptions):
            problems.append(Problem(where, "must be a PoolOptions"))
            continue
        if name in keys:
            key = name
        elif len(by_name.get(name, ())) == 1:
            key = by_name[name][0]
        elif name in by_name:
            problems.append(Problem(where, "several pools have this name; use the pool id"))
            continue
        else:
            problems.append(Problem(where, "names no pool (use a pool id or name)"))
            continue
        if key in resolved:
            problems.append(Problem(where, f"pool {key!r} is given options twice"))
            continue
        if value.priority is not None and not isinstance(value.priority, int):
            problems.append(Problem(f"{where}.priority", "must be a whole number"))
        resolved[key] = value
    if problems:
        raise ConfigError(problems)
    return resolved


def _terms(key: str, pool: AnyPool, own: PoolOptions, defaults: PoolOptions) -> PoolTerms:
    """The lease terms of one pool: its options over the engine-wide defaults."""
    where = f"options[{key!r}]"
    problems: list[Problem] = []
    cooldown = own.cooldown if own.cooldown is not None else defaults.cooldown
    try:
        cooldown_minutes = float(cooldown if cooldown is not None else 0.0)
    except (TypeError, ValueError):
        cooldown_minutes = math.nan
    if not (math.isfinite(cooldown_minutes) and cooldown_minutes >= 0):
        problems.append(
            Problem(f"{where}.cooldown", f"{cooldown!r} is not a number of minutes >= 0")
        )
    overflow = own.overflow_number if own.overflow_number is not None else defaults.overflow_number
    overflow_e164: str | None = None
    if overflow is not None:
        try:
            parsed = parse_number(overflow, pool.country)
        except (ValueError, AttributeError) as exc:
            problems.append(Problem(f"{where}.overflow_number", f"{overflow!r}: {exc}"))
        else:
            if phonenumbers.is_valid_number(parsed):
                overflow_e164 = e164(parsed)
            else:
                reason = f"{overflow!r} is not a valid, dialable phone number"
                problems.append(Problem(f"{where}.overflow_number", reason))
    cap = own.client_cap if own.client_cap is not None else defaults.client_cap
    if type(cap) is not int or cap < 0:
        problems.append(Problem(f"{where}.client_cap", f"{cap!r} is not a whole number >= 0"))
    if problems:
        raise ConfigError(problems)
    numbers = pool.e164_numbers if isinstance(pool, NumberPool) else ()
    return PoolTerms(
        key=key,
        name=pool.name,
        numbers=numbers,
        hold_seconds=minutes(pool.match_period),
        cooldown_seconds=minutes(cooldown_minutes),
        policy=own.policy or defaults.policy or "fallback",
        overflow_number=overflow_e164,
        touch=own.touch or defaults.touch or "first_touch",
        client_cap=cap if cap is not None else 0,
    )
