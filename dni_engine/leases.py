"""Leases: who holds which pool number, for how long, and who a call belongs to.

This module is the vocabulary and the rules of number leasing; the state lives
in a :class:`~dni_engine.stores.base.Store`.

**Time** is a ``float`` number of seconds everywhere: Unix epoch seconds from
the default clock (:func:`system_clock`), or any simulated timeline from a
:class:`SimulatedClock`. Minutes from the pool JSON (``match_period``,
``cooldown``) are turned into seconds once, when a pool is registered, so the
per-visit path does float additions and comparisons only. Pass
``datetime.timestamp()`` where you hold a ``datetime``.

**A lease** is one visitor's hold on one number. It starts with the visit that
took the number and is live while ``now < last_activity + hold`` (the sliding
``match_period``); each visit in that window moves ``last_activity`` forward. It
ends when the hold runs out (``expired``), when the exhaustion policy
``recycle`` hands the number to someone else (``displaced``), when a last-touch
match moves the visitor to another pool (``switched``), or when the host ends it
(``released``). Intervals are half-open: a lease covers ``started <= t < end``.

**When a pool is exhausted** (every number held by a live lease or cooling
down), its policy decides:

* ``fallback`` (default): no number; the page keeps its own numbers; an overflow
  is counted.
* ``overflow``: the pool's one designated overflow number; an overflow is counted
  and calls to that number are attributed to the pool only.
* ``recycle``: the number idle longest. A number still cooling down has been idle
  longer than any live lease (its hold already ran out), so it goes first and
  its cooldown is cut short; otherwise the live lease idle longest is
  *displaced*, and the decision names it. A pool with no numbers at all falls
  back to ``fallback``.

**Attribution.** A lease's *window* runs from ``started`` to
``last_activity + hold`` (its ``expires``) even when it was displaced or
switched earlier, because its visitor may still have the number on screen. A
call to a number at ``t`` is attributed by :func:`attribution_from`: the
leases whose window contains ``t`` are the candidates; the one that started
last (the number's holder at ``t``) is returned, with confidence
``1 / len(candidates)``. No candidate: the call belongs to the pool only.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, Protocol, cast

from dni_engine._frozen import Frozen
from dni_engine.errors import ConfigError, Problem

__all__ = [
    "DEFAULT_CLIENT_CAP",
    "MAX_CLOCK_SKEW",
    "OUTCOMES",
    "POLICIES",
    "SECONDS_PER_MINUTE",
    "TOUCH_MODES",
    "Attribution",
    "AttributionKind",
    "Claim",
    "ClaimLike",
    "Clock",
    "Decision",
    "EndReason",
    "ExhaustedAction",
    "Facts",
    "Lease",
    "Outcome",
    "Policy",
    "PoolStats",
    "PoolTerms",
    "SimulatedClock",
    "TouchMode",
    "attribution_from",
    "claim_facts",
    "exhausted_action",
    "may_switch",
    "minutes",
    "system_clock",
]

Policy = Literal["fallback", "overflow", "recycle"]
TouchMode = Literal["first_touch", "last_touch"]
Outcome = Literal[
    "new",
    "kept",
    "overflow",
    "recycled",
    "capped",
    "no_match",
    "bot",
    "store_unavailable",
    "invalid_visitor",
]
EndReason = Literal["expired", "displaced", "switched", "released"]
AttributionKind = Literal["lease", "pool", "overflow", "unknown", "store_unavailable"]

POLICIES: Final[tuple[Policy, ...]] = ("fallback", "overflow", "recycle")
TOUCH_MODES: Final[tuple[TouchMode, ...]] = ("first_touch", "last_touch")
OUTCOMES: Final[tuple[Outcome, ...]] = (
    "new",
    "kept",
    "overflow",
    "recycled",
    "capped",
    "no_match",
    "bot",
    "store_unavailable",
    "invalid_visitor",
)
SECONDS_PER_MINUTE: Final = 60.0
DEFAULT_CLIENT_CAP: Final = 3
"""Live leases one client may hold in each pool by default (``Engine(client_cap=)``)."""
MAX_CLOCK_SKEW: Final = 60.0
"""Seconds a time may run ahead of the clock before it counts as poisoned (not real)."""

# The stacklevel that blames a deprecated property's caller: a compiled property
# runs in no frame of its own, so there the caller's frame is the first one.
_CALLER: Final = 2 if __file__.endswith(".py") else 1
# Whether this module is the compiled one: it then builds Facts and Lease by
# setting their native fields (_new_facts, _new_lease).
_COMPILED: Final = not __file__.endswith(".py")

Clock = Callable[[], float]
"""Anything that returns the current time in float seconds."""


def system_clock() -> float:
    """The wall clock, in Unix epoch seconds (the default clock)."""
    return time.time()


class SimulatedClock:
    """A clock that moves only when told to, for tests and simulations.

    Call it to read the time; :meth:`advance` and :meth:`set` move it. It never
    goes backwards. Safe to share between threads.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if not seconds >= 0:
            raise ValueError(f"a clock cannot move by {seconds!r} seconds; use a value >= 0")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> float:
        """Jump to ``now`` (not earlier than the current time) and return it."""
        with self._lock:
            if not now >= self._now:
                raise ValueError(f"a clock cannot go back from {self._now} to {now!r}")
            self._now = float(now)
            return self._now

    def __repr__(self) -> str:
        return f"SimulatedClock({self._now!r})"


