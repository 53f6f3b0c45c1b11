"""Pydantic models of the vendor's Number Pool API, and their validation.

:class:`NumberPoolRequest` is what is POSTed to create a pool;
:class:`NumberPool` is what the API returns (the request echoed back with
``id``, ``group_id``, ``status`` and ``numbers``, defaults filled in). Both
dump back to the vendor's JSON with ``model_dump(mode="json", by_alias=True)``.

Validation reports every problem at once; :func:`load_pools` turns pydantic's
errors into a :class:`~dni_engine.errors.ConfigError` whose lines carry the JSON
path and a plain reason.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Iterator
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

MAX_QUANTITY = 1000
MAX_MATCH_PERIOD = 43_200  # 30 days, in minutes
MAX_NAME_LENGTH = 255

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


# ---- field types -----------------------------------------------------------


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


# ---- models ------------------------------------------------------------------


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
    def country(self) -> str:
        """The pool's country: the requested ``iso_country``."""
        return self.phone_number_request.iso_country

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


AnyPool: TypeAlias = NumberPool | NumberPoolRequest


# ---- loading documents -------------------------------------------------------

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


def load_pools(text: str | bytes, source: str | None = None) -> list[AnyPool]:
    """Parse JSON text holding one pool or a list of pools (requests or responses).

    Every problem in every pool is collected before raising one
    :class:`ConfigError`; invalid JSON raises a one-line :class:`ConfigError`.
    Duplicate pool names in one document are an error (names are unique per group).
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("$", f"not valid JSON: {exc}")], source) from None
    if not isinstance(data, dict | list):
        raise ConfigError(
            [Problem("$", "expected a pool object or a list of pool objects")], source
        )
    if isinstance(data, list) and not data:
        raise ConfigError([Problem("$", "the list holds no pools")], source)
    pools: list[AnyPool] = []
    problems: list[Problem] = []
    for path, doc in iter_pool_documents(data):
        try:
            pools.append(parse_pool(doc, path))
        except ConfigError as exc:
            problems.extend(exc.problems)
    seen: dict[str, int] = {}
    for index, pool in enumerate(pools):
        key = pool.name.strip().lower()
        if key in seen and not problems:
            problems.append(
                Problem(
                    format_path((index, "name")),
                    f"pool name {pool.name!r} is used twice (also by pool {seen[key]})",
                )
            )
        seen.setdefault(key, index)
    if problems:
        raise ConfigError(problems, source)
    return pools
