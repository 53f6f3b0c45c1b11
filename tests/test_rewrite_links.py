"""Every form a tel:/callto: link target takes, and its visible text swapped with it."""

from __future__ import annotations

import pytest

from dni_engine.rewrite import Rewriter

REWRITER = Rewriter("GB", ["01174960123"])
TRACKING = "+441174090162"

# (target as the page writes it, target after the rewrite)
TARGETS = [
    ("tel:+441174960123", "tel:+441174090162"),
    ("tel:01174960123", "tel:+441174090162"),
    ("tel:0117 496 0123", "tel:+441174090162"),
    ("tel:0117%20496%200123", "tel:+441174090162"),  # what WordPress writes
    ("tel:%2B441174960123", "tel:+441174090162"),
    ("tel:%2b44%20117%20496%200123", "tel:+441174090162"),
    ("tel:%280117%29%20496%2D0123", "tel:+441174090162"),
    ("tel:+44%C2%A0117%C2%A0496%C2%A00123", "tel:+441174090162"),
    ("tel:&#43;441174960123", "tel:+441174090162"),
    ("tel:&#x2B;44&nbsp;117&nbsp;496&nbsp;0123", "tel:+441174090162"),
    ("tel:&plus;44-117-496-0123", "tel:+441174090162"),
    ("tel:(0117)&#32;496&#45;0123", "tel:+441174090162"),
    ("tel:&lpar;0117&rpar;4960123", "tel:+441174090162"),
    ("tel://+441174960123", "tel://+441174090162"),
    ("tel:+44-117-496-0123", "tel:+441174090162"),  # RFC 3966 visual separators
    ("tel:+44.117.496.0123", "tel:+441174090162"),
    ("tel:+44(0)117-496-0123", "tel:+441174090162"),
    ("tel:+441174960123;ext=42", "tel:+441174090162;ext=42"),
    ("tel:01174960123;ext=42", "tel:+441174090162;ext=42"),
    ("tel:01174960123;phone-context=+44", "tel:+441174090162"),
    ("tel:0117-496-0123;ext=7;phone-context=+44", "tel:+441174090162;ext=7"),
    ("tel:01174960123;phone-context=example.com", "tel:+441174090162"),
    ("TEL:+441174960123", "TEL:+441174090162"),
    ("callto:+441174960123", "callto:+441174090162"),
    ("callto:0117.496.0123", "callto:+441174090162"),
    (" tel:0117 496 0123", " tel:+441174090162"),
]

# (visible text, after the rewrite)
TEXTS = [
    ("0117 496 0123", "0117 409 0162"),
    ("+44 117 496 0123", "+44 117 409 0162"),
    ("(0117) 496-0123", "(0117) 409-0162"),
    ("0117&nbsp;496&nbsp;0123", "0117&nbsp;409&nbsp;0162"),
    ("&#43;44 (0)117 496 0123", "&#43;44 (0)117 409 0162"),
    ("<b>Call</b> 01174960123", "<b>Call</b> 01174090162"),
]


@pytest.mark.parametrize(("target", "new_target"), TARGETS)
@pytest.mark.parametrize(("text", "new_text"), TEXTS)
def test_a_link_and_its_text_are_swapped_together(
    target: str, new_target: str, text: str, new_text: str
) -> None:
    page = f'<p><a class="phone" href="{target}">{text}</a></p>'
    out = REWRITER.rewrite_html(page, TRACKING)
    assert out == f'<p><a class="phone" href="{new_target}">{new_text}</a></p>'
    single = f"<a href='{target}'>{text}</a>"
    assert REWRITER.rewrite_html(single, TRACKING) == f"<a href='{new_target}'>{new_text}</a>"


@pytest.mark.parametrize(
    "page",
    [
        # a local number in another country's context dials another number
        '<a href="tel:01174960123;phone-context=+33">x</a>',
        # percent-encoding is a URL's: in text it is shown as written
        "<p>0117%20496%200123</p>",
        "<p>5%200117 496 0123</p>",
        # a reference to a digit or to anything but a separator is not a separator
        "<p>0117&#49;496 0123</p>",
        "<p>0117&amp;496 0123</p>",
        '<a href="/call?n=0117%20496%200123">x</a>',
    ],
)
def test_what_is_not_this_number_stays(page: str) -> None:
    assert REWRITER.rewrite_html(page, TRACKING) == page


def test_percent_encoding_is_not_read_in_plain_text() -> None:
    text = "tel:0117%20496%200123 or 0117 496 0123"
    assert REWRITER.rewrite_text(text, TRACKING) == "tel:0117%20496%200123 or 0117 409 0162"


