"""The browser script in a real browser: Debian's chromium driven by Playwright, on loopback.

Every page is served as a cache would serve it, the same HTML to everyone with
the site's own numbers (see :mod:`tests.web_browser_site`); only the script
swaps. One browser for the module, a fresh context (a new visitor) per visit.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat

from dni_engine import Engine
from dni_engine.rewrite import compile_rewriter
from dni_engine.testing.pools import build_pool, example_numbers, source
from dni_engine.web import script_tags
from tests import test_rewrite_inline as inline
from tests.page_corpus import labelled_pages
from tests.test_rewrite_countries import FORMS, _cases
from tests.web_browser_site import Site, serve
from tests.web_site import BROWSER, CRAWLER, SECRET, SITE_NUMBER, national

CHROMIUM = os.environ.get("DNI_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM} (make system-deps)"
    ),
    pytest.mark.xdist_group("browser"),
    pytest.mark.timeout(120),
]
sync_api = pytest.importorskip("playwright.sync_api")

SCRIPT = '<script async src="/_dni/dni.js"></script>'
# Parity is about the text, not the timeout: a slow machine gets 5 s for large pages.
PARITY_SCRIPT = '<script async src="/_dni/dni.js" data-timeout="5000"></script>'
TAIL = """<script>
setTimeout(function () {
  document.getElementById("later").textContent = "Sales: 0117 496 0999";
}, 300);
setTimeout(function () {
  var pop = document.createElement("div");
  pop.id = "popup";
  pop.innerHTML = "<p>Call now: <strong>0117 496</strong> 0999</p>";
  document.body.appendChild(pop);
}, 800);
</script>"""
CACHED = (
    "<!doctype html><html><head><title>Shop</title>" + SCRIPT + "</head><body>"
    f'<p id="main">Call us on {SITE_NUMBER}</p>'
    '<p id="split">Or 0117 <b>496</b> 0999</p>'
    '<a id="tel" href="tel:01174960999">Call</a>'
    f'<div id="keep" data-dni-noswap>Head office: {SITE_NUMBER}</div>'
    f'<textarea id="area">{SITE_NUMBER}</textarea>'
    f'<p id="edit" contenteditable="true">{SITE_NUMBER}</p>'
    '<div id="later"></div>' + TAIL + "</body></html>"
)
# The no-flicker page: the script in <head>, synchronous (the browser keeps it a day).
HEAD = (
    '<!doctype html><html><head><title>Shop</title><script src="/_dni/dni.js"></script>'
    f'</head><body><p id="main">Call us on {SITE_NUMBER}</p>'
    '<a id="tel" href="tel:01174960999">Call</a></body></html>'
)
HIDE = (
    '<!doctype html><html><head><script src="/_dni/dni.js" data-hide="1000"></script></head>'
    f'<body><p id="main" data-dni-hide>Call us on {SITE_NUMBER}</p></body></html>'
)
# The site's pool: every visitor takes one of these, the site's number swapped.
NUMBERS = example_numbers(40, start=10)
NONCE = "cmFuZG9tIG5vbmNl"
CSP = (
    f"default-src 'self'; script-src 'nonce-{NONCE}' 'strict-dynamic'; object-src 'none'; "
    "base-uri 'none'; style-src 'self'; require-trusted-types-for 'script'"
)
STRICT = (
    "<!doctype html><html><head>{tags}</head><body>"
    f'<p id="main">Call us on {SITE_NUMBER}</p>'
    '<p id="split">Or 0117 <b>496</b> 0999</p>'
    '<a id="tel" href="tel:01174960999">Call</a>'
    # refused by the policy: no nonce
    '<script>document.title = "inline ran"</script></body></html>'
)
# Recorded from the first moment of every page: paints, swaps, frames, CSP violations.
PROBE = """
window.__probe = {paints: [], swaps: [], frames: [], violations: 0};
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { __probe.paints.push([e.name, e.startTime]); });
}).observe({type: "paint", buffered: true});
document.addEventListener("dni:swapped", function (e) {
  __probe.swaps.push([performance.now(), e.detail.cached, e.detail.changed]);
});
document.addEventListener("securitypolicyviolation", function () { __probe.violations++; });
(function frame() {
  var main = document.getElementById("main");
  if (main) __probe.frames.push([performance.now(), main.textContent,
                                 getComputedStyle(main).visibility]);
  if (__probe.frames.length < 30) requestAnimationFrame(frame);
})();
"""
READY = "() => new Promise(r => window.dni.ready(d => r([d.outcome, d.number, d.formatted])))"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    pool = build_pool(id=2, name="all", numbers=list(NUMBERS), sources=[source("Any")])
    # Every visitor here is a browser context on one address with one user agent: one
    # client, which the client cap would stop after 3 leases (its own test is below).
    shop = Site(Engine([pool], client_cap=0), secret=SECRET)
    shop.pages = {
        "/cached": (CACHED, {"Cache-Control": "public, max-age=600"}),
        "/head": (HEAD, {}),
        "/hide": (HIDE, {}),
        "/strict/src": (
            STRICT.format(tags=f'<script nonce="{NONCE}" async src="/_dni/dni.js"></script>'),
            {"Content-Security-Policy": CSP},
        ),
        "/strict/inline": (
            STRICT.format(tags=script_tags(nonce=NONCE, inline=True)),
            {"Content-Security-Policy": CSP},
        ),
    }
    with serve(shop):
        yield shop


class Visitor:
    """One browser context: a visitor with their own cookies and storage, and what they saw."""

    def __init__(self, browser: Any, user_agent: str = BROWSER) -> None:
        self.context = browser.new_context(user_agent=user_agent)
        self.context.add_init_script(PROBE)
        self.errors: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))

    def visit(self, url: str) -> tuple[str | None, str | None, str | None]:
        """Open ``url`` and wait until the script has its answer (or gave up)."""
        self.page.goto(url)
        outcome, number, formatted = self.page.evaluate(READY)
        return outcome, number, formatted

    def text(self, selector: str) -> str:
        return str(self.page.text_content(selector))

    def href(self, selector: str) -> str:
        return str(self.page.get_attribute(selector, "href"))

    def script_messages(self) -> list[tuple[str, str]]:
        """Console messages, less the browser's own line for a failed request."""
        return [m for m in self.console if not m[1].startswith("Failed to load resource")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser: Any) -> Iterator[Visitor]:
    one = Visitor(browser)
    yield one
    one.close()


