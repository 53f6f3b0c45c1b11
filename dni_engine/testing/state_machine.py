"""A hypothesis state machine that checks an :class:`~dni_engine.engine.Engine` against a model.

:func:`make_engine_machine` builds a ``RuleBasedStateMachine`` for any store:
it sets up four pools with drawn lease options (policy, cooldown, touch mode),
then drives the engine with visits, clock jumps, ended sessions and calls
(live and after the fact). A plain model, written straight from the lease
rules with lists and loops, predicts every decision and attribution:

* a number is never leased to two live sessions unless the decision names the
  displaced lease, and a new lease takes a number free longest;
* a returning visitor inside the hold keeps their lease (or, under last touch,
  switches to a more specific pool with a free number);
* an exhausted pool applies its policy exactly;
* a first visit from a client (a key drawn per visit, or none) that holds the
  pool's ``client_cap`` live leases is ``capped``, counted from the model's
  own live leases, so a store whose per-client counts drift is caught;
* every call inside a lease window is attributed to the latest such lease,
  with every candidate listed and confidence ``1/n``;
* the engine's counts add up: new + kept + overflow + recycled + capped +
  no_match + bot equals the visits, and each pool's counters equal the model's.

:func:`check_lease_history` checks the same lease invariants after the fact on
a log of decisions and leases, e.g. after a multi-threaded run.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dni_engine.extras import MissingExtra

try:
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
except ImportError as exc:
    raise MissingExtra("dni_engine.testing.state_machine", "testing", exc.name) from exc

from dni_engine.bots import is_bot
from dni_engine.engine import Engine, PoolOptions
from dni_engine.leases import (
    POLICIES,
    TOUCH_MODES,
    Decision,
    EndReason,
    Lease,
    Policy,
    SimulatedClock,
    TouchMode,
    may_switch,
)
from dni_engine.schema import AnyPool, NumberPoolRequest
from dni_engine.stores.base import Store
from dni_engine.testing.pools import build_pool, source

__all__ = ["LeaseModel", "check_lease_history", "make_engine_machine", "model_pools"]

HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
START = 1_700_000_000.0

URLS = (
    "https://shop.example/",
    "https://shop.example/?gclid=abc",
    "https://shop.example/?utm_source=news",
    "https://shop.example/?gclid=abc&utm_source=news",
)
REFERRERS = (None, "https://www.google.com/", "https://l.facebook.com/", "https://www.bing.com/")
AGENTS = (HUMAN, HUMAN, HUMAN, CRAWLER, "")
VISITORS = tuple(f"visitor-{i}" for i in range(10))
# Clock jumps: mostly short (sessions overlap and pools run out), some across a
# hold (5 or 10 minutes) or a cooldown (2 minutes), exactly at and either side.
STEPS = (1.0, 1.0, 10.0, 30.0, 30.0, 119.0, 120.0, 299.0, 300.0, 599.0, 600.0, 601.0, 1800.0)
CALL_DELAYS = (0.0, 1.0, 60.0, 300.0, 700.0, 3000.0)
COOLDOWNS = (0.0, 2.0)  # minutes
CLIENTS = ("client-a", "client-a", "client-b", None)  # client keys; None: no cap applies
CAPS = (1, 2, 0)  # client_cap of every pool (0: none)
ROUTES = {"route_type": "Basic", "route": {"termination_number": "+441274792823"}}


def model_pools() -> list[AnyPool]:
    """The four pools the machine runs: ads, social, brand (numbers) and a number-less request.

    ``ads`` (Google + ``gclid``, 2 numbers, 10 min), ``social`` (Facebook, 1
    number, 5 min), ``brand`` (Any + ``utm_source``, 3 numbers, 10 min) and
    ``bing`` (a request: Bing, no numbers yet).
    """
    request = NumberPoolRequest.model_validate(
        {
            "name": "bing",
            "match_period": 10,
            "quantity": 2,
            "phone_number_request": {
                "number_type": "international",
                "match_type": "national",
                "iso_country": "GB",
            },
            "replacement_configuration": {
                "numbers_to_replace": ["01179460000"],
                "tracking_sources": [{"referrer_domain": "Bing"}],
            },
            "call_routes": {
                "route_type": "Basic",
                "route": {"termination_number": "+441274792823"},
            },
        }
    )
    return [
        build_pool(
            id=1,
            name="ads",
            match_period=10,
            numbers=["+441174090101", "+441174090102"],
            sources=[source("Google", ["gclid=*"])],
        ),
        build_pool(
            id=2,
            name="social",
            match_period=5,
            numbers=["+441174090201"],
            sources=[source("Facebook")],
        ),
        build_pool(
            id=3,
            name="brand",
            match_period=10,
            numbers=["+441174090301", "+441174090302", "+441174090303"],
            sources=[source("Any", ["utm_source=*"])],
        ),
        request,
    ]


OVERFLOW_NUMBERS = {
    "1": "+441174090901",
    "2": "+441174090902",
    "3": "+441174090903",
    "bing": "+441174090904",
}


@dataclass
class _ModelLease:
    lease_id: str
    pool_key: str
    number: str
    visitor_id: str
    started: float
    last_activity: float
    expires: float
    specificity: int
    referrer_domain: str
    client: str | None = None
    ended: float | None = None
    reason: EndReason | None = None


@dataclass
class _ModelPool:
    key: str
    numbers: tuple[str, ...]
    hold: float
    cooldown: float
    policy: Policy
    touch: TouchMode
    overflow_number: str | None
    cap: int = 0
    free_since: dict[str, float] = field(default_factory=dict)
    holder: dict[str, _ModelLease] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class LeaseModel:
    """The lease rules, written plainly: lists, loops and no cleverness."""

    def __init__(self, engine: Engine) -> None:
        self.pools: dict[str, _ModelPool] = {}
        for key, terms in engine.terms.items():
            self.pools[key] = _ModelPool(
                key,
                terms.numbers,
                terms.hold_seconds,
                terms.cooldown_seconds,
                terms.policy,
                terms.touch,
                terms.overflow_number if terms.policy == "overflow" else None,
                terms.client_cap,
                free_since=dict.fromkeys(terms.numbers, -math.inf),
            )
        self.leases: list[_ModelLease] = []
        self.visitor: dict[str, _ModelLease] = {}
        self.outcomes: Counter[str] = Counter()

    def expire(self, now: float) -> None:
        """End every lease whose hold ran out by ``now``; its number is free from then."""
        for pool in self.pools.values():
            for lease in list(pool.holder.values()):
                if lease.expires <= now:
                    self.end(lease, lease.expires, "expired")

    def end(self, lease: _ModelLease, at: float, reason: EndReason) -> None:
        pool = self.pools[lease.pool_key]
        lease.ended, lease.reason = at, reason
        del pool.holder[lease.number]
        if reason != "displaced":
            pool.free_since[lease.number] = at

    def live_lease(self, visitor_id: str, now: float) -> _ModelLease | None:
        lease = self.visitor.get(visitor_id)
        if lease is None or lease.ended is not None or now >= lease.expires:
            return None
        return lease

    def available(self, pool: _ModelPool, now: float) -> list[str]:
        """Free numbers out of their cooldown, free longest first (ties in pool order)."""
        free = [n for n in pool.numbers if n not in pool.holder]
        ready = [n for n in free if pool.free_since[n] + pool.cooldown <= now]
        return sorted(ready, key=lambda n: pool.free_since[n])

    def capped(self, pool: _ModelPool, client: str | None) -> bool:
        """Whether ``client`` holds ``pool``'s cap of live leases (counted afresh)."""
        if client is None or not pool.cap:
            return False
        return sum(1 for x in pool.holder.values() if x.client == client) >= pool.cap

    def longest_free(self, numbers: list[str], pool: _ModelPool) -> set[str]:
        """Every number tied for free longest: the engine may take any of them."""
        if not numbers:
            return set()
        oldest = min(pool.free_since[n] for n in numbers)
        return {n for n in numbers if pool.free_since[n] == oldest}

    def open(
        self,
        pool: _ModelPool,
        decision: Decision,
        now: float,
        match: Any,
        client: str | None = None,
    ) -> None:
        assert decision.lease_id is not None
        assert decision.number is not None
        lease = _ModelLease(
            decision.lease_id,
            pool.key,
            decision.number,
            decision.visitor_id,
            now,
            now,
            now + pool.hold,
            match.specificity,
            match.referrer_domain,
            client,
        )
        assert decision.started == now, (decision, now)
        assert decision.expires == lease.expires, (decision, lease)
        assert decision.number not in pool.holder, f"{decision.number} is already held"
        pool.holder[lease.number] = lease
        self.visitor[lease.visitor_id] = lease
        self.leases.append(lease)

    def candidates(self, number: str, at: float) -> list[_ModelLease]:
        """Leases on ``number`` whose window holds ``at``, latest started first."""
        found = [
            lease
            for lease in self.leases
            if lease.number == number and lease.started <= at < lease.expires
        ]
        return list(reversed(found))  # the model's list is in start order already