@pytest.mark.parametrize(
    ("country", "number", "tracking", "target", "text"),
    [
        ("AR", "011 15-2345-6789", "+5491198765432", "tel:+5491123456789", "011 15-2345-6789"),
        ("AR", "011 15-2345-6789", "+5491198765432", "tel:01115-2345-6789", "+54 9 11 2345-6789"),
        ("BY", "8 0152 45-09-11", "+375152450912", "tel:+375152450911", "8 0152 45-09-11"),
        ("BY", "8 0152 45-09-11", "+375152450912", "tel:80152450911", "8 (0152) 45-09-11"),
        ("HU", "06 1 234 5678", "+3612345679", "tel:+3612345678", "06 1 234 5678"),
        ("RU", "8 301 123-45-67", "+73011234568", "tel:+73011234567", "8 (301) 123-45-67"),
        ("KZ", "8 771 000 9998", "+77710009997", "tel:+77710009998", "8 (771) 000 9998"),
        ("BR", "(11) 2345-6789", "+551123456780", "tel:+551123456789", "0 15 (11) 2345-6789"),
        ("CO", "(601) 2345678", "+576012345670", "tel:+576012345678", "03 601 2345678"),
    ],
)
def test_odd_national_forms_swap_link_and_text_together(
    country: str, number: str, tracking: str, target: str, text: str
) -> None:
    rewriter = Rewriter(country, [number])
    page = f'<a href="{target}">{text}</a>'
    out = rewriter.rewrite_html(page, tracking)
    assert out.startswith(f'<a href="tel:{tracking}">'), out
    found = rewriter.find_html(page)
    assert [f.link for f in found] == [True, False], found


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        ('<a href="tel:%2B441174960123">Call us</a>', '<a href="tel:+441174090162">Call us</a>'),
        ('<a href="tel:%2b44%20117%20496%200123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:&#43;441174960123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:&#x2B;44-117-496-0123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:&#X2b;441174960123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:&#043;441174960123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:&plus;44 117 496 0123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ("<p>&#43;44 117 496 0123</p>", "<p>&#43;44 117 409 0162</p>"),
        (
            '<a href="tel:%2B441174960123">Call us</a> or 0117 496 0123',
            '<a href="tel:+441174090162">Call us</a> or 0117 409 0162',
        ),
    ],
)
def test_an_encoded_plus_is_read_on_any_page(page: str, wanted: str) -> None:
    """A page whose only trace of the number is a link with %2B or &#43; is swapped:
    the digits after the "+" are scanned for, and the "+" is checked after."""
    assert REWRITER.rewrite_html(page, TRACKING) == wanted


@pytest.mark.parametrize(
    "page",
    [
        "<p>x%2B441174960123</p>",  # percent-encoding in text shows as written
        '<a href="tel:x%2B441174960123">x</a>',
        '<a href="tel:&amp;441174960123">x</a>',
        "<p>+4411749601234</p>",
        "<p>ab+441174960123</p>",
    ],
)
def test_what_only_looks_like_an_encoded_plus_stays(page: str) -> None:
    assert REWRITER.rewrite_html(page, TRACKING) is page


def test_an_encoded_plus_before_a_nanp_number() -> None:
    """The digits after +1 are also the national form with its trunk prefix: one
    scan reads both."""
    rewriter = Rewriter("US", ["+12125550143"])
    page = (
        '<a href="tel:%2B12125550143">Call</a> <a href="tel:&#43;1-212-555-0143">'
        "+1-212-555-0143</a> 1 212 555 0143 x+12125550143"
    )
    assert rewriter.rewrite_html(page, "+13125550199") == (
        '<a href="tel:+13125550199">Call</a> <a href="tel:+13125550199">'
        "+1-312-555-0199</a> 1 312 555 0199 x+12125550143"
    )


@pytest.mark.parametrize(
    "href",
    [
        "&#116;el:01174960123",
        "tel&#58;01174960123",
        "tel&colon;01174960123",
        "TEL&colon;01174960123",
        "&#x74;&#x65;&#x6C;&#x3A;01174960123",
        "&#X54;el:01174960123",
        "&#0116el:01174960123",
        "&#32; &Tab;tel:01174960123",
        "c&#97;llto:01174960123",
        "callto&#x3a;01174960123",
    ],
)
def test_an_entity_encoded_scheme_is_a_link(href: str) -> None:
    """The browser decodes the attribute value before reading the URL: a scheme
    written with character references is still tel: (or callto:)."""
    page = f'<a href="{href}">0117 496 0123</a>'
    found = REWRITER.find_html(page)
    assert [f.link for f in found] == [True, False]
    scheme = href.removesuffix("01174960123")
    assert REWRITER.rewrite_html(page, TRACKING) == (
        f'<a href="{scheme}+441174090162">0117 409 0162</a>'
    )


@pytest.mark.parametrize(
    "href",
    [
        "&#x74el:01174960123",  # &#x74e is one reference: no "t"
        "&#1160;el:01174960123",
        "&tel:01174960123",
        "t&#101;lx:01174960123",
        "tel&colon01174960123",  # &colon needs its ";"
        "x&#116;el:01174960123",
    ],
)
def test_what_only_looks_like_an_encoded_scheme_is_no_link(href: str) -> None:
    page = f'<a href="{href}">x</a>'
    assert REWRITER.find_html(page) == []
    assert REWRITER.rewrite_html(page, TRACKING) is page
