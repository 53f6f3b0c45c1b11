"""The emulator's stock of phone numbers, built from phonenumbers' metadata.

A ``phone_number_request`` names a :class:`Locality`: a city or an area code
(``geographic``), or a country's ``tollfree`` or ``national`` range. A locality
is a set of *ranges* (country calling code, leading digits of the national
number, national length):

- a city is every prefix that phonenumbers' geocoder data describes with that
  name (``Bristol`` -> ``+44 117``; ``region`` narrows ``Bristol, PA`` from
  ``Bristol, VA``);
- an area code is that code with the national trunk prefix dropped
  (``024`` -> ``+44 24``), narrowed to the geocoder's prefixes under it;
- toll-free and national ranges start where the metadata's example number for
  the type starts (``+44 800``), except where that example lies in a range a
  call-tracking vendor does not sell (see ``_NATIONAL_LEADING_DIGITS``).

Numbers are handed out in runs of consecutive numbers from a random point in a
range, skipping those that are not valid numbers of the requested type, region
and place (``phonenumbers.number_type``, the geocoder), a share "already rented
to other customers", and every number issued before: a number is never handed
out twice, not even after it was removed from its pool.
"""

from __future__ import annotations

import functools
import random
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType
from phonenumbers.geodata import GEOCODE_DATA, GEOCODE_LONGEST_PREFIX

from dni_engine.emulator.refusal import NumbersUnavailable
from dni_engine.errors import ConfigError, Problem
from dni_engine.schema import PhoneNumberRequest

__all__ = ["DEFAULT_STOCK", "KIND_TYPES", "Inventory", "Locality", "NumberRange", "resolve"]

DEFAULT_STOCK = 10_000
"""Numbers the emulator can hand out per locality over its lifetime."""

# Consecutive candidates walked from one random starting point before jumping
# elsewhere: pools come out as runs of neighbouring numbers, like the vendor's.
_BLOCK = 2_000
# Invalid candidates in a row after which the walk jumps: the start fell in an
# unallocated stretch of the range (0117 0..., say), which may run for millions.
_MISSES = 32
# Random samples that decide whether a range holds any suitable number at all.
_PROBES = 32
# Share of suitable numbers skipped as "rented to other customers": the gaps
# seen in the vendor's examples (...0162, ...0163, ...0165).
_HELD_ELSEWHERE = 0.2

KIND_TYPES: dict[str, frozenset[int]] = {
    "geographic": frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
    "tollfree": frozenset({PhoneNumberType.TOLL_FREE}),
    "national": frozenset({PhoneNumberType.UAN}),
}
"""The ``phonenumbers.number_type`` values a number of each ``match_type`` may have."""

# Where phonenumbers' example number lies outside what vendors sell as
# "national": the UK example is 055 (corporate numbers, charged above local
# rates); 03 numbers are the ones charged as a local call anywhere, and 033 is
# their general-purpose range (030 is for public bodies, 034/037 mirror 084/087).
_NATIONAL_LEADING_DIGITS: dict[str, tuple[str, ...]] = {"GB": ("33",)}


