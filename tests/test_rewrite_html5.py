"""The HTML reading held to html5lib, the reference parser, over the HTML5 conformance inputs.

For every input of the html5lib tokenizer tests (``tokenizer/*.test``) and
tree-construction tests (``tree-construction/*.dat``), a listed number is
inserted at a position of the input, the result is parsed by html5lib, and the
rewriter must swap exactly what html5lib makes visible text or a phone link:

- the number counts as text when it lies inside one text node of html5lib's
  tree that has no ``script``, ``style`` or ``data-dni-noswap`` element (of any
  namespace) among its ancestors;
- it counts as a link target when it lies inside the ``href`` attribute value
  of an element outside such subtrees, and that value (leading whitespace
  aside) starts with ``tel:`` or ``callto:`` (ASCII case-insensitively); the
  clones html5lib makes of a formatting element repeat the same attribute, and
  count once.

``Rewriter.find_html`` of the input with the insertion must then give exactly
the inserted number's span (as text or as a link target) or nothing.

What is inserted: ``" 0117 496 0123 "`` (the pool is GB's, listing that
number), so that the number never touches a digit or letter of the input (which
would rightly make it part of something longer), and so that no character
reference of the input can swallow its first digit (``&#`` followed by a space is
no reference). A second pass inserts ``" tel:0117 496 0123 "``, which turns any
``href`` value the insertion starts into a phone link. Inputs that already
show the number's digits, or whose text before the insertion ends in what
reads as another country's code (``+33 ``), are not used: there the finder
rightly declines for reasons of its own, not of the markup.

Inputs with ``isindex`` are left out: html5lib 1.1 still expands it into a
form whose prompt attribute becomes text, which HTML and browsers no longer
do (the rewriter reads it as the unknown element browsers make of it).

Initial states of the tokenizer tests other than the data state are reached by
wrapping the input: RCDATA in its ``lastStartTag`` or ``<title>``, RAWTEXT in
its ``lastStartTag`` or ``<xmp>``, script data in ``<script>``, PLAINTEXT in
``<plaintext>``, a CDATA section in ``<svg><![CDATA[``. Tree-construction
fragment cases are wrapped in their context element. Either way the wrapped
input is just another input: what is compared is the rewriter against html5lib
on that same string.

Every position of every input is about 270,000 parses, too slow for the test
suite; the suite takes a deterministic sample (a fixed hash of input and
position picks about one in ``SAMPLE_RATE``), and ``DNI_HTML5_FULL=1`` runs
every position.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

html5lib = pytest.importorskip("html5lib", reason="html5lib (the dev extra) is not installed")

from dni_engine.rewrite import Rewriter  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "html5lib-tests"
if not CORPUS.is_dir():
    # The worktree may sit beside the main checkout rather than in it.
    CORPUS = Path("/work/shared/corpora/html5lib-tests")

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the html5lib conformance corpus is absent ({CORPUS})"
)

NUMBER = "0117 496 0123"
INSERTS = (" " + NUMBER + " ", " tel:" + NUMBER + " ")
REWRITER = Rewriter("GB", ["0117 496 0123"])
SAMPLE_RATE = 12
FULL = os.environ.get("DNI_HTML5_FULL") == "1"

_HIDDEN = frozenset({"script", "style"})
_NOSWAP = "data-dni-noswap"
_WHITESPACE = "\t\n\f\r "
_FOREIGN_LEAD = re.compile(r"(?:\+|00)[0-9]{1,3}[^0-9A-Za-z]{0,3}\Z")


def _unescape(text: str) -> str:
    return re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _tokenizer_inputs() -> Iterator[tuple[str, str]]:
    wrap = {
        "Data state": "",
        "PLAINTEXT state": "<plaintext>",
        "Script data state": "<script>",
        "CDATA section state": "<svg><![CDATA[",
    }
    for path in sorted((CORPUS / "tokenizer").glob("*.test")):
        tests = json.loads(path.read_text(encoding="utf-8")).get("tests", [])
        for test in tests:
            text = test["input"]
            if test.get("doubleEscaped"):
                text = _unescape(text)
            for state in test.get("initialStates", ["Data state"]):
                last = test.get("lastStartTag")
                if state == "RCDATA state":
                    prefix = f"<{last or 'title'}>"
                elif state == "RAWTEXT state":
                    prefix = f"<{last or 'xmp'}>"
                else:
                    prefix = wrap[state]
                yield f"{path.name}: {test['description']}", prefix + text


def _tree_inputs() -> Iterator[tuple[str, str]]:
    for path in sorted((CORPUS / "tree-construction").glob("*.dat")):
        text = path.read_text(encoding="utf-8")
        for number, block in enumerate(text.split("#data\n")[1:]):
            data = block.split("\n#errors", 1)[0]
            context = re.search(r"^#document-fragment\n(.*)$", block, re.M)
            if context is not None:
                parts = context.group(1).split()
                if len(parts) == 2:  # svg path, math mi: a foreign context element
                    data = f"<{parts[0]}><{parts[1]}>" + data
                else:
                    data = f"<{parts[0]}>" + data
            yield f"{path.name} #{number}", data


@cache
def _inputs() -> tuple[tuple[str, str], ...]:
    seen: set[str] = set()
    kept = []
    for name, text in [*_tokenizer_inputs(), *_tree_inputs()]:
        if text in seen or NUMBER in text or "isindex" in text.lower():
            continue
        seen.add(text)
        kept.append((name, text))
    return tuple(kept)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _expected(page: str) -> list[tuple[bool, str]]:
    """What html5lib makes of each occurrence of the number: ``(link, where)`` per occurrence."""
    root = html5lib.parse(page)
    found: list[tuple[bool, str]] = []

    def walk(element: Any, hidden: bool) -> None:
        name = _local(element.tag)
        hidden = hidden or name in _HIDDEN or _NOSWAP in element.attrib
        if not hidden:
            href = element.attrib.get("href")
            if href is not None and NUMBER in href:
                scheme = href.lstrip(_WHITESPACE).lower()
                if scheme.startswith(("tel:", "callto:")):
                    found.append((True, f"href of <{name}>"))
            if element.text and NUMBER in element.text and isinstance(element.tag, str):
                found.append((False, f"text in <{name}>"))
        for child in element:
            walk(child, hidden)
            if child.tail and NUMBER in child.tail and not hidden:
                found.append((False, f"text in <{name}>"))

    walk(root, False)
    return found


def _check(text: str, at: int, insert: str) -> str | None:
    """Why the rewriter disagrees with html5lib on ``insert`` at ``at``, or ``None``."""
    page = text[:at] + insert + text[at:]
    start = at + insert.index(NUMBER)
    if _FOREIGN_LEAD.search(page, 0, at + 1):
        return None  # the finder reads it as the end of a foreign number
    want = _expected(page)
    try:
        got = [(f.start, f.end, f.link) for f in REWRITER.find_html(page)]
    except Exception as error:  # pragma: no cover - reported as a failure below
        return f"find_html raised {error!r} on {page!r}"
    # One occurrence in the page; html5lib may show a link target more than once, in the
    # clones the parser makes of a formatting element (an <a> reopened after a table).
    wanted = [(start, start + len(NUMBER), link) for link in sorted({link for link, _ in want})]
    if got != wanted:
        return f"{page!r}: html5lib {want or 'nowhere visible'}, rewriter {got}"
    return None


def _positions(text: str) -> Iterator[tuple[int, str]]:
    """The positions of ``text`` checked, each with what is inserted there."""
    if FULL:
        for at in range(len(text) + 1):
            for insert in INSERTS:
                yield at, insert
        return
    key = text.encode("utf-8", "surrogatepass")
    first = zlib.crc32(key) % (len(text) + 1)  # every input is checked at one position at least
    for at in range(len(text) + 1):
        pick = zlib.crc32(b"%d:" % at + key) % SAMPLE_RATE
        if at == first or pick == 0:
            yield at, INSERTS[0]
        # The link form where an attribute value may start, and now and then anywhere.
        if pick == 1 or (pick < SAMPLE_RATE // 2 and text[at - 1 : at] in ("=", '"', "'")):
            yield at, INSERTS[1]


def _disagreements(texts: tuple[tuple[str, str], ...], limit: int = 40) -> tuple[int, list[str]]:
    checked = 0
    wrong: list[str] = []
    for name, text in texts:
        for at, insert in _positions(text):
            checked += 1
            why = _check(text, at, insert)
            if why is not None:
                wrong.append(f"{name} at {at}: {why}")
    return checked, wrong[:limit] + (
        [f"... {len(wrong) - limit} more"] if len(wrong) > limit else []
    )


def test_the_corpus_is_there_and_large() -> None:
    assert len(_inputs()) > 5000


@pytest.mark.parametrize("part", ["tokenizer", "tree-construction"])
def test_the_rewriter_swaps_exactly_what_html5lib_makes_text(part: str) -> None:
    texts = tuple(
        (name, text) for name, text in _inputs() if (".test: " in name) == (part == "tokenizer")
    )
    checked, wrong = _disagreements(texts)
    assert checked > 1000
    assert not wrong, "\n".join(wrong)
