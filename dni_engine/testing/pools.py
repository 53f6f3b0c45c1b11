"""Valid Number Pool documents for tests: :func:`pool_document`, :func:`build_pool`, :func:`source`.

A test states only what it is about (a pool's sources, its numbers, its
``match_period``) and the builder fills in the rest with values that
validate::

    >>> doc = pool_document(id=2, sources=[source("Google", ["gclid=*"])])
    >>> doc["numbers"]
    [{'id': 441174960002, 'phone_number': '+441174960002'}]
    >>> build_pool(id=2, match_period=10).match_period
    10

:func:`pool_document` returns the pool as the vendor's API writes it (a
response: every field, in the vendor's key order, defaults written out), so
``pool_json(build_pool(...)) == pool_document(...)``. It does not validate:
a test may pass a value the schema refuses, or change the document, to
check an error. :func:`build_pool` validates it into a
:class:`~dni_engine.schema.NumberPool`.

The numbers are fictional and deterministic: tracking numbers come from the
ranges set aside for drama, 0117 496 0000 to 0117 496 0998 in Great Britain
(Ofcom) and (202) 555-0100 to 0198 in the US (NANPA), and the site's own
number, the one replaced on its pages and the one calls are forwarded to,
is the last of each range (0117 496 0999, (202) 555-0199). See
:func:`example_numbers`.

This module needs only the core install (no hypothesis).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import phonenumbers
from pydantic import ValidationError

from dni_engine.errors import ConfigError
from dni_engine.phone import country_of
from dni_engine.schema import NumberPool, TrackingSource, problems_from

__all__ = [
    "EXAMPLE_COUNTRIES",
    "PoolArguments",
    "build_pool",
    "example_numbers",
    "pool_document",
    "source",
]


@dataclass(frozen=True, slots=True)
class _Range:
    """One country's fictional numbers: ``size`` tracking numbers, then the site's number."""

    prefix: str  # E.164, up to the varying digits
    first: int
    size: int
    width: int  # digits after the prefix
    site: str  # the site's number as written on its pages
    site_e164: str  # the same number in E.164: where calls are forwarded

    def number(self, index: int) -> str:
        return f"{self.prefix}{self.first + index:0{self.width}d}"


_RANGES = {
    "GB": _Range("+44117496", 0, 999, 4, "0117 496 0999", "+441174960999"),
    "US": _Range("+1202555", 100, 99, 4, "(202) 555-0199", "+12025550199"),
}

#: The countries with example numbers (for ``country=`` and :func:`example_numbers`).
EXAMPLE_COUNTRIES: tuple[str, ...] = tuple(_RANGES)

_E164_DIGITS = re.compile(r"\+([0-9]{1,15})")


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _range(country: str) -> _Range:
    found = _RANGES.get(country.strip().upper()) if isinstance(country, str) else None
    if found is None:
        known = ", ".join(EXAMPLE_COUNTRIES)
        raise ValueError(
            f"no example numbers for country {country!r} (there are for {known}); "
            "pass numbers, numbers_to_replace and termination_number yourself"
        )
    return found


def _strings(value: object, what: str) -> list[str]:
    """``value`` as a list of strings; a lone string is refused, not split into characters."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        kind = "a single string" if isinstance(value, str) else type(value).__name__
        raise TypeError(f"{what} must be a list of strings, not {kind}")
    return list(value)


def example_numbers(count: int, *, start: int = 0, country: str = "GB") -> tuple[str, ...]:
    """``count`` fictional tracking numbers of ``country`` in E.164, from the ``start``-th on.

    GB: ``+441174960000`` to ``+441174960998`` (999 numbers); US:
    ``+12025550100`` to ``+12025550198`` (99 numbers). The same arguments
    always give the same numbers, and disjoint ranges of indices give disjoint
    numbers. Raises ``ValueError`` for a negative ``count`` or ``start``, for
    indices past the end of the range, and for a country not in
    :data:`EXAMPLE_COUNTRIES`.
    """
    count = _whole(count, "count")
    start = _whole(start, "start")
    block = _range(country)
    if count < 0 or start < 0:
        raise ValueError(f"count and start must be 0 or more, not {count} and {start}")
    if start + count > block.size:
        raise ValueError(
            f"{country.upper()} has {block.size} example numbers; "
            f"numbers {start} to {start + count - 1} were asked for"
        )
    return tuple(block.number(start + k) for k in range(count))


