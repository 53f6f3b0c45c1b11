"""The browser script's text: the rewriter's inline elements, and nothing a strict CSP refuses.

Its behaviour is tested in a browser (``tests/test_web_browser.py``); these
checks need none.
"""

from __future__ import annotations

import re
from importlib import resources

from dni_engine.rewrite.inline import INLINE_ELEMENTS
from dni_engine.web.endpoint import script_tags

SCRIPT = resources.files("dni_engine.web").joinpath("static/dni.js").read_text("utf-8")


def _words(name: str) -> list[str]:
    found = re.search(rf'var {name} = "([a-z ]+)";', SCRIPT)
    assert found is not None, f"no {name} list in dni.js"
    return found.group(1).split(" ")


def test_the_inline_elements_are_the_rewriters() -> None:
    assert _words("INLINE") == list(INLINE_ELEMENTS)


def test_the_skipped_elements() -> None:
    assert set(_words("SKIP")) >= {"script", "style", "textarea"}
    assert not set(_words("SKIP")) & set(INLINE_ELEMENTS)
    assert "data-dni-noswap" in SCRIPT
    assert "isContentEditable" in SCRIPT


def test_nothing_a_strict_policy_refuses() -> None:
    for refused in ("eval(", "new Function", "innerHTML", "document.write", 'setAttribute("style'):
        assert refused not in SCRIPT, refused
    # setTimeout only ever with a function
    assert not re.search(r"setTimeout\(\s*['\"]", SCRIPT)


def test_it_can_stand_inline() -> None:
    assert "<!--" not in SCRIPT
    assert "</script" not in SCRIPT.lower()
    tag = script_tags(nonce="abc", inline=True)
    assert tag.startswith('<script nonce="abc"')
    assert SCRIPT in tag


def test_the_fragment_contract() -> None:
    # Two neighbouring text nodes are parted by an empty comment, which the rewriter
    # reads as an inline tag (a number may go on across it); text is escaped as the
    # endpoint unescapes it.
    assert r'var PART = "\x3c!---->";' in SCRIPT
    assert '.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")' in SCRIPT
