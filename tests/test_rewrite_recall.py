"""replace_all finds every country's numbers in the forms phonenumbers writes them.

The national form of a number phonenumbers formats with another region's rules
(the NANP islands use the US's), a formatting rule that writes no trunk prefix
(Brazil's ``(11) 2345-6789``), a range grouped only in national form, a country
without formatting rules, and a number written exactly like a date (New
Caledonia's ``20.12.34``).
"""

from __future__ import annotations

import pytest

from dni_engine.rewrite import Rewriter

# (country, page, what is found, the number, the tracking number, the page after)
FOUND = (
    (
        "AG",
        "Call (268) 460-1234",
        "(268) 460-1234",
        "+12684601234",
        "+12684601235",
        "Call (268) 460-1235",
    ),
    (
        "JM",
        "Tel. (876) 523-0123",
        "(876) 523-0123",
        "+18765230123",
        "+18765230124",
        "Tel. (876) 523-0124",
    ),
    (
        "CA",
        "Call (506) 234-5678",
        "(506) 234-5678",
        "+15062345678",
        "+15062345679",
        "Call (506) 234-5679",
    ),
    (
        "BR",
        "Ligue (11) 2345-6789",
        "(11) 2345-6789",
        "+551123456789",
        "+551123456788",
        "Ligue (11) 2345-6788",
    ),
    (
        "BR",
        "Ligue (11) 96123-4567",
        "(11) 96123-4567",
        "+5511961234567",
        "+5511961234568",
        "Ligue (11) 96123-4568",
    ),
    (
        "CO",
        "Llame (601) 2345678",
        "(601) 2345678",
        "+576012345678",
        "+576012345679",
        "Llame (601) 2345679",
    ),
    (
        "HN",
        "Llame 800 2123 4567",
        "800 2123 4567",
        "+50480021234567",
        "+50480021234568",
        "Llame 800 2123 4568",
    ),
    (
        "NP",
        "Call 1660-01-01234",
        "1660-01-01234",
        "+97716600101234",
        "+97716600101235",
        "Call 1660-01-01235",
    ),
    ("KI", "Call 31234", "31234", "+68631234", "+68631235", "Call 31235"),
    ("NC", "Tél. 20.12.34", "20.12.34", "+687201234", "+687201235", "Tél. 20.12.35"),
    (
        "NC",
        "Appelez le +687 20.12.34",
        "+687 20.12.34",
        "+687201234",
        "+687201235",
        "Appelez le +687 20.12.35",
    ),
)


@pytest.mark.parametrize(("country", "page", "written", "number", "tracking", "after"), FOUND)
def test_replace_all_finds_the_number_and_writes_it_in_its_form(
    country: str, page: str, written: str, number: str, tracking: str, after: str
) -> None:
    rewriter = Rewriter(country, replace_all=True)
    # What is found starts after a "(" before the area code; it is written again.
    found = [(f.text, f.number) for f in rewriter.find_text(page)]
    assert found == [(written.removeprefix("("), number)]
    assert rewriter.rewrite_text(page, tracking) == after
    written_after = after[len(page) - len(written) :]
    link = f'<p>{page}</p><a href="tel:{number}">{written}</a>'
    assert rewriter.rewrite_html(link, tracking) == (
        f'<p>{after}</p><a href="tel:{tracking}">{written_after}</a>'
    )


# Written like a date and nothing says it is a phone number; or a date-like run
# with a phone word that is not written as the country writes its numbers.
NOT_FOUND = (
    ("NC", "le 20.12.34 à midi"),
    ("NC", "Tél. 20.12.2034"),
    ("NC", "Tél. 20-12-34"),
    ("HK", "Phone museum, open 2004-2018"),
    ("DE", "Tel. 0711 123456, Stand 22.05.2019"),
    ("AT", "Telefon: 01.02.2019"),
    ("GB", "Tel 22.05.19"),
    ("US", "Call 12.05.2019"),
)


@pytest.mark.parametrize(("country", "page"), NOT_FOUND)
def test_a_date_stays_a_date(country: str, page: str) -> None:
    found = Rewriter(country, replace_all=True).find_text(page)
    assert [f.text for f in found if "0711" not in f.text] == []


def test_a_bare_island_number_still_needs_a_phone_word() -> None:
    rewriter = Rewriter("AG", replace_all=True)
    assert rewriter.find_text("Order 2684601234 shipped") == []
    assert [f.text for f in rewriter.find_text("Phone: 2684601234")] == ["2684601234"]


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        ('<a href="tel:%2B441174960123">Call us</a>', '<a href="tel:+441174090162">Call us</a>'),
        ('<a href="tel:&#43;441174960123">Call us</a>', '<a href="tel:+441174090162">Call us</a>'),
        ("<p>&#43;44 117 496 0123</p>", "<p>&#43;44 117 409 0162</p>"),
        ("<p>&plus;44 117 496 0123</p>", "<p>&plus;44 117 409 0162</p>"),
        ("<p>&#x2B;441174960123</p>", "<p>&#x2B;441174090162</p>"),
        ("<p>%2B44 117 496 0123</p>", "<p>%2B44 117 496 0123</p>"),  # shown as written
    ],
)
def test_replace_all_reads_an_encoded_plus(page: str, wanted: str) -> None:
    """A "+" written as a reference (or %2B in a link) is the number's own: the
    tracking number is not written after it with a "+" of its own."""
    assert Rewriter("GB", replace_all=True).rewrite_html(page, "+441174090162") == wanted


@pytest.mark.parametrize(
    ("page", "wanted"),
    [
        (
            '<a href="tel:0117%20496%200123">0117 496 0123</a>',
            '<a href="tel:+441174090162">0117 409 0162</a>',
        ),
        (
            '<a href="tel:%280117%29%20496%200123">(0117) 496 0123</a>',
            '<a href="tel:+441174090162">(0117) 409 0162</a>',
        ),
        ('<a href="tel:%2B44%20117%20496%200123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:0117%2D496%2D0123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ('<a href="tel:0117%C2%A0496%C2%A00123">x</a>', '<a href="tel:+441174090162">x</a>'),
        ("<p>0117%20496%200123</p>", "<p>0117%20496%200123</p>"),  # text shows the escapes
        ("<p>100%: 0117 496 0123</p>", "<p>100%: 0117 409 0162</p>"),
    ],
)
def test_replace_all_reads_percent_encoded_separators_in_a_target(page: str, wanted: str) -> None:
    """WordPress writes tel:0117%20496%200123: the target is swapped with its text,
    so the link never dials the untracked number while the page shows another."""
    assert Rewriter("GB", replace_all=True).rewrite_html(page, "+441174090162") == wanted