def source(
    referrer_domain: str = "Any",
    url_triggers: Sequence[str] | None = None,
    *,
    track_organic: bool = False,
) -> dict[str, Any]:
    """One ``tracking_sources`` entry: ``{referrer_domain, url_triggers?, track_organic}``.

    ``url_triggers`` is left out when ``None`` (the source matches without
    triggers); an empty list is kept, as written. ``track_organic`` is always
    written, as the API does. Values are not checked: the schema does that
    (a lone string for ``url_triggers`` is a ``TypeError``).
    """
    doc: dict[str, Any] = {"referrer_domain": referrer_domain}
    if url_triggers is not None:
        doc["url_triggers"] = _strings(url_triggers, "url_triggers")
    doc["track_organic"] = track_organic
    return doc


def _source_document(value: Mapping[str, Any] | TrackingSource) -> dict[str, Any]:
    if isinstance(value, TrackingSource):
        dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True)
        return dumped
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(
        f"each source must be a mapping or a TrackingSource, not {type(value).__name__} "
        "(build one with source(...), e.g. source('Google'))"
    )


def _country_of_numbers(numbers: Sequence[str]) -> str | None:
    for number in numbers:
        try:
            country = country_of(phonenumbers.parse(number, None))
        except phonenumbers.NumberParseException:
            continue
        if country is not None:
            return country
    return None


def _number_id(number: str) -> int:
    found = _E164_DIGITS.fullmatch(number)
    if found is None:
        raise ValueError(
            f"{number!r} is not '+' and digits, so it has no default number id; "
            "pass first_number_id"
        )
    return int(found.group(1))


