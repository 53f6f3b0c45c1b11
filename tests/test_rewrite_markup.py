"""How the rewriter reads HTML: the tokenizer's states, implied end tags, linear time."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from dni_engine.rewrite import Rewriter
from dni_engine.rewrite.markup import placed

N = "0117 496 0123"  # the listed number, as pages write it
T = "0117 409 0199"  # the tracking number, poured into the same places
TRACKING = "+441174090199"
REWRITER = Rewriter("GB", ["0117 496 0123"])


def swap(page: str) -> str:
    return REWRITER.rewrite_html(page, TRACKING)


def kept(page: str) -> None:
    assert swap(page) == page


# ---- the tokenizer's states ---------------------------------------------------------

SCRIPT_AND_STYLE = [
    # script data, escaped and double-escaped: the old document.write pattern
    f"<script><!--<script></script> {N} </script>",
    f"<script><!--<script></script> {N} --></script>",
    f"<script><!--<SCRIPT>a</sCrIpT> {N} </script>",
    f"<script><!--<script/></script/> {N}</script>",
    f"<script><!-- <script>x</script> --> {N}</script>",
    # end tags match ASCII case-insensitively only
    f"<script>x</\u017fcript> {N} </script>",
    f"<script>x</scr\u0130pt> {N} </script>",
    f"<style>x</\u017ftyle> {N} </style>",
    f"<script>x</script {N}",  # an end tag that never closes holds the rest
    f"<style>a{{}}</style {N}",
    f"<style>{N}</style>",
    f'<svg><script>var n = "{N}"</script></svg>',
    f"<svg><style>/* {N} */</style></svg>",
    f"<math><style>{N}</style></math>",
]


@pytest.mark.parametrize("page", SCRIPT_AND_STYLE)
def test_script_and_style_are_never_swapped(page: str) -> None:
    kept(page)


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        (
            f"<script><!--<script></script>--></script> {N}",
            f"<script><!--<script></script>--></script> {T}",
        ),
        (f"<script><!--</script> {N}", f"<script><!--</script> {T}"),  # it ends an escape too
        (f"<script><!-- x --></script>{N}", f"<script><!-- x --></script>{T}"),
        (f"<script><!--></script>{N}", f"<script><!--></script>{T}"),
        (f"<script>a</SCRIPT >{N}", f"<script>a</SCRIPT >{T}"),
        (f"<script>a</script/>{N}", f"<script>a</script/>{T}"),
        (f"<script>a</scripts>{N}</script>", None),
        (f"<style>x</\u017ftyle></style>{N}", f"<style>x</\u017ftyle></style>{T}"),
    ],
)
def test_where_script_data_ends(page: str, wanted: str | None) -> None:
    assert swap(page) == (page if wanted is None else wanted)


@pytest.mark.parametrize("name", ["title", "textarea"])
def test_rcdata_is_text_and_tags_in_it_are_text(name: str) -> None:
    assert swap(f"<{name}>Call {N}</{name}>") == f"<{name}>Call {T}</{name}>"
    assert (
        swap(f"<{name}>0117&nbsp;496&nbsp;0123</{name}>")
        == f"<{name}>0117&nbsp;409&nbsp;0199</{name}>"
    )
    # A tel: link written inside is text, not a link: its number is swapped as text.
    page = f'<{name}><a href="tel:01174960123">{N}</a></{name}>'
    assert swap(page) == f'<{name}><a href="tel:01174090199">{T}</a></{name}>'
    # </{name}> ends it only as a whole word, ASCII case-insensitively
    assert swap(f"<{name}></{name}x {N}</{name}>") == f"<{name}></{name}x {T}</{name}>"
    assert swap(f"<{name}>a</{name.upper()}><p>{N}") == f"<{name}>a</{name.upper()}><p>{T}"


@pytest.mark.parametrize("name", ["xmp", "iframe", "noembed", "noframes"])
def test_rawtext_other_than_style_is_text_as_html5lib_makes_it(name: str) -> None:
    # html5lib makes their content one text node: it is swapped, tags in it are text.
    assert swap(f"<{name}>{N}</{name}>") == f"<{name}>{T}</{name}>"
    page = f'<{name}><a href="tel:01174960123">x</a><!-- {N} --></{name}>'
    assert swap(page) == f'<{name}><a href="tel:01174090199">x</a><!-- {T} --></{name}>'


def test_noscript_is_markup_as_without_javascript() -> None:
    assert swap(f"<noscript>Call {N}</noscript>") == f"<noscript>Call {T}</noscript>"
    assert swap(f"<noscript><!-- {N} --></noscript>") == f"<noscript><!-- {N} --></noscript>"
    page = f"<head><noscript><style>{N}</style></noscript></head><p>{N}"
    assert swap(page) == f"<head><noscript><style>{N}</style></noscript></head><p>{T}"


def test_plaintext_makes_everything_after_it_text() -> None:
    page = f'<plaintext></plaintext><a href="tel:01174960123"><!-- {N} --><script>{N}'
    wanted = f'<plaintext></plaintext><a href="tel:01174090199"><!-- {T} --><script>{T}'
    assert swap(page) == wanted


def test_cdata_is_text_in_svg_and_math_and_a_bogus_comment_in_html() -> None:
    assert swap(f"<svg><![CDATA[{N}]]></svg>") == f"<svg><![CDATA[{T}]]></svg>"
    assert (
        swap(f"<math><mi><![CDATA[{N}]]></mi></math>") == f"<math><mi><![CDATA[{T}]]></mi></math>"
    )
    kept(f"<![CDATA[{N}]]>")
    assert swap(f"<![CDATA[{N}>]]> {N}") == f"<![CDATA[{N}>]]> {T}"
    assert (
        swap(f"<svg><![CDATA[x]]></svg><![CDATA[{N}]]>")
        == f"<svg><![CDATA[x]]></svg><![CDATA[{N}]]>"
    )


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        # comments as the tokenizer ends them
        (f"<!-->{N}", f"<!-->{T}"),
        (f"<!--->{N}", f"<!--->{T}"),
        (f"<!---->{N}", f"<!---->{T}"),
        (f"<!-- a --!>{N}", f"<!-- a --!>{T}"),
        (f"<!-- -- > {N} -->", None),
        (f"<!-- {N} --!-->x", None),
        (f"<!-- {N}", None),
        # bogus comments, and what is no markup at all
        (f"<?php {N} ?>", None),
        (f"<!x {N}>", None),
        (f"</ {N}>", None),
        (f"</>{N}", f"</>{T}"),
        (f"<!DOCTYPE html {N}>{N}", f"<!DOCTYPE html {N}>{T}"),
        (f"a < {N} <3 {N}", f"a < {T} <3 {T}"),
        (f"</ {N}", None),
        (f"<3{N}", None),  # touching a digit: part of something longer
        # tags: '<' in a name, attributes without values, quotes left open
        (f"<a<b {N}>", None),
        (f"<a<b>{N}", f"<a<b>{T}"),
        (f"<p title>{N}</p>", f"<p title>{T}</p>"),
        (f"<p title=x {N}>", None),
        (f'<p title="{N}', None),
        (f'<p title="x>{N}', None),
        (f"<p title='x>{N}'>{N}", f"<p title='x>{N}'>{T}"),
        (f'<p a="1"b="{N}">{N}', f'<p a="1"b="{N}">{T}'),
        (f"<p {N}>", None),
        (f"<p/{N}/>", None),
        (f"<p =x>{N}", f"<p =x>{T}"),
    ],
)
def test_the_tokenizer_rules(page: str, wanted: str | None) -> None:
    assert swap(page) == (page if wanted is None else wanted)


def test_a_link_target_is_the_first_href_of_a_visible_element() -> None:
    page = '<a href="tel:01174960123" href="tel:01174960123">x</a>'
    assert swap(page) == '<a href="tel:+441174090199" href="tel:01174960123">x</a>'
    kept('</a href="tel:01174960123">')
    kept('<a title="tel:01174960123">x</a>')
    kept('<a href="/tel:01174960123">x</a>')
    assert swap('<a href=" TEL:01174960123">') == '<a href=" TEL:+441174090199">'
    # A misplaced table cell is dropped by the parser: no link.
    kept('<p><td href="tel:01174960123">x</td>')
    assert swap('<table><tr><td href="tel:01174960123">x') == (
        '<table><tr><td href="tel:+441174090199">x'
    )
    kept('<a data-dni-noswap href="tel:01174960123">x</a>')
    kept('<div data-dni-noswap><a href="tel:01174960123">x</a></div>')


def test_frameset_drops_text() -> None:
    kept(f"<frameset> {N} </frameset>")
    kept(f"<html><frameset></frameset> {N}")
    assert swap(f"<frameset><noframes>{N}</noframes>") == f"<frameset><noframes>{T}</noframes>"
    assert swap(f"<p>x</p><frameset> {N}") == f"<p>x</p><frameset> {T}"  # too late for a frameset


def test_select_ignores_raw_text_tags() -> None:
    # html5lib ignores <style>, <xmp>, <title> inside <select>: what follows is text.
    assert swap(f"<select><style>{N}</style></select>") == f"<select><style>{T}</style></select>"
    kept(f"<select><script>{N}</script></select>")
    assert swap(f"<select><option>{N}</select>{N}") == f"<select><option>{T}</select>{T}"


# ---- data-dni-noswap and implied end tags ---------------------------------------------


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        (f"<p data-dni-noswap>HQ {N}<p>Sales {N}", f"<p data-dni-noswap>HQ {N}<p>Sales {T}"),
        (
            f"<ul><li data-dni-noswap>HQ {N}<li>Sales {N}</ul>",
            f"<ul><li data-dni-noswap>HQ {N}<li>Sales {T}</ul>",
        ),
        (
            f"<ul><li data-dni-noswap>HQ {N}</ul>Sales {N}",
            f"<ul><li data-dni-noswap>HQ {N}</ul>Sales {T}",
        ),
        (
            f"<dl><dt data-dni-noswap>HQ {N}<dd>Sales {N}</dl>",
            f"<dl><dt data-dni-noswap>HQ {N}<dd>Sales {T}</dl>",
        ),
        (
            f"<dl><dd data-dni-noswap>HQ {N}<dt>Sales {N}</dl>",
            f"<dl><dd data-dni-noswap>HQ {N}<dt>Sales {T}</dl>",
        ),
        (
            f"<select><option data-dni-noswap>HQ {N}<option>Sales {N}</select>",
            f"<select><option data-dni-noswap>HQ {N}<option>Sales {T}</select>",
        ),
        (
            f"<select><optgroup data-dni-noswap><option>HQ {N}<optgroup>Sales {N}</select>",
            f"<select><optgroup data-dni-noswap><option>HQ {N}<optgroup>Sales {T}</select>",
        ),
        (
            f"<table><tr><td data-dni-noswap>HQ {N}<td>Sales {N}</table>",
            f"<table><tr><td data-dni-noswap>HQ {N}<td>Sales {T}</table>",
        ),
        (
            f"<table><tr><th data-dni-noswap>HQ {N}<td>Sales {N}</table>",
            f"<table><tr><th data-dni-noswap>HQ {N}<td>Sales {T}</table>",
        ),
        (
            f"<table><tr data-dni-noswap><td>HQ {N}<tr><td>Sales {N}</table>",
            f"<table><tr data-dni-noswap><td>HQ {N}<tr><td>Sales {T}</table>",
        ),
        (
            f"<table><tr><td data-dni-noswap>HQ {N}</table>Sales {N}",
            f"<table><tr><td data-dni-noswap>HQ {N}</table>Sales {T}",
        ),
        (
            f"<table><thead data-dni-noswap><tr><td>HQ {N}<tbody><tr><td>Sales {N}</table>",
            f"<table><thead data-dni-noswap><tr><td>HQ {N}<tbody><tr><td>Sales {T}</table>",
        ),
        (
            f"<table><tbody data-dni-noswap><tr><td>HQ {N}<tfoot><tr><td>Sales {N}</table>",
            f"<table><tbody data-dni-noswap><tr><td>HQ {N}<tfoot><tr><td>Sales {T}</table>",
        ),
        (
            f"<ruby>x<rt data-dni-noswap>HQ {N}<rp>Sales {N}</ruby>",
            f"<ruby>x<rt data-dni-noswap>HQ {N}<rp>Sales {T}</ruby>",
        ),
        (
            f"<ruby>x<rb data-dni-noswap>HQ {N}<rt>Sales {N}</ruby>",
            f"<ruby>x<rb data-dni-noswap>HQ {N}<rt>Sales {T}</ruby>",
        ),
        (
            f"<ruby>x<rtc data-dni-noswap>HQ {N}<rb>Sales {N}</ruby>",
            f"<ruby>x<rtc data-dni-noswap>HQ {N}<rb>Sales {T}</ruby>",
        ),
        # p closed by the block-level start tags
        (
            f"<p data-dni-noswap>HQ {N}<div>Sales {N}</div>",
            f"<p data-dni-noswap>HQ {N}<div>Sales {T}</div>",
        ),
        (
            f"<p data-dni-noswap>HQ {N}<ul><li>Sales {N}</ul>",
            f"<p data-dni-noswap>HQ {N}<ul><li>Sales {T}</ul>",
        ),
        (
            f"<p data-dni-noswap>HQ {N}<h2>Sales {N}</h2>",
            f"<p data-dni-noswap>HQ {N}<h2>Sales {T}</h2>",
        ),
        (f"<p data-dni-noswap>HQ {N}<hr>Sales {N}", f"<p data-dni-noswap>HQ {N}<hr>Sales {T}"),
        (
            f"<!DOCTYPE html><p data-dni-noswap>HQ {N}<table><tr><td>Sales {N}</table>",
            f"<!DOCTYPE html><p data-dni-noswap>HQ {N}<table><tr><td>Sales {T}</table>",
        ),
        (f"<p data-dni-noswap>HQ {N}<table><tr><td>in quirks mode {N}</table>", None),
        (f"<p data-dni-noswap>HQ {N}<span>still HQ {N}</span>", None),
        (
            f"<p data-dni-noswap>HQ <b>{N}</b></p>Sales {N}",
            f"<p data-dni-noswap>HQ <b>{N}</b></p>Sales {T}",
        ),
        # an ancestor's end tag closes it
        (
            f"<div><span data-dni-noswap>HQ {N}</div>Sales {N}",
            f"<div><span data-dni-noswap>HQ {N}</div>Sales {T}",
        ),
        (
            f"<section><p data-dni-noswap>HQ {N}</section>Sales {N}",
            f"<section><p data-dni-noswap>HQ {N}</section>Sales {T}",
        ),
        # a stray end tag does not
        (f"<div data-dni-noswap>HQ {N}</span></p>{N}</div>", None),
        # a formatting element comes back where the parser reopens it
        (f"<p><b data-dni-noswap>HQ {N}</p>Sales {N}", None),
        # void elements and self-closing syntax
        (f"<div data-dni-noswap/>Sales {N}", None),
        (f"<br data-dni-noswap/>Sales {N}", f"<br data-dni-noswap/>Sales {T}"),
        (f"<img data-dni-noswap src=x>Sales {N}", f"<img data-dni-noswap src=x>Sales {T}"),
        (f"<svg data-dni-noswap/>Sales {N}", f"<svg data-dni-noswap/>Sales {T}"),
        (f"<svg><g data-dni-noswap/>Sales {N}</svg>", f"<svg><g data-dni-noswap/>Sales {T}</svg>"),
        (
            f"<svg><g data-dni-noswap>HQ {N}</g>Sales {N}</svg>",
            f"<svg><g data-dni-noswap>HQ {N}</g>Sales {T}</svg>",
        ),
        (
            f"<div data-dni-noswap><svg><p>HQ {N}</svg></div>Sales {N}",
            f"<div data-dni-noswap><svg><p>HQ {N}</svg></div>Sales {T}",
        ),
    ],
)
def test_noswap_ends_where_the_parser_closes_the_element(page: str, wanted: str | None) -> None:
    assert swap(page) == (page if wanted is None else wanted)


def test_noswap_on_the_body_or_html_hides_the_page() -> None:
    kept(f"<body data-dni-noswap><p>{N}")
    kept(f"<p>{N}<body data-dni-noswap>")
    kept(f"<html data-dni-noswap><p>{N}")


# ---- linear time -----------------------------------------------------------------------


def _calls(work: Callable[[], object]) -> int:
    """How many Python and C function calls ``work`` makes: its operation count."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