def fold(text: str) -> str:
    """Compare place names loosely: case, accents and runs of spaces do not matter."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


@dataclass(frozen=True, slots=True)
class NumberRange:
    """National numbers of one length under one run of leading digits."""

    country_code: int
    leading: str
    length: int
    rank: int = 0  # 0 for the country's usual length for the type; higher is used later

    @property
    def size(self) -> int:
        """How many national numbers the range spans."""
        return int(10 ** (self.length - len(self.leading)))

    def national(self, offset: int) -> str:
        """The ``offset``-th national number of the range, as digits."""
        return self.leading + str(offset).zfill(self.length - len(self.leading))


@dataclass(frozen=True, slots=True)
class Locality:
    """Where a request's numbers must come from.

    ``key`` identifies it (stock is counted per key), ``label`` names it in
    messages, ``field`` is the request field that chose it, and ``geo_keys``
    (for cities) the geocoder prefixes whose description is the city.
    """

    key: tuple[str | None, ...]
    country: str
    kind: str
    label: str
    field: str
    ranges: tuple[NumberRange, ...]
    geo_keys: frozenset[str] | None = None

    def accepts(self, number: PhoneNumber, digits: str) -> bool:
        """Is ``number`` (``digits``: its E.164 form without ``+``) a valid number of this
        locality's type, country and place?"""
        if phonenumbers.number_type(number) not in KIND_TYPES[self.kind]:
            return False  # number_type is UNKNOWN for invalid numbers
        if phonenumbers.region_code_for_number(number) != self.country:
            return False  # calling codes are shared: +44 1481 is Guernsey, not GB
        return self.geo_keys is None or geocoder_key(digits) in self.geo_keys


def geocoder_key(digits: str) -> str | None:
    """The longest geocoder prefix of an E.164 number (digits only), as the geocoder
    itself looks it up, or ``None``."""
    for end in range(min(len(digits), GEOCODE_LONGEST_PREFIX), 0, -1):
        if digits[:end] in GEOCODE_DATA:
            return digits[:end]
    return None


@dataclass(frozen=True, slots=True)
class _Place:
    key: str
    regions: frozenset[str]
    region_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Places:
    by_city: dict[str, tuple[_Place, ...]]
    keys: frozenset[str]


@functools.cache
def _places(country_code: int) -> _Places:
    """The geocoder's prefixes under one calling code, indexed by folded city name.

    Descriptions read ``City`` or ``City, Region``; every language the data
    carries is indexed, so ``München`` and ``Munich`` both work.
    """
    prefix = str(country_code)
    by_city: defaultdict[str, list[_Place]] = defaultdict(list)
    keys = set()
    for key, names in GEOCODE_DATA.items():
        if not key.startswith(prefix):
            continue
        keys.add(key)
        for text in set(names.values()):
            city, _, rest = text.partition(",")
            region_names = tuple(part.strip() for part in rest.split(",") if part.strip())
            regions = frozenset(fold(part) for part in region_names)
            by_city[fold(city)].append(_Place(key, regions, region_names))
    return _Places({k: tuple(v) for k, v in by_city.items()}, frozenset(keys))


def _lengths(metadata: PhoneMetadata, kind: str) -> tuple[int, ...]:
    desc = {
        "geographic": metadata.fixed_line,
        "tollfree": metadata.toll_free,
        "national": metadata.uan,
    }[kind]
    general = metadata.general_desc
    own = tuple(n for n in (desc.possible_length if desc else ()) if n > 0)
    return own or tuple(n for n in (general.possible_length if general else ()) if n > 0)


def _ranges(
    country: str, kind: str, keys: Iterable[str], lengths: tuple[int, ...]
) -> tuple[NumberRange, ...]:
    """Ranges under ``keys`` (E.164 prefixes), one per possible national length.

    Lengths closer to the metadata's example number for the type rank first,
    so that a German city gets ordinary 10-digit numbers before 15-digit ones.
    """
    (number_type, *_) = sorted(KIND_TYPES[kind])
    example = phonenumbers.example_number_for_type(country, number_type)
    usual = len(phonenumbers.national_significant_number(example)) if example else max(lengths)
    country_code = phonenumbers.country_code_for_region(country)
    cc = str(country_code)
    return tuple(
        NumberRange(country_code, key[len(cc) :], length, abs(length - usual))
        for key in sorted(keys)
        for length in lengths
        if length > len(key) - len(cc)
    )


