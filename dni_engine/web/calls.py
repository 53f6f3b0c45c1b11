"""The call webhook: a telephony system reports each call; it is attributed once and logged.

The middleware answers these paths under ``WebConfig.endpoint_prefix``
(``/_dni`` by default), each only when it is configured; they never reach the
application:

``POST {prefix}/calls`` (``call_secret`` set)
    The generic form: a JSON object in UTF-8 (at most :data:`MAX_CALL_BODY` bytes)::

        {"call_id": "c-8812", "number": "+441174960101", "caller": "+447700900123",
         "started": "2026-03-01T09:30:00+00:00", "duration": 95}

    ``call_id`` (required, a non-empty string) identifies the call at the
    sender: a call log keeps one record per id. ``number`` (required) is the
    number dialled, in any form the engine reads (E.164, national, ``tel:``).
    ``caller`` is the caller's number (optional, ``""`` when withheld).
    ``started`` (required) is when the call started: ISO 8601 with its UTC
    offset (``Z`` or ``+01:00``), or Unix epoch seconds as a number.
    ``duration`` is in seconds (optional, a number >= 0 or ``null`` while
    unknown). Other members are ignored.

    The body is signed with ``call_secret``: the header
    ``X-DNI-Signature: sha256=<hex>`` carries the lower-case hex HMAC-SHA256 of
    the raw body bytes (compared in constant time). In a shell::

        printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex

``POST {prefix}/calls/twilio`` (``twilio_auth_token`` set)
    Twilio's voice status callback (form-encoded: ``CallSid``, ``To``,
    ``From``, ``CallStatus``, ``CallDuration``, ``Timestamp``...), checked with
    ``X-Twilio-Signature`` by the ``twilio`` package's ``RequestValidator``
    (the ``twilio`` extra). Twilio signs the full public URL it posted to:
    behind a proxy or load balancer that changes the scheme, host or path,
    set ``public_base_url`` (``https://www.example.com``) and the URL checked
    is that base followed by the request's path and query; without it, the
    URL is the request's own (scheme from the server, host from ``Host``).
    The call starts at ``Timestamp`` (RFC 2822, the event's time) less
    ``CallDuration`` seconds when both are sent, at ``Timestamp`` when only it
    is, else when the delivery arrives. Point the number's *status callback*
    (event ``completed``) here: the answer is JSON, not TwiML.

**Answers** (JSON, ``Cache-Control: no-store``):

* 200: the call's record, :meth:`CallRecord.to_json
  <dni_engine.calls.CallRecord.to_json>`: the call, its attribution (lease,
  visitor, pool, facts, confidence, candidates) or why it has none (``reason``),
  and ``replayed``: a second delivery of a call id answers the first record,
  attributed once. A number of no pool is recorded too, unattributed.
* 400 ``{"error": ..., "field": name}``: a malformed body, naming the field
  at fault (``body`` when it is not JSON or not a form).
* 403 ``{"error": "invalid signature", "field": header}``: no or a wrong
  signature (logged once per kind, never the body).
* 405 for another method, 413 for a body over :data:`MAX_CALL_BODY` bytes.
* 503 when the call log could not keep the record (the store failed): the
  sender retries, and the retry is recorded once.

Nothing here raises into the host application: an unexpected failure is
logged once and answered 500, which senders retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlsplit

from dni_engine.calls import Call, CallRecord

if TYPE_CHECKING:
    from dni_engine.web.core import PageRequest, WebCore

__all__ = [
    "CALLS_PATH",
    "MAX_CALL_BODY",
    "SIGNATURE_HEADER",
    "TWILIO_PATH",
    "TWILIO_SIGNATURE_HEADER",
    "CallWebhook",
    "WebhookResponse",
    "generic_call",
    "sign",
    "signed_url",
    "twilio_call",
]

CALLS_PATH: Final = "/calls"
"""The generic webhook's path under the endpoint prefix."""
TWILIO_PATH: Final = "/calls/twilio"
"""Twilio's webhook path under the endpoint prefix."""
SIGNATURE_HEADER: Final = "X-DNI-Signature"
"""The header of the generic form's signature: ``sha256=<hex HMAC-SHA256 of the body>``."""
TWILIO_SIGNATURE_HEADER: Final = "X-Twilio-Signature"
"""The header of Twilio's signature."""
MAX_CALL_BODY: Final = 65_536
"""The largest webhook body, in bytes (more: 413 naming ``body``)."""

_JSON: Final = ("Content-Type", "application/json")
_NO_STORE: Final = ("Cache-Control", "no-store")
_SETTINGS_HEADER: Final = "x-twilio-webhooks-signature-settings"


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The whole answer to one webhook delivery: ``status``, ``headers`` and ``body``."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _Malformed(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