def test_two_visitors_see_two_pool_numbers_and_a_crawler_the_original(
    browser: Any, site: Site
) -> None:
    seen = []
    for _ in range(2):
        person = Visitor(browser)
        outcome, number, formatted = person.visit(site.url("/cached"))
        assert outcome == "new"
        assert number in NUMBERS
        assert formatted == national(number)
        assert person.text("#main") == f"Call us on {national(number)}"
        assert person.text("#split") == f"Or {national(number)}"
        assert person.page.inner_html("#split").count("<b>") == 1
        assert person.href("#tel") == f"tel:{number}"
        assert not person.errors
        assert not person.console
        seen.append(number)
        person.close()
    assert seen[0] != seen[1]
    crawler = Visitor(browser, CRAWLER)
    assert crawler.visit(site.url("/cached"))[:2] == ("bot", None)
    crawler.page.wait_for_function("document.getElementById('popup')")
    assert crawler.text("#main") == f"Call us on {SITE_NUMBER}"
    assert crawler.text("#later") == f"Sales: {SITE_NUMBER}"
    assert crawler.href("#tel") == "tel:01174960999"
    assert not crawler.errors
    crawler.close()


def test_fresh_browsers_on_one_address_take_at_most_the_client_cap(browser: Any) -> None:
    pool = build_pool(id=2, name="all", numbers=list(NUMBERS), sources=[source("Any")])
    capped_site = Site(Engine([pool], client_cap=2), secret=SECRET)
    capped_site.pages = {"/cached": (CACHED, {"Cache-Control": "public, max-age=600"})}
    with serve(capped_site):
        seen = []
        for _ in range(4):  # four fresh browsers (no cookies) of one user agent, one address
            person = Visitor(browser)
            outcome, number, _ = person.visit(capped_site.url("/cached"))
            seen.append((outcome, number, person.text("#main")))
            assert not person.errors
            person.close()
    taken = [number for _, number, _ in seen if number is not None]
    assert len(set(taken)) == 2
    assert [outcome for outcome, _, _ in seen] == ["new", "new", "capped", "capped"]
    assert [main for _, _, main in seen[2:]] == [f"Call us on {SITE_NUMBER}"] * 2


