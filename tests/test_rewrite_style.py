"""The tracking number written in the page's style: natural groupings, prefixes, vanity."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dni_engine.rewrite import Rewriter

# The vendor's example pool: London and Bristol numbers, Bristol tracking numbers.
LONDON = ("GB", ("02078395555", "01174960123"))
BRISTOL = "+441174090162"

CASES: list[tuple[tuple[str, tuple[str, ...]], str, str, str]] = [
    # another grouping: the tracking number's own, in the page's style
    (LONDON, BRISTOL, "020 7839 5555", "0117 409 0162"),
    (LONDON, BRISTOL, "(020) 7839 5555", "(0117) 409 0162"),
    (LONDON, BRISTOL, "+44 20 7839 5555", "+44 117 409 0162"),
    (LONDON, BRISTOL, "+44 (0)20 7839 5555", "+44 (0)117 409 0162"),
    (LONDON, BRISTOL, "+44 (0) 20 7839 5555", "+44 (0) 117 409 0162"),
    (LONDON, BRISTOL, "0044 20 7839 5555", "0044 117 409 0162"),
    (LONDON, BRISTOL, "020-7839-5555", "0117-409-0162"),
    (LONDON, BRISTOL, "020.7839.5555", "0117.409.0162"),
    (LONDON, BRISTOL, "(020)7839-5555", "(0117)409-0162"),
    (LONDON, BRISTOL, "020 78395555", "0117 409 0162"),
    (LONDON, BRISTOL, "020\u00a07839\u00a05555", "0117\u00a0409\u00a00162"),
    (LONDON, BRISTOL, "<p>020&nbsp;7839&nbsp;5555</p>", "<p>0117&nbsp;409&nbsp;0162</p>"),
    (LONDON, BRISTOL, "<p>020&#160;7839&#160;5555</p>", "<p>0117&#160;409&#160;0162</p>"),
    (LONDON, BRISTOL, "020 &ndash; 7839 &ndash; 5555", "0117 &ndash; 409 &ndash; 0162"),
    (
        LONDON,
        BRISTOL,
        "<b>&#43;44 20 7839 5555</b> or 020 7839 5555",
        "<b>&#43;44 117 409 0162</b> or 0117 409 0162",
    ),
    (LONDON, BRISTOL, "+44-20-7839-5555", "+44-117-409-0162"),  # RFC 3966's grouping
    (LONDON, BRISTOL, "tel:+44-20-7839-5555", "tel:+44-117-409-0162"),
    # one run of digits stays one run: E.164 and friends
    (LONDON, BRISTOL, "+442078395555", "+441174090162"),
    (LONDON, BRISTOL, "02078395555", "01174090162"),
    (LONDON, BRISTOL, "+44(0)2078395555", "+44(0)1174090162"),
    (LONDON, BRISTOL, "00442078395555", "00441174090162"),
    # the same grouping: digits poured into the page's positions
    (LONDON, BRISTOL, "0117 496 0123", "0117 409 0162"),
    (LONDON, BRISTOL, "0117 - 496 - 0123", "0117 - 409 - 0162"),
    (LONDON, BRISTOL, "(0117) 496-0123", "(0117) 409-0162"),
    (LONDON, BRISTOL, "+44 (0)117 496 0123", "+44 (0)117 409 0162"),
    # a London tracking number where Bristol's was written
    (LONDON, "+442079460000", "0117 496 0123", "020 7946 0000"),
    (LONDON, "+442079460000", "(0117) 496 0123", "(020) 7946 0000"),
    (LONDON, "+442079460000", "+44 117 496 0123", "+44 20 7946 0000"),
    # Andorra: E.164 keeps its form whatever the length
    (("AD", ("712345",)), "+37618001234", "+376712345", "+37618001234"),
    (("AD", ("712345",)), "+37618001234", "+376 712 345", "+376 1800 1234"),
    (("AD", ("712345",)), "+37618001234", "712 345", "1800 1234"),
    (("AD", ("712345",)), "+37618001234", "00376712345", "0037618001234"),
    # vanity letters are positions: poured where the grouping matches
    (("US", ("800444CARS", "8003569377")), "+12125550143", "1-800-444-CARS", "1-212-555-0143"),
    (("US", ("800444CARS", "8003569377")), "+12125550143", "1 (800) 444-CARS", "1 (212) 555-0143"),
    (("US", ("800444CARS", "8003569377")), "+12125550143", "800444CARS", "2125550143"),
    (("US", ("800444CARS", "8003569377")), "+12125550143", "1-800-FLOWERS", "1-212-555-0143"),
    (("US", ("800444CARS", "8003569377")), "+12125550143", "+1 800 FLOWERS", "+1 212 555 0143"),
    (("US", ("800444CARS", "8003569377")), "+12125550143", "(800) 444-2277", "(212) 555-0143"),
    # other countries' own national forms
    (("AR", ("01115-2345-6789",)), "+5491198765432", "011 15-2345-6789", "011 15-9876-5432"),
    (("AR", ("01115-2345-6789",)), "+5491198765432", "+54 9 11 2345-6789", "+54 9 11 9876-5432"),
    (("AR", ("01115-2345-6789",)), "+5493514567890", "011 15-2345-6789", "0351 15-456-7890"),
    (("BY", ("8 0152 45-09-11",)), "+375152450912", "8 0152 45-09-11", "8 0152 45-09-12"),
    (("BY", ("8 0152 45-09-11",)), "+375294911911", "8 0152 45-09-11", "8 029 491-19-11"),
    (("BY", ("8 0152 45-09-11",)), "+375152450912", "+375 152 45-09-11", "+375 152 45-09-12"),
    (("HU", ("06 1 234 5678",)), "+3612345679", "(06 1) 234 5678", "(06 1) 234 5679"),
    (("RU", ("8 (301) 123-45-67",)), "+74951234567", "8 (301) 123-45-67", "8 (495) 123-45-67"),
    (("BR", ("(11) 2345-6789",)), "+551123456780", "0 15 (11) 2345-6789", "0 15 (11) 2345-6780"),
    (("BR", ("(11) 2345-6789",)), "+5511961234567", "(11) 2345-6789", "(11) 96123-4567"),
    (("CO", ("(601) 2345678",)), "+576012345670", "03 601 2345678", "03 601 2345670"),
    # a German area code with its subscriber digits in pairs: its own grouping
    (("DE", ("030 901820",)), "+4930901821", "(030) 90 18 20", "(030) 901821"),
]


@pytest.mark.parametrize(("pool", "tracking", "page", "expected"), CASES)
def test_written_in_the_pages_style(
    pool: tuple[str, tuple[str, ...]], tracking: str, page: str, expected: str
) -> None:
    country, numbers = pool
    rewriter = Rewriter(country, numbers)
    assert rewriter.rewrite_html(page, tracking) == expected
    if "&" not in page:
        assert rewriter.rewrite_text(page, tracking) == expected


def test_the_examples_parse_as_the_tracking_number() -> None:
    for (country, _), tracking, _, expected in CASES:
        text = expected.replace("&nbsp;", " ").replace("&#160;", " ").replace("&ndash;", "-")
        text = text.replace("&#43;", "+").replace("<p>", "").replace("</p>", "")
        text = text.replace("<b>", "").replace("</b>", "").removeprefix("tel:")
        text = text.split(" or ")[0]
        parsed = phonenumbers.parse(text, country)
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == tracking


# Any grouping the page chooses: the result is the tracking number in the same form,
# with no separator the page did not use.
GB_POOL = Rewriter("GB", ["02078395555"])
GAPS = ("", "", " ", "-", ".", "/", "\u00a0", " - ")


@st.composite
def london_written(draw: st.DrawFn) -> tuple[str, str, set[str]]:
    prefix = draw(st.sampled_from(["0", "+44 ", "0044 ", "+44 (0)"]))
    digits = "2078395555"
    text, gaps = prefix, set()
    for i, digit in enumerate(digits):
        if i and (gap := draw(st.sampled_from(GAPS))):
            gaps.add(gap)
            text += gap
        text += digit
    return text, prefix, gaps


@settings(max_examples=200, deadline=None)
@given(london_written())
def test_any_grouping_keeps_the_prefix_and_the_separators(
    written: tuple[str, str, set[str]],
) -> None:
    text, prefix, gaps = written
    out = GB_POOL.rewrite_text(text, BRISTOL)
    assert out.startswith(prefix)
    national = out[len(prefix) :]
    assert "".join(ch for ch in national if ch.isdigit()) == "1174090162"
    used = set("".join(ch if not ch.isdigit() else "|" for ch in national).split("|"))
    assert used - {""} <= gaps
    parsed = phonenumbers.parse(out.replace("(0)", ""), "GB")
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == BRISTOL
