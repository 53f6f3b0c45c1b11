"""Twilio's webhook signatures, checked by the ``twilio`` package (the ``twilio`` extra).

:func:`validator` wraps ``twilio.request_validator.RequestValidator`` for
:class:`~dni_engine.web.calls.CallWebhook`. Importing this module without the
extra raises :class:`~dni_engine.extras.MissingExtra`.
"""

from __future__ import annotations

from collections.abc import Callable

from dni_engine.extras import MissingExtra

try:
    from twilio import request_validator as _twilio
except ImportError as exc:
    raise MissingExtra("dni_engine.web.twilio", "twilio", exc.name) from exc

__all__ = ["validator"]


def validator(auth_token: str) -> Callable[[str, dict[str, str], str, str], bool]:
    """A check of one delivery: ``check(url, params, signature, settings) -> bool``.

    ``url`` is the full URL Twilio posted to, ``params`` the form's fields,
    ``signature`` the ``X-Twilio-Signature`` header and ``settings`` the
    ``X-Twilio-Webhooks-Signature-Settings`` header (``""`` when absent),
    which names the algorithm on the releases that know it. Never raises.
    """
    checker = _twilio.RequestValidator(auth_token)
    pick = getattr(_twilio, "get_signature_algorithm", None)

    def check(url: str, params: dict[str, str], signature: str, settings: str) -> bool:
        try:
            if pick is not None and settings:
                return bool(checker.validate(url, params, signature, algorithm=pick(settings)))
            return bool(checker.validate(url, params, signature))
        except Exception:
            return False

    return check