def test_later_content_is_swapped_and_kept_blocks_are_kept(site: Site, visitor: Visitor) -> None:
    _, number, _ = visitor.visit(site.url("/cached"))
    assert number is not None
    shown = national(number)
    visitor.page.wait_for_function(
        "document.getElementById('popup') && !/0999/.test(document.getElementById('popup')"
        ".textContent) && !/0999/.test(document.getElementById('later').textContent)",
        timeout=5000,
    )
    assert visitor.text("#later") == f"Sales: {shown}"
    assert visitor.text("#popup") == f"Call now: {shown}"
    assert visitor.text("#keep") == f"Head office: {SITE_NUMBER}"
    assert visitor.page.input_value("#area") == SITE_NUMBER
    assert visitor.text("#edit") == SITE_NUMBER
    # The later swaps found the lease the page view took ("kept"): the page's outcome stays.
    assert visitor.page.evaluate(READY) == ["new", number, shown]
    assert not visitor.errors
    assert not visitor.console


def test_content_added_before_the_first_answer_is_the_same_visitors(
    site: Site, visitor: Visitor
) -> None:
    # The first answer takes 0.6 s: the number rendered at 300 ms waits for it (and for
    # the visitor cookie it sets) instead of asking as a visitor without one.
    _, number, _ = visitor.visit(site.url("/cached?lag=1"))
    assert number is not None
    visitor.page.wait_for_function(
        "document.getElementById('popup') && !/0999/.test(document.getElementById('popup')"
        ".textContent) && !/0999/.test(document.getElementById('later').textContent)",
        timeout=5000,
    )
    assert visitor.text("#later") == f"Sales: {national(number)}"
    assert visitor.text("#popup") == f"Call now: {national(number)}"


def test_the_api_swap_and_events(site: Site, visitor: Visitor) -> None:
    _, number, _ = visitor.visit(site.url("/cached"))
    assert number is not None
    got = visitor.page.evaluate(
        """async () => {
          const until = async (done) => {
            for (let i = 0; i < 200 && !done(); i++) await new Promise(r => setTimeout(r, 50));
          };
          const box = document.createElement("section");
          box.innerHTML = "<p>Ring <i>0117</i> 496 0999</p>";
          let events = 0;
          document.addEventListener("dni:swapped", () => events++);
          document.body.appendChild(box);
          const api = await window.dni.swap(box);
          const direct = document.createElement("p");
          direct.textContent = "0117 496 0999";
          document.body.appendChild(direct);
          await until(() => !direct.textContent.includes("0999"));
          return [box.textContent, direct.textContent, api.number, window.dni.number, events];
        }"""
    )
    assert got[:4] == [f"Ring {national(number)}", national(number), number, number]
    assert got[4] >= 1


def test_the_swap_event_reaches_a_shadow_root(site: Site, visitor: Visitor) -> None:
    # The observer sees the document, not a component's shadow tree: the component asks.
    _, number, _ = visitor.visit(site.url("/cached"))
    assert number is not None
    text = visitor.page.evaluate(
        """async () => {
          const until = async (done) => {
            for (let i = 0; i < 200 && !done(); i++) await new Promise(r => setTimeout(r, 50));
          };
          const host = document.createElement("div");
          const shadow = host.attachShadow({mode: "open"});
          const p = document.createElement("p");
          p.textContent = "Call 0117 496 0999";
          shadow.appendChild(p);
          document.body.appendChild(host);
          await new Promise(r => setTimeout(r, 200));
          const before = p.textContent;
          host.dispatchEvent(new CustomEvent("dni:swap", {bubbles: true, composed: true,
                                                          detail: {node: shadow}}));
          await until(() => !p.textContent.includes("0999"));
          return [before, p.textContent];
        }"""
    )
    assert text == [f"Call {SITE_NUMBER}", f"Call {national(number)}"]


