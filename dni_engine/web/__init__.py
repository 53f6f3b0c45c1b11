"""Putting the engine on a website: middleware for ASGI and WSGI, one framework-neutral core.

::

    from dni_engine.web import ASGIMiddleware, WSGIMiddleware

    app = ASGIMiddleware(app, engine, secret=SECRET)        # Starlette, FastAPI, any ASGI app
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, engine, secret=SECRET)   # Flask, any WSGI app

Only HTML page views take a number (see :mod:`dni_engine.web.core`); the
visitor keeps it through a first-party cookie, and later pages are matched on
the landing context kept in a signed cookie. Importing this package never
imports a web framework.

For cached pages and single-page apps the middleware also answers the
browser script under ``endpoint_prefix`` (:mod:`dni_engine.web.endpoint`);
:func:`script_tags` gives the tag for the page's ``<head>``. With
``call_secret`` or ``twilio_auth_token`` set it answers the call webhook there
too (:mod:`dni_engine.web.calls`): telephony systems post each call, which is
attributed once and kept in the call log.
"""

from __future__ import annotations

from dni_engine.web.asgi import ASGIMiddleware
from dni_engine.web.config import WebConfig
from dni_engine.web.core import DEBUG_HEADER, SKIP_HEADER, PageRequest, WebCore, skip
from dni_engine.web.endpoint import Endpoint, script_tags
from dni_engine.web.wsgi import WSGIMiddleware

__all__ = [
    "DEBUG_HEADER",
    "SKIP_HEADER",
    "ASGIMiddleware",
    "Endpoint",
    "PageRequest",
    "WSGIMiddleware",
    "WebConfig",
    "WebCore",
    "script_tags",
    "skip",
]