def resolve(request: PhoneNumberRequest) -> Locality:
    """The :class:`Locality` a (validated) ``phone_number_request`` asks for.

    Raises :class:`NumbersUnavailable` naming the field at fault when the
    country has no such numbers or the place is unknown.
    """
    country = request.iso_country
    metadata = PhoneMetadata.metadata_for_region(country)
    if metadata is None or metadata.country_code is None:
        raise NumbersUnavailable(
            "phone_number_request.iso_country", f"no numbering data for {country}"
        )
    cc = metadata.country_code
    kind = request.match_type
    lengths = _lengths(metadata, kind)
    if kind != "geographic":
        return _nongeographic(request, country, cc, lengths)

    places = _places(cc)
    geo_keys: frozenset[str] | None = None
    keys: frozenset[str] = places.keys
    label = country
    field = "phone_number_request.area_code"
    if request.city is not None:
        geo_keys = keys = _city_keys(request, places)
        label = f"{request.city} ({country})"
        field = "phone_number_request.city"
    if request.area_code is not None:
        code = request.area_code
        trunk = metadata.national_prefix
        if trunk and code.startswith(trunk) and len(code) > len(trunk):
            code = code[len(trunk) :]
        prefix = f"{cc}{code}"
        narrowed = {k for k in keys if k.startswith(prefix)}
        if any(prefix.startswith(k) for k in keys):
            narrowed.add(prefix)  # the code is finer than the geocoder's data
        if not narrowed and request.city is not None:
            raise NumbersUnavailable(
                "phone_number_request.area_code",
                f"{request.city!r} in {country} has no numbers under area code "
                f"{request.area_code!r}",
            )
        keys = frozenset(narrowed or {prefix})  # no geocoder data for the code: trust it
        label = f"area code {request.area_code} ({country})"
        if request.city is not None:
            label = f"{request.city}, area code {request.area_code} ({country})"
    key = (
        country,
        kind,
        fold(request.city) if request.city else None,
        fold(request.region) if request.region and request.city else None,
        request.area_code,
    )
    ranges = _ranges(country, kind, keys, lengths)
    return Locality(key, country, kind, label, field, ranges, geo_keys)


def _city_keys(request: PhoneNumberRequest, places: _Places) -> frozenset[str]:
    assert request.city is not None
    country = request.iso_country
    candidates = places.by_city.get(fold(request.city), ())
    if not candidates:
        raise NumbersUnavailable(
            "phone_number_request.city",
            f"no numbering data for a city called {request.city!r} in {country}",
        )
    if request.region is not None:
        wanted = fold(request.region)
        matching = tuple(p for p in candidates if wanted in p.regions)
        known = sorted({name for p in candidates for name in p.region_names})
        if matching:
            candidates = matching
        elif known:  # the data can tell regions apart and none is the one asked for
            raise NumbersUnavailable(
                "phone_number_request.region",
                f"{request.city!r} in {country} is not in region {request.region!r}; "
                f"its regions are {', '.join(known)}",
            )
    return frozenset(p.key for p in candidates)


def _nongeographic(
    request: PhoneNumberRequest, country: str, cc: int, lengths: tuple[int, ...]
) -> Locality:
    kind = request.match_type
    words = {"tollfree": "toll-free", "national": "national"}[kind]
    leading = _NATIONAL_LEADING_DIGITS.get(country, ()) if kind == "national" else ()
    if not leading:
        (number_type,) = KIND_TYPES[kind]
        example = phonenumbers.example_number_for_type(country, number_type)
        if example is None:
            raise NumbersUnavailable(
                "phone_number_request.match_type",
                f"{words} numbers are not available in {country}",
            )
        leading = (phonenumbers.national_significant_number(example)[:3],)
    keys = [f"{cc}{digits}" for digits in leading]
    return Locality(
        (country, kind),
        country,
        kind,
        f"{country} {words} numbers",
        "phone_number_request.match_type",
        _ranges(country, kind, keys, lengths),
    )


def _number(country_code: int, national: str) -> PhoneNumber:
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    zeros = len(national) - len(national.lstrip("0"))
    if zeros:  # a national number that starts with 0 (Italy): phonenumbers keeps the zeros apart
        number.italian_leading_zero = True
        if zeros > 1:
            number.number_of_leading_zeros = zeros
    return number


