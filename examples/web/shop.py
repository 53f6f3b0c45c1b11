"""What the three example apps share: the engine, the settings and the pages.

The example site is ABC Tyres of Bristol (``examples/site/pools.json``: a
4-number Google Ads pool, Microsoft Ads, a campaign, Google organic, social and
a catch-all "Website (all other visitors)" pool), whose pages show its own
number, 0117 496 0000, in text and in ``tel:`` links.

Environment:

* ``DNI_SECRET``: signs the landing cookie. Without it a development secret
  is used and a warning printed: never deploy that one, every site using it
  could forge its visitors' landing context.
* ``DNI_REDIS_URL`` (``redis://host:port/db``): keep the leases in Redis, so
  that several workers (``gunicorn -w``, ``uvicorn --workers``) and servers
  share them; in memory (one process only) when unset.
* ``DNI_REDIS_NAMESPACE``: the key prefix in Redis (several sites, or test
  runs, on one Redis).
* ``DNI_REDIS_TIMEOUT``: seconds a Redis call may take (0.1); past it the page
  keeps its own numbers (``store_unavailable``).
* ``DNI_DEBUG=0`` turns off the ``X-DNI`` debug header the examples send.

Every response also carries ``X-Worker-Pid``, the process that served it, to
show that a visitor keeps their number whichever worker answers.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from dni_engine import Engine, load_pools
from dni_engine.stores import MemoryStore, Store

__all__ = [
    "CONTACT_PAGE",
    "DEBUG",
    "ENGINE",
    "PAGES",
    "SECRET",
    "STOCK",
    "build_engine",
    "web_fields",
]

EXAMPLES = Path(__file__).resolve().parent.parent
DEVELOPMENT_SECRET = "development-only-secret-do-not-deploy"


def _secret() -> str:
    secret = os.environ.get("DNI_SECRET")
    if secret:
        return secret
    warnings.warn(
        "DNI_SECRET is not set: using the DEVELOPMENT secret; set DNI_SECRET in production",
        stacklevel=2,
    )
    return DEVELOPMENT_SECRET


SECRET = _secret()
DEBUG = os.environ.get("DNI_DEBUG", "1") != "0"


def build_engine() -> Engine:
    """The example site's engine: on Redis when ``DNI_REDIS_URL`` is set, else in memory."""
    pools = load_pools((EXAMPLES / "site" / "pools.json").read_bytes(), source="pools.json")
    url = os.environ.get("DNI_REDIS_URL")
    store: Store
    if url:
        from dni_engine.stores.redis import RedisStore

        namespace = os.environ.get("DNI_REDIS_NAMESPACE") or "dni"
        timeout = float(os.environ.get("DNI_REDIS_TIMEOUT") or 0.1)
        store = RedisStore(url, namespace=namespace, timeout=timeout, connect_timeout=timeout)
    else:
        store = MemoryStore()
    return Engine(pools, store)


ENGINE = build_engine()


def web_fields() -> dict[str, Any]:
    """The :class:`~dni_engine.web.config.WebConfig` fields the examples use."""
    return {"secret": SECRET, "debug_header": DEBUG}


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        f"  <title>{title} - ABC Tyres, Bristol</title>\n</head>\n<body>\n"
        '  <nav><a href="/">Home</a> | <a href="/tyres">Tyres</a> | '
        '<a href="/contact">Contact</a></nav>\n'
        f"  <h1>{title}</h1>\n{body}\n"
        '  <footer>Call us on <a href="tel:+441174960000">0117 496 0000</a>.</footer>\n'
        "</body>\n</html>\n"
    )


CONTACT_PAGE = (EXAMPLES / "pages" / "contact.html").read_text(encoding="utf-8")
PAGES = {
    "/": _page(
        "ABC Tyres",
        "  <p>Tyres fitted while you wait. Book on 0117 496 0000.</p>",
    ),
    "/tyres": _page(
        "Winter tyres",
        "  <p>In stock today. Ask for a quote: (0117) 496 0000.</p>",
    ),
    "/contact": CONTACT_PAGE,
}
STOCK = {"tyres": 42, "phone": "0117 496 0000"}  # JSON: never a page view, never rewritten

if __name__ == "__main__":
    sys.exit("run flask_app.py, fastapi_app.py or django_site/manage.py runserver")