def test_a_number_built_up_piece_by_piece(site: Site, visitor: Visitor) -> None:
    # A framework adds a number's pieces in separate tasks, into a paragraph already there.
    _, number, _ = visitor.visit(site.url("/cached"))
    assert number is not None
    text = visitor.page.evaluate(
        """async () => {
          const until = async (done) => {
            for (let i = 0; i < 200 && !done(); i++) await new Promise(r => setTimeout(r, 50));
          };
          const p = document.getElementById("main");
          const tick = () => new Promise(r => setTimeout(r, 50));
          p.textContent = "Dial ";
          await tick();
          p.append("0117 ");
          await tick();
          const b = document.createElement("b");
          b.textContent = "496";
          p.append(b);
          await tick();
          p.append(" 0999 today");
          await until(() => !p.textContent.includes("0999"));
          return [p.textContent, p.innerHTML];
        }"""
    )
    shown = national(number)
    assert text[0] == f"Dial {shown} today"
    assert text[1].count("<b>") == 1


@pytest.mark.parametrize("how", ["down", "slow", "refused"])
def test_endpoint_down_or_slow_keeps_the_numbers(site: Site, visitor: Visitor, how: str) -> None:
    if how == "refused":
        visitor.page.route("**/_dni/swap", lambda route: route.abort("connectionrefused"))
        url = site.url("/cached")
    else:
        url = site.url(f"/cached?{how}=1")
    outcome, number, _ = visitor.visit(url)
    assert (outcome, number) == (None, None)
    visitor.page.wait_for_function("document.getElementById('popup')")
    visitor.page.wait_for_timeout(100)
    assert visitor.text("#main") == f"Call us on {SITE_NUMBER}"
    assert visitor.text("#later") == f"Sales: {SITE_NUMBER}"
    assert visitor.text("#popup") == f"Call now: {SITE_NUMBER}"
    assert visitor.href("#tel") == "tel:01174960999"
    assert not visitor.errors
    messages = visitor.script_messages()
    assert len(messages) == 1, messages
    assert messages[0][0] == "warning"
    assert "keeps its numbers" in messages[0][1]
    if how == "slow":  # the script gave up before the answer came
        assert "no answer in 2000 ms" in messages[0][1]


def test_a_returning_visitor_sees_the_number_in_the_first_paint(
    site: Site, visitor: Visitor, capsys: pytest.CaptureFixture[str]
) -> None:
    _, number, _ = visitor.visit(site.url("/head"))
    assert number is not None
    visitor.page.wait_for_function("window.__probe.paints.length >= 2")
    first = visitor.page.evaluate("window.__probe")
    # Back on a cached page, the endpoint slow (3 s): what shows comes from the cache.
    visitor.page.goto(site.url("/head?slow=1"))
    visitor.page.wait_for_function("window.__probe.paints.length >= 2")
    probe = visitor.page.evaluate("window.__probe")
    paints = dict(probe["paints"])
    contentful = paints["first-contentful-paint"]
    cached = [t for t, from_cache, changed in probe["swaps"] if from_cache and changed]
    assert cached, probe
    assert cached[0] < contentful, probe
    # Each animation frame's text of the element (empty while the parser had not yet
    # added its text): never the site's number.
    shown = [text for _, text, _ in probe["frames"] if text]
    assert shown, probe
    assert all(text == f"Call us on {national(number)}" for text in shown), shown
    assert visitor.href("#tel") == f"tel:{number}"
    first_paint = dict(first["paints"])["first-contentful-paint"]
    answered = [t for t, from_cache, _ in first["swaps"] if not from_cache]
    with capsys.disabled():
        print(
            f"\nfirst visit: first contentful paint {first_paint:.0f} ms, "
            f"swapped at {answered[0]:.0f} ms after navigation start "
            f"({answered[0] - first_paint:.0f} ms of the site's number); "
            f"returning visit: swapped from the cache at {cached[0]:.0f} ms, "
            f"first contentful paint at {contentful:.0f} ms"
        )


