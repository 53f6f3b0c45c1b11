"""The streaming rewriter: fed a page in pieces of any size, it gives out exactly
the whole-page rewrite, holding back little."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dni_engine.errors import DniError
from dni_engine.rewrite import ByteRewriteStream, Rewriter, RewriteStream, StreamClosedError, markup
from dni_engine.rewrite import stream as stream_module
from dni_engine.rewrite.stream import HOLD, KEEP, LEFT, RIGHT
from dni_engine.rewrite.tree import Tree
from tests.page_corpus import PAGES, labelled_pages

TRACKING = "+441174090162"
LISTED = Rewriter("GB", ["0117 496 0123", "020 7946 0000", "0800 123 4567"])
ALL = Rewriter("GB", replace_all=True)
POOLS = {"listed": LISTED, "replace_all": ALL}


def chunks(text: str, sizes: Sequence[int]) -> Iterator[str]:
    """``text`` cut into pieces of the given sizes, cycled."""
    at = 0
    i = 0
    while at < len(text):
        size = sizes[i % len(sizes)]
        yield text[at : at + size]
        at += size
        i += 1


def streamed(
    rewriter: Rewriter, text: str, sizes: Sequence[int], *, html: bool = True, final: bool = False
) -> str:
    """``text`` fed to a stream in pieces of ``sizes``, then closed; with ``final``
    the last piece is given to ``close`` (as the web integration gives it)."""
    stream = rewriter.stream(TRACKING, html=html)
    pieces = list(chunks(text, sizes))
    last = pieces.pop() if final and pieces else ""
    return "".join(stream.feed(piece) for piece in pieces) + stream.close(last)


# Each split is fed with the last piece fed, then close(), and given to close().
FINAL = pytest.mark.parametrize("final", [False, True], ids=["fed", "last-to-close"])


# Streams read a page with the whole-page reader while they keep it whole (up to
# KEEP characters), then with the tree alone: both ways are tested. The tree
# alone is held to the whole-page rewrite read with the tree alone too (the
# whole-page reader's fast scan misses an HTML5 rule or two the tree follows:
# see test_the_tree_reader_follows_the_formatting_elements).
READERS = ["whole-page reader", "tree alone"]


@contextlib.contextmanager
def _whole_page_with_the_tree_alone() -> Iterator[None]:
    original = markup._Reader.__init__

    def init(self: markup._Reader, text: str) -> None:
        original(self, text)
        self.tree = Tree(local=False)
        self.full = True

    with mock.patch.object(markup._Reader, "__init__", init):
        yield


@contextlib.contextmanager
def reading(reader: str) -> Iterator[None]:
    if reader == "tree alone":
        with mock.patch.object(stream_module, "KEEP", -1), _whole_page_with_the_tree_alone():
            yield
    else:
        yield


def whole(rewriter: Rewriter, text: str, *, html: bool = True) -> str:
    if html:
        return rewriter.rewrite_html(text, TRACKING)
    return rewriter.rewrite_text(text, TRACKING)


# ---- generated pages ---------------------------------------------------------------

NUMBERS = (
    "0117 496 0123",
    "01174960123",
    "(0117) 496 0123",
    "0117-496-0123",
    "0117.496.0123",
    "+44 117 496 0123",
    "+44 (0)117 496 0123",
    "0044 117 496 0123",
    "0117&nbsp;496&nbsp;0123",
    "&#43;44 117 496 0123",
    "020 7946 0000",
    "+442079460000",
    "0800 123 4567",
    "0800 1234567",
    "0117 496 01234",
    "22.05.2019 21:05",
    "EUR 16900,--",
    "id_2192686567013773038",
    "1-800-FLOWERS",
    "+49 (0) 160-8472068",
    "Tel. 0117 496 0123",
)
MARKUP = (
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<br/>",
    "<b>",
    "</b>",
    "<li>",
    "<ul>",
    "</ul>",
    "<table>",
    "<td>",
    "<tr>",
    "</table>",
    '<a href="tel:0117%20496%200123">',
    '<a href="tel:+441174960123;ext=12">',
    "<a href='callto:01174960123'>",
    '<a href="tel:%2B441174960123">',
    '<a href="/x?n=01174960123">',
    "</a>",
    '<img alt="0117 496 0123">',
    "<!-- 0117 496 0123 -->",
    "<!-->",
    "<!--",
    "-->",
    "<script>",
    "</script>",
    "<script><!--<script>",
    "</script >",
    "<!--<script>",
    "</sc",
    "ript>",
    "<style>",
    "</style>",
    "<p data-dni-noswap>",
    "<span data-dni-noswap>",
    "</span>",
    "<svg>",
    "</svg>",
    "<![CDATA[",
    "]]>",
    "<math>",
    "</math>",
    "<textarea>",
    "</textarea>",
    "<title>",
    "</title>",
    "<noscript>",
    "</noscript>",
    "<select><option>",
    "</select>",
    "&amp;",
    "&nbsp;",
    "&#8211;",
    "<",
    ">",
    '"',
    "</ſcript>",
    "<xmp>",
    "</xmp>",
    "<iframe>",
    "</iframe>",
    "<template>",
    "</template>",
)
# Numbers split by inline markup: their groups with up to four inline tags (and
# other tags, which break a number) and separators between them.
GROUPS = (
    ("0117", "496", "0123"),
    ("01174", "96", "0123"),
    ("+44", "117", "496", "0123"),
    ("(0117)", "496", "0123"),
    ("020", "7946", "0000"),
    ("0800", "123", "4567"),
    ("1-800-", "FLOW", "ERS"),
    ("5", "0117 496 0123"),
)
INLINE = (
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    "<span>",
    "</span>",
    '<span class="tel number, call">',
    "<span title='a>b'>",
    "<SPAN\nid=x>",
    "<em>",
    "</em>",
    '<a href="tel:01174960123">',
    "</a>",
    "<!--x-->",
    "<sup>",
    "</sup>",
    "<br>",
    "<div>",
    "<span data-dni-noswap>",
)
GAP = st.lists(
    st.one_of(st.sampled_from(INLINE), st.sampled_from((" ", "&nbsp;", "-", "", "\n"))),
    max_size=6,
).map("".join)


@st.composite
def split_numbers(draw: st.DrawFn) -> str:
    groups = draw(st.sampled_from(GROUPS))
    return draw(st.sampled_from(("", "Tel ", "<p>", "x"))) + "".join(
        group + (draw(GAP) if i < len(groups) - 1 else "") for i, group in enumerate(groups)
    )


TEXT = st.text(alphabet="abc Tel:,.-()/+0123456789\n\u00a0é", max_size=12)
PIECE = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(MARKUP),
    st.sampled_from(INLINE),
    split_numbers(),
    TEXT,
)
PAGE = st.lists(PIECE, max_size=40).map("".join)
SIZES = st.lists(st.integers(1, 90), min_size=1, max_size=8)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FINAL
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@FAST
@given(page=PAGE, sizes=SIZES)
def test_a_streamed_page_is_the_whole_page_rewrite(
    final: bool, reader: str, pool: str, page: str, sizes: list[int]
) -> None:
    rewriter = POOLS[pool]
    with reading(reader):
        assert streamed(rewriter, page, sizes, final=final) == whole(rewriter, page)


@FINAL
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@FAST
@given(page=PAGE)
# Raw text (an unclosed xmp) holding what a tag would be around the parts of a number:
# the stream must not give out the first part before the finder has seen it whole.
@example(
    page='<xmp>0117496<a href="tel:01174960123"><span class="tel number, call">'
    '<span class="tel number, call">0123'
)
# Raw text the reader went on reading from a later place: a '<' in it is no tag
# to a number split there (0123<b>0117 ...), whatever the reader stepped back to.
@example(page="<textarea>0117 496 0123<p>" + "0117 496 0123" * 4 + "<b>0117 496 0123")
def test_one_character_pieces_give_the_whole_page_rewrite(
    final: bool, reader: str, pool: str, page: str
) -> None:
    rewriter = POOLS[pool]
    with reading(reader):
        assert streamed(rewriter, page, [1], final=final) == whole(rewriter, page)


@FINAL
@pytest.mark.parametrize("pool", POOLS)
@FAST
@given(page=PAGE, sizes=SIZES)
def test_streamed_text_is_the_whole_text_rewrite(
    final: bool, pool: str, page: str, sizes: list[int]
) -> None:
    rewriter = POOLS[pool]
    out = streamed(rewriter, page, sizes, html=False, final=final)
    assert out == whole(rewriter, page, html=False)


@FINAL
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@settings(max_examples=40, deadline=None)
@given(page=PAGE, padding=st.integers(0, 300))
def test_pages_longer_than_what_is_held(
    final: bool, reader: str, pool: str, page: str, padding: int
) -> None:
    """Filler longer than the held tail, so pieces are given out mid-page."""
    rewriter = POOLS[pool]
    filler = "Lorem ipsum, dolor sit amet. " * (padding // 10)
    long_page = filler + page + filler + page + "<script>" + filler + page
    with reading(reader):
        for sizes in ([1], [7], [64, 3], [500]):
            out = streamed(rewriter, long_page, sizes, final=final)
            assert out == whole(rewriter, long_page)


EXAMPLES = [
    "<p>Call 0117 496 0123 now</p>",
    "<script>var x = '0117 496 0123';</script> 0117 496 0123",
    "<script><!--<script></script> 0117 496 0123 </script> 0117 496 0123",
    "<script><!-- 0117 496 0123 --></script> 0117 496 0123 </script>",
    '<a href="tel:0117%20496%200123">0117 496 0123</a>',
    '<a href="tel:%2B441174960123">Call us</a>',
    "<p data-dni-noswap>HQ 0117 496 0123<p>Sales 0117 496 0123",
    "<ul><li data-dni-noswap>HQ 0117 496 0123<li>Sales 0117 496 0123</ul>",
    "<textarea>0117 496 0123 <a href='tel:01174960123'>x</a></textarea> 0117 496 0123",
    "<!-- 0117 496 0123 --> 0117 496 0123 <svg><![CDATA[0117 496 0123]]></svg>",
    "<title>0117 496 0123</title><style>p{} 0117 496 0123</style>",
    "Tel: 0117 496 0123, fax (0117) 496 0123",
    "<plaintext>0117 496 0123 </plaintext> 0117 496 0123",
    "<p>0117 496 0123</ſcript> <script>0117 496 0123</ſcript> 0117 496 0123</script>",
    "<p>Call 0117 <b>496</b> 0123 now</p>",
    "<span>0117</span> <span>496 0123</span>",
    "<b><i>0117</i></b> <span class='tel, number'>496</span>&nbsp;<!--x--><em>0123</em>",
    '<p>+44 <span class="a very long class name, longer than what is held">117</span> 496 0123',
    "0117 496 0123<a href='tel:0117%20496%200123'>0117 496 0123</a>",
    "<a href='tel:01174960123'>0117</a> 496 0123, 020 <b>7946</b> <i>0000</i>",
    "<textarea>0117 <b>496</b> 0123</textarea> 0117 <span data-dni-noswap>496</span> 0123",
    "5<b>0117 496 0123</b> 1</a><a>2 1-800-<b>FLOW</b><i>ERS</i>",
    # Other tags than inline elements' break a number: the stream may cut there.
    "<p>Call 0117 </p><p>496 0123</p> 0117 <div>496</div> 0123 0117 <br>496 0123",
    "<ul><li><a href='/a'>Home</a></li><li><a href='/b'>0117 496 0123</a></li></ul>",
    "0117 496 <div class='a very long class name, longer than what is held back'>0123 "
    "0117 <b>496</b><div>0123</div> 0117 <bdi>496</bdi> 0123 0117 <bx>496</bx> 0123",
    "<data value=1>0117</data> 496 <sup>0123</sup> 0117 <span\nclass='x'>496</span> 0123",
    "0117 <!-- a-b -->496 0123 0117 <!--ab-->496 0123 0117 <li\nclass=x>496 0123",
    # Letters before inline tags end a number only after a digit, within what a
    # number holds: a cloud of links ends none, a vanity number's letters do.
    "<p><a href='/a-1'>Antrag</a>\n<a href='/b'>Bundestag</a> <a href='/c'>Datenschutz</a>"
    " 0117 <a href='/d'>496</a> 0123 <a href='/e'>Zukunft</a></p>",
    "0800 1<b>AD</b> <i>GJ</i>MP <b>0800</b> <i>1ad</i> <b>gjmp</b>",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmno<b>p</b> 0117 <i></i><b>496</b> <i>0123</i>",
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("page", EXAMPLES)
def test_examples_cut_everywhere(reader: str, pool: str, page: str) -> None:
    rewriter = POOLS[pool]
    with reading(reader):
        expected = whole(rewriter, page)
        padded = page + " " * 100 + page  # so that the first part is given out early
        expected_padded = whole(rewriter, padded)
        for cut in range(len(page) + 1):
            stream = rewriter.stream(TRACKING)
            out = stream.feed(page[:cut]) + stream.feed(page[cut:]) + stream.close()
            assert out == expected, cut
            stream = rewriter.stream(TRACKING)
            assert stream.feed(page[:cut]) + stream.close(page[cut:]) == expected, cut
            pieces = [padded[:cut], padded[cut : cut + 70], padded[cut + 70 :]]
            stream = rewriter.stream(TRACKING)
            out = "".join(stream.feed(piece) for piece in pieces) + stream.close()
            assert out == expected_padded, cut
            stream = rewriter.stream(TRACKING)
            out = "".join(stream.feed(piece) for piece in pieces[:2]) + stream.close(pieces[2])
            assert out == expected_padded, cut


def test_the_tree_reader_follows_the_formatting_elements() -> None:
    """A second ``<a>`` closes the first one and what it holds (the adoption agency
    algorithm): html5lib puts it outside the ``data-dni-noswap`` span, so its
    target is a link. The tree reader swaps it; the whole-page reader's fast scan
    does not see the first ``<a>`` from its local tree and leaves it."""
    page = '<a href="tel:01174960123"><span data-dni-noswap><a href="tel:01174960123">'
    wanted = '<a href="tel:+441174090162"><span data-dni-noswap><a href="tel:+441174090162">'
    with reading("tree alone"):
        assert streamed(LISTED, page, [5]) == wanted
        assert whole(LISTED, page) == wanted
    assert streamed(LISTED, page, [5]) == whole(LISTED, page)  # both miss it


def test_a_script_cut_by_a_piece_boundary_keeps_its_numbers() -> None:
    """Rewriting each piece as a page of its own swaps inside the script; the stream
    never does."""
    page = "<script>\nvar phone = '0117 496 0123';\n</script>\n<p>0117 496 0123</p>"
    cut = page.index("var")
    pieces = [page[:cut], page[cut:]]
    assert (
        "409"
        in "".join(LISTED.rewrite_html(piece, TRACKING) for piece in pieces).split("</script>")[0]
    )
    stream = LISTED.stream(TRACKING)
    out = "".join(stream.feed(piece) for piece in pieces) + stream.close()
    assert out == "<script>\nvar phone = '0117 496 0123';\n</script>\n<p>0117 409 0162</p>"


# ---- the contract ------------------------------------------------------------------


def test_feeding_after_close_is_an_error() -> None:
    stream = LISTED.stream(TRACKING)
    assert stream.feed("<p>0117 496 0123") == ""
    assert stream.close() == "<p>0117 409 0162"
    assert stream.closed
    with pytest.raises(StreamClosedError, match="after close"):
        stream.feed("more")
    assert issubclass(StreamClosedError, DniError)
    assert issubclass(StreamClosedError, ValueError)
    assert stream.close() == ""  # closing twice gives nothing more


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@FAST
@given(page=PAGE, sizes=SIZES)
def test_the_last_piece_given_to_close_ends_the_page(
    reader: str, pool: str, page: str, sizes: list[int]
) -> None:
    rewriter = POOLS[pool]
    with reading(reader):
        stream = rewriter.stream(TRACKING)
        cut = min(len(page), sizes[0])
        out = stream.feed(page[:cut]) + stream.close(page[cut:])
        assert out == whole(rewriter, page)
        assert rewriter.stream(TRACKING).close(page) == whole(rewriter, page)
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate has no UTF-8
            data = page.encode()
            assert rewriter.stream_bytes(TRACKING).close(data) == whole(rewriter, page).encode()


def test_a_page_given_whole_to_close_is_rewritten_as_a_whole_page() -> None:
    """Nothing fed before: the page given to close is the whole-page rewrite's,
    the very page when nothing is swapped (as rewrite_html returns it)."""
    page = "<p>Open 9 to 5, Monday to Friday</p>" * 50
    assert LISTED.stream(TRACKING).close(page) is page
    stream = ALL.stream(TRACKING)
    assert stream.feed("") == ""
    assert stream.close(page) is page
    assert LISTED.stream(TRACKING).close("<p>0117 496 0123") == "<p>0117 409 0162"
    assert LISTED.stream(TRACKING).close("") == ""


def test_close_with_a_piece_after_close_is_an_error() -> None:
    stream = LISTED.stream(TRACKING)
    assert stream.close("<p>0117 496 0123") == "<p>0117 409 0162"
    assert stream.close() == ""
    with pytest.raises(StreamClosedError, match="after close"):
        stream.close("more")
    with pytest.raises(TypeError, match="str"):
        LISTED.stream(TRACKING).close(b"<p>")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        LISTED.stream_bytes(TRACKING).close("<p>")  # type: ignore[arg-type]


def test_a_piece_must_be_text() -> None:
    stream = LISTED.stream(TRACKING)
    with pytest.raises(TypeError, match="bytes"):
        stream.feed(b"<p>")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        LISTED.stream_bytes(TRACKING).feed("<p>")  # type: ignore[arg-type]


@pytest.mark.parametrize("tracking", [None, "", "not a number"])
def test_without_a_tracking_number_pieces_pass_through_at_once(tracking: str | None) -> None:
    stream = LISTED.stream(tracking)
    assert stream.feed("<p>0117 496 ") == "<p>0117 496 "
    assert stream.feed("0123") == "0123"
    assert stream.close() == ""


def test_a_pool_without_numbers_passes_pieces_through() -> None:
    stream = Rewriter("GB").stream(TRACKING)
    assert stream.feed("<p>0117 496 0123") == "<p>0117 496 0123"


def test_a_failure_mid_stream_passes_the_rest_through_and_logs_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rewriter = Rewriter("GB", ["0117 496 0123"])
    stream = rewriter.stream(TRACKING)
    first = "<p>0117 496 0123</p>" + "x" * 200
    given_out = stream.feed(first)
    assert given_out.startswith("<p>0117 409 0162</p>")
    finder = rewriter._finder
    assert finder is not None

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(finder, "find", broken)
    rest = ["<p>0117 496 0123</p>" + "y" * 200, "<p>0117 496 0123</p>", "end"]
    with caplog.at_level(logging.WARNING, logger="dni_engine.rewrite"):
        out = given_out + "".join(stream.feed(piece) for piece in rest) + stream.close()
    assert out == "<p>0117 409 0162</p>" + first[len("<p>0117 496 0123</p>") :] + "".join(rest)
    assert len([r for r in caplog.records if "passed through" in r.getMessage()]) == 1


def test_a_noswap_body_after_numbers_hides_the_rest() -> None:
    """The one thing a stream cannot follow: a later ``<body data-dni-noswap>``
    hides the whole page; what was given out stays swapped, the rest is not."""
    page = "<p>0117 496 0123</p>" + "z" * 300 + "<body data-dni-noswap><p>0117 496 0123</p>"
    assert LISTED.rewrite_html(page, TRACKING) == page
    out = streamed(LISTED, page, [100])
    assert out == page.replace("0117 496 0123", "0117 409 0162", 1)
    at_start = "<body data-dni-noswap>" + page
    assert streamed(LISTED, at_start, [100]) == at_start


# ---- bytes -------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(page=PAGE, sizes=SIZES)
def test_bytes_cut_anywhere_give_the_whole_page_rewrite(page: str, sizes: list[int]) -> None:
    data = ("<p>Zürich – 東京 ☎ </p>" + page).encode("utf-8")
    expected = LISTED.rewrite_html(data.decode("utf-8"), TRACKING).encode("utf-8")
    stream = LISTED.stream_bytes(TRACKING)
    assert isinstance(stream, ByteRewriteStream)
    pieces = [data[i : i + 1] for i in range(len(data))] if sizes[0] < 10 else [data]
    assert b"".join(stream.feed(p) for p in pieces) + stream.close() == expected
    # The last piece given to close: a character cut before it ends in it.
    stream = LISTED.stream_bytes(TRACKING)
    out = b"".join(stream.feed(p) for p in pieces[:-1]) + stream.close(pieces[-1])
    assert out == expected


def test_bytes_invalid_in_the_encoding_pass_through() -> None:
    data = b"<p>\xff\xfe 0117 496 0123 \xc3</p>\xe2\x82"
    stream = LISTED.stream_bytes(TRACKING)
    out = b"".join(stream.feed(data[i : i + 1]) for i in range(len(data))) + stream.close()
    assert out == b"<p>\xff\xfe 0117 409 0162 \xc3</p>\xe2\x82"


def test_bytes_of_another_encoding() -> None:
    page = "<p>Café 0117 496 0123</p>"
    stream = LISTED.stream_bytes(TRACKING, encoding="cp1252")
    data = page.encode("cp1252")
    out = b"".join(stream.feed(data[i : i + 3]) for i in range(0, len(data), 3)) + stream.close()
    assert out == "<p>Café 0117 409 0162</p>".encode("cp1252")


# ---- bounded memory ----------------------------------------------------------------

# What may be held between pieces in these pages: the tail and the context, and
# while the page is kept whole (up to KEEP), what waits for a token to end (HOLD).
BOUND = HOLD + LEFT + RIGHT + 256


def _max_held(stream: RewriteStream, page: Iterator[str]) -> tuple[int, str]:
    most = 0
    out = []
    for piece in page:
        out.append(stream.feed(piece))
        most = max(most, stream.held)
    out.append(stream.close())
    return most, "".join(out)


def _repeat(unit: str, size: int, piece: int) -> Iterator[str]:
    text = unit * (piece // len(unit) + 1)
    sent = 0
    while sent < size:
        yield text[:piece]
        sent += piece


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(
    ("name", "head", "unit", "tail"),
    [
        ("script", "<script>", "var a=[1,2,3.5,0x1f];if(a<b){f(12345678)}\n", "</script>"),
        ("escaped script", "<script><!--", "document.write('<b>'+n+'</b>');\n", "//--></script>"),
        ("style", "<style>", ".c-12 { margin: 0 1px 2px 3px; color: #123456 }\n", "</style>"),
        ("comment", "<!--", " an old 0117 496 0123 block, 2019 -- kept ", "-->"),
        ("text", "<p>", "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", "</p>"),
        ("text with dates", "<p>", "Posted 22.05.2019, 3 comments; 14 likes! ", "</p>"),
        ("textarea", "<textarea>", "Lorem ipsum dolor sit amet, 12 elit. ", "</textarea>"),
    ],
)
def test_a_huge_element_streams_through_with_little_held(
    pool: str, name: str, head: str, unit: str, tail: str
) -> None:
    rewriter = POOLS[pool]
    size = KEEP + 200_000  # past what is kept whole: read on with the tree alone
    stream = rewriter.stream(TRACKING)

    def page() -> Iterator[str]:
        yield head
        yield from _repeat(unit, size, 8192)
        yield tail + "<p>Call 0117 496 0123</p>"

    most, out = _max_held(stream, page())
    assert most <= 8192 + BOUND, name
    assert out.endswith("<p>Call 0117 409 0162</p>"), name
    assert len(out) >= size


def test_what_is_held_is_an_open_tag_or_a_possible_number() -> None:
    stream = LISTED.stream(TRACKING)
    assert stream.feed("<p>" + "x, " * 100) != ""
    held = stream.held
    assert held <= RIGHT + 1
    stream.feed('<a href="tel:0117 496' + " " * 500)
    assert stream.held >= 500  # the open tag is held whole
    assert stream.feed(' 0123">') + stream.close() != ""


# ---- real pages --------------------------------------------------------------------

pytestmark_corpora = pytest.mark.skipif(
    not PAGES.is_dir(), reason="the shared corpora (../shared/corpora/pages) are not there"
)
_AFTER_TAG = re.compile(r"</(?:p|div|li|span|td|a|h[1-6])>")


def _inject(html: str, seed: int) -> str:
    """Numbers in several forms written after some closing tags of a page."""
    pieces: list[str] = []
    done = 0
    for i, match in enumerate(_AFTER_TAG.finditer(html)):
        if (i * 7 + seed) % 23:
            continue
        pieces += (html[done : match.end()], f" {NUMBERS[(i + seed) % len(NUMBERS)]} ")
        done = match.end()
    pieces.append(html[done:])
    return "".join(pieces)


@pytestmark_corpora
@pytest.mark.parametrize(
    ("reader", "sizes"),
    [
        ("whole-page reader", [8192]),
        ("whole-page reader", [16384]),
        ("whole-page reader", [997]),
        ("whole-page reader", [61, 4096, 7]),
        ("tree alone", [16384]),
        ("tree alone", [61, 4096, 7]),
    ],
)
def test_real_pages_streamed_are_rewritten_as_whole_pages(reader: str, sizes: list[int]) -> None:
    checked = 0
    with reading(reader):
        for page in labelled_pages():
            html = _inject(page.html, zlib.crc32(page.name.encode()) % 23)
            for rewriter in (LISTED, Rewriter(page.country, replace_all=True)):
                expected = whole(rewriter, html)
                assert streamed(rewriter, html, sizes) == expected, page.name
                assert streamed(rewriter, html, sizes, final=True) == expected, page.name
            checked += 1
    assert checked > 50


@pytestmark_corpora
@pytest.mark.parametrize("reader", READERS)
def test_a_real_page_in_one_character_pieces(reader: str) -> None:
    pages = sorted(labelled_pages(), key=lambda p: len(p.html))[:3]
    with reading(reader):
        for page in pages:
            html = _inject(page.html, 3)
            for rewriter in (LISTED, Rewriter(page.country, replace_all=True)):
                assert streamed(rewriter, html, [1]) == whole(rewriter, html), page.name


def test_a_number_right_of_a_tag_no_number_spans_does_not_depend_on_its_left() -> None:
    """``0117 496 </p><p>0123 456 7890``: the listed scan's match across ``</p>``
    (0117 496 0123 written with it) is no number and hides nothing: the number
    starting right of the tag is found, whole and streamed, wherever cut."""
    rewriter = Rewriter("GB", ["0117 496 0123", "0123 456 7890"])
    page = (
        "<p>0117 496 </p><p>0123 456 7890</p>"
        "<p>0117 496 <div class='a class name longer than what is held back, by far'>"
        "0123 456 7890 and 0117 496 <b>0123</b></p>"
    )
    expected = rewriter.rewrite_html(page, TRACKING)
    assert expected.count("0117 409 0162") == 2
    assert "0117 409 <b>0162</b>" in expected
    for cut in range(len(page) + 1):
        for tail in (1, 70):
            stream = rewriter.stream(TRACKING)
            pieces = [page[:cut], page[cut : cut + tail], page[cut + tail :]]
            out = "".join(stream.feed(piece) for piece in pieces) + stream.close()
            assert out == expected, (cut, tail)


def test_a_number_before_a_tag_no_number_spans_is_found_whatever_follows() -> None:
    """``030 1234567<div>8``: the listed scan's longer match (030 12345678, across
    the ``<div>``) is no number; the number ending before the tag is, whole and
    streamed, also while that tag is not closed yet at the end of a piece."""
    rewriter = Rewriter("DE", ["030 1234567", "030 12345678"])
    tracking = "+493012345699"
    page = (
        '<p>030 1234567<div class="a class name longer than what is held back, by far">8</div>'
        "<p>030 1234567 </p>8 and 030 1234567<b>8</b>"
    )
    expected = rewriter.rewrite_html(page, tracking)
    assert expected.count("030 12345699") == 2
    assert "030 1234569<b>9</b>" in expected
    for cut in range(len(page) + 1):
        for tail in (1, 70):
            stream = rewriter.stream(tracking)
            pieces = [page[:cut], page[cut : cut + tail], page[cut + tail :]]
            out = "".join(stream.feed(piece) for piece in pieces) + stream.close()
            assert out == expected, (cut, tail)


# Long runs of separators (more than a kilobyte without a character no number
# holds), short windows without a digit at the end of a page, and numbers split
# by inline tags written in capitals or next to tags of other elements.
LONG_RUNS = [
    "<p>Call 0117 <B>496</B> 0123" + "\n\t" * 600 + "0117 496 0123</p>",
    "<div title='a>b'>0117" + " " * 1100 + "496 0123 <SPAN class=x>0117</SPAN> 496 0123</div>",
    "<p>0117 496 0123</p>" + "-" * 1200 + "<b>0117</b> 496 <bx>0123</bx> end",
    "0117 496 0123 " + "\u00a0" * 1100 + "<script>var a = 1 > 2;</script>" + " " * 90 + "</html>",
    "<!--x-->" + " " * 1050 + "0117<!--x--> 496 <i>0123</i>" + "." * 70 + "<br>0117 496 0123",
    "0117 <b>496</b>" + " " * 1100 + "x<i>y</i> 0117 <i>496</i> 0123 <b>" + "\n" * 1100 + "z</b> 1",
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("page", LONG_RUNS)
def test_long_runs_of_separators_cut_anywhere(reader: str, pool: str, page: str) -> None:
    rewriter = POOLS[pool]
    with reading(reader):
        expected = whole(rewriter, page)
        for cut in range(0, len(page) + 1, 7):
            for sizes in ([len(page)], [cut or 1], [cut or 1, 64], [cut or 1, 1000]):
                assert streamed(rewriter, page, sizes) == expected, (cut, sizes)


# ---- where a step cuts --------------------------------------------------------------


def _places(text: str) -> Iterator[int]:
    """Every place in a short ``text``; about 400 spread over a long one."""
    yield from range(1, len(text) + 1, max(1, len(text) // 400))


def _check_ending_tag_cuts(text: str) -> int:
    """Each place :func:`stream._after_ending_tag` returns is one the full search
    for a cut accepts (asked to cut there, it cuts there); how many it returned."""
    found = 0
    for hi in _places(text):
        for lo in (0, max(0, hi - 100)):
            cut = stream_module._after_ending_tag(text, lo, hi)
            if cut is None:
                continue
            found += 1
            assert lo < cut <= hi
            assert hi - cut <= stream_module._NEAR
            assert text[cut - 1] == ">"
            full = stream_module._safe_cut(text, lo, cut)
            assert full == cut, (text[max(0, cut - 80) : cut], hi)
            assert stream_module._cut_clear_of_splits(text, lo, full) == cut, (
                text[max(0, cut - 80) : cut],
                hi,
            )
    return found


@FAST
@given(page=PAGE)
@example(page="0117 <b>496</b> 0123</p>")
@example(page="<a title='x>y' href=tel:0117>0117 <i>496</i></a><br>")
@example(page="a > b <span>0117</span> <div>")
def test_a_cut_after_a_tag_that_ends_numbers_is_one_the_full_search_makes(page: str) -> None:
    _check_ending_tag_cuts(page)


@pytestmark_corpora
def test_cuts_after_tags_that_end_numbers_on_real_pages() -> None:
    found = sum(_check_ending_tag_cuts(page.html) for page in labelled_pages())
    assert found > 10_000


def test_a_step_cuts_after_the_last_tag_that_ends_numbers() -> None:
    """A piece whose last tag that ends numbers closes shortly before the held
    tail is cut right after that tag (what follows it is held, with the tail)."""
    page = "<p>Call 0117 496 0123</p>" + "x" * 5000 + "</p><p>" + "Lorem ipsum dolor" * 5
    expected = LISTED.rewrite_html(page, TRACKING)
    stream = LISTED.stream(TRACKING)
    out = stream.feed(page)
    assert out == expected[: expected.index("Lorem")]
    assert stream.held == len("Lorem ipsum dolor" * 5)
    assert out + stream.close() == expected
    # An inline element's tag is no such place: a number goes on through it.
    inline = "<p>" + "x" * 5000 + " Call 0117 <b>496</b> 0" + "1" * 100
    stream = LISTED.stream(TRACKING)
    assert "<b>" not in stream.feed(inline)


def _after_tags(page: str, shift: int) -> list[str]:
    """``page`` cut right after each ``>`` (``shift`` characters later)."""
    cuts = sorted({min(len(page), at + 1 + shift) for at, char in enumerate(page) if char == ">"})
    pieces = [page[a:b] for a, b in itertools.pairwise([0, *cuts, len(page)])]
    return [piece for piece in pieces if piece]


@FINAL
@FAST
@given(page=PAGE, shift=st.integers(0, 3), padding=st.integers(0, 80))
@example(page="<p>Call </p><p><b>0117 496 0123</b></p>", shift=0, padding=70)
@example(page="<div>x</div><b>0117 <i>496</i> 0123</b>", shift=0, padding=70)
def test_pieces_cut_after_tags_give_the_whole_page_rewrite(
    final: bool, page: str, shift: int, padding: int
) -> None:
    """Pieces ending right after a tag (where a piece may go out as it came):
    listed numbers next to, across and after such tags are swapped as on the
    whole page."""
    page = page.replace(">", ">" + "x" * padding, 1)
    pieces = _after_tags(page, shift)
    stream = LISTED.stream(TRACKING)
    if final and pieces:
        out = "".join(stream.feed(piece) for piece in pieces[:-1]) + stream.close(pieces[-1])
    else:
        out = "".join(stream.feed(piece) for piece in pieces) + stream.close()
    assert out == whole(LISTED, page)


def test_a_piece_with_nothing_to_swap_after_a_tag_that_ends_numbers_goes_out_as_it_came() -> None:
    filler = "<p>" + "Lorem ipsum, dolor sit amet. " * 10 + "</p>"
    first = "<html><body>" + filler + "<div class=x>"
    second = filler + "<p>Call us"
    last = "</p>" + filler + "</body></html>"
    stream = LISTED.stream(TRACKING)
    assert stream.feed(first) is first
    assert stream.held == 0
    assert stream.feed(second) is second
    assert stream.close(last) is last
    # Anything after that tag that may start a number, or a number, is held or read.
    for tail in ("0117 496", "Tel: +44", "&#43;44 117", "tel:%2B44", "<b>0117</b>"):
        stream = LISTED.stream(TRACKING)
        piece = first + tail
        out = stream.feed(piece)
        assert out is not piece, tail
        assert stream.held > 0, tail
        rest = " 496 0123</b></p>"
        assert out + stream.close(rest) == whole(LISTED, piece + rest), tail
    # A number in a piece that would go out as it came is swapped.
    stream = LISTED.stream(TRACKING)
    number = filler + "<p>Call 0117 496 0123</p><div>"
    assert stream.feed(first) is first
    out = first + stream.feed(number) + stream.close(last)
    assert out == whole(LISTED, first + number + last)
    assert "0117 409 0162" in out
