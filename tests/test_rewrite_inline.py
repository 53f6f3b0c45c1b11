"""Numbers split by inline markup: swapped as one number, every tag kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dni_engine.rewrite import Rewriter
from dni_engine.rewrite.inline import INLINE_ELEMENTS, sibling_joins

BRISTOL = "+441174090162"
LISTED = Rewriter("GB", ["01174960123", "02078395555"])
EVERY = Rewriter("GB", replace_all=True)

SWAPPED = [
    # the examples: digits poured into their positions, tags untouched
    ("Call 0117 <b>496</b> 0123", "Call 0117 <b>409</b> 0162"),
    ("<span>0117</span> <span>496 0123</span>", "<span>0117</span> <span>409 0162</span>"),
    ("Call <b>0117 496</b> 0123", "Call <b>0117 409</b> 0162"),
    ("Call 0117 496 <strong>0123</strong>", "Call 0117 409 <strong>0162</strong>"),
    # nested inline tags, tags on both sides of a separator
    ("Call 0117 <b><i>496</i></b> 0123", "Call 0117 <b><i>409</i></b> 0162"),
    (
        "Call <b><i>0117</i></b> <b><i>496 0123</i></b>",
        "Call <b><i>0117</i></b> <b><i>409 0162</i></b>",
    ),
    # attributes, with ">" inside quoted values
    (
        'Call 0117 <span class="x" title="a>b">496</span> 0123',
        'Call 0117 <span class="x" title="a>b">409</span> 0162',
    ),
    ("Call 0117 <SPAN Class=x>496</SPAN> 0123", "Call 0117 <SPAN Class=x>409</SPAN> 0162"),
    # entities and nbsp as separators
    (
        "Call 0117&nbsp;<b>496</b>&nbsp;0123",
        "Call 0117&nbsp;<b>409</b>&nbsp;0162",
    ),
    ("Call 0117\u00a0<b>496</b>\u00a00123", "Call 0117\u00a0<b>409</b>\u00a00162"),
    # a comment between pieces
    ("Call 0117 <!-- x -->496 0123", "Call 0117 <!-- x -->409 0162"),
    # the international form
    ("Call <b>+44</b> 117 496 0123", "Call <b>+44</b> 117 409 0162"),
    # another layout: the tracking number's own grouping, tags between the same groups
    ("Call <b>020</b> 7839 5555", "Call <b>0117</b> 409 0162"),
    ("Call (<b>020</b>) 7839 5555", "Call (<b>0117</b>) 409 0162"),
    ("Call <b>(020)</b> 7839 5555", "Call <b>(0117)</b> 409 0162"),
    ("Call +44 <i>20</i> 7839 5555", "Call +44 <i>117</i> 409 0162"),
    ("Call 020 <b>7839</b> <b>5555</b>", "Call 0117 <b>409</b> <b>0162</b>"),
    ("Call <b>020 7839</b> 5555", "Call <b>0117 409</b> 0162"),
    # inside a tel: link's text, the link target swapped too
    (
        '<a href="tel:01174960123">0117 <b>496</b> 0123</a>',
        '<a href="tel:+441174090162">0117 <b>409</b> 0162</a>',
    ),
    # a link holding part of the number: it is inline, its target swapped on its own
    (
        '<a href="tel:01174960123">0117</a> 496 0123',
        '<a href="tel:+441174090162">0117</a> 409 0162',
    ),
    ('Call <a href="/contact">0117</a> 496 0123', 'Call <a href="/contact">0117</a> 409 0162'),
]

KEPT = [
    # block elements, br, noswap elements and raw text break a number
    "Call 0117 <div>496</div> 0123",
    "Call 0117<br>496 0123",
    "Call 0117 <p>496 0123",
    "Call 0117 <span data-dni-noswap>496</span> 0123",
    "Call <span data-dni-noswap>0117</span> 496 0123",
    "Call 0117 <b data-dni-noswap>496 0123</b>",
    "Call 0117 <script>496</script> 0123",
    "Call 0117 <img src=x>496 0123",
    # sub and sup hold footnote marks and exponents, not parts of a number
    "Call 0117 <sup>496</sup> 0123",
    # tags written as text are no tags
    "<textarea>0117 <b>496</b> 0123</textarea>",
    "<title>0117 <b>496</b> 0123</title>",
    "<script>var s = '0117 <b>496</b> 0123';</script>",
    "<style>/* 0117 <b>496</b> 0123 */</style>",
    "<!-- 0117 <b>496</b> 0123 -->",
    # tags inside an attribute value are text of the value
    '<a href="tel:0117<b>496</b>0123">x</a>',
    '<span title="0117 <b>496</b> 0123">x</span>',
    # sibling elements' digits, with nothing between them, are separate things
    "Tel 0117</b><b>4960123",
    # a number touching another digit through markup is part of something longer
    "Tel 90117 <b>496</b> 0123",
]


@pytest.mark.parametrize("rewriter", [LISTED, EVERY], ids=["listed", "replace_all"])
@pytest.mark.parametrize(("page", "wanted"), SWAPPED)
def test_split_number_swapped_with_its_markup_kept(
    rewriter: Rewriter, page: str, wanted: str
) -> None:
    assert rewriter.rewrite_html(page, BRISTOL) == wanted


@pytest.mark.parametrize("rewriter", [LISTED, EVERY], ids=["listed", "replace_all"])
@pytest.mark.parametrize("page", KEPT)
def test_markup_that_breaks_a_number(rewriter: Rewriter, page: str) -> None:
    assert rewriter.rewrite_html(page, BRISTOL) == page


@pytest.mark.parametrize("name", INLINE_ELEMENTS)
def test_every_inline_element(name: str) -> None:
    page = f"Call 0117 <{name}>496</{name}> 0123"
    assert LISTED.rewrite_html(page, BRISTOL) == f"Call 0117 <{name}>409</{name}> 0162"


def test_digits_touching_through_tags() -> None:
    # A listed number's digits are known: tags inside a group join them.
    assert LISTED.rewrite_html("Tel 01174<b>96</b>0123", BRISTOL) == "Tel 01174<b>09</b>0162"
    # replace_all takes tags between touching digits as a boundary, as tags are at
    # a listed number's edges.
    assert EVERY.rewrite_html("Tel 01174<b>96</b>0123", BRISTOL) == "Tel 01174<b>96</b>0123"
    for rewriter in (LISTED, EVERY):
        page = "Unit 5<b>0117 496 0123</b>"
        assert rewriter.rewrite_html(page, BRISTOL) == "Unit 5<b>0117 409 0162</b>"


def test_separators_written_as_references() -> None:
    # Listed numbers take any separator reference (replace_all only &nbsp;).
    page = "Call 0117 &ndash; <b>496</b> &ndash; 0123"
    assert LISTED.rewrite_html(page, BRISTOL) == "Call 0117 &ndash; <b>409</b> &ndash; 0162"


def test_found_span_covers_the_tags() -> None:
    (found,) = LISTED.find_html("Call 0117 <b>496</b> 0123.")
    assert (found.start, found.end, found.text) == (5, 25, "0117 <b>496</b> 0123")
    assert found.number == "+441174960123"
    assert not found.link


@pytest.mark.parametrize("rewriter", [LISTED, EVERY], ids=["listed", "replace_all"])
def test_footnote_mark_before_a_number(rewriter: Rewriter) -> None:
    page = "Call<sup>1</sup>0117 496 0123"
    assert rewriter.rewrite_html(page, BRISTOL) == "Call<sup>1</sup>0117 409 0162"


def test_text_is_never_split() -> None:
    # Plain text holds no markup: "<b>" there is text.
    assert LISTED.rewrite_text("0117 <b>496</b> 0123", BRISTOL) == "0117 <b>496</b> 0123"


def test_pagination_links_are_no_number() -> None:
    page = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(1, 12))
    assert EVERY.rewrite_html(page, BRISTOL) == page
    us = Rewriter("US", replace_all=True)
    assert us.rewrite_html(page, "+12125550143") == page


_TAGS = st.sampled_from(["<b>", "</b>", "<span class='n'>", "</span>", "<!-- c -->", "<i>"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), _TAGS), max_size=4))
def test_any_tags_between_the_digits(cuts: list[tuple[int, str]]) -> None:
    """Wherever inline tags stand in a number, it is swapped, the tags kept in order,
    and a browser shows the tracking number; unless they close an element and open
    another between two digits."""
    number = "0117 496 0123"
    page = ""
    at = 0
    for cut, tag in sorted(cuts):
        page += number[at:cut] + tag
        at = max(at, cut)
    page = "Call " + page + number[at:] + "."
    out = LISTED.rewrite_html(page, BRISTOL)
    if sibling_joins(page, 5, len(page) - 1):
        assert out == page
        return
    assert re.findall(r"<[^>]*>", out) == re.findall(r"<[^>]*>", page)
    shown = re.sub(r"<[^>]*>", "", out)
    assert shown == "Call 0117 409 0162."


@pytest.mark.parametrize(
    "unit",
    ["1 <b a='", '0 <b a="', "0 <b a ", '0 <b a="<" ', "0117 <span ", "0117 <!-- "],
)
def test_tags_that_never_close_stay_cheap(unit: str) -> None:
    """A look at a tag ends at the next ``<``: pages of tags that never close are
    read in linear time (a look running to the end of the page at every digit
    took a minute here), and nothing in them is a number."""
    page = unit * 20000
    for rewriter in (LISTED, EVERY):
        assert rewriter.rewrite_html(page, BRISTOL) == page


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([4, 5, 8, 9]), _TAGS), max_size=3))
def test_replace_all_with_tags_beside_separators(cuts: list[tuple[int, str]]) -> None:
    """Tags beside a separator (as pages split numbers) join a number for replace_all."""
    number = "0117 496 0123"
    page = ""
    at = 0
    for cut, tag in sorted(cuts):
        page += number[at:cut] + tag
        at = max(at, cut)
    page = "Call " + page + number[at:] + "."
    out = EVERY.rewrite_html(page, BRISTOL)
    assert re.findall(r"<[^>]*>", out) == re.findall(r"<[^>]*>", page)
    assert re.sub(r"<[^>]*>", "", out) == "Call 0117 409 0162."


# A link right after a number, as inline markup: its target is read on its own,
# so the link dials what its text shows.
LINK_AFTER_NUMBER = [
    (
        'Call 0117 496 0123<a href="tel:01174960123">0117 496 0123</a>',
        'Call 0117 409 0162<a href="tel:+441174090162">0117 409 0162</a>',
    ),
    (
        'Call 0117 496 0123 <a href="tel:01174960123">0117 496 0123</a>',
        'Call 0117 409 0162 <a href="tel:+441174090162">0117 409 0162</a>',
    ),
    (
        "0117 496 0123 <a href='callto:0117%20496%200123'>us</a>",
        "0117 409 0162 <a href='callto:+441174090162'>us</a>",
    ),
    (
        '0117 496 0123 <a href=" &#116;el:01174960123">us</a>',
        '0117 409 0162 <a href=" &#116;el:+441174090162">us</a>',
    ),
]


@pytest.mark.parametrize("rewriter", [LISTED, EVERY], ids=["listed", "replace_all"])
@pytest.mark.parametrize(("page", "wanted"), LINK_AFTER_NUMBER)
def test_a_link_after_a_number_is_swapped_with_it(
    rewriter: Rewriter, page: str, wanted: str
) -> None:
    assert rewriter.rewrite_html(page, BRISTOL) == wanted
    stream = rewriter.stream(BRISTOL)
    assert "".join([*(stream.feed(ch) for ch in page), stream.close()]) == wanted
