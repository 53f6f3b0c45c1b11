"""Pydantic models of the vendor's Number Pool API, and their validation.

:class:`NumberPoolRequest` is what is POSTed to create a pool;
:class:`NumberPool` is what the API returns (the request echoed back with
``id``, ``group_id``, ``status`` and ``numbers``, defaults filled in). Both
dump back to the vendor's JSON with ``model_dump(mode="json", by_alias=True)``
(:func:`pool_json` also keeps the vendor's key order), and both name their
pool's ``key`` everywhere else in the package. The rest of the API's
vocabulary lives here too, for the client and the emulator alike:
:class:`PoolNumbersRequest` (the body that adds numbers), :class:`Referrer`
(the referrer catalogue) and :data:`TOKEN_HEADER`.

Validation reports every problem at once; :func:`load_pools` turns pydantic's
errors into a :class:`~dni_engine.errors.ConfigError` whose lines carry the JSON
path and a plain reason. :func:`check_pool_set` holds the rules between pools
(unique keys and ids, one pool per tracking number; unique names per group in a
document), shared by :func:`load_pools` and the engine.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails

from dni_engine.errors import ConfigError, Problem, format_path
from dni_engine.phone import (
    SUPPORTED_COUNTRIES,
    country_of,
    parse_number,
    strip_formatting,
)
from dni_engine.referrers import parse_referrer_domain
from dni_engine.triggers import parse_trigger

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_MATCH_PERIOD",
    "MAX_NAME_LENGTH",
    "MAX_QUANTITY",
    "TOKEN_HEADER",
    "AnyPool",
    "CallRoutes",
    "CountryCode",
    "DialableNumber",
    "E164Number",
    "Identifier",
    "Minutes",
    "NumberPool",
    "NumberPoolRequest",
    "NumberToReplace",
    "PhoneNumberRequest",
    "PoolName",
    "PoolNumber",
    "PoolNumbersRequest",
    "Quantity",
    "Referrer",
    "ReferrerDomain",
    "ReplacementConfiguration",
    "Route",
    "SmsRoutes",
    "StrictBool",
    "TrackingSource",
    "UrlTrigger",
    "check_pool_set",
    "is_response",
    "iter_pool_documents",
    "load_pools",
    "parse_pool",
    "pool_json",
    "problems_from",
    "status_warning",
]

MAX_QUANTITY = 1000
MAX_MATCH_PERIOD = 43_200  # 30 days, in minutes
MAX_NAME_LENGTH = 255
#: Deepest nesting of JSON arrays and objects a pool document may have. A pool
#: needs 6 levels (a list of pools, ``replacement_configuration``,
#: ``tracking_sources``, a source, ``url_triggers``); deeper documents are
#: refused before any model validates them.
MAX_JSON_DEPTH = 64
#: Most digits a JSON integer in a pool document may have (any 64-bit id fits).
MAX_JSON_INT_DIGITS = 20
#: The request header that carries the organization's API token.
TOKEN_HEADER = "x-organization-token"

# The pool's country while a pool document is being validated, so that
# numbers written in national form can be checked against it. Set by the
# top-level models' wrap validators, read by the field validators below.
_POOL_COUNTRY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dni_pool_country", default=None
)


class _Model(BaseModel):
    """Base: unknown fields are errors, and unset optional fields are not written out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @model_serializer(mode="wrap")
    def _drop_nones(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("name must not be empty")
    return value


def _check_country(value: str) -> str:
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code (e.g. 'GB')")
    if code not in SUPPORTED_COUNTRIES:
        raise ValueError(f"{value!r} is not a country with known phone numbering")
    return code


def _check_area_code(value: str) -> str:
    if not re.fullmatch(r"\d{1,6}", value.strip()):
        raise ValueError(f"area_code {value!r} must be 1 to 6 digits, e.g. '024'")
    return value.strip()


def _check_number_to_replace(value: str) -> str:
    stripped = strip_formatting(value).removeprefix("+")
    if not stripped.isascii() or not stripped.isalnum():
        raise ValueError(
            f"{value!r} may contain only digits, vanity letters and formatting (spaces, '-', '.')"
        )
    if not 7 <= len(stripped) <= 15:
        raise ValueError(f"{value!r} has {len(stripped)} characters; a phone number has 7 to 15")
    if not any(ch.isdigit() for ch in stripped):
        raise ValueError(f"{value!r} has no digits")
    country = _POOL_COUNTRY.get()
    if country is not None:
        try:
            number = parse_number(value, country)
        except ValueError as exc:
            raise ValueError(f"{value!r} is {exc} in {country}") from None
        if not phonenumbers.is_possible_number(number):
            raise ValueError(f"{value!r} is not a possible phone number in {country}")
    return value


def _check_dialable(value: str) -> str:
    country = _POOL_COUNTRY.get()
    try:
        number = parse_number(value, country)
    except ValueError as exc:
        raise ValueError(f"{value!r} is {exc}") from None
    if not phonenumbers.is_valid_number(number):
        where = f" in {country}" if country and not value.strip().startswith("+") else ""
        raise ValueError(f"{value!r} is not a valid, dialable phone number{where}")
    return value


def _check_e164(value: str) -> str:
    if not re.fullmatch(r"\+[1-9]\d{6,14}", value):
        raise ValueError(f"{value!r} is not in E.164 form (e.g. '+441174090162')")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{value!r} is not a possible phone number")
    return value


def _check_referrer(value: str) -> str:
    parse_referrer_domain(value)
    return value


def _check_trigger(value: str) -> str:
    parse_trigger(value)
    return value


def _basic_route_type(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "basic":
        return "Basic"
    if isinstance(value, str):
        raise ValueError(f"route_type {value!r} is not supported; only 'Basic' routing is")
    return value


def _sms_route_type(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("none", "basic"):
        return "None" if value.strip().lower() == "none" else "Basic"
    if isinstance(value, str):
        raise ValueError(f"sms route_type {value!r} is not supported; use 'None' or 'Basic'")
    return value


PoolName = Annotated[
    str, Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_check_name)
]
Minutes = Annotated[int, Field(strict=True, ge=1, le=MAX_MATCH_PERIOD)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
Identifier = Annotated[int, Field(strict=True, ge=0)]
CountryCode = Annotated[str, Field(strict=True), AfterValidator(_check_country)]
NumberToReplace = Annotated[str, Field(strict=True), AfterValidator(_check_number_to_replace)]
DialableNumber = Annotated[str, Field(strict=True), AfterValidator(_check_dialable)]
E164Number = Annotated[str, Field(strict=True), AfterValidator(_check_e164)]
ReferrerDomain = Annotated[str, Field(strict=True), AfterValidator(_check_referrer)]
UrlTrigger = Annotated[str, Field(strict=True), AfterValidator(_check_trigger)]
StrictBool = Annotated[bool, Field(strict=True)]


class PhoneNumberRequest(_Model):
    """Which numbers to buy: ``geographic`` (by ``city`` or ``area_code``), ``tollfree``
    or ``national``, in ``iso_country``."""

    number_type: Literal["international"]
    match_type: Literal["geographic", "tollfree", "national"]
    iso_country: CountryCode
    city: Annotated[str, Field(strict=True, min_length=1)] | None = None
    region: Annotated[str, Field(strict=True, min_length=1)] | None = None
    area_code: Annotated[str, Field(strict=True), AfterValidator(_check_area_code)] | None = None

    @model_validator(mode="after")
    def _locality(self) -> PhoneNumberRequest:
        if self.match_type == "geographic":
            if self.city is None and self.area_code is None:
                raise ValueError("match_type 'geographic' needs a city or an area_code")
        elif self.city is not None or self.area_code is not None or self.region is not None:
            raise ValueError(
                f"city, region and area_code only apply to match_type 'geographic', "
                f"not {self.match_type!r}"
            )
        return self


class TrackingSource(_Model):
    """Which visitors a pool's numbers are shown to: by referrer and landing-URL triggers."""

    referrer_domain: ReferrerDomain
    url_triggers: list[UrlTrigger] | None = None
    track_organic: StrictBool = False


class ReplacementConfiguration(_Model):
    """Which numbers on the website to replace, and for which visitors."""

    numbers_to_replace: list[NumberToReplace] | None = None
    replace_all_numbers: StrictBool = False
    tracking_sources: Annotated[list[TrackingSource], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_of(self) -> ReplacementConfiguration:
        if self.replace_all_numbers and self.numbers_to_replace is not None:
            raise ValueError(
                "numbers_to_replace cannot be combined with replace_all_numbers: true; keep one"
            )
        if not self.replace_all_numbers and not self.numbers_to_replace:
            raise ValueError(
                "list at least one number in numbers_to_replace, or set replace_all_numbers: true"
            )
        return self


class Route(_Model):
    """Where calls (or messages) to the pool's numbers are forwarded."""

    termination_number: DialableNumber


class CallRoutes(_Model):
    """Call routing; only ``Basic`` (forward to ``route.termination_number``) exists."""

    route_type: Annotated[Literal["Basic"], BeforeValidator(_basic_route_type)]
    route: Route


class SmsRoutes(_Model):
    """SMS routing; ``{"route_type": "None"}`` unless set."""

    route_type: Annotated[Literal["None", "Basic"], BeforeValidator(_sms_route_type)] = "None"
    route: Route | None = None

    @model_validator(mode="after")
    def _route_needed(self) -> SmsRoutes:
        if self.route_type == "Basic" and self.route is None:
            raise ValueError("sms route_type 'Basic' needs a route with a termination_number")
        if self.route_type == "None" and self.route is not None:
            raise ValueError("sms route_type 'None' takes no route")
        return self


class PoolNumber(_Model):
    """One tracking number of a pool, with the vendor's id."""

    id: Identifier
    phone_number: E164Number


class Referrer(_Model):
    """One entry of the vendor's referrer catalogue (note the capital ``Id``)."""

    id: Annotated[int, Field(strict=True, alias="Id")]
    name: Annotated[str, Field(strict=True, min_length=1)]
    domain: Annotated[str, Field(strict=True, min_length=1)]


def _raw(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _country_of_request(data: Any) -> str | None:
    code = _raw(data, "phone_number_request", "iso_country")
    if isinstance(code, str) and code.strip().upper() in SUPPORTED_COUNTRIES:
        return code.strip().upper()
    return None


def _country_of_numbers(data: Any) -> str | None:
    numbers = _raw(data, "numbers")
    if isinstance(numbers, list):
        for item in numbers:
            phone = _raw(item, "phone_number")
            if isinstance(phone, str):
                try:
                    country = country_of(phonenumbers.parse(phone, None))
                except phonenumbers.NumberParseException:
                    continue
                if country is not None:
                    return country
    return None


class _PoolFields(_Model):
    """Fields shared by the request and the response."""

    name: PoolName
    match_period: Minutes
    quantity: Quantity
    replacement_configuration: ReplacementConfiguration
    call_routes: CallRoutes


class NumberPoolRequest(_PoolFields):
    """The body POSTed to ``/groups/{group_id}/numberpools`` to create a pool."""

    phone_number_request: PhoneNumberRequest
    sms_routes: SmsRoutes | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _with_country(
        cls, data: Any, handler: ModelWrapValidatorHandler[NumberPoolRequest]
    ) -> NumberPoolRequest:
        token = _POOL_COUNTRY.set(_country_of_request(data))
        try:
            return handler(data)
        finally:
            _POOL_COUNTRY.reset(token)

    @property
    def key(self) -> str:
        """The pool's key in rules, stores and reports: its name (a request has no id yet)."""
        return self.name

    @property
    def country(self) -> str:
        """The pool's country: the requested ``iso_country``."""
        return self.phone_number_request.iso_country

    @property
    def is_active(self) -> bool:
        """Always ``True``: a request has no status, and counts as an active pool."""
        return True

    def to_pool(
        self,
        *,
        id: int,
        group_id: int,
        numbers: list[PoolNumber],
        status: str = "active",
    ) -> NumberPool:
        """The pool the API returns for this request: the echo plus ids, status and numbers."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"phone_number_request"})
        data.update(id=id, group_id=group_id, status=status)
        data["numbers"] = [n.model_dump(mode="json") for n in numbers]
        data.setdefault("sms_routes", SmsRoutes().model_dump(mode="json"))
        return NumberPool.model_validate(data)


class NumberPool(_PoolFields):
    """A pool as the API returns it."""

    id: Identifier
    group_id: Identifier
    status: Annotated[str, Field(strict=True, min_length=1)]
    numbers: list[PoolNumber]
    sms_routes: SmsRoutes = SmsRoutes()
    phone_number_request: PhoneNumberRequest | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _with_country(cls, data: Any, handler: ModelWrapValidatorHandler[NumberPool]) -> NumberPool:
        country = _country_of_numbers(data) or _country_of_request(data)
        token = _POOL_COUNTRY.set(country)
        try:
            return handler(data)
        finally:
            _POOL_COUNTRY.reset(token)

    @model_validator(mode="after")
    def _one_country(self) -> NumberPool:
        countries = {country_of(phonenumbers.parse(n.phone_number, None)) for n in self.numbers}
        countries.discard(None)
        if len(countries) > 1:
            found = ", ".join(sorted(map(str, countries)))
            raise ValueError(f"a pool's numbers must all be in one country; found {found}")
        ids = [n.id for n in self.numbers]
        phones = [n.phone_number for n in self.numbers]
        if len(set(ids)) != len(ids) or len(set(phones)) != len(phones):
            raise ValueError("numbers lists the same number (or number id) twice")
        return self

    @property
    def key(self) -> str:
        """The pool's key in rules, stores and reports: its ``id``, as text."""
        return str(self.id)

    @property
    def country(self) -> str | None:
        """The pool's country: that of its numbers, else of its number request."""
        for n in self.numbers:
            country = country_of(phonenumbers.parse(n.phone_number, None))
            if country is not None:
                return country
        return self.phone_number_request.iso_country if self.phone_number_request else None

    @property
    def e164_numbers(self) -> tuple[str, ...]:
        """The pool's tracking numbers in E.164, in the order the API listed them."""
        return tuple(n.phone_number for n in self.numbers)

    @property
    def is_active(self) -> bool:
        """Whether the pool hands out numbers: its ``status`` is ``active``.

        Compared trimmed and ignoring case; every other status (``deleted``,
        ``inactive``, ...) means the pool leases no numbers.
        """
        return self.status.strip().lower() == "active"


AnyPool: TypeAlias = NumberPool | NumberPoolRequest


class PoolNumbersRequest(BaseModel):
    """The body POSTed to ``/numberpools/{pool_id}/numbers`` to add numbers to a pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantity: Quantity
    phone_number_request: PhoneNumberRequest


# The key order of the vendor's response examples.
_RESPONSE_ORDER = (
    "id",
    "name",
    "group_id",
    "status",
    "match_period",
    "quantity",
    "numbers",
    "replacement_configuration",
    "sms_routes",
    "call_routes",
)


def pool_json(pool: NumberPool) -> dict[str, Any]:
    """A pool as the API writes it: the vendor's fields, in the vendor's order."""
    data = pool.model_dump(mode="json", by_alias=True)
    ordered = {key: data.pop(key) for key in _RESPONSE_ORDER if key in data}
    return ordered | data


def status_warning(pool: AnyPool) -> str | None:
    """Why ``pool`` hands out no numbers, or ``None`` when it does.

    ``None`` for an active pool and for a request (a request has no status);
    otherwise one plain sentence naming the status, the wording that ``lint``,
    ``RuleSet.explain`` and ``dni-engine validate`` use.
    """
    if isinstance(pool, NumberPoolRequest) or pool.is_active:
        return None
    status = pool.status if len(pool.status) <= 40 else pool.status[:40] + "..."
    return f"status {status!r} is not 'active': the pool leases no numbers"


@dataclass(frozen=True, slots=True)
class _Identity:
    """What the rules between pools read of one pool: its names, ids and numbers.

    Built from a validated pool, or as far as it can be read from a document
    that failed validation, so that those rules still run on it.
    """

    index: int
    name: str | None
    response: bool
    id: int | None = None
    group_id: int | None = None
    # (number id, tracking number in E.164) per entry of ``numbers``; None where unreadable
    numbers: tuple[tuple[int | None, str | None], ...] = ()

    def label(self) -> str:
        return f"[{self.index}] {self.name!r}" if self.name is not None else f"[{self.index}]"

    def called(self) -> str:
        return f"pool {self.name!r}" if self.name is not None else "this pool"


def _identity_of_pool(index: int, pool: AnyPool) -> _Identity:
    if isinstance(pool, NumberPoolRequest):
        return _Identity(index, pool.name, False)
    numbers = tuple((n.id, n.phone_number) for n in pool.numbers)
    return _Identity(index, pool.name, True, pool.id, pool.group_id, numbers)


def _whole(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _identity_of_document(index: int, doc: Any) -> _Identity | None:
    """The identity of a pool document that failed validation, from its readable fields."""
    if not isinstance(doc, dict):
        return None
    name = doc.get("name")
    if not (isinstance(name, str) and name.strip() and len(name) <= MAX_NAME_LENGTH):
        name = None
    if not is_response(doc):
        return _Identity(index, name, False)
    numbers: list[tuple[int | None, str | None]] = []
    items = doc.get("numbers")
    for item in items if isinstance(items, list) else ():
        phone = _raw(item, "phone_number")
        try:
            normal = _check_e164(phone) if isinstance(phone, str) else None
        except ValueError:
            normal = None
        numbers.append((_whole(_raw(item, "id")), normal))
    return _Identity(
        index, name, True, _whole(doc.get("id")), _whole(doc.get("group_id")), tuple(numbers)
    )


def _pool_set_problems(
    pools: Sequence[_Identity], overflow_numbers: Sequence[str | None] = (), *, names: bool
) -> list[tuple[int, Problem]]:
    """The problems between ``pools``, each with the index of the pool at fault."""
    found: list[tuple[int, Problem]] = []

    def add(who: _Identity, loc: tuple[int | str, ...], reason: str) -> None:
        found.append((who.index, Problem(format_path((who.index, *loc)), reason)))

    first_named: dict[str, _Identity] = {}  # by normalised name, any kind of pool
    request_named: dict[str, _Identity] = {}
    grouped: dict[tuple[int, str], _Identity] = {}  # responses, by group and name
    with_id: dict[int, _Identity] = {}
    request_keys: dict[str, _Identity] = {}  # a request's key is its name as written
    response_keys: dict[str, _Identity] = {}  # a response's key is str(id)
    with_number: dict[str, _Identity] = {}
    with_number_id: dict[int, _Identity] = {}
    for who in pools:
        name_clash = False
        if names and who.name is not None:
            name = who.name.strip().lower()
            # Names are unique per group; a request's group is not known yet,
            # so it may share a name with no other pool.
            if not who.response:
                other = first_named.get(name)
            else:
                candidates = [request_named.get(name)]
                if who.group_id is not None:
                    candidates.append(grouped.get((who.group_id, name)))
                other = min(
                    (c for c in candidates if c is not None), key=lambda c: c.index, default=None
                )
            if other is not None:
                name_clash = True
                where = f" in group {who.group_id}" if other.response and who.response else ""
                add(
                    who,
                    ("name",),
                    f"pool name {who.name!r} is used twice (also by pool [{other.index}]{where}); "
                    "names are unique per group",
                )
            first_named.setdefault(name, who)
            if not who.response:
                request_named.setdefault(name, who)
            elif who.group_id is not None:
                grouped.setdefault((who.group_id, name), who)
        if who.response and who.id is not None:
            key = str(who.id)
            twin = with_id.get(who.id)
            request = request_keys.get(key)
            if twin is not None:
                add(
                    who,
                    ("id",),
                    f"{who.called()} has the id {who.id}, as pool {twin.label()} does; "
                    "pool ids are unique",
                )
            elif request is not None:
                add(
                    who,
                    ("id",),
                    f"{who.called()} has the id {who.id}, the name of the request "
                    f"{request.label()}, which is that request's key; pool keys are unique",
                )
            with_id.setdefault(who.id, who)
            response_keys.setdefault(key, who)
        elif not who.response and who.name is not None:
            response = response_keys.get(who.name)
            request = request_keys.get(who.name)
            if response is not None:
                add(
                    who,
                    ("name",),
                    f"the request's name {who.name!r} is its key, and the id of pool "
                    f"{response.label()}; pool keys are unique",
                )
            elif request is not None and not name_clash:
                add(
                    who,
                    ("name",),
                    f"the request's name {who.name!r} is its key, and the key of the request "
                    f"{request.label()}; pool keys are unique",
                )
            request_keys.setdefault(who.name, who)
        for k, (number_id, number) in enumerate(who.numbers):
            owner = with_number.get(number) if number is not None else None
            id_owner = with_number_id.get(number_id) if number_id is not None else None
            if owner is not None and owner.index != who.index:
                add(
                    who,
                    ("numbers", k, "phone_number"),
                    f"{who.called()} lists {number}, already a tracking number of pool "
                    f"{owner.label()}; a number belongs to one pool",
                )
            elif id_owner is not None and id_owner.index != who.index:
                add(
                    who,
                    ("numbers", k, "id"),
                    f"{who.called()} lists the number id {number_id}, already used by pool "
                    f"{id_owner.label()}; number ids are unique",
                )
            if number is not None:
                with_number.setdefault(number, who)
            if number_id is not None:
                with_number_id.setdefault(number_id, who)
    for who, overflow in zip(pools, overflow_numbers, strict=False):
        if overflow is None:
            continue
        owner = with_number.get(overflow)
        if owner is not None:
            whose = "its own" if owner.index == who.index else f"pool {owner.label()}'s"
            add(
                who,
                ("overflow_number",),
                f"{who.called()} has the overflow number {overflow}, which is one of {whose} "
                "tracking numbers; an overflow number is tracked apart from every pool's numbers",
            )
    return found


def check_pool_set(
    pools: Sequence[AnyPool],
    *,
    overflow_numbers: Sequence[str | None] = (),
    names: bool = False,
) -> list[Problem]:
    """Every problem between the pools of one site, which each pool alone cannot show.

    The rules: pool keys are unique (ids are unique, and a request's name,
    its key, is no other request's name and no pool's id); a tracking number
    (E.164, compared as written) and a number id belong to one pool; with
    ``overflow_numbers`` (entry ``i`` is pool ``i``'s overflow number in
    E.164, or ``None``; missing entries mean none), no overflow number is a
    tracking number of any pool, its own included. With ``names`` (as
    :func:`load_pools` checks a document), also the vendor's rule that a
    pool name (trimmed, ignoring case) is used once per group, a request
    (whose group is not known yet) sharing its name with no other pool;
    without it, pools gathered from several sources (the vendor's separate
    examples repeat a name in one group) may share a name.

    Each problem's path starts with the index in ``pools`` of the pool at
    fault (``[1].id``, ``[1].numbers[0].phone_number``); its reason names that
    pool, and the pool it clashes with by index and name. A clash of names,
    ids or numbers is reported once, at the later pool; an overflow number
    at the pool that has it. An entry that is not a pool is a
    problem at its index. Returns ``[]`` when the set is sound; never raises
    for a sequence of pools (``ValueError`` for more overflow numbers than
    pools).
    """
    if len(overflow_numbers) > len(pools):
        raise ValueError(f"{len(overflow_numbers)} overflow numbers given for {len(pools)} pools")
    problems: list[Problem] = []
    identities: list[_Identity] = []
    for index, pool in enumerate(pools):
        if isinstance(pool, NumberPool | NumberPoolRequest):
            identities.append(_identity_of_pool(index, pool))
        else:
            kind = type(pool).__name__
            reason = f"expected a NumberPool or NumberPoolRequest, got {kind}"
            problems.append(Problem(format_path((index,)), reason))
            identities.append(_Identity(index, None, False))
    found = _pool_set_problems(identities, overflow_numbers, names=names)
    problems.extend(problem for _, problem in found)
    return problems


_READABLE = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not part of the Number Pool API)",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def _reason(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in _READABLE:
        return _READABLE[kind]
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"{err['input']!r} is not allowed; expected {expected}"
    if kind == "too_short" and isinstance(err["input"], list):
        return "must list at least one item"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def problems_from(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into readable :class:`Problem` lines."""
    return [Problem(format_path((*prefix, *err["loc"])), _reason(err)) for err in exc.errors()]


def is_response(data: Any) -> bool:
    """Guess whether a pool document is an API response (it has ``id`` or ``numbers``)."""
    return isinstance(data, dict) and ("numbers" in data or "id" in data or "status" in data)


def parse_pool(data: Any, path: tuple[int | str, ...] = ()) -> AnyPool:
    """Validate one pool document, request or response (auto-detected).

    Raises :class:`ConfigError` listing every problem with its JSON path.
    """
    if not isinstance(data, dict):
        raise ConfigError([Problem(format_path(path), "a pool must be a JSON object")])
    model: type[NumberPool] | type[NumberPoolRequest] = (
        NumberPool if is_response(data) else NumberPoolRequest
    )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, path)) from None


def iter_pool_documents(data: Any) -> Iterator[tuple[tuple[int | str, ...], Any]]:
    """Yield ``(path, document)`` for a single pool object or a JSON list of them."""
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield (index,), item
    else:
        yield (), data


_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_TOKENS = re.compile(_JSON_STRING + r"|[\[\]{},]", re.DOTALL)
_TOO_DEEP = (
    f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep here; "
    "a pool document needs fewer than 10"
)


def _nested_too_deep(data: Any) -> tuple[int | str, ...] | None:
    """Where parsed JSON holds an array or object more than :data:`MAX_JSON_DEPTH` levels deep."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) >= MAX_JSON_DEPTH:
            return loc
        items = value.items() if type(value) is dict else enumerate(value)
        for key, item in items:
            if type(item) is dict or type(item) is list:
                stack.append((item, (*loc, key)))
    return None


def _json_key(token: str) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        return token[1:-1]
    return key if isinstance(key, str) else token[1:-1]


def _too_deep_at(text: str) -> tuple[int | str, ...] | None:
    """Where JSON ``text`` opens an array or object more than :data:`MAX_JSON_DEPTH` levels deep.

    For text that the parser gave up on (too deep for it), so read as tokens:
    strings, brackets and commas.
    """
    # One frame per open array or object: [is an object, index or key, a key comes next]
    frames: list[list[Any]] = []
    for token in _JSON_TOKENS.finditer(text):
        char = text[token.start()]
        if char in "[{":
            if len(frames) >= MAX_JSON_DEPTH:
                return tuple(frame[1] for frame in frames)
            frames.append([char == "{", "?" if char == "{" else 0, True])
        elif not frames:
            continue
        elif char in "]}":
            frames.pop()
        elif char == ",":
            top = frames[-1]
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif frames[-1][0] and frames[-1][2]:  # a string where an object's key goes
            frames[-1][1] = _json_key(token.group())
            frames[-1][2] = False
    return None


def _depth_problem(loc: tuple[int | str, ...] | None) -> Problem:
    path = format_path(loc) if loc is not None else "$"
    if len(path) > 300:
        path = path[:300] + "..."
    return Problem(path, _TOO_DEEP)


_Located: TypeAlias = list[tuple[tuple[int | str, ...], Problem]]


def _read_json(text: str | bytes, source: str | None) -> tuple[Any, _Located]:
    """Parse a JSON document; with the problems of its over-long integers, by location.

    Raises :class:`ConfigError` for text that is not JSON or is nested deeper
    than :data:`MAX_JSON_DEPTH`. An integer of more than
    :data:`MAX_JSON_INT_DIGITS` digits is read as a stand-in (a distinct int
    object one digit longer than the limit) and reported where it stands.
    """
    try:
        document = (
            text
            if isinstance(text, str)
            else text.decode(json.detect_encoding(text), "surrogatepass")
        )
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("$", f"not valid JSON: {exc}")], source) from None
    huge: dict[int, tuple[int, int]] = {}  # id(stand-in) -> (digits, stand-in)

    def parse_int(digits: str) -> int:
        count = len(digits) - digits.startswith("-")
        if count <= MAX_JSON_INT_DIGITS:
            return int(digits)
        stand_in = int(digits[: len(digits) - count] + "1" + "0" * MAX_JSON_INT_DIGITS)
        huge[id(stand_in)] = (count, stand_in)
        return stand_in

    try:
        data = json.loads(document, parse_int=parse_int)
    except RecursionError:  # far deeper than the limit: say where the limit is passed
        raise ConfigError([_depth_problem(_too_deep_at(document))], source) from None
    except ValueError as exc:
        raise ConfigError([Problem("$", f"not valid JSON: {exc}")], source) from None
    deep = _nested_too_deep(data) if type(data) is dict or type(data) is list else None
    if deep is not None:
        raise ConfigError([_depth_problem(deep)], source)
    return data, (_huge_ints(data, huge) if huge else [])


def _huge_ints(data: Any, huge: dict[int, tuple[int, int]]) -> _Located:
    """Where the stand-ins of over-long integers are in ``data``, in document order."""
    found: _Located = []
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(reversed([((*loc, k), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([((*loc, i), v) for i, v in enumerate(value)]))
        elif type(value) is int and id(value) in huge and huge[id(value)][1] is value:
            digits = huge[id(value)][0]
            reason = (
                f"a whole number of {digits:,} digits; numbers in a pool document have at "
                f"most {MAX_JSON_INT_DIGITS}"
            )
            found.append((loc, Problem(format_path(loc), reason)))
    return found


def load_pools(text: str | bytes, source: str | None = None) -> list[AnyPool]:
    """Parse JSON text holding one pool or a list of pools (requests or responses).

    Every problem in every pool is collected before raising one
    :class:`ConfigError`, listed pool by pool: each pool's own problems, then
    those between it and the pools before it (:func:`check_pool_set` with
    ``names``, read as far as possible from pools that are invalid themselves). Text that is not
    JSON, or nests arrays and objects more than :data:`MAX_JSON_DEPTH` levels
    deep, raises a one-problem :class:`ConfigError`; an integer of more than
    :data:`MAX_JSON_INT_DIGITS` digits is a problem at its path. Never raises
    anything else for any text or bytes.
    """
    data, huge = _read_json(text, source)
    huge_paths = {problem.path for _, problem in huge}
    if not isinstance(data, dict | list):
        if huge:
            raise ConfigError([problem for _, problem in huge], source)
        raise ConfigError(
            [Problem("$", "expected a pool object or a list of pool objects")], source
        )
    if isinstance(data, list) and not data:
        raise ConfigError([Problem("$", "the list holds no pools")], source)
    pools: list[AnyPool] = []
    identities: list[_Identity] = []
    per_pool: list[list[Problem]] = []
    for index, (path, doc) in enumerate(iter_pool_documents(data)):
        own = [problem for loc, problem in huge if loc[: len(path)] == path]
        try:
            pool = parse_pool(doc, path)
        except ConfigError as exc:
            # At an over-long integer, that is the problem (not also "too large"),
            # unless the field itself is unknown.
            unknown = _READABLE["extra_forbidden"]
            own += [p for p in exc.problems if p.path not in huge_paths or p.reason == unknown]
            identity = _identity_of_document(index, doc)
            if identity is not None:
                identities.append(identity)
        else:
            pools.append(pool)
            identities.append(_identity_of_pool(index, pool))
        per_pool.append(own)
    for index, problem in _pool_set_problems(identities, names=True):
        per_pool[index].append(problem)
    problems = [problem for own in per_pool for problem in own]
    if problems:
        raise ConfigError(problems, source)
    return pools
