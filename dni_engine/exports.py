"""Conversion exports: files of tracked calls that ad platforms import as they are.

Each function takes call records (:meth:`Engine.calls
<dni_engine.engine.Engine.calls>`) and gives an :class:`Export`: the CSV text
laid out as the platform's published import template, its rows, and how many
calls were left out and why.

* :func:`google_ads_clicks`: Google Ads *conversions from clicks*. A first row
  ``Parameters:TimeZone=<zone>``, then the template's header
  ``Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency``.
  With ``braids=True`` the columns ``GBRAID`` and ``WBRAID`` follow ``Google
  Click ID`` and a call whose visit had only a ``gbraid`` or ``wbraid`` is
  exported with it; each row carries one identifier only (``gclid`` first,
  then ``gbraid``, then ``wbraid``), as the platform refuses a row with two.
  The conversion time is the call's start.
* :func:`google_ads_calls`: Google Ads *conversions from calls*:
  ``Parameters:TimeZone=<zone>``, then ``Caller's Phone Number,Call Start
  Time,Conversion Name,Conversion Time,Conversion Value,Conversion Currency``.
  The caller's number is written in E.164 (``+16502531234``); the conversion
  time is the call's end (start plus duration), at least one second after its
  start, as the platform wants it after the call. Only calls tied to a visit
  that carried a Google click id (``gclid``, ``gbraid``, ``wbraid``) are
  exported unless ``require_click_id=False``.
* :func:`microsoft_ads`: Microsoft Advertising offline conversions:
  ``Parameters:TimeZone=<±HHMM>``, then ``Microsoft Click ID,Conversion
  Name,Conversion Time,Conversion Value,Conversion Currency``, from the
  visit's ``msclkid``.

Times are written ``yyyy-MM-dd HH:mm:ss`` in the file's time zone: for Google
an IANA zone name (``Europe/London``, recommended by the platform as it
follows daylight saving time) or a fixed offset (``+0100``); for Microsoft a
fixed offset. Values are written with two decimals, empty when not given (the
platform then uses the conversion action's default).

A call is left out, and counted in :attr:`Export.skipped` under its reason,
when it is tied to no visit, when its visit carried no click id of the
platform, when it is shorter than ``min_duration`` seconds (or its duration
is unknown while ``min_duration`` is above zero: platforms count calls above a
duration), when its attribution's confidence is below ``min_confidence``, or
(call conversions) when the caller's number is withheld or cannot be a
phone number (its length is impossible for its country).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from dni_engine.calls import CallRecord

__all__ = [
    "GOOGLE_CALLS_HEADER",
    "GOOGLE_CLICKS_BRAID_HEADER",
    "GOOGLE_CLICKS_HEADER",
    "LOW_CONFIDENCE",
    "MICROSOFT_HEADER",
    "NOT_ATTRIBUTED",
    "NO_CALLER",
    "NO_CLICK_ID",
    "NO_DURATION",
    "TIME_FORMAT",
    "TOO_SHORT",
    "Export",
    "google_ads_calls",
    "google_ads_clicks",
    "microsoft_ads",
]

GOOGLE_CLICKS_HEADER: Final = (
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
"""The header of Google Ads' conversions-from-clicks import template."""
GOOGLE_CLICKS_BRAID_HEADER: Final = (
    "Google Click ID",
    "GBRAID",
    "WBRAID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
"""The same header with the ``GBRAID`` and ``WBRAID`` columns (``braids=True``)."""
GOOGLE_CALLS_HEADER: Final = (
    "Caller's Phone Number",
    "Call Start Time",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
"""The header of Google Ads' conversions-from-calls import template."""
MICROSOFT_HEADER: Final = (
    "Microsoft Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
"""The header of Microsoft Advertising's offline conversions import template."""
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
"""How times are written (``yyyy-MM-dd HH:mm:ss``, in the file's time zone)."""

NOT_ATTRIBUTED: Final = "not tied to a visit"
NO_CLICK_ID: Final = "no click id of the platform"
TOO_SHORT: Final = "shorter than the minimum duration"
NO_DURATION: Final = "duration unknown"
LOW_CONFIDENCE: Final = "confidence below the minimum"
NO_CALLER: Final = "caller's number withheld or invalid"

_GOOGLE_IDS: Final = ("gclid", "gbraid", "wbraid")
_OFFSET: Final = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


@dataclass(frozen=True, slots=True)
class Export:
    """One import file: its parameters row, header and rows, and the calls left out.

    ``text`` is the CSV file (``\\r\\n`` line ends); ``skipped`` maps each
    reason a call was left out to how many were.
    """

    platform: str
    parameters: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    skipped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def exported(self) -> int:
        """How many calls the file holds."""
        return len(self.rows)

    @property
    def skipped_total(self) -> int:
        """How many calls were left out."""
        return sum(self.skipped.values())

    @property
    def text(self) -> str:
        """The file: the parameters row, the header row, then one row per call."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([self.parameters])
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()


def google_ads_clicks(
    records: Iterable[CallRecord],
    *,
    conversion_name: str,
    time_zone: str = "UTC",
    value: float | None = None,
    currency: str | None = None,
    min_duration: float = 0.0,
    min_confidence: float = 0.0,
    braids: bool = False,
) -> Export:
    """Google Ads conversions from clicks, one per call tied to a visit with a Google click id.

    ``conversion_name`` is the conversion action's name in the account;
    ``time_zone`` an IANA zone or ``±HHMM``; ``value`` and ``currency`` (ISO
    4217) go to every row. See the module doc for ``braids`` and the calls
    left out. Raises ``ValueError`` naming the argument at fault.
    """
    zone, zone_text = _google_zone(time_zone)
    _check(conversion_name, value, currency, min_duration, min_confidence)
    ids = _GOOGLE_IDS if braids else _GOOGLE_IDS[:1]

    def row(record: CallRecord) -> tuple[str, ...] | str:
        reason = _common_reason(record, min_duration, min_confidence)
        found = None if reason is not None else _first_id(record, ids)
        if found is None:
            return reason or NO_CLICK_ID
        name, click_id = found
        identifiers = [click_id if name == key else "" for key in ids]
        cells = (_time(record.call.started, zone), _value(value), currency or "")
        return (*identifiers, conversion_name, *cells)

    header = GOOGLE_CLICKS_BRAID_HEADER if braids else GOOGLE_CLICKS_HEADER
    return _export("google_ads_clicks", zone_text, header, records, row)


def google_ads_calls(
    records: Iterable[CallRecord],
    *,
    conversion_name: str,
    time_zone: str = "UTC",
    value: float | None = None,
    currency: str | None = None,
    min_duration: float = 0.0,
    min_confidence: float = 0.0,
    require_click_id: bool = True,
    region: str | None = None,
) -> Export:
    """Google Ads conversions from calls: the caller's number and the call's start time.

    ``region`` (ISO 3166 code) reads a caller's number written nationally;
    E.164 numbers need none. With ``require_click_id`` (the default) only
    calls whose visit carried a Google click id are exported (see the module
    doc). Raises ``ValueError`` naming the argument at fault.
    """
    zone, zone_text = _google_zone(time_zone)
    _check(conversion_name, value, currency, min_duration, min_confidence)

    def row(record: CallRecord) -> tuple[str, ...] | str:
        reason = _common_reason(record, min_duration, min_confidence)
        if reason is None and require_click_id and _first_id(record, _GOOGLE_IDS) is None:
            reason = NO_CLICK_ID
        caller = None if reason is not None else _e164(record.call.caller, region)
        if caller is None:
            return reason or NO_CALLER
        call = record.call
        end = max(call.started + (call.duration or 0.0), call.started + 1.0)
        started, ended = _time(call.started, zone), _time(end, zone)
        return (caller, started, conversion_name, ended, _value(value), currency or "")

    return _export("google_ads_calls", zone_text, GOOGLE_CALLS_HEADER, records, row)


def microsoft_ads(
    records: Iterable[CallRecord],
    *,
    conversion_name: str,
    time_zone: str = "+0000",
    value: float | None = None,
    currency: str | None = None,
    min_duration: float = 0.0,
    min_confidence: float = 0.0,
) -> Export:
    """Microsoft Advertising offline conversions, one per call tied to a visit with an ``msclkid``.

    ``time_zone`` is a fixed offset ``±HHMM`` (or ``UTC``). Raises
    ``ValueError`` naming the argument at fault.
    """
    offset = _offset(time_zone)
    if offset is None:
        raise ValueError(f"time_zone: {time_zone!r} is not a UTC offset such as +0100 or -0800")
    zone, zone_text = offset
    _check(conversion_name, value, currency, min_duration, min_confidence)

    def row(record: CallRecord) -> tuple[str, ...] | str:
        reason = _common_reason(record, min_duration, min_confidence)
        found = None if reason is not None else _first_id(record, ("msclkid",))
        if found is None:
            return reason or NO_CLICK_ID
        started = _time(record.call.started, zone)
        return (found[1], conversion_name, started, _value(value), currency or "")

    return _export("microsoft_ads", zone_text, MICROSOFT_HEADER, records, row)


# ---- the parts ------------------------------------------------------------------------


def _export(
    kind: str,
    zone_text: str,
    header: tuple[str, ...],
    records: Iterable[CallRecord],
    row: Callable[[CallRecord], tuple[str, ...] | str],
) -> Export:
    """The export of ``records``: ``row`` gives each one's cells, or why it is left out."""
    rows: list[tuple[str, ...]] = []
    skipped: dict[str, int] = {}
    for record in records:
        cells = row(record)
        if isinstance(cells, str):
            _skip(skipped, cells)
        else:
            rows.append(cells)
    return Export(
        kind, f"Parameters:TimeZone={zone_text}", header, tuple(rows), MappingProxyType(skipped)
    )


def _common_reason(record: CallRecord, min_duration: float, min_confidence: float) -> str | None:
    """Why a call is left out of every export, or ``None``."""
    attribution = record.attribution
    if attribution.kind != "lease" or attribution.lease is None:
        return NOT_ATTRIBUTED
    duration = record.call.duration
    if min_duration > 0:
        if duration is None:
            return NO_DURATION
        if duration < min_duration:
            return TOO_SHORT
    if attribution.confidence < min_confidence:
        return LOW_CONFIDENCE
    return None


def _skip(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def _first_id(record: CallRecord, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first click id of ``names`` the call's visit carried, as ``(name, value)``."""
    facts = record.facts
    if facts is None:
        return None
    for name in names:
        value = facts.click_id(name)
        if value:
            return name, value
    return None


def _e164(caller: str, region: str | None) -> str | None:
    text = caller.strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(
        parsed
    ):  # carriers report; numbers need not be allocated
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _time(seconds: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(seconds, zone).strftime(TIME_FORMAT)


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _check(
    name: str,
    value: float | None,
    currency: str | None,
    min_duration: float,
    min_confidence: float,
) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("conversion_name: must be a non-empty string")
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        raise ValueError("value: must be a number >= 0, or None")
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError("currency: must be an ISO 4217 code such as USD or GBP")
    if not (isinstance(min_duration, int | float) and min_duration >= 0):
        raise ValueError("min_duration: must be a number of seconds >= 0")
    if not (isinstance(min_confidence, int | float) and 0 <= min_confidence <= 1):
        raise ValueError("min_confidence: must be a number from 0 to 1")


def _offset(text: str) -> tuple[tzinfo, str] | None:
    """A fixed offset ``±HHMM`` (or ``±HH:MM``, ``UTC``) as a zone and its ``±HHMM`` text."""
    if text.strip().upper() in ("UTC", "Z", "GMT"):
        return UTC, "+0000"
    match = _OFFSET.match(text.strip())
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or int(minutes) > 59:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta), f"{sign}{hours}{minutes}"


def _google_zone(text: str) -> tuple[tzinfo, str]:
    """A Google time zone: an IANA name (written as is) or a fixed offset (``±HHMM``)."""
    if not isinstance(text, str):
        raise ValueError("time_zone: must be an IANA zone name or an offset such as +0100")
    offset = _offset(text)
    if offset is not None and text.strip().upper() not in ("UTC", "Z", "GMT"):
        return offset
    name = text.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC, "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"time_zone: {text!r} is not an IANA zone name or an offset such as +0100"
        ) from exc