class Inventory:
    """The numbers the emulator can hand out. Thread-safe.

    ``stock`` caps how many numbers one locality (a city, an area code, a
    country's toll-free or national range) can ever supply; ``seed`` makes the
    numbers handed out reproducible (``None`` for a different run each time).
    """

    def __init__(self, *, stock: int = DEFAULT_STOCK, seed: int | None = 0) -> None:
        if stock < 0:
            raise ConfigError([Problem("stock", f"must be 0 or more, not {stock}")])
        self.stock = stock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._issued: set[str] = set()
        self._issued_by: Counter[tuple[str | None, ...]] = Counter()
        self._live: dict[tuple[tuple[str | None, ...], NumberRange], bool] = {}

    @property
    def issued(self) -> frozenset[str]:
        """Every number handed out so far (E.164), removed ones included."""
        with self._lock:
            return frozenset(self._issued)

    def allocate(self, request: PhoneNumberRequest, quantity: int) -> list[str]:
        """Hand out ``quantity`` new numbers (E.164, ascending) for ``request``.

        All or nothing: raises :class:`NumbersUnavailable` (naming the field to
        change) when the locality is unknown, its stock is spent, or not enough
        free numbers can be found.
        """
        if quantity < 1:
            raise NumbersUnavailable("quantity", "quantity must be at least 1")
        locality = resolve(request)
        with self._lock:
            left = self.stock - self._issued_by[locality.key]
            if quantity > left:
                raise NumbersUnavailable(
                    "quantity",
                    f"only {max(left, 0)} numbers left in stock for {locality.label}; "
                    f"asked for {quantity}",
                )
            numbers = self._walk(locality, quantity)
            self._issued.update(numbers)
            self._issued_by[locality.key] += quantity
        return sorted(numbers)

    def _walk(self, locality: Locality, quantity: int) -> list[str]:
        rng = self._rng
        picked: list[str] = []
        chosen: set[str] = set()
        budget = max(20_000, 100 * quantity)  # candidates examined before giving up
        spent = 0
        ranges = [r for r in locality.ranges if self._live.get((locality.key, r), True)]
        while len(picked) < quantity:
            if not ranges and not picked:
                raise NumbersUnavailable(
                    locality.field, f"there are no {locality.kind} numbers for {locality.label}"
                )
            if not ranges or spent >= budget:
                raise NumbersUnavailable(
                    locality.field,
                    f"found only {len(picked)} of {quantity} free numbers for {locality.label}",
                )
            best = min(r.rank for r in ranges)
            span = rng.choice([r for r in ranges if r.rank == best])
            if (locality.key, span) not in self._live:
                spent += _PROBES
                self._live[(locality.key, span)] = self._probe(locality, span)
            if not self._live[(locality.key, span)]:
                ranges.remove(span)
                continue
            size = span.size
            start = rng.randrange(size)
            misses = 0
            for step in range(min(size, _BLOCK)):
                spent += 1
                national = span.national((start + step) % size)
                digits = f"{span.country_code}{national}"
                e164 = "+" + digits
                if e164 in self._issued or e164 in chosen:
                    continue
                if not locality.accepts(_number(span.country_code, national), digits):
                    misses += 1
                    if misses == _MISSES:
                        break
                    continue
                misses = 0
                if rng.random() < _HELD_ELSEWHERE:
                    continue
                picked.append(e164)
                chosen.add(e164)
                if len(picked) == quantity:
                    break
        return picked

    def _probe(self, locality: Locality, span: NumberRange) -> bool:
        size = span.size
        for _ in range(_PROBES):
            national = span.national(self._rng.randrange(size))
            if locality.accepts(
                _number(span.country_code, national), f"{span.country_code}{national}"
            ):
                return True
        return False