def test_anti_flicker_hides_until_the_swap(site: Site, visitor: Visitor) -> None:
    _, number, _ = visitor.visit(site.url("/hide"))
    assert number is not None
    probe = visitor.page.evaluate("window.__probe")
    frames = probe["frames"]
    assert frames
    for _, text, visibility in frames:
        assert visibility == "hidden" or text == f"Call us on {national(number)}", frames
    visitor.page.wait_for_function(
        "getComputedStyle(document.getElementById('main')).visibility === 'visible'"
    )
    assert visitor.text("#main") == f"Call us on {national(number)}"


@pytest.mark.parametrize("how", ["src", "inline"])
def test_a_strict_content_security_policy(site: Site, visitor: Visitor, how: str) -> None:
    _, number, _ = visitor.visit(site.url(f"/strict/{how}"))
    assert number is not None
    assert visitor.text("#main") == f"Call us on {national(number)}"
    assert visitor.text("#split") == f"Or {national(number)}"
    assert visitor.href("#tel") == f"tel:{number}"
    # the policy is on: the page's own inline script without a nonce was refused, only it
    assert visitor.page.title() != "inline ran"
    assert visitor.page.evaluate("window.__probe.violations") == 1
    assert not visitor.errors
    assert [m for m in visitor.console if "Content Security Policy" not in m[1]] == []


# ---- parity: what the browser shows equals the server-side rewrite --------------------


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