def make_engine_machine(
    store_factory: Callable[[], Store], *, name: str = "EngineMachine"
) -> type[RuleBasedStateMachine]:
    """A state machine class driving an engine on a fresh store from ``store_factory``.

    Run it with ``hypothesis.stateful.run_state_machine_as_test(cls, settings=...)``
    or through ``cls.TestCase``.
    """

    class EngineMachine(RuleBasedStateMachine):
        engine: Engine
        model: LeaseModel
        clock: SimulatedClock

        @initialize(
            # Recycle first: it is the policy with the most to check, and hypothesis
            # draws early elements more often.
            policies=st.lists(st.sampled_from(POLICIES[::-1]), min_size=4, max_size=4),
            touches=st.lists(st.sampled_from(TOUCH_MODES), min_size=4, max_size=4),
            cooldown=st.sampled_from(COOLDOWNS),
            cap=st.sampled_from(CAPS),
        )
        def build(
            self, policies: list[Policy], touches: list[TouchMode], cooldown: float, cap: int
        ) -> None:
            self.clock = SimulatedClock(START)
            pools = model_pools()
            keys = ["1", "2", "3", "bing"]
            options = {
                key: PoolOptions(
                    policy=policy,
                    touch=touch,
                    overflow_number=OVERFLOW_NUMBERS[key] if policy == "overflow" else None,
                )
                for key, policy, touch in zip(keys, policies, touches, strict=True)
            }
            self.engine = Engine(
                pools,
                store_factory(),
                cooldown=cooldown,
                options=options,
                clock=self.clock,
                client_cap=cap,
            )
            self.model = LeaseModel(self.engine)

        @rule(
            visitor=st.sampled_from(VISITORS),
            url=st.sampled_from(URLS),
            referrer=st.sampled_from(REFERRERS),
            user_agent=st.sampled_from(AGENTS),
            client=st.sampled_from(CLIENTS),
        )
        def visit(
            self,
            visitor: str,
            url: str,
            referrer: str | None,
            user_agent: str,
            client: str | None = None,
        ) -> None:
            decision = self.engine.visit(
                visitor, url=url, referrer=referrer, user_agent=user_agent, client=client
            )
            self.predict(decision, url, referrer, user_agent, client)
            if decision.lease_id is not None and decision.number is not None:
                # A call right now reaches this lease (after a recycle: ambiguously).
                self.check_call(decision.number, 0.0)

        @rule(
            first=st.integers(0, len(VISITORS) - 1),
            count=st.integers(2, 5),
            url=st.sampled_from(URLS),
            referrer=st.sampled_from(REFERRERS),
            client=st.sampled_from(CLIENTS),
        )
        def crowd(
            self, first: int, count: int, url: str, referrer: str | None, client: str | None
        ) -> None:
            """Several visitors arrive together from one source (and client): pools run out."""
            for i in range(count):
                visitor = VISITORS[(first + i) % len(VISITORS)]
                self.visit(visitor, url, referrer, HUMAN, client)

        def predict(
            self,
            decision: Decision,
            url: str,
            referrer: str | None,
            user_agent: str,
            client: str | None = None,
        ) -> None:
            """Check ``decision`` against the model, and move the model on by it."""
            now = self.clock()
            visitor = decision.visitor_id
            model = self.model
            model.outcomes[decision.outcome] += 1
            assert decision.at == now
            assert decision.visitor_id == visitor
            model.expire(now)
            if is_bot(user_agent):
                assert decision.outcome == "bot", decision
                return
            match = self.engine.rules.match(url, referrer, user_agent, check_bots=False)
            held = model.live_lease(visitor, now)
            if held is not None:
                self.returning(decision, held, match, now, client)
                return
            if match is None:
                assert decision.outcome == "no_match", decision
                assert decision.number is None
                return
            pool = model.pools[match.pool_key]
            assert (decision.pool_key, decision.source_index) == (
                match.pool_key,
                match.source_index,
            )
            if model.capped(pool, client):
                assert decision.outcome == "capped", (decision, client)
                assert (decision.number, decision.lease_id, decision.displaced) == (None,) * 3
                pool.counts["capped"] += 1
                return
            ready = model.available(pool, now)
            if ready:
                assert decision.outcome == "new", (decision, ready)
                assert decision.number in model.longest_free(ready, pool), (decision, ready)
                model.open(pool, decision, now, match, client)
                pool.counts["new"] += 1
                return
            self.exhausted(pool, decision, match, now, client)

        def returning(
            self,
            decision: Decision,
            held: _ModelLease,
            match: Any,
            now: float,
            client: str | None = None,
        ) -> None:
            model = self.model
            pool = model.pools[held.pool_key]
            target = model.pools.get(match.pool_key) if match is not None else None
            if (
                target is not None
                and may_switch(
                    pool.touch, held.pool_key, held.specificity, held.referrer_domain, match
                )
                and model.available(target, now)
                and not model.capped(target, client)
            ):
                assert decision.outcome == "new", (decision, held)
                assert decision.switched_from == held.lease_id
                assert decision.number in model.longest_free(model.available(target, now), target)
                model.end(held, now, "switched")
                pool.counts["switched_out"] += 1
                target.counts["new"] += 1
                target.counts["switched_in"] += 1
                model.open(target, decision, now, match, client)
                return
            assert decision.outcome == "kept", (decision, held)
            assert (decision.lease_id, decision.number, decision.pool_key) == (
                held.lease_id,
                held.number,
                held.pool_key,
            )
            held.last_activity = now
            held.expires = now + pool.hold
            assert decision.expires == held.expires
            pool.counts["kept"] += 1

        def exhausted(
            self,
            pool: _ModelPool,
            decision: Decision,
            match: Any,
            now: float,
            client: str | None = None,
        ) -> None:
            model = self.model
            if pool.policy == "recycle":
                cooling = [n for n in pool.numbers if n not in pool.holder]
                if cooling:
                    assert decision.outcome == "recycled", decision
                    assert decision.displaced is None
                    assert decision.number in model.longest_free(cooling, pool)
                    pool.counts["recycled"] += 1
                    pool.counts["cooldowns_cut"] += 1
                    model.open(pool, decision, now, match, client)
                    return
                if pool.holder:
                    idle = min(lease.expires for lease in pool.holder.values())
                    assert decision.outcome == "recycled", decision
                    victim = next(
                        (x for x in pool.holder.values() if x.lease_id == decision.displaced),
                        None,
                    )
                    assert victim is not None, (decision, pool.holder)
                    assert victim.expires == idle, "the displaced lease was not the idlest"
                    assert decision.number == victim.number
                    model.end(victim, now, "displaced")
                    pool.counts["recycled"] += 1
                    pool.counts["displacements"] += 1
                    model.open(pool, decision, now, match, client)
                    return
            assert decision.outcome == "overflow", decision
            assert decision.number == pool.overflow_number
            assert decision.lease_id is None
            pool.counts["overflows"] += 1

        @rule(seconds=st.sampled_from(STEPS))
        def wait(self, seconds: float) -> None:
            self.clock.advance(seconds)

        @rule(visitor=st.sampled_from(VISITORS))
        def end_session(self, visitor: str) -> None:
            now = self.clock()
            self.model.expire(now)
            held = self.model.live_lease(visitor, now)
            ended = self.engine.end_session(visitor)
            if held is None:
                assert ended is None
                return
            assert ended is not None
            assert (ended.lease_id, ended.ended, ended.end_reason) == (
                held.lease_id,
                now,
                "released",
            )
            self.model.end(held, now, "released")
            self.model.pools[held.pool_key].counts["released"] += 1

        @rule(data=st.data(), delay=st.sampled_from(CALL_DELAYS))
        def call(self, data: st.DataObject, delay: float) -> None:
            numbers = sorted(
                {n for pool in self.model.pools.values() for n in pool.numbers}
                | set(OVERFLOW_NUMBERS.values())
            )
            self.check_call(data.draw(st.sampled_from(numbers), label="number"), delay)

        @rule(delay=st.sampled_from(CALL_DELAYS))
        def call_latest(self, delay: float) -> None:
            """A call to the number leased last: right after a recycle this is ambiguous."""
            if self.model.leases:
                self.check_call(self.model.leases[-1].number, delay)

        def check_call(self, number: str, delay: float) -> None:
            at = self.clock() - delay
            result = self.engine.attribute_call(number, at=at)
            assert (result.number, result.at) == (number, at)
            owner = next(
                (p for p in self.model.pools.values() if number in p.numbers),
                None,
            )
            if owner is None:
                users = [p.key for p in self.model.pools.values() if p.overflow_number == number]
                configured = [k for k, n in OVERFLOW_NUMBERS.items() if n == number]
                assert result.lease is None
                if configured and configured[0] in users:
                    assert (result.kind, result.pool_key) == ("overflow", configured[0])
                else:
                    assert result.kind == "unknown", result
                return
            expected = self.model.candidates(number, at)
            assert result.pool_key == owner.key
            if not expected:
                assert (result.kind, result.lease, result.confidence) == ("pool", None, 0.0)
                return
            assert result.kind == "lease", (result, expected)
            assert result.lease is not None
            assert result.lease.lease_id == expected[0].lease_id
            assert [c.lease_id for c in result.candidates] == [x.lease_id for x in expected]
            assert result.confidence == 1.0 / len(expected)
            assert result.lease.visitor_id == expected[0].visitor_id

        @invariant()
        def counts_add_up(self) -> None:
            if not hasattr(self, "engine"):
                return
            now = self.clock()
            self.model.expire(now)
            stats = self.engine.stats()
            assert stats.visits == sum(self.model.outcomes.values())
            assert {k: v for k, v in stats.outcomes.items() if v} == +self.model.outcomes
            assert sum(stats.outcomes[o] for o in stats.outcomes) == stats.visits
            for pool_stats in stats.pools:
                pool = self.model.pools[pool_stats.pool_key]
                counts = pool.counts
                assert pool_stats.live == len(pool.holder)
                cooling = sum(
                    1
                    for n in pool.numbers
                    if n not in pool.holder and pool.free_since[n] + pool.cooldown > now
                )
                assert pool_stats.cooling == cooling
                assert (
                    pool_stats.new,
                    pool_stats.kept,
                    pool_stats.overflows,
                    pool_stats.recycled,
                    pool_stats.displacements,
                    pool_stats.cooldowns_cut,
                    pool_stats.switched_in,
                    pool_stats.switched_out,
                    pool_stats.released,
                    pool_stats.capped,
                ) == (
                    counts["new"],
                    counts["kept"],
                    counts["overflows"],
                    counts["recycled"],
                    counts["displacements"],
                    counts["cooldowns_cut"],
                    counts["switched_in"],
                    counts["switched_out"],
                    counts["released"],
                    counts["capped"],
                ), (pool_stats, counts)

        @invariant()
        def one_live_lease_per_number(self) -> None:
            if not hasattr(self, "engine"):
                return
            now = self.clock()
            live = [
                lease
                for lease in self.engine.leases(since=now)
                if lease.ended is None and lease.started <= now
            ]
            assert len({lease.number for lease in live}) == len(live), live
            assert len({lease.visitor_id for lease in live}) == len(live), live

    EngineMachine.__name__ = EngineMachine.__qualname__ = name
    return EngineMachine


