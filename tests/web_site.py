"""A small site for the web integration tests: an ad pool, a catch-all pool, pages, stores.

The ad pool (key ``"1"``) takes visitors landing with a ``gclid`` and has
``ad_numbers`` numbers; the catch-all pool (key ``"2"``) takes everyone
else. Both swap the site's number ``0117 496 0999``. Under the ``overflow``
policy a visitor who finds a pool full is shown :data:`OVERFLOW`, and the
decision still names the pool.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from dni_engine import Engine
from dni_engine.leases import Decision
from dni_engine.rewrite import stream as rewrite_stream
from dni_engine.stores import MemoryStore, Store
from dni_engine.testing.pools import build_pool, example_numbers, source

SECRET = "a secret of the site, 32 bytes.."
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SITE_NUMBER = "0117 496 0999"
OVERFLOW = "+441174960900"
AD_NUMBERS = example_numbers(2)
ALL_NUMBERS = example_numbers(3, start=10)
PAGE = (
    "<!doctype html><html><head><title>Shop</title></head><body>"
    f'<p>Call us on {SITE_NUMBER}</p><a href="tel:01174960999">Call</a></body></html>'
)
PAGE_BYTES = PAGE.encode("utf-8")
STREAMED = (
    "<html><body><p>Call us on 0117 4",
    "96 09",
    '99</p><a href="tel:0117',
    '4960999">x</a>',
)
"""A page in pieces that cut the site's number, and a ``tel:`` target, between them."""
STREAMED_SWAPPED = '<html><body><p>Call us on 0117 496 0000</p><a href="tel:+441174960000">x</a>'
"""``STREAMED`` as the first ad number's visitor sees it."""


def national(e164: str) -> str:
    """A GB number of the example range as the page writes it: ``0117 496 0001``."""
    digits = "0" + e164[3:]
    return f"{digits[:4]} {digits[4:7]} {digits[7:]}"


def shown(page: str | bytes) -> str | None:
    """The tracking number a rewritten page shows in E.164, or ``None`` for the site's own."""
    text = page.decode("utf-8") if isinstance(page, bytes) else page
    if SITE_NUMBER in text:
        return None
    for number in (*AD_NUMBERS, *ALL_NUMBERS, OVERFLOW):
        if national(number) in text:
            assert f'href="tel:{number}"' in text, text
            return number
    raise AssertionError(f"neither the site's nor a tracking number on the page: {text}")


class FlakyStore:
    """A memory store that raises while ``down``, and records the threads it was called on.

    It wraps a :class:`MemoryStore` rather than subclassing it: in the compiled build
    the store is a compiled class, which interpreted classes cannot inherit from.
    """

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False
        self.threads: list[threading.Thread] = []

    def visit(self, visitor_id: str, now: float, claim: Any) -> Decision:
        self.threads.append(threading.current_thread())
        if self.down:
            raise ConnectionError("the store is down")
        return self.inner.visit(visitor_id, now, claim)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def make_engine(ad_numbers: int = 2, store: Store | FlakyStore | None = None) -> Engine:
    """The site's engine: an ad pool of ``ad_numbers`` numbers and a catch-all pool."""
    ad = build_pool(
        id=1,
        name="ads",
        numbers=list(AD_NUMBERS[:ad_numbers]),
        sources=[source("Any", ["gclid=*"])],
    )
    rest = build_pool(id=2, name="all", numbers=list(ALL_NUMBERS), sources=[source("Any")])
    return Engine(
        [ad, rest], cast(Store | None, store), policy="overflow", overflow_number=OVERFLOW
    )


def break_the_rewriter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every page stream raise inside, as a bug in the rewriter would.

    The stream classes are patched (the rewriter is never compiled), not the
    engine, whose attributes are read-only in the compiled build.
    """

    def broken(self: object, chunk: object = "") -> object:
        raise RuntimeError("the rewriter broke")

    for kind in (rewrite_stream.RewriteStream, rewrite_stream.ByteRewriteStream):
        monkeypatch.setattr(kind, "feed", broken)
        monkeypatch.setattr(kind, "close", broken)