# ---- what a store is told -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolTerms(Frozen):
    """How one pool leases its numbers; registered once with a store.

    ``key`` identifies the pool (``str(pool.id)``, or the name of a pool that
    is only a request); ``numbers`` are its E.164 numbers in the order the API
    listed them (the tie-break among numbers free equally long);
    ``hold_seconds`` is ``match_period`` in seconds; ``cooldown_seconds`` keeps
    a released number out of circulation; ``overflow_number`` is shown when the
    policy is ``overflow`` and the pool is exhausted; ``touch`` says whether a
    live lease in this pool yields to a more specific match in another pool;
    ``client_cap`` is how many live leases of the pool one client (a visit's
    ``client`` key, see :meth:`Store.visit <dni_engine.stores.base.Store.visit>`)
    may hold at once (``0``: no cap).

    Raises :class:`ConfigError` naming the field at fault.
    """

    key: str
    name: str
    numbers: tuple[str, ...]
    hold_seconds: float
    cooldown_seconds: float = 0.0
    policy: Policy = "fallback"
    overflow_number: str | None = None
    touch: TouchMode = "first_touch"
    client_cap: int = 0

    def __post_init__(self) -> None:
        where = f"pool {self.key!r}"
        problems: list[Problem] = []
        if not (isinstance(self.key, str) and self.key):
            problems.append(Problem(f"{where}.key", "must be a non-empty string"))
        if not (math.isfinite(self.hold_seconds) and self.hold_seconds > 0):
            problems.append(Problem(f"{where}.hold_seconds", "must be a positive number"))
        if not (math.isfinite(self.cooldown_seconds) and self.cooldown_seconds >= 0):
            problems.append(Problem(f"{where}.cooldown", "must be a number >= 0"))
        if self.policy not in POLICIES:
            problems.append(
                Problem(f"{where}.policy", f"{self.policy!r} is not one of {', '.join(POLICIES)}")
            )
        if self.touch not in TOUCH_MODES:
            problems.append(
                Problem(f"{where}.touch", f"{self.touch!r} is not one of {', '.join(TOUCH_MODES)}")
            )
        cap = self.client_cap
        if type(cap) is not int or cap < 0:
            problems.append(Problem(f"{where}.client_cap", "must be a whole number >= 0"))
        if self.policy == "overflow" and not self.overflow_number:
            problems.append(
                Problem(f"{where}.overflow_number", "policy 'overflow' needs an overflow number")
            )
        if len(set(self.numbers)) != len(self.numbers):
            problems.append(Problem(f"{where}.numbers", "lists the same number twice"))
        if self.overflow_number is not None and self.overflow_number in self.numbers:
            problems.append(
                Problem(
                    f"{where}.overflow_number",
                    f"{self.overflow_number} is one of the pool's own numbers; "
                    "an overflow number must be tracked apart",
                )
            )
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True, slots=True)
class Facts(Frozen):
    """What a visit's landing said about where it came from: a lease's attribution facts.

    Recorded on a lease when it starts, from the landing URL and HTTP referrer
    of the visit that took it (the first touch), so a call attributed to the
    lease can be tied to the ad click, campaign or search behind it.
    ``landing_url`` is the URL without its fragment, capped (see
    :func:`dni_engine.calls.facts_of`); ``referrer_host`` the referrer's host
    (``''`` for a direct visit) and ``referrer_class`` its catalogue class
    (``'Google'``...; ``''`` when none); ``paid`` whether the landing was
    paid (a paid click id or a paid ``utm_medium``, as matching decides);
    ``click_ids`` and ``utm`` the landing's click ids and ``utm_*`` values as
    ``(name, value)`` pairs, names lower-cased, values as sent (click ids
    are case-sensitive), each bounded in count and length.
    """

    landing_url: str = ""
    referrer_host: str = ""
    referrer_class: str = ""
    paid: bool = False
    click_ids: tuple[tuple[str, str], ...] = ()
    utm: tuple[tuple[str, str], ...] = ()

    def click_id(self, name: str) -> str | None:
        """The value of click id ``name`` (``'gclid'``...), or ``None`` if the landing had none."""
        for key, value in self.click_ids:
            if key == name:
                return value
        return None

    def utm_value(self, name: str) -> str | None:
        """The value of ``utm_<name>`` (``'campaign'`` or ``'utm_campaign'``), or ``None``."""
        wanted = name if name.startswith("utm_") else "utm_" + name
        for key, value in self.utm:
            if key == wanted:
                return value
        return None

    def to_json(self) -> dict[str, object]:
        """The facts as a JSON object (click ids and ``utm`` as objects, in landing order)."""
        return {
            "landing_url": self.landing_url,
            "referrer_host": self.referrer_host,
            "referrer_class": self.referrer_class,
            "paid": self.paid,
            "click_ids": dict(self.click_ids),
            "utm": dict(self.utm),
        }

    @classmethod
    def from_json(cls, obj: object) -> Facts:
        """The facts of a :meth:`to_json` object; ``ValueError`` naming the field at fault."""
        if not isinstance(obj, dict):
            raise ValueError("facts: must be a JSON object")
        data = cast("dict[str, object]", obj)
        texts: list[str] = []
        for name in ("landing_url", "referrer_host", "referrer_class"):
            value = data.get(name, "")
            if not isinstance(value, str):
                raise ValueError(f"facts.{name}: must be a string")
            texts.append(value)
        paid = data.get("paid", False)
        if not isinstance(paid, bool):
            raise ValueError("facts.paid: must be true or false")
        pairs: list[tuple[tuple[str, str], ...]] = []
        for name in ("click_ids", "utm"):
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise ValueError(f"facts.{name}: must be an object of strings")
            items: list[tuple[str, str]] = []
            for key, item in cast("dict[object, object]", value).items():
                if not isinstance(key, str) or not isinstance(item, str):
                    raise ValueError(f"facts.{name}: must be an object of strings")
                items.append((key, item))
            pairs.append(tuple(items))
        return cls(texts[0], texts[1], texts[2], paid, pairs[0], pairs[1])