def check_lease_history(
    decisions: Iterable[Decision], leases: Iterable[Lease], cooldown: float = 0.0
) -> None:
    """Assert the lease invariants on a finished run (any order of decisions, any threads).

    ``leases`` is the store's lease log (it must still hold every lease the
    decisions name). Checks: each lease was opened by exactly one ``new`` or
    ``recycled`` decision and extended only by ``kept`` decisions of the same
    visitor and number; its ``last_activity`` is its latest visit; on each
    number leases follow each other without overlap; a displaced lease names
    the lease that took its number, and that lease's decision names it; a
    number is reused inside its cooldown only by a ``recycled`` decision.
    Raises ``AssertionError`` on the first violation.
    """
    by_id = {lease.lease_id: lease for lease in leases}
    opened: dict[str, Decision] = {}
    latest: dict[str, float] = {}
    for decision in decisions:
        if decision.lease_id is None:
            assert decision.outcome in (
                "overflow",
                "capped",
                "no_match",
                "bot",
                "store_unavailable",
                "invalid_visitor",
            )
            continue
        lease = by_id.get(decision.lease_id)
        assert lease is not None, f"lease {decision.lease_id} is missing from the log"
        assert (decision.visitor_id, decision.number, decision.pool_key) == (
            lease.visitor_id,
            lease.number,
            lease.pool_key,
        ), (decision, lease)
        latest[lease.lease_id] = max(latest.get(lease.lease_id, -math.inf), decision.at)
        if decision.outcome in ("new", "recycled"):
            assert lease.lease_id not in opened, f"lease {lease.lease_id} was opened twice"
            opened[lease.lease_id] = decision
        else:
            assert decision.outcome == "kept", decision
    for lease_id, last in latest.items():
        assert by_id[lease_id].last_activity == last, (by_id[lease_id], last)
        assert lease_id in opened, f"lease {lease_id} has no opening decision"
    chains: dict[str, list[Lease]] = defaultdict(list)
    for lease in by_id.values():
        if lease.lease_id in opened:
            chains[lease.number].append(lease)
    for chain in chains.values():
        for before, after in itertools.pairwise(_in_order(chain)):
            assert before.end <= after.started, (before, after)
            decision = opened[after.lease_id]
            if before.end_reason == "displaced":
                assert before.displaced_by == after.lease_id, (before, after)
                assert decision.displaced == before.lease_id, (before, decision)
            elif after.started < before.end + cooldown:
                assert decision.outcome == "recycled", (before, decision)
    live = [lease for lease in by_id.values() if lease.ended is None]
    assert len({lease.number for lease in live}) == len(live)
    assert len({lease.visitor_id for lease in live}) == len(live)


def _in_order(chain: list[Lease]) -> list[Lease]:
    """Leases of one number in the order they held it.

    By start time; leases that started at the same instant (each displaced the
    moment it began) are put in the order their ``displaced_by`` links give.
    """
    chain = sorted(chain, key=lambda lease: (lease.started, lease.end))
    ordered: list[Lease] = []
    index = 0
    while index < len(chain):
        end = index + 1
        while end < len(chain) and chain[end].started == chain[index].started:
            end += 1
        group = chain[index:end]
        index = end
        targets = {x.displaced_by for x in group}
        by_id = {x.lease_id: x for x in group}
        current: Lease | None = next((x for x in group if x.lease_id not in targets), group[0])
        while current is not None and current.lease_id in by_id:
            ordered.append(by_id.pop(current.lease_id))
            current = by_id.get(current.displaced_by or "")
            if current is None and by_id:
                current = min(by_id.values(), key=lambda lease: lease.end)
    return ordered