def pool_document(
    *,
    id: int = 1,
    name: str | None = None,
    numbers: int | Sequence[str] = 1,
    sources: Sequence[Mapping[str, Any] | TrackingSource] | None = None,
    match_period: int = 30,
    country: str | None = None,
    numbers_to_replace: Sequence[str] | None = None,
    replace_all_numbers: bool = False,
    termination_number: str | None = None,
    group_id: int = 1,
    status: str = "active",
    quantity: int | None = None,
    first_number_id: int | None = None,
) -> dict[str, Any]:
    """A Number Pool as the API returns it, as a JSON-ready ``dict`` in the vendor's key order.

    Every argument is keyword-only and has a default that validates:

    * ``id`` (1), ``name`` (``f"Pool {id}"``), ``group_id`` (1), ``status``
      (``"active"``), ``match_period`` (30 minutes);
    * ``numbers``: the tracking numbers in E.164, as given; or a count, for
      that many :func:`example_numbers` of ``country``, the pool's own slice
      of the range: with ``numbers=n``, indices ``id * n`` to
      ``id * n + n - 1``, wrapping round at the end of the range, so pools of
      ``n`` numbers each with ids from 0 to ``999 // n - 1`` (GB; US: 99)
      never share a number. The default, 1, gives pool ``id`` the number of
      index ``id`` (``+441174960001`` for pool 1);
    * each number's ``id`` is its digits read as an integer (distinct numbers
      get distinct ids, in every pool), or consecutive from
      ``first_number_id`` when given;
    * ``quantity``: ``len(numbers)``, at least 1;
    * ``sources``: mappings (see :func:`source`) or
      :class:`~dni_engine.schema.TrackingSource` objects; default one source,
      ``source("Any")``, which takes every visit;
    * ``country``: the country of the example numbers and of the site's
      number; default that of the first number given, else ``"GB"``;
    * ``numbers_to_replace``: default the site's number (``["0117 496 0999"]``
      in GB); left out with ``replace_all_numbers=True``, unless given;
    * ``termination_number``: default the site's number in E.164
      (``"+441174960999"`` in GB).

    ``sms_routes`` is ``{"route_type": "None"}``, as the API writes it.

    The document is not validated, so a test can build an invalid one on
    purpose; :func:`build_pool` validates. Raises ``TypeError`` for a string
    where a list is expected (``numbers``, ``numbers_to_replace``,
    ``url_triggers``) and for sources that are neither mappings nor
    ``TrackingSource``; ``ValueError`` for a negative count, more example
    numbers than the range holds, a country without example numbers when
    one is needed, and a number with no default id.
    """
    if isinstance(numbers, int) and not isinstance(numbers, bool):
        slot = _whole(id, "id with a count of numbers")
        if numbers < 0:
            raise ValueError(f"numbers must be a count of 0 or more, or a list; not {numbers}")
        block = _range(country or "GB")
        if numbers > block.size:
            raise ValueError(
                f"{(country or 'GB').upper()} has {block.size} example numbers; "
                f"{numbers} were asked for"
            )
        phones = [block.number((slot * numbers + k) % block.size) for k in range(numbers)]
    else:
        phones = _strings(numbers, "numbers")
    where = country or _country_of_numbers(phones) or "GB"
    if numbers_to_replace is not None:
        to_replace: list[str] | None = _strings(numbers_to_replace, "numbers_to_replace")
    else:
        to_replace = None if replace_all_numbers else [_range(where).site]
    if termination_number is None:
        termination_number = _range(where).site_e164
    if first_number_id is None:
        number_ids = [_number_id(phone) for phone in phones]
    else:
        first = _whole(first_number_id, "first_number_id")
        number_ids = list(range(first, first + len(phones)))
    chosen = [source()] if sources is None else [_source_document(s) for s in sources]
    replacement: dict[str, Any] = {}
    if to_replace is not None:
        replacement["numbers_to_replace"] = to_replace
    replacement["tracking_sources"] = chosen
    replacement["replace_all_numbers"] = replace_all_numbers
    return {
        "id": id,
        "name": f"Pool {id}" if name is None else name,
        "group_id": group_id,
        "status": status,
        "match_period": match_period,
        "quantity": max(len(phones), 1) if quantity is None else quantity,
        "numbers": [
            {"id": number_id, "phone_number": phone}
            for number_id, phone in zip(number_ids, phones, strict=True)
        ],
        "replacement_configuration": replacement,
        "sms_routes": {"route_type": "None"},
        "call_routes": {"route_type": "Basic", "route": {"termination_number": termination_number}},
    }


class PoolArguments(TypedDict, total=False):
    """The keyword arguments of :func:`pool_document` and :func:`build_pool`, to type wrappers."""

    id: int
    name: str | None
    numbers: int | Sequence[str]
    sources: Sequence[Mapping[str, Any] | TrackingSource] | None
    match_period: int
    country: str | None
    numbers_to_replace: Sequence[str] | None
    replace_all_numbers: bool
    termination_number: str | None
    group_id: int
    status: str
    quantity: int | None
    first_number_id: int | None


def build_pool(**arguments: Unpack[PoolArguments]) -> NumberPool:
    """The :class:`~dni_engine.schema.NumberPool` of ``pool_document(**arguments)``, validated.

    Takes the same keyword arguments, with the same defaults, and raises the
    same ``TypeError`` and ``ValueError``; a document the schema refuses
    raises :class:`~dni_engine.errors.ConfigError` listing every problem
    with its JSON path, as :func:`~dni_engine.schema.load_pools` does.
    """
    try:
        return NumberPool.model_validate(pool_document(**arguments))
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None