@functools.cache
def _parity_cases() -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """The page cases ``(body HTML, pool name)`` and the pools' arguments by name: countries
    in every form, split numbers, markup that breaks a number (the rewriter's own corpus)."""
    cases: list[tuple[str, str]] = []
    pools: dict[str, dict[str, Any]] = {}
    regions = _cases()
    for region, example, tracking in regions[:: max(1, len(regions) // 20)][:20]:
        forms = [phonenumbers.format_number(example, f) for f in FORMS.values()]
        body = "".join(f"<p>Call {written} today</p>" for written in forms)
        body += f'<a href="tel:{_e164(example)}">{forms[0]}</a>'
        body += f"<ul><li>{forms[1]}</li><li><b>{forms[0]}</b></li></ul>"
        pools[region] = {
            "country": region,
            "numbers": [_e164(tracking)],
            "numbers_to_replace": [_e164(example)],
            "termination_number": _e164(example),
        }
        cases.append((body, region))
    pools["listed"] = {
        "country": "GB",
        "numbers": list(example_numbers(30, start=200)),
        "numbers_to_replace": ["+441174960123", "+442078395555"],
    }
    pools["every"] = {
        "country": "GB",
        "numbers": list(example_numbers(30, start=300)),
        "replace_all_numbers": True,
    }
    for page, _ in inline.SWAPPED[:12]:
        cases.append((f"<div>{page}</div>", "listed"))
    for page in inline.KEPT[:8]:
        cases.append((f"<div>{page}</div>", "every"))
    return cases, pools


REAL_PAGES = 4


def _real_pages() -> list[tuple[str, str, dict[str, Any]]]:
    """Saved real pages showing phone numbers, their scripts taken out: ``(name, HTML,
    pool arguments)``, each a replace_all pool of the page's country."""
    try:
        found = [page for page in labelled_pages() if page.phones][:REAL_PAGES]
    except OSError:
        return []
    used: set[str] = set()
    out = []
    for index, page in enumerate(found):
        example = phonenumbers.example_number_for_type(
            page.country, phonenumbers.PhoneNumberType.FIXED_LINE
        )
        assert example is not None
        nsn = phonenumbers.national_significant_number(example)
        for step in range(100):
            candidate = phonenumbers.parse(f"+{example.country_code}{nsn[:-2]}{step:02d}")
            if phonenumbers.is_valid_number(candidate) and _e164(candidate) not in used:
                break
        tracking = _e164(candidate)
        used.add(tracking)
        html = re.sub(r"(?is)<script\b.*?</script\s*>", "", page.html)
        pool = {
            "country": page.country,
            "numbers": [tracking],
            "replace_all_numbers": True,
            "termination_number": tracking,
        }
        out.append((f"real{index}", html, pool))
    return out


@pytest.fixture(scope="module")
def parity_site() -> Iterator[tuple[Site, list[tuple[str, str, str]]]]:
    cases, arguments = _parity_cases()
    arguments = dict(arguments)
    real = _real_pages()
    for name, _, pool in real:
        arguments[name] = pool
    keys = {name: str(index + 1) for index, name in enumerate(arguments)}
    engine = Engine(
        [
            build_pool(
                id=int(keys[name]), name=name, sources=[source("Any", [f"pool={name}"])], **a
            )
            for name, a in arguments.items()
        ],
        client_cap=0,  # one address and user agent for every case (see ``site``)
    )
    parity = Site(engine, secret=SECRET)
    pages = []
    for index, (body, name) in enumerate(cases):
        page = f"<!doctype html><html><head>{PARITY_SCRIPT}</head><body>{body}</body></html>"
        parity.pages[f"/case/{index}"] = (page, {})
        pages.append((f"/case/{index}?pool={name}", page, keys[name]))
    for name, html, _ in real:
        # the script first in <head>, before any <base> the page holds
        page = re.sub(r"(?i)<head\b[^>]*>", lambda m: m.group(0) + PARITY_SCRIPT, html, count=1)
        parity.pages[f"/{name}"] = (page, {})
        pages.append((f"/{name}?pool={name}", page, keys[name]))
    with serve(parity):
        yield parity, pages


def _shows(page: Any) -> tuple[str, list[str | None]]:
    return page.evaluate(
        "() => [document.body.innerText,"
        " Array.from(document.querySelectorAll('[href]'), a => a.getAttribute('href'))]"
    )


def test_parity_with_the_server_side_rewrite(
    browser: Any,
    parity_site: tuple[Site, list[tuple[str, str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, pages = parity_site
    assert len(pages) >= 40
    # The server's rewrite, served from the same site without the script tag: the same
    # base URL, <noscript> hidden as in the swapped page. Only loopback is reached.
    reference = browser.new_context()
    local = site.url("/")
    reference.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith(local) else r.abort()
    )
    shown = reference.new_page()
    misses = []
    swapped = 0
    person = Visitor(browser)  # a new visitor each time: the cookies are cleared
    person.context.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith(local) else r.abort()
    )
    for path, page, key in pages:
        person.context.clear_cookies()
        outcome, number, _ = person.visit(site.url(path))
        assert outcome == "new", (path, outcome)
        assert number is not None
        browser_text, browser_links = _shows(person.page)
        rewritten = compile_rewriter(site.engine.pool(key)).rewrite_html(page, number)
        reference_path = "/reference" + path.split("?")[0]
        site.pages[reference_path] = (rewritten.replace(PARITY_SCRIPT, "", 1), {})
        shown.goto(site.url(reference_path))
        server_text, server_links = _shows(shown)
        swapped += rewritten != page
        if (browser_text, browser_links) != (server_text, server_links):
            misses.append((path, browser_text, server_text, browser_links, server_links))
    reference.close()
    assert not person.errors
    assert not person.script_messages()
    person.close()
    with capsys.disabled():
        print(f"\nparity: {len(pages)} pages, {swapped} swapping a number, {len(misses)} differ")
    assert swapped >= 30
    assert not misses, json.dumps(misses[:3], indent=1, ensure_ascii=False)
