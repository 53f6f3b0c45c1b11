"""Calls: what a telephony system reports, and the call log's records.

A :class:`Call` is one phone call as the telephony system reported it (the
number dialled, the caller, when it started, its id). :meth:`Engine.record_call
<dni_engine.engine.Engine.record_call>` attributes it and keeps a
:class:`CallRecord` in the store's call log, once per call id.

:func:`facts_of` computes the attribution :class:`~dni_engine.leases.Facts` a
lease keeps from a visit's landing URL and referrer, bounded in size:

* the landing URL without its fragment and with only the query parameters
  attribution needs: the click ids, the ``utm_*`` values and the parameters
  ``keep`` names (the pools' URL triggers); everything else a URL may carry
  (e-mail addresses, tokens, session ids) is dropped before it reaches a store
  or a log. At most :data:`MAX_FACTS_URL` characters (a longer one loses its
  end: :func:`dni_engine.landing.cap_url`);
* the referrer's host and its catalogue class (``Google``...);
* paid or organic, by the rule matching uses
  (:func:`dni_engine.rules.visit.paid_reason`, the first ``utm_medium``): a paid click id (any of
  :data:`CLICK_IDS` but ``fbclid``, which Facebook adds to organic links too)
  or a paid ``utm_medium`` (``cpc``, ``ppc``, ``paid``...);
* the landing's click ids (:data:`CLICK_IDS`, non-empty values, the first
  value of each) and ``utm_*`` values (at most :data:`MAX_UTM` names), each
  value at most :data:`MAX_FACT_VALUE` characters, decoded and case kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

from dni_engine.facts import (
    CLICK_IDS,
    MAX_FACT_VALUE,
    MAX_FACTS_URL,
    MAX_UTM,
    landing_facts,
)
from dni_engine.leases import Attribution, Facts, Lease

__all__ = [
    "CLICK_IDS",
    "MAX_CALL_ID",
    "MAX_FACTS_URL",
    "MAX_FACT_VALUE",
    "MAX_UTM",
    "PROVIDERS",
    "Call",
    "CallRecord",
    "attribution_from_json",
    "attribution_to_json",
    "facts_of",
    "lease_from_json",
    "lease_to_json",
]

MAX_CALL_ID: Final = 256
"""The longest call id, in characters."""
MAX_CALL_TEXT: Final = 512
"""The longest called or calling number text, in characters."""
PROVIDERS: Final = ("generic", "twilio")
"""Telephony providers a call may name; others are kept as given, for the record."""

_MAX_URL_READ: Final = 8192
_MAX_REFERRER_READ: Final = 4096


def facts_of(url: str | None, referrer: str | None, keep: frozenset[str] = frozenset()) -> Facts:
    """The attribution facts of a landing with ``url`` and HTTP ``referrer`` (see the module doc).

    ``keep``: lower-case names of query parameters the stored landing URL keeps
    besides the click ids and ``utm_*`` (the engine gives its pools' trigger
    parameters). Never raises for ``str`` or ``None`` inputs; anything else counts as missing.
    Only the first 8,192 characters of the URL and 4,096 of the referrer are read.
    Cached (bounded): a session's page views repeat their landing.
    """
    page = url[:_MAX_URL_READ] if isinstance(url, str) else ""
    source = referrer[:_MAX_REFERRER_READ] if isinstance(referrer, str) else ""
    try:
        return _facts_of(page, source, keep)
    except Exception:  # never on the per-visit path's account
        return Facts()


# Cached (bounded): a session's page views repeat their landing.
_facts_of = functools.lru_cache(maxsize=1024)(landing_facts)


# ---- calls -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One phone call, as the telephony system reported it.

    ``call_id`` identifies the call at the provider (Twilio's ``CallSid``, the
    generic body's ``call_id``): a call log keeps one record per id.
    ``number`` is the number dialled, as reported (``+44 117 496 0123``, a
    ``tel:`` URI...); ``started`` when the call started, in float seconds
    (Unix epoch, or the engine's clock's timeline); ``caller`` the caller's
    number (``''`` when withheld); ``duration`` in seconds (``None`` while
    unknown: a call reported as it starts); ``provider`` who reported it.
    """

    call_id: str
    number: str
    started: float
    caller: str = ""
    duration: float | None = None
    provider: str = "generic"

    def problems(self) -> list[str]:
        """Why this call cannot be recorded, each naming its field; empty when it can."""
        found: list[str] = []
        if not isinstance(self.call_id, str) or not self.call_id.strip():
            found.append("call_id: must be a non-empty string")
        elif len(self.call_id) > MAX_CALL_ID:
            found.append(f"call_id: longer than {MAX_CALL_ID} characters")
        if not isinstance(self.number, str) or not self.number.strip():
            found.append("number: must be a non-empty string")
        elif len(self.number) > MAX_CALL_TEXT:
            found.append(f"number: longer than {MAX_CALL_TEXT} characters")
        if (
            isinstance(self.started, bool)
            or not isinstance(self.started, int | float)
            or not math.isfinite(self.started)
        ):
            found.append("started: must be a finite number of seconds")
        if not isinstance(self.caller, str):
            found.append("caller: must be a string")
        elif len(self.caller) > MAX_CALL_TEXT:
            found.append(f"caller: longer than {MAX_CALL_TEXT} characters")
        if self.duration is not None and (
            isinstance(self.duration, bool)
            or not isinstance(self.duration, int | float)
            or not (math.isfinite(self.duration) and self.duration >= 0)
        ):
            found.append("duration: must be a number of seconds >= 0, or null")
        if not isinstance(self.provider, str) or not self.provider:
            found.append("provider: must be a non-empty string")
        return found

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field at fault, if any."""
        found = self.problems()
        if found:
            raise ValueError(found[0])

    def to_json(self) -> dict[str, object]:
        """The call as a JSON object."""
        return {
            "call_id": self.call_id,
            "number": self.number,
            "started": self.started,
            "caller": self.caller,
            "duration": self.duration,
            "provider": self.provider,
        }

    @classmethod
    def from_json(cls, obj: object) -> Call:
        """The call of a :meth:`to_json` object; ``ValueError`` naming the field at fault."""
        data = _object(obj, "call")
        call_id = _string(data, "call_id", "call")
        number = _string(data, "number", "call")
        started = _number(data.get("started"), "call.started")
        caller = _string(data, "caller", "call", "")
        duration_value = data.get("duration")
        duration = None if duration_value is None else _number(duration_value, "call.duration")
        provider = _string(data, "provider", "call", "generic")
        call = cls(call_id, number, started, caller, duration, provider)
        found = call.problems()
        if found:
            raise ValueError(f"call.{found[0]}")
        return call


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call in the call log: the call, its attribution, and when it was recorded.

    ``attribution`` says who the call belongs to (its ``kind``, lease, pool,
    confidence, candidates, caveat; the lease carries the visit's
    :class:`~dni_engine.leases.Facts`). ``recorded`` is the engine's clock
    when the record was made. ``replayed`` is True on the answer to a
    delivery of a call id already in the log (the first record is returned,
    nothing is attributed or stored again). ``stored`` is False when the
    store could not keep the record (it failed): the delivery should be
    retried.
    """

    call: Call
    attribution: Attribution
    recorded: float
    replayed: bool = False
    stored: bool = True

    @property
    def lease(self) -> Lease | None:
        """The lease the call is attributed to, or ``None``."""
        return self.attribution.lease

    @property
    def facts(self) -> Facts | None:
        """The attributed lease's facts, or ``None``."""
        lease = self.attribution.lease
        return None if lease is None else lease.facts

    @property
    def pool_key(self) -> str | None:
        """The pool the call is attributed to (lease or pool level), or ``None``."""
        return self.attribution.pool_key

    @property
    def reason(self) -> str | None:
        """Why the call could not be tied to a visit, or ``None`` when it was."""
        return _REASONS.get(self.attribution.kind)

    def to_json(self) -> dict[str, object]:
        """The record as a JSON object (the call webhook's answer body)."""
        attribution = attribution_to_json(self.attribution)
        return {
            "call": self.call.to_json(),
            "attribution": attribution,
            "reason": self.reason,
            "recorded": self.recorded,
            "replayed": self.replayed,
            "stored": self.stored,
        }

    @classmethod
    def from_json(cls, obj: object) -> CallRecord:
        """The record of a :meth:`to_json` object; ``ValueError`` naming the field at fault."""
        data = _object(obj, "record")
        call = Call.from_json(data.get("call"))
        attribution = attribution_from_json(data.get("attribution"))
        recorded = _number(data.get("recorded"), "record.recorded")
        replayed = data.get("replayed", False)
        stored = data.get("stored", True)
        if not isinstance(replayed, bool) or not isinstance(stored, bool):
            raise ValueError("record.replayed, record.stored: must be true or false")
        return cls(call, attribution, recorded, replayed, stored)