_Validator = Callable[[str, dict[str, str], str, str], bool]


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-DNI-Signature`` value of ``body`` under ``secret``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed_url(request: PageRequest, public_base_url: str | None) -> str:
    """The URL a sender signed: ``public_base_url`` + the request's path and query, if set."""
    if public_base_url is None:
        return request.url
    parts = urlsplit(request.url)
    tail = parts.path or "/"
    if parts.query:
        tail += "?" + parts.query
    return public_base_url.rstrip("/") + tail


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _answer(status: int, value: object) -> WebhookResponse:
    return WebhookResponse(status, [_JSON, _NO_STORE], _dumps(value))


def _error(status: int, field: str, reason: str) -> WebhookResponse:
    return _answer(status, {"error": reason, "field": field})


# ---- the bodies ---------------------------------------------------------------------


def _text(data: dict[str, object], name: str, *, required: bool) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Malformed(name, "must be a string")
    if required and not value.strip():
        raise _Malformed(name, "must not be empty")
    return value


def _epoch(value: object, field: str) -> float:
    """A time in a body: epoch seconds (a number), or ISO 8601 text with a UTC offset."""
    if isinstance(value, bool):
        raise _Malformed(field, "must be ISO 8601 text with a UTC offset, or epoch seconds")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise _Malformed(field, "must be epoch seconds >= 0")
        return seconds
    if not isinstance(value, str):
        raise _Malformed(field, "must be ISO 8601 text with a UTC offset, or epoch seconds")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Malformed(field, f"{value[:64]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _Malformed(field, "has no UTC offset (add Z or +hh:mm)")
    return moment.timestamp()


def _duration(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(field, "must be a number of seconds >= 0, or null")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise _Malformed(field, "must be a number of seconds >= 0, or null")
    return seconds


def _checked(call: Call) -> Call:
    """``call``, or :class:`_Malformed` naming the field the engine would refuse."""
    problems = call.problems()
    if problems:
        field, _, reason = problems[0].partition(": ")
        raise _Malformed(field, reason or problems[0])
    return call


def generic_call(body: bytes) -> Call:
    """The :class:`Call` of a generic JSON body (see the module doc).

    Raises ``ValueError`` (the webhook's 400) whose message starts with the
    field at fault: ``"started: has no UTC offset..."``.
    """
    try:
        return _generic_call(body)
    except _Malformed as bad:
        raise ValueError(f"{bad.field}: {bad.reason}") from None


def _generic_call(body: bytes) -> Call:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Malformed("body", "is not a JSON object in UTF-8") from None
    if not isinstance(data, dict):
        raise _Malformed("body", "is not a JSON object")
    call_id = _text(data, "call_id", required=True)
    number = _text(data, "number", required=True)
    caller = _text(data, "caller", required=False)
    if "started" not in data:
        raise _Malformed("started", "is required: when the call started")
    started = _epoch(data["started"], "started")
    duration = _duration(data.get("duration"), "duration")
    return _checked(Call(call_id, number, started, caller, duration, "generic"))


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise _Malformed("body", "is not a form (application/x-www-form-urlencoded)") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def _twilio_time(text: str) -> float:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _Malformed("Timestamp", f"{text[:64]!r} is not an RFC 2822 time") from None
    if moment.tzinfo is None:
        raise _Malformed("Timestamp", "has no UTC offset")
    return moment.timestamp()


def twilio_call(params: dict[str, str], received: float) -> Call:
    """The :class:`Call` of a Twilio status callback's parameters (see the module doc).

    ``received`` is when the delivery arrived: the start of a call sent
    without ``Timestamp``. Raises ``ValueError`` starting with the field at
    fault (``"CallSid: must not be empty"``).
    """
    try:
        return _twilio_call(params, received)
    except _Malformed as bad:
        raise ValueError(f"{bad.field}: {bad.reason}") from None


def _twilio_call(params: dict[str, str], received: float) -> Call:
    call_id = _text(dict(params), "CallSid", required=True)
    number = _text(dict(params), "To", required=True)
    caller = params.get("From", "")
    duration: float | None = None
    for name in ("CallDuration", "DialCallDuration"):
        raw = params.get(name, "").strip()
        if raw:
            try:
                duration = float(int(raw))
            except ValueError:
                raise _Malformed(name, f"{raw[:32]!r} is not a whole number of seconds") from None
            if duration < 0:
                raise _Malformed(name, "must be a number of seconds >= 0")
            break
    stamp = params.get("Timestamp", "").strip()
    started = _twilio_time(stamp) - (duration or 0.0) if stamp else received
    fields = {"call_id": "CallSid", "number": "To", "caller": "From", "duration": "CallDuration"}
    try:
        return _checked(Call(call_id, number, started, caller, duration, "twilio"))
    except _Malformed as bad:
        raise _Malformed(fields.get(bad.field, bad.field), bad.reason) from None


# ---- the webhook --------------------------------------------------------------------


class CallWebhook:
    """The call webhook of one site (see the module doc); built on a :class:`.WebCore`.

    ``routes`` maps each configured path (under the endpoint prefix) to its
    form. Building it with ``twilio_auth_token`` set imports the ``twilio``
    package: without the ``twilio`` extra it raises
    :class:`~dni_engine.extras.MissingExtra` at start-up, never on a request.
    """

    def __init__(self, core: WebCore) -> None:
        self.core = core
        config = core.config
        self._secret = config.call_secret_bytes
        self._public_base_url = config.public_base_url
        self._twilio: _Validator | None = None
        if config.twilio_auth_token is not None:
            from dni_engine.web.twilio import validator

            self._twilio = validator(config.twilio_auth_token)
        routes: dict[str, str] = {}
        if self._secret is not None:
            routes[CALLS_PATH] = "generic"
        if self._twilio is not None:
            routes[TWILIO_PATH] = "twilio"
        self.routes = routes
        self._lock = threading.Lock()
        self.refused = 0
        """Deliveries refused for their signature, since start."""

    def route(self, subpath: str) -> str | None:
        """``"generic"`` or ``"twilio"`` for a path under the prefix this webhook answers."""
        return self.routes.get(subpath)

    def answer(
        self, request: PageRequest, form: str, body: bytes, *, too_large: bool = False
    ) -> WebhookResponse:
        """The answer to one delivery of ``form`` (``body`` its raw body); never raises."""
        try:
            if (request.method or "").upper() != "POST":
                return WebhookResponse(
                    405, [_JSON, _NO_STORE, ("Allow", "POST")], _dumps({"error": "use POST"})
                )
            if too_large or len(body) > MAX_CALL_BODY:
                return _error(413, "body", f"is larger than {MAX_CALL_BODY} bytes")
            if form == "generic":
                return self._generic(request, body)
            if form == "twilio":
                return self._twilio_delivery(request, body)
            return _error(404, "path", "not a webhook")
        except Exception:
            self.core.log_once("calls", "the call webhook failed; it answered 500")
            return _error(500, "server", "the call could not be recorded; retry")

    def _refuse(self, header: str, why: str) -> WebhookResponse:
        with self._lock:
            self.refused += 1
        self.core.log_once(f"calls-signature-{header}", f"a call webhook delivery {why}; refused")
        return _error(403, header, "invalid signature")

    def _generic(self, request: PageRequest, body: bytes) -> WebhookResponse:
        secret = self._secret
        if secret is None:
            return _error(404, "path", "not a webhook")
        given = (request.headers.get(SIGNATURE_HEADER.lower()) or "").strip()
        if not given:
            return self._refuse(SIGNATURE_HEADER, f"had no {SIGNATURE_HEADER} header")
        scheme, _, digest = given.partition("=")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if scheme.strip().lower() != "sha256" or not hmac.compare_digest(
            digest.strip().lower().encode("ascii", "replace"), expected.encode("ascii")
        ):
            return self._refuse(SIGNATURE_HEADER, f"had a wrong {SIGNATURE_HEADER}")
        try:
            call = _generic_call(body)
        except _Malformed as bad:
            return _error(400, bad.field, bad.reason)
        return self._record(call)

    def _twilio_delivery(self, request: PageRequest, body: bytes) -> WebhookResponse:
        check = self._twilio
        if check is None:
            return _error(404, "path", "not a webhook")
        try:
            params = _form(body)
        except _Malformed as bad:
            return _error(400, bad.field, bad.reason)
        given = (request.headers.get(TWILIO_SIGNATURE_HEADER.lower()) or "").strip()
        if not given:
            return self._refuse(TWILIO_SIGNATURE_HEADER, f"had no {TWILIO_SIGNATURE_HEADER}")
        url = signed_url(request, self._public_base_url)
        settings = request.headers.get(_SETTINGS_HEADER) or ""
        if not check(url, params, given, settings):
            return self._refuse(
                TWILIO_SIGNATURE_HEADER,
                f"had a wrong {TWILIO_SIGNATURE_HEADER} (the URL checked was its path on "
                "the request's own host unless public_base_url is set)",
            )
        try:
            call = _twilio_call(params, float(self.core.engine.clock()))
        except _Malformed as bad:
            return _error(400, bad.field, bad.reason)
        return self._record(call)

    def _record(self, call: Call) -> WebhookResponse:
        try:
            record: CallRecord = self.core.engine.record_call(call)
        except ValueError as exc:  # checked above; the engine's own word on the field
            field, _, reason = str(exc).partition(": ")
            return _error(400, field, reason or str(exc))
        return _answer(200 if record.stored else 503, record.to_json())