GROWING: dict[str, Callable[[int], str]] = {
    "many attributes": lambda n: "<a" + ' href="tel:01174960123"' * n + ">x</a>",
    "many tags": lambda n: f"<b>{N}</b><i>x</i>" * n,
    "many links": lambda n: f'<a href="tel:01174960123">{N}</a>' * n,
    "deep noswap nesting": lambda n: "<div data-dni-noswap>" * n + N + "</div>" * n + N,
    "deep span nesting": lambda n: "<span data-dni-noswap>" * n + f"{N}<div>{N}</div>" * n,
    "unclosed list items": lambda n: "<ul>" + f"<li data-dni-noswap>{N}<li>{N}" * n,
    "unclosed paragraphs": lambda n: f"<p data-dni-noswap>{N}<p>{N}" * n,
    "unclosed formatting": lambda n: f"<b data-dni-noswap>{N}<p>{N}" * n,
    "svg icons": lambda n: f'<svg viewBox="0 0 1 1"><path d="M0 0"/></svg>{N}' * n,
    "unclosed comment": lambda n: "<!--" + f"{N} " * n,
    "unclosed quote": lambda n: '<p title="' + f"{N} " * n,
    "unclosed script": lambda n: "<script>" + f"<!--<script>{N} " * n,
    "many selects": lambda n: f"<select><option>{N}</select>" * n,
    "tables": lambda n: f"<table><tr><td data-dni-noswap>{N}<td>{N}</table>" * n,
}


@pytest.mark.parametrize("kind", sorted(GROWING))
def test_reading_grows_linearly(kind: str) -> None:
    make = GROWING[kind]
    small, large = make(200), make(800)
    spans = {}
    for page in (small, large):
        spans[page] = [(f.start, f.end) for f in REWRITER._finder.find(page, False)]  # type: ignore[union-attr]
    counts = [_calls(lambda page=page: placed(page, spans[page])) for page in (small, large)]
    assert counts[1] <= 4 * counts[0] * 1.5 + 1000, (
        counts
    )  # 4 times the input, not 16 times the work


def test_many_tel_hrefs_in_one_tag_complete() -> None:
    page = "<a" + ' href="tel:01174960101"' * 16000 + ">x</a>"  # 368 KB
    rewriter = Rewriter("GB", ["01174960101"])
    out = rewriter.rewrite_html(page, TRACKING)
    assert out == page.replace("tel:01174960101", "tel:+441174090199", 1)