_REASONS: Final[Mapping[str, str]] = {
    "pool": "no lease of the number's pool held the call's time (attributed to the pool only)",
    "overflow": "a call to an overflow number (attributed to the pool only)",
    "unknown": "the number called is not a number of any pool",
    "store_unavailable": "the lease store failed while the call was attributed",
}


# ---- JSON forms --------------------------------------------------------------------


def lease_to_json(lease: Lease) -> dict[str, object]:
    """A lease snapshot as a JSON object (its facts as :meth:`Facts.to_json`, or null)."""
    return {
        "lease_id": lease.lease_id,
        "pool_key": lease.pool_key,
        "number": lease.number,
        "visitor_id": lease.visitor_id,
        "started": lease.started,
        "last_activity": lease.last_activity,
        "expires": lease.expires,
        "ended": lease.ended,
        "end_reason": lease.end_reason,
        "displaced_by": lease.displaced_by,
        "specificity": lease.specificity,
        "source_index": lease.source_index,
        "referrer_domain": lease.referrer_domain,
        "trigger": lease.trigger,
        "facts": None if lease.facts is None else lease.facts.to_json(),
    }


_END_REASONS: Final = ("expired", "displaced", "switched", "released")
_KINDS: Final = ("lease", "pool", "overflow", "unknown", "store_unavailable")