def _new_facts(
    landing_url: str,
    referrer_host: str,
    referrer_class: str,
    paid: bool,
    click_ids: tuple[tuple[str, str], ...],
    utm: tuple[tuple[str, str], ...],
) -> Facts:
    """``Facts(landing_url, referrer_host, referrer_class, paid, click_ids, utm)``, built faster.

    The same value in every way (fields, equality, hash, repr, immutability).
    The dataclass's own ``__init__`` is interpreted Python even in the compiled
    build, and a frozen one sets each field through ``object.__setattr__``:
    compiled, this sets the fields of a fresh instance directly instead (the
    frozen ``__setattr__`` guards attribute assignment from outside; the
    compiled module writes its native fields). Every field is given, so none
    is left at its default.
    """
    if not _COMPILED:
        return Facts(landing_url, referrer_host, referrer_class, paid, click_ids, utm)
    facts = Facts.__new__(Facts)
    facts.landing_url = landing_url  # type: ignore[misc]
    facts.referrer_host = referrer_host  # type: ignore[misc]
    facts.referrer_class = referrer_class  # type: ignore[misc]
    facts.paid = paid  # type: ignore[misc]
    facts.click_ids = click_ids  # type: ignore[misc]
    facts.utm = utm  # type: ignore[misc]
    return facts


