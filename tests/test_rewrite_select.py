"""A number inside a large select or svg: runs the tree would read tag by tag
without changing its state are passed over in one step.

An ``<option>`` closes the option before it, so after a run of options each
followed by another the tree's state is what it was before the run; so it is
after self-closing svg elements and svg elements closed by their own end tag.
The reader passes over such runs with one regular expression instead of
feeding the tree tag by tag. What is swapped must not change.
"""

from __future__ import annotations

import sys

import pytest

from dni_engine.rewrite import Rewriter
from dni_engine.rewrite.markup import placed

N = "0117 496 0123"
T = "0117 409 0199"
TRACKING = "+441174090199"
REWRITER = Rewriter("GB", [N])
MENU = "".join(f'<option value="/{i}">Month {i}&nbsp;(5)</option>\n' for i in range(60))


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        (f"<select>{MENU}<option>{N}</select>{N}", f"<select>{MENU}<option>{T}</select>{T}"),
        (
            f"<select><option data-dni-noswap>HQ {N}{MENU}<option>Sales {N}</select>",
            f"<select><option data-dni-noswap>HQ {N}{MENU}<option>Sales {T}</select>",
        ),
        (
            f"<select>{MENU}<option data-dni-noswap>{N}<option>{N}</select>",
            f"<select>{MENU}<option data-dni-noswap>{N}<option>{T}</select>",
        ),
        (
            f"<select data-dni-noswap>{MENU}<option>{N}</select>{N}",
            f"<select data-dni-noswap>{MENU}<option>{N}</select>{T}",
        ),
        (
            f"<select><optgroup data-dni-noswap>{MENU}<option>{N}<optgroup>{MENU}"
            f"<option>{N}</select>",
            f"<select><optgroup data-dni-noswap>{MENU}<option>{N}<optgroup>{MENU}"
            f"<option>{T}</select>",
        ),
        (
            f"<table><tr><td><select>{MENU}<option>{N}</select>{N}</table>",
            f"<table><tr><td><select>{MENU}<option>{T}</select>{T}</table>",
        ),
        (
            f"<select>{MENU.upper()}<!-- {N} --><OPTION>{N}</select>",
            f"<select>{MENU.upper()}<!-- {N} --><OPTION>{T}</select>",
        ),
        (
            f'<select>{MENU}<option title="{N}">{N}</select>',
            f'<select>{MENU}<option title="{N}">{T}</select>',
        ),
        (
            f"<select>{MENU}<script>{N}</script><option>{N}</select>",
            f"<select>{MENU}<script>{N}</script><option>{T}</select>",
        ),
    ],
)
def test_a_number_after_many_options(page: str, wanted: str) -> None:
    assert REWRITER.rewrite_html(page, TRACKING) == wanted


def _calls(page: str) -> int:
    spans = [(f.start, f.end) for f in REWRITER._finder.find(page, False)]  # type: ignore[union-attr]
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        placed(page, spans)
    finally:
        sys.setprofile(None)
    return count


def test_options_cost_the_same_however_many() -> None:
    def menu(n: int) -> str:
        options = "".join(f"<option value={i}>Month {i}</option>" for i in range(n))
        return f"<form><select name=m>{options}<option>{N}</select></form>"

    small, large = _calls(menu(50)), _calls(menu(2000))
    assert large <= small + 50, (small, large)


BARS = "".join(
    f'<g class="bar"><path d="M{i} 0L{i} 9" fill="#333"/>\n<rect x="{i}" height="2"></rect></g>\n'
    for i in range(60)
)


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        (
            f"<svg>{BARS}<text>Call {N}</text></svg>{N}",
            f"<svg>{BARS}<text>Call {T}</text></svg>{T}",
        ),
        (
            f"<svg><g data-dni-noswap>{BARS}<text>{N}</text></g>{BARS}<text>{N}</text></svg>",
            f"<svg><g data-dni-noswap>{BARS}<text>{N}</text></g>{BARS}<text>{T}</text></svg>",
        ),
        (
            f"<svg>{BARS}<g data-dni-noswap/><text>{N}</text></svg>",
            f"<svg>{BARS}<g data-dni-noswap/><text>{T}</text></svg>",
        ),
        (
            f"<svg>{BARS}<path d=M0/>{BARS}<text>{N}</text></svg>",
            f"<svg>{BARS}<path d=M0/>{BARS}<text>{T}</text></svg>",
        ),
        (f"<svg>{BARS}<desc>{N}</desc></svg>", f"<svg>{BARS}<desc>{T}</desc></svg>"),
        (f"<svg>{BARS}<script>{N}</script></svg>{N}", f"<svg>{BARS}<script>{N}</script></svg>{T}"),
        (f"<svg>{BARS}<p>{N}</svg>", f"<svg>{BARS}<p>{T}</svg>"),
        (
            f"<div data-dni-noswap><svg>{BARS.upper()}<text>{N}</text></svg></div>{N}",
            f"<div data-dni-noswap><svg>{BARS.upper()}<text>{N}</text></svg></div>{T}",
        ),
        (
            f'<svg>{BARS}<path title="{N}"/><text>{N}</text></svg>',
            f'<svg>{BARS}<path title="{N}"/><text>{T}</text></svg>',
        ),
    ],
)
def test_a_number_after_many_svg_elements(page: str, wanted: str) -> None:
    assert REWRITER.rewrite_html(page, TRACKING) == wanted


def test_svg_elements_cost_the_same_however_many() -> None:
    def chart(n: int) -> str:
        bars = "".join(f'<g><path d="M{i}"/><rect x="{i}"></rect></g>' for i in range(n))
        return f"<svg>{bars}<text>{N}</text></svg>"

    small, large = _calls(chart(50)), _calls(chart(2000))
    assert large <= small + 50, (small, large)
