"""The browser script's weight on the wire: raw, minified and compressed sizes.

And a first visit's swap latency in chromium (skipped without it).

The script is shipped as written (readable, commented). "Minified" here is a
small, safe pure-Python step (:func:`minify`): comments, indentation and
blank lines removed, nothing renamed; a real minifier would take it lower. The
sizes are printed, with ``gzip -9`` and brotli of each; the benchmark timed is
the compression itself (what a server does once per deploy). Never fails on
size or timing.
"""

from __future__ import annotations

import gzip
import os
import re
import statistics
from importlib import resources

import brotli
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dni_engine import Engine
from dni_engine.testing.pools import build_pool, source

SCRIPT = resources.files("dni_engine.web").joinpath("static/dni.js").read_bytes()


def minify(source: str) -> str:
    """The script without comments, indentation and blank lines (line breaks kept).

    Safe for this script: its ``//`` comments stand on lines of their own or after
    code with no string holding ``//`` before them, and its one block comment
    opens the file.
    """
    source = re.sub(r"^/\*.*?\*/\n", "", source, flags=re.DOTALL)
    lines = []
    for line in source.splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        line = re.sub(r";\s*//[^\"']*$", ";", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_script_size(benchmark: BenchmarkFixture) -> None:
    small = minify(SCRIPT.decode("utf-8")).encode("utf-8")
    sizes = {
        "raw": len(SCRIPT),
        "raw gzip": len(gzip.compress(SCRIPT, 9)),
        "raw brotli": len(brotli.compress(SCRIPT)),
        "minified": len(small),
        "minified gzip": len(gzip.compress(small, 9)),
        "minified brotli": len(brotli.compress(small)),
    }
    benchmark.extra_info.update(sizes)
    benchmark(gzip.compress, small, 9)
    print("\ndni.js: " + ", ".join(f"{name} {size:,} B" for name, size in sizes.items()))


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")
def test_first_visit_swap_latency(benchmark: BenchmarkFixture) -> None:
    """A first visit to a cached page in chromium: how long the site's number shows.

    Timed: one whole visit (a new browser context, the page, the script, the swap).
    Printed: the medians, from navigation start, of the first contentful paint and of
    the swap, and of the time from ``DOMContentLoaded`` to the swap (the script's
    request and the endpoint's answer).
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_web_browser import ARGS, CACHED, NUMBERS, PROBE
    from tests.web_browser_site import Site, serve
    from tests.web_site import BROWSER, SECRET

    pool = build_pool(id=2, name="all", numbers=list(NUMBERS), sources=[source("Any")])
    site = Site(Engine([pool]), secret=SECRET)
    site.pages = {"/cached": (CACHED, {})}
    seen: list[tuple[float, float, float]] = []
    with serve(site), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def visit() -> None:
            context = browser.new_context(user_agent=BROWSER)
            context.add_init_script(PROBE)
            page = context.new_page()
            page.goto(site.url("/cached"))
            page.evaluate("() => new Promise(r => window.dni.ready(r))")
            page.wait_for_function("__probe.paints.length >= 2")
            paints, swaps, loaded = page.evaluate(
                "[__probe.paints, __probe.swaps,"
                " performance.getEntriesByType('navigation')[0].domContentLoadedEventStart]"
            )
            swapped = next(t for t, cached, _ in swaps if not cached)
            seen.append((dict(paints)["first-contentful-paint"], swapped, swapped - loaded))
            context.close()

        benchmark.pedantic(visit, rounds=10, iterations=1, warmup_rounds=1)
        browser.close()
    paint, swap, answer = (statistics.median(column) for column in zip(*seen, strict=True))
    benchmark.extra_info.update(first_paint_ms=paint, swap_ms=swap, answer_ms=answer)
    print(
        f"\nfirst visit (median of {len(seen)}): first contentful paint {paint:.0f} ms, "
        f"swapped {swap:.0f} ms after navigation start, {answer:.0f} ms after "
        "DOMContentLoaded"
    )