class ClaimLike(Protocol):
    """What a store needs from a match to lease a number (a ``rules.Match`` fits).

    ``specificity`` ranks matches for last-touch switching; the source fields
    (``source_index``, ``referrer_domain``: the source's ``referrer_domain`` as
    configured, ``trigger``) are recorded on the lease so reports can say why
    it was taken.
    """

    @property
    def pool_key(self) -> str: ...
    @property
    def specificity(self) -> int: ...
    @property
    def source_index(self) -> int: ...
    @property
    def referrer_domain(self) -> str: ...
    @property
    def trigger(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Claim(Frozen):
    """A plain :class:`ClaimLike`: a visit's claim on a pool, without a matcher.

    ``referrer_domain`` is the claiming source's ``referrer_domain`` as
    configured (``Any``, ``Google``, a domain), not the visit's HTTP referrer.
    ``facts``, when given, are recorded on the lease the claim starts (a
    store reads them from a :class:`Claim` only; :meth:`Engine.visit
    <dni_engine.engine.Engine.visit>` builds one per matched visit for a store
    other than the embedded one, which it hands the facts apart).
    """

    pool_key: str
    specificity: int = 0
    source_index: int = 0
    referrer_domain: str = "Any"
    trigger: str | None = None
    facts: Facts | None = None

    @property
    def referrer(self) -> str:
        """Deprecated alias of :attr:`referrer_domain`, for one release."""
        warnings.warn(
            "Claim.referrer is deprecated; use referrer_domain",
            DeprecationWarning,
            stacklevel=_CALLER,
        )
        return self.referrer_domain


# ---- what a store answers -----------------------------------------------------


class Decision(NamedTuple):
    """Which number one visit gets, and why: what a page rewrite and a report need.

    ``outcome`` is one of:

    * ``new``: a free number was leased (``switched_from`` names the visitor's
      previous lease when a last-touch match moved them to this pool);
    * ``kept``: the visitor's live lease was extended; the pool, source and
      number are those of the lease (first touch wins);
    * ``overflow``: the pool was exhausted; ``number`` is the overflow number or
      ``None`` (the page keeps its own numbers);
    * ``recycled``: the number idle longest was taken; ``displaced`` names the
      live lease it ended, if any;
    * ``capped``: the visit's client already holds the pool's ``client_cap``
      live leases; ``number`` is ``None`` (the page keeps its own numbers) and
      the pool and source are the claim's;
    * ``no_match``, ``bot``: no pool applies; ``number`` is ``None``;
    * ``store_unavailable``: the store failed; ``number`` is ``None``.
    * ``invalid_visitor``: the visitor id is not one a store can hold (see
      :meth:`~dni_engine.engine.Engine.visit`); no store was asked, ``number``
      is ``None`` and ``visitor_id`` is ``''``.

    ``at`` is the time the store used (a store never lets time go backwards);
    ``started``/``expires`` bound the lease as it stands after this visit;
    ``source_index``, ``referrer_domain`` (as configured, not the visit's HTTP
    referrer) and ``trigger`` name the source the lease was taken by.
    It is a named tuple so that building one per visit stays cheap.
    """

    visitor_id: str
    at: float
    outcome: Outcome
    number: str | None = None
    pool_key: str | None = None
    pool_name: str | None = None
    source_index: int | None = None
    referrer_domain: str | None = None
    trigger: str | None = None
    lease_id: str | None = None
    started: float | None = None
    expires: float | None = None
    displaced: str | None = None
    switched_from: str | None = None

    @property
    def tracked(self) -> bool:
        """True when the visit holds a lease, so its calls can be tied back to it."""
        return self.lease_id is not None

    @property
    def referrer(self) -> str | None:
        """Deprecated alias of :attr:`referrer_domain`, for one release."""
        warnings.warn(
            "Decision.referrer is deprecated; use referrer_domain",
            DeprecationWarning,
            stacklevel=_CALLER,
        )
        return self.referrer_domain


def leased(
    visitor_id: str,
    at: float,
    outcome: Outcome,
    number: str | None,
    pool_key: str,
    pool_name: str,
    source_index: int | None,
    referrer_domain: str | None,
    trigger: str | None,
    lease_id: str | None = None,
    started: float | None = None,
    expires: float | None = None,
    displaced: str | None = None,
    switched_from: str | None = None,
) -> Decision:
    """A :class:`Decision` that names a pool, for a store's per-visit path.

    The same value as calling ``Decision(...)`` with these fields, built
    straight from a tuple: the named tuple's own constructor is a Python
    function, which a compiled build would otherwise call on every visit.
    """
    fields = (
        visitor_id,
        at,
        outcome,
        number,
        pool_key,
        pool_name,
        source_index,
        referrer_domain,
        trigger,
        lease_id,
        started,
        expires,
        displaced,
        switched_from,
    )
    return _new_tuple(Decision, fields)


_new_tuple = tuple.__new__


@dataclass(frozen=True, slots=True)
class Lease(Frozen):
    """A snapshot of one lease, as the lease log and attribution report it.

    ``expires`` is ``last_activity + hold``: the end of the lease's attribution
    window. ``ended`` is when the number left the visitor (``None`` while the
    lease is live) and ``end_reason`` why; ``displaced_by`` names the lease that
    took the number over under ``recycle``. ``specificity``, ``source_index``,
    ``referrer_domain`` (as configured) and ``trigger`` describe the match
    that took the lease. ``facts`` are the attribution facts of the visit
    that took it (:class:`Facts`; ``None`` when none were recorded).
    """

    lease_id: str
    pool_key: str
    number: str
    visitor_id: str
    started: float
    last_activity: float
    expires: float
    ended: float | None = None
    end_reason: EndReason | None = None
    displaced_by: str | None = None
    specificity: int = 0
    source_index: int = 0
    referrer_domain: str = ""
    trigger: str | None = None
    facts: Facts | None = None

    @property
    def end(self) -> float:
        """When the visitor's hold on the number stopped (or stops): ``ended`` or ``expires``."""
        return self.expires if self.ended is None else self.ended

    def live_at(self, t: float) -> bool:
        """True when the visitor held the number at time ``t``."""
        return self.started <= t < self.end

    def window_contains(self, t: float) -> bool:
        """True when a call at ``t`` may come from this lease's visitor."""
        return self.started <= t < self.expires

    @property
    def referrer(self) -> str:
        """Deprecated alias of :attr:`referrer_domain`, for one release."""
        warnings.warn(
            "Lease.referrer is deprecated; use referrer_domain",
            DeprecationWarning,
            stacklevel=_CALLER,
        )
        return self.referrer_domain


def _new_lease(
    lease_id: str,
    pool_key: str,
    number: str,
    visitor_id: str,
    started: float,
    last_activity: float,
    expires: float,
    ended: float | None,
    end_reason: EndReason | None,
    displaced_by: str | None,
    specificity: int,
    source_index: int,
    referrer_domain: str,
    trigger: str | None,
    facts: Facts | None,
) -> Lease:
    """``Lease(...)`` with every field given in order, built faster (see :func:`_new_facts`)."""
    if not _COMPILED:
        return Lease(
            lease_id,
            pool_key,
            number,
            visitor_id,
            started,
            last_activity,
            expires,
            ended,
            end_reason,
            displaced_by,
            specificity,
            source_index,
            referrer_domain,
            trigger,
            facts,
        )
    lease = Lease.__new__(Lease)
    lease.lease_id = lease_id  # type: ignore[misc]
    lease.pool_key = pool_key  # type: ignore[misc]
    lease.number = number  # type: ignore[misc]
    lease.visitor_id = visitor_id  # type: ignore[misc]
    lease.started = started  # type: ignore[misc]
    lease.last_activity = last_activity  # type: ignore[misc]
    lease.expires = expires  # type: ignore[misc]
    lease.ended = ended  # type: ignore[misc]
    lease.end_reason = end_reason  # type: ignore[misc]
    lease.displaced_by = displaced_by  # type: ignore[misc]
    lease.specificity = specificity  # type: ignore[misc]
    lease.source_index = source_index  # type: ignore[misc]
    lease.referrer_domain = referrer_domain  # type: ignore[misc]
    lease.trigger = trigger  # type: ignore[misc]
    lease.facts = facts  # type: ignore[misc]
    return lease


@dataclass(frozen=True, slots=True)
class Attribution(Frozen):
    """Who a call to ``number`` at time ``at`` belongs to.

    ``kind``: ``lease`` (``lease`` is set, ``confidence`` is ``1.0`` when it is
    the only lease whose window holds the call, ``1/n`` when recycling left
    ``n`` candidates); ``pool`` (a pool number, but no lease window holds the
    call: attributed to the pool only); ``overflow`` (the pool's overflow
    number: pool level only; ``pool_key`` is ``None`` when several pools share
    that number); ``unknown`` (not a number of any pool);
    ``store_unavailable`` (the store failed). ``candidates`` lists every lease
    whose window holds the call, the returned lease first.

    ``caveat`` says why an attribution is less certain than its candidates
    alone suggest: after a shared store lost its state, a visitor it forgot
    may still hold the number, so until one hold has passed since the state
    was created again the confidence counts that forgotten visitor as one more
    candidate (see :class:`~dni_engine.stores.redis.RedisStore`).
    """

    number: str
    at: float
    kind: AttributionKind
    pool_key: str | None = None
    lease: Lease | None = None
    confidence: float = 0.0
    candidates: tuple[Lease, ...] = ()
    caveat: str | None = None


@dataclass(frozen=True, slots=True)
class PoolStats(Frozen):
    """Counters and occupancy of one pool at time ``at``.

    ``size`` is how many numbers the pool has; ``live``, ``cooling`` and
    ``free`` how many of them are held by a live lease, cooling down or free.
    ``new`` counts leases taken from free numbers (including last-touch
    switches in, also counted in ``switched_in``); ``recycled`` counts leases
    taken under ``recycle`` (``displacements`` of them ended a live lease,
    ``cooldowns_cut`` took a cooling number); ``overflows`` counts visits the
    exhausted pool could not serve; ``expired``/``released``/``switched_out``
    count how leases ended other than by displacement; ``capped`` counts
    visits refused a number because their client held ``client_cap`` live
    leases of the pool.
    """

    pool_key: str
    at: float
    size: int
    live: int
    cooling: int
    free: int
    new: int = 0
    kept: int = 0
    overflows: int = 0
    recycled: int = 0
    displacements: int = 0
    cooldowns_cut: int = 0
    switched_in: int = 0
    switched_out: int = 0
    expired: int = 0
    released: int = 0
    capped: int = 0

    @property
    def utilisation(self) -> float:
        """Share of the pool's numbers held by live leases (0.0 for a pool without numbers)."""
        return self.live / self.size if self.size else 0.0

    @property
    def leases_started(self) -> int:
        """Every lease the pool handed out: ``new + recycled``."""
        return self.new + self.recycled

    @property
    def numbers(self) -> int:
        """Deprecated alias of :attr:`size`, for one release."""
        warnings.warn(
            "PoolStats.numbers is deprecated; use size", DeprecationWarning, stacklevel=_CALLER
        )
        return self.size


# ---- the rules ---------------------------------------------------------------

ExhaustedAction = Literal["fallback", "overflow", "cut_cooldown", "displace"]


def exhausted_action(policy: Policy, cooling: bool, live: bool) -> ExhaustedAction:
    """What an exhausted pool does for a new visitor.

    ``cooling``: some number is cooling down; ``live``: some number is held by a
    live lease. ``recycle`` takes a cooling number before it displaces a live
    lease (the cooling number has been idle longer), and falls back when the
    pool has no number at all.
    """
    if policy == "recycle":
        if cooling:
            return "cut_cooldown"
        if live:
            return "displace"
        return "fallback"
    return "overflow" if policy == "overflow" else "fallback"


def is_any_referrer(referrer: str) -> bool:
    """True for a source that takes every referrer (``Any`` or ``*``, any case)."""
    return referrer.strip().lower() in ("any", "*")


def may_switch(
    touch: TouchMode,
    held_pool: str,
    held_specificity: int,
    held_referrer: str,
    claim: ClaimLike | None,
) -> bool:
    """Whether a visit with ``claim`` moves a live lease out of ``held_pool``.

    Only under ``last_touch`` (the mode of the pool that holds the lease), and
    only for a match in another pool that is strictly more specific than the
    match that started the lease, by the first two steps of match precedence:
    more trigger conditions, then a specific referrer over ``Any``. The store
    switches only if the other pool has a number free right away; otherwise
    the visitor keeps their lease.
    """
    if touch != "last_touch" or claim is None or claim.pool_key == held_pool:
        return False
    if claim.specificity != held_specificity:
        return claim.specificity > held_specificity
    return is_any_referrer(held_referrer) and not is_any_referrer(claim.referrer_domain)


def claim_facts(claim: ClaimLike) -> Facts | None:
    """The facts a claim carries: those of a :class:`Claim`, ``None`` for any other claim."""
    return claim.facts if type(claim) is Claim else None


def attribution_from(number: str, at: float, pool_key: str, leases: Iterable[Lease]) -> Attribution:
    """Attribute a call to ``number`` (a number of pool ``pool_key``) at ``at``.

    ``leases`` are leases on that number in the order they started (more may
    be passed than can match). Those whose window ``[started, expires)`` holds
    ``at`` are the candidates; the latest started wins with confidence
    ``1/len(candidates)``. With no candidate the call belongs to the pool only.
    """
    covering = [lease for lease in leases if lease.started <= at < lease.expires]
    if not covering:
        return Attribution(number, at, "pool", pool_key)
    # Stable sort, then reverse: latest start first and, among equal starts (a
    # lease displaced the instant it began), the one given last first.
    covering.sort(key=_started)
    covering.reverse()
    return Attribution(
        number, at, "lease", pool_key, covering[0], 1.0 / len(covering), tuple(covering)
    )


def _started(lease: Lease) -> float:
    return lease.started


def minutes(value: float) -> float:
    """Minutes (as in ``match_period``) to seconds."""
    return float(value) * SECONDS_PER_MINUTE