def lease_from_json(obj: object) -> Lease:
    """The lease of a :func:`lease_to_json` object; ``ValueError`` naming the field at fault."""
    data = _object(obj, "lease")
    ended_value = data.get("ended")
    reason = data.get("end_reason")
    if reason is not None and reason not in _END_REASONS:
        raise ValueError(f"lease.end_reason: {reason!r} is not one of {', '.join(_END_REASONS)}")
    facts_value = data.get("facts")
    return Lease(
        lease_id=_string(data, "lease_id", "lease"),
        pool_key=_string(data, "pool_key", "lease"),
        number=_string(data, "number", "lease"),
        visitor_id=_string(data, "visitor_id", "lease"),
        started=_number(data.get("started"), "lease.started"),
        last_activity=_number(data.get("last_activity"), "lease.last_activity"),
        expires=_number(data.get("expires"), "lease.expires"),
        ended=None if ended_value is None else _number(ended_value, "lease.ended"),
        end_reason=reason,
        displaced_by=_optional_string(data, "displaced_by", "lease"),
        specificity=_integer(data.get("specificity", 0), "lease.specificity"),
        source_index=_integer(data.get("source_index", 0), "lease.source_index"),
        referrer_domain=_string(data, "referrer_domain", "lease", ""),
        trigger=_optional_string(data, "trigger", "lease"),
        facts=None if facts_value is None else Facts.from_json(facts_value),
    )


def attribution_to_json(attribution: Attribution) -> dict[str, object]:
    """An attribution as a JSON object (its lease and candidates as :func:`lease_to_json`)."""
    lease = attribution.lease
    return {
        "number": attribution.number,
        "at": attribution.at,
        "kind": attribution.kind,
        "pool_key": attribution.pool_key,
        "lease": None if lease is None else lease_to_json(lease),
        "confidence": attribution.confidence,
        "candidates": [lease_to_json(c) for c in attribution.candidates],
        "caveat": attribution.caveat,
    }


def attribution_from_json(obj: object) -> Attribution:
    """The attribution of an :func:`attribution_to_json` object; ``ValueError`` naming the field."""
    data = _object(obj, "attribution")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"attribution.kind: {kind!r} is not one of {', '.join(_KINDS)}")
    lease_value = data.get("lease")
    candidates = data.get("candidates", [])
    if not isinstance(candidates, list):
        raise ValueError("attribution.candidates: must be a list")
    return Attribution(
        number=_string(data, "number", "attribution", ""),
        at=_number(data.get("at"), "attribution.at"),
        kind=kind,
        pool_key=_optional_string(data, "pool_key", "attribution"),
        lease=None if lease_value is None else lease_from_json(lease_value),
        confidence=_number(data.get("confidence", 0.0), "attribution.confidence"),
        candidates=tuple(lease_from_json(c) for c in cast("list[object]", candidates)),
        caveat=_optional_string(data, "caveat", "attribution"),
    )


def _object(obj: object, where: str) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: must be a JSON object")
    return cast("dict[str, object]", obj)


def _string(data: dict[str, object], name: str, where: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{name}: must be a string")
    return value


def _optional_string(data: dict[str, object], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{name}: must be a string or null")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: must be a number")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{where}: must be a number")
    return number


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: must be a whole number")
    return value
