"""Swapping a pool's numbers on pages: written forms, HTML contexts, replace_all_numbers."""

from __future__ import annotations

import html.parser
import json
import random
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.cli import cli
from dni_engine.phone import keypad_letters
from dni_engine.rewrite import Rewriter, compile_rewriter, rewrite_html, rewrite_text
from dni_engine.schema import NumberPool, NumberPoolRequest
from tests.conftest import EXAMPLES, load_example

# ---- the corpus ----------------------------------------------------------------

# Pools by country: (country, numbers_to_replace). Tracking numbers per case.
GB = ("GB", ("01174090162", "4402078395555"))
US = ("US", ("800444CARS", "4045553434"))
CA = ("CA", ("613 555 0123",))
FR = ("FR", ("01 23 45 67 89",))
DE = ("DE", ("030 901820",))
AU = ("AU", ("02 9876 5432", "1300 123 456"))

GB_T = "+441174090199"  # same length as the GB numbers: digits are poured in
US_T = "+12125550143"

CORPUS: list[tuple[tuple[str, tuple[str, ...]], str, str, str]] = [
    # GB, every common written form
    (GB, GB_T, "Call 0117 409 0162 today", "Call 0117 409 0199 today"),
    (GB, GB_T, "01174090162", "01174090199"),
    (GB, GB_T, "0117-409-0162", "0117-409-0199"),
    (GB, GB_T, "0117.409.0162", "0117.409.0199"),
    (GB, GB_T, "(0117) 409 0162", "(0117) 409 0199"),
    (GB, GB_T, "0117/409 0162", "0117/409 0199"),
    (GB, GB_T, "Tel: +44 117 409 0162.", "Tel: +44 117 409 0199."),
    (GB, GB_T, "+44 (0)117 409 0162", "+44 (0)117 409 0199"),
    (GB, GB_T, "+44(0)1174090162", "+44(0)1174090199"),
    (GB, GB_T, "0044 117 409 0162", "0044 117 409 0199"),
    (GB, GB_T, "+441174090162", "+441174090199"),
    (GB, GB_T, "0117\u00a0409\u00a00162", "0117\u00a0409\u00a00199"),
    (GB, GB_T, "0117 – 409 – 0162", "0117 – 409 – 0199"),
    (GB, GB_T, "<p>0117&nbsp;409&nbsp;0162</p>", "<p>0117&nbsp;409&nbsp;0199</p>"),
    (GB, GB_T, "<p>0117&#160;409&#xA0;0162</p>", "<p>0117&#160;409&#xA0;0199</p>"),
    (GB, GB_T, "<p>0117\n409 0162</p>", "<p>0117\n409 0199</p>"),
    # another area code's grouping: the tracking number in its own, in the page's style
    (GB, GB_T, "<b>Call</b> 020 7839 5555", "<b>Call</b> 0117 409 0199"),
    (GB, GB_T, "+44 20 7839 5555", "+44 117 409 0199"),
    (GB, GB_T, "(020) 7839 5555", "(0117) 409 0199"),
    (GB, GB_T, "a 0117 409 0162 and 0117 409 0162", "a 0117 409 0199 and 0117 409 0199"),
    # tel: and callto: targets get E.164, the text keeps its form
    (
        GB,
        GB_T,
        '<a href="tel:+441174090162">0117 409 0162</a>',
        '<a href="tel:+441174090199">0117 409 0199</a>',
    ),
    (
        GB,
        GB_T,
        "<a href='tel:0117 409 0162' class=x>Call us</a>",
        "<a href='tel:+441174090199' class=x>Call us</a>",
    ),
    (GB, GB_T, "<a href=tel:01174090162>x</a>", "<a href=tel:+441174090199>x</a>"),
    (GB, GB_T, '<a HREF=" TEL:+44-117-409-0162">', '<a HREF=" TEL:+441174090199">'),
    (GB, GB_T, '<a href="callto:+441174090162">', '<a href="callto:+441174090199">'),
    (GB, GB_T, '<a href="tel:020 7839 5555">', '<a href="tel:+441174090199">'),
    (
        GB,
        GB_T,
        '<a href="tel:+441174090162;ext=12">0117 409 0162ext. 12</a>',
        '<a href="tel:+441174090199;ext=12">0117 409 0199ext. 12</a>',
    ),
    (GB, GB_T, "<title>Call 0117 409 0162</title>", "<title>Call 0117 409 0199</title>"),
    (GB, GB_T, "<textarea>0117 409 0162</textarea>", "<textarea>0117 409 0199</textarea>"),
    (GB, GB_T, "5<b>0117 409 0162</b>", "5<b>0117 409 0199</b>"),
    # a tracking number of another length: the country's format, in the page's style
    (GB, "+44169773456", "Call 0117 409 0162", "Call 016977 3456"),
    (GB, "+44169773456", "Call +44 117 409 0162", "Call +44 16977 3456"),
    (GB, "+44169773456", "Call (0117) 409 0162.", "Call (016977) 3456."),
    (GB, "+44169773456", "Call +441174090162.", "Call +44169773456."),
    (GB, "+44169773456", "<p>0117&nbsp;409&nbsp;0162</p>", "<p>016977&nbsp;3456</p>"),
    # US and Canada, vanity letters on either side
    (US, US_T, "1-800-444-CARS", "1-212-555-0143"),
    (US, US_T, "800-444-2277", "212-555-0143"),
    (US, US_T, "(800) 444-2277", "(212) 555-0143"),
    (US, US_T, "+1 800 444 2277", "+1 212 555 0143"),
    (US, US_T, "1 (800) 444-CARS", "1 (212) 555-0143"),
    (US, US_T, "800.444.cars", "212.555.0143"),
    (US, US_T, "800444CARS", "2125550143"),
    (US, US_T, "404-555-3434", "212-555-0143"),
    (US, US_T, "call 404 555 DIDI now", "call 212 555 0143 now"),
    (
        US,
        US_T,
        '<a href="tel:1-800-444-CARS">1-800-444-CARS</a>',
        '<a href="tel:+12125550143">1-212-555-0143</a>',
    ),
    (US, "+18004442277", "1-800-444-CARS", "1-800-444-CARS"),  # already the number
    (CA, "+16135550188", "(613) 555-0123", "(613) 555-0188"),
    (CA, "+16135550188", "1-613-555-0123", "1-613-555-0188"),
    # France
    (FR, "+33198765432", "01 23 45 67 89", "01 98 76 54 32"),
    (FR, "+33198765432", "01.23.45.67.89", "01.98.76.54.32"),
    (FR, "+33198765432", "+33 1 23 45 67 89", "+33 1 98 76 54 32"),
    (FR, "+33198765432", "+33 (0)1 23 45 67 89", "+33 (0)1 98 76 54 32"),
    (FR, "+33198765432", "0033 1 23 45 67 89", "0033 1 98 76 54 32"),
    (FR, "+33198765432", "0123456789", "0198765432"),
    # Germany, including a tracking number with more digits
    (DE, "+4930901821", "030 901820", "030 901821"),
    (DE, "+4930901821", "(030) 90 18 20", "(030) 901821"),  # its own grouping
    (DE, "+4930901821", "030/901820", "030/901821"),
    (DE, "+4930901821", "+49 30 901820", "+49 30 901821"),
    (DE, "+4930901821", "+49 (0)30 901820", "+49 (0)30 901821"),
    (DE, "+49301234567", "Tel. 030 901820", "Tel. 030 1234567"),
    (DE, "+49301234567", "Tel. +49 30 901820", "Tel. +49 30 1234567"),
    # Australia, geographic and 1300
    (AU, "+61298765499", "(02) 9876 5432", "(02) 9876 5499"),
    (AU, "+61298765499", "02 9876 5432", "02 9876 5499"),
    (AU, "+61298765499", "+61 2 9876 5432", "+61 2 9876 5499"),
    (AU, "+61298765499", "+61 (0)2 9876 5432", "+61 (0)2 9876 5499"),
    (AU, "+611300654321", "1300 123 456", "1300 654 321"),
    (AU, "+611300654321", "+61 1300 123 456", "+61 1300 654 321"),
    # look-alikes that must not change
    (GB, GB_T, "Order #1174090162", "Order #1174090162"),
    (GB, GB_T, "Order 101174090162", "Order 101174090162"),
    (GB, GB_T, "Ref 011740901623", "Ref 011740901623"),
    (GB, GB_T, "ID 44011740901620", "ID 44011740901620"),
    (GB, GB_T, "code A01174090162", "code A01174090162"),
    (GB, GB_T, "On 2017-01-17, £1,174.09 for 409 units", "On 2017-01-17, £1,174.09 for 409 units"),
    (GB, GB_T, "Call 0117 409 016 or 0117 409 01622", "Call 0117 409 016 or 0117 409 01622"),
    (GB, GB_T, "Paris: +33 0117 409 0162", "Paris: +33 0117 409 0162"),
    (US, US_T, "Order 48004442277", "Order 48004442277"),
    (US, US_T, "Ref 8004442277123", "Ref 8004442277123"),
    (US, US_T, "Visit 1-800-444-CARSON", "Visit 1-800-444-CARSON"),
    (US, US_T, "London +44 800 444 2277", "London +44 800 444 2277"),
    (FR, "+33198765432", "Lot 123456789", "Lot 123456789"),
    # places in HTML where nothing is swapped
    (GB, GB_T, '<script>call("0117 409 0162")</script>', '<script>call("0117 409 0162")</script>'),
    (GB, GB_T, "<SCRIPT type=x>0117 409 0162</SCRIPT>", "<SCRIPT type=x>0117 409 0162</SCRIPT>"),
    (GB, GB_T, "<style>/* 0117 409 0162 */</style>", "<style>/* 0117 409 0162 */</style>"),
    (GB, GB_T, "<!-- 0117 409 0162 -->", "<!-- 0117 409 0162 -->"),
    (
        GB,
        GB_T,
        '<img alt="0117 409 0162" title=01174090162>',
        '<img alt="0117 409 0162" title=01174090162>',
    ),
    (GB, GB_T, '<a href="/call?n=01174090162">', '<a href="/call?n=01174090162">'),
    (GB, GB_T, '<input value="0117 409 0162">', '<input value="0117 409 0162">'),
    (
        GB,
        GB_T,
        '<p title="a > 0117 409 0162">0117 409 0162</p>',
        '<p title="a > 0117 409 0162">0117 409 0199</p>',
    ),
    (
        GB,
        GB_T,
        '<script>document.write("<p>0117 409 0162</p>")</script><p>0117 409 0162</p>',
        '<script>document.write("<p>0117 409 0162</p>")</script><p>0117 409 0199</p>',
    ),
    (
        GB,
        GB_T,
        "<div data-dni-noswap>Call <b>0117 409 0162</b></div> or 0117 409 0162",
        "<div data-dni-noswap>Call <b>0117 409 0162</b></div> or 0117 409 0199",
    ),
    (
        GB,
        GB_T,
        "<div DATA-DNI-NOSWAP=1><div>x</div>0117 409 0162</div>0117 409 0162",
        "<div DATA-DNI-NOSWAP=1><div>x</div>0117 409 0162</div>0117 409 0199",
    ),
    (
        GB,
        GB_T,
        '<a data-dni-noswap href="tel:01174090162">0117 409 0162</a>',
        '<a data-dni-noswap href="tel:01174090162">0117 409 0162</a>',
    ),
    (GB, GB_T, "<br data-dni-noswap>0117 409 0162", "<br data-dni-noswap>0117 409 0199"),
    (
        GB,
        GB_T,
        '<script data-dni-noswap>"<script>0117 409 0162"</script><p>0117 409 0162',
        '<script data-dni-noswap>"<script>0117 409 0162"</script><p>0117 409 0199',
    ),
    (
        GB,
        GB_T,
        '<p data-x="data-dni-noswap">0117 409 0162',
        '<p data-x="data-dni-noswap">0117 409 0199',
    ),
    # broken markup: the readable part is swapped, the rest left as it is
    (GB, GB_T, "<p>a < b 0117 409 0162</p>", "<p>a < b 0117 409 0199</p>"),
    (
        GB,
        GB_T,
        '<p>0117 409 0162<a href="tel:01174090162',
        '<p>0117 409 0199<a href="tel:01174090162',
    ),
    (GB, GB_T, "0117 409 0162 <!-- 0117 409 0162", "0117 409 0199 <!-- 0117 409 0162"),
    (GB, GB_T, "0117 409 0162<script>0117 409 0162", "0117 409 0199<script>0117 409 0162"),
    (GB, GB_T, "<div data-dni-noswap>0117 409 0162", "<div data-dni-noswap>0117 409 0162"),
]


@pytest.mark.parametrize(("pool", "tracking", "page", "expected"), CORPUS)
def test_corpus(pool: tuple[str, tuple[str, ...]], tracking: str, page: str, expected: str) -> None:
    country, numbers = pool
    assert Rewriter(country, numbers).rewrite_html(page, tracking) == expected


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 50
    assert {pool[0] for pool, *_ in CORPUS} >= {"GB", "US", "CA", "FR", "DE", "AU"}


# ---- plain text --------------------------------------------------------------


def test_plain_text_has_no_markup_and_no_entities() -> None:
    rewriter = Rewriter(*GB)
    text = "<script>0117 409 0162</script> 0117&nbsp;409&nbsp;0162 +44 117 409 0162"
    assert rewriter.rewrite_text(text, GB_T) == (
        "<script>0117 409 0199</script> 0117&nbsp;409&nbsp;0162 +44 117 409 0199"
    )


def test_find_lists_what_would_change() -> None:
    rewriter = Rewriter(*GB)
    page = '<a href="tel:+441174090162">0117 409 0162</a> <i title="0117 409 0162">'
    found = rewriter.find_html(page)
    assert [(f.text, f.number, f.link) for f in found] == [
        ("+441174090162", "+441174090162", True),
        ("0117 409 0162", "+441174090162", False),
    ]
    assert all(page[f.start : f.end] == f.text for f in found)


# ---- guarantees ----------------------------------------------------------------


def test_no_tracking_number_or_nothing_to_swap_returns_the_same_object() -> None:
    rewriter = Rewriter(*GB)
    page = "<p>Call 0117 409 0162</p>"
    assert rewriter.rewrite_html(page, None) is page
    assert rewriter.rewrite_html(page, "") is page
    assert rewriter.rewrite_html(page, "+441174090162") is page  # already the number
    other = "<p>Call 0118 496 0000</p>"
    assert rewriter.rewrite_html(other, GB_T) is other
    assert rewriter.rewrite_text(other, GB_T) is other


@pytest.mark.parametrize("tracking", ["not a number", "+", "+999123", "12", "\x00"])
def test_an_unusable_tracking_number_leaves_the_page_alone(tracking: str) -> None:
    page = "<p>Call 0117 409 0162</p>"
    assert Rewriter(*GB).rewrite_html(page, tracking) is page


@pytest.mark.parametrize(
    "page",
    [
        "",
        "<",
        "<<<<>>>>",
        "<a href='",
        '<a href="tel:',
        "<!--",
        "<!-->0117 409 0162",
        "</>",
        "<?xml 0117 409 0162?>",
        "<![CDATA[0117 409 0162]]>",
        "\ud800 0117 409 0162 \udfff",
        "\x00\x01\x02",
        "&nbsp;&nbsp;&nbsp;0117&nbsp;&nbsp;&nbsp;&nbsp;409 0162",
        "<div data-dni-noswap" * 50,
        "<p>" * 5000 + "0117 409 0162",
        "0" * 10000,
        "(" * 10000 + "0117",
    ],
)
def test_odd_input_never_raises(page: str) -> None:
    rewriter = Rewriter(*GB)
    out = rewriter.rewrite_html(page, GB_T)
    assert isinstance(out, str)
    assert rewriter.rewrite_html(page, "+441174090162") == page


def test_the_page_is_returned_unchanged_if_rewriting_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dni_engine.rewrite.listed as module

    def broken(*_: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "placed", broken)
    page = "<p>0117 409 0162</p>"
    assert Rewriter(*GB).rewrite_html(page, GB_T) is page


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 +-().<>/&;!'\"=abtelhrf:\u00a0\n")))
def test_random_text_never_raises(page: str) -> None:
    rewriter = Rewriter(*GB)
    assert isinstance(rewriter.rewrite_html(page, GB_T), str)
    assert rewriter.rewrite_html(page, "+441174090162") == page
    assert rewriter.rewrite_text(page, "+441174090162") == page


def test_large_digit_tables_stay_cheap_and_correct() -> None:
    rows = " ".join(f"{n:07d}" for n in range(3000))
    page = f"<p>{rows}</p><p>Call 0117 409 0162</p>"
    everything = Rewriter("GB", replace_all=True)
    assert everything.rewrite_html(page, GB_T).endswith("<p>Call 0117 409 0199</p>")


# ---- pools, the cache and the module functions ---------------------------------


def test_compile_rewriter_is_cached_per_pool_object() -> None:
    pool = NumberPool.model_validate(load_example("geographic-city.response"))
    twin = NumberPool.model_validate(load_example("geographic-city.response"))
    assert compile_rewriter(pool) is compile_rewriter(pool)
    assert compile_rewriter(twin) is not compile_rewriter(pool)


def test_a_pool_from_the_api_reads_its_numbers_in_its_country() -> None:
    pool = NumberPool.model_validate(load_example("geographic-city.response"))
    rewriter = compile_rewriter(pool)
    assert rewriter.country == "GB"
    assert rewriter.numbers == ("+441011231234", "+442078395555", "+449011231234")
    page = '<p>Call 0101 123 1234 or <a href="tel:+442078395555">020 7839 5555</a></p>'
    assert rewrite_html(pool, page, pool.e164_numbers[0]) == (
        '<p>Call 0117 409 0162 or <a href="tel:+441174090162">0117 409 0162</a></p>'
    )
    assert rewrite_text(pool, "0101 123 1234", pool.e164_numbers[1]) == "0117 409 0163"


def test_a_request_uses_its_iso_country() -> None:
    data = load_example("geographic-city.request")
    data["phone_number_request"]["iso_country"] = "US"
    data["replacement_configuration"]["numbers_to_replace"] = ["905219CARS", "4045553434"]
    request = NumberPoolRequest.model_validate(data)
    rewriter = compile_rewriter(request)
    assert rewriter.country == "US"
    assert rewriter.rewrite_html("905-219-CARS", US_T) == "212-555-0143"


def test_the_country_may_be_given_in_any_case() -> None:
    rewriter = Rewriter(" gb", ["01174090162"])
    assert rewriter.country == "GB"
    assert rewriter.rewrite_text("0117 409 0162", GB_T) == "0117 409 0199"


def test_entries_that_are_no_number_are_ignored() -> None:
    rewriter = Rewriter("GB", ["12", "01174090162", "+999 12"])
    assert rewriter.ignored == ("12", "+999 12")
    assert rewriter.rewrite_html("0117 409 0162", GB_T) == "0117 409 0199"


def test_without_a_country_only_international_entries_count() -> None:
    rewriter = Rewriter(None, ["+441174090162", "01174090162"])
    assert rewriter.ignored == ("01174090162",)
    assert rewriter.rewrite_html("0117 409 0162", GB_T) == "0117 409 0199"
    assert Rewriter(None, replace_all=True).rewrite_html("0117 409 0162", GB_T) == "0117 409 0162"


# ---- replace_all_numbers -----------------------------------------------------------


def test_replace_all_swaps_every_valid_number_of_the_country() -> None:
    rewriter = Rewriter("GB", replace_all=True)
    page = (
        "<p>Sales 0117 409 0162, service +44 20 7839 5555, "
        '<a href="tel:08000885644">freephone</a>. '
        "Paris +33 1 23 45 67 89. Order 12345678, £1,174.09, 17/01/2024.</p>"
    )
    assert rewriter.rewrite_html(page, GB_T) == (
        "<p>Sales 0117 409 0199, service +44 117 409 0199, "
        '<a href="tel:+441174090199">freephone</a>. '
        "Paris +33 1 23 45 67 89. Order 12345678, £1,174.09, 17/01/2024.</p>"
    )


def test_replace_all_judges_each_number_not_the_whole_run() -> None:
    rewriter = Rewriter("GB", replace_all=True)
    page = "Call 0117 409 0162 17/01/2024, 2019-05-15 05:12:34 or 0117 409 0163 / 020 7839 5555"
    assert rewriter.rewrite_text(page, GB_T) == (
        "Call 0117 409 0199 17/01/2024, 2019-05-15 05:12:34 or 0117 409 0199 / 0117 409 0199"
    )


def test_replace_all_leaves_the_tracking_number_itself_alone() -> None:
    rewriter = Rewriter("US", replace_all=True)
    page = "Call (212) 555-0143 or 404.555.3434"
    assert rewriter.rewrite_text(page, US_T) == "Call (212) 555-0143 or 212.555.0143"


# What replace_all pools swapped on real pages that is no phone number.
NOT_PHONE_NUMBERS = (
    ("US", "<time>22.05.2019 - 21:05</time>"),
    ("IN", "<time>08.04.2015 12:46</time>"),
    ("HK", "<p>08.04.2015 12:46</p><p>23.10.2018</p>"),
    ("US", "<small>26.06.2012&nbsp;10:43</small>"),
    ("DE", "<p>In 1642 ... Bug 1681512 ... EUR 16900,--</p>"),
    ("DE", "<p>vom 02.01.2016</p><p>pp. 339\u2013344</p>"),
    ("US", "<span>Instagram post 2192686567013773038_2288518709</span>"),
    ("GB", "<p>Mobil: +49 (0) 160-8472068</p>"),
    ("AT", "<p>Mobil: +49 (0) 160-8472068</p>"),
    ("BE", "<p>Tel. 0 93 82 / 84 73 99</p>"),
    ("IT", "<p>Tel. 0 93 82 / 84 73 99</p><p>ISBN-10: 3942795116</p>"),
    ("GB", "<p>034202-3090-0</p>"),
    ("FR", "<p>+49 (0) 99 73 84 59 \u2013 0</p>"),
    ("ES", "<p>Tel.:+31 (0) 614392096</p>"),
    ("AU", "<p>BT-Drucks. 13/7385, S. 19</p>"),
    ("PL", "<p>am 23.-26.8.2017</p><p>arXiv 1512.01655</p>"),
    ("IN", "<p>T 919-951-0052</p>"),
    ("HK", "<p>ISSN&nbsp;:&nbsp;2105-3030</p><p>23.777 (127 NEU)</p><p>: 2579\u20132605.</p>"),
    ("US", "<p>rev 2020.1.20.35817, http://x.de/btd/17/130/1713057.pdf</p>"),
    ("US", "<p>Results: 12 - 345 - 6789 = ?</p>"),
)


@pytest.mark.parametrize(("country", "page"), NOT_PHONE_NUMBERS)
def test_replace_all_leaves_what_only_looks_like_a_number(country: str, page: str) -> None:
    rewriter = Rewriter(country, replace_all=True)
    assert rewriter.find_html(page) == []
    assert rewriter.rewrite_html(page, "+441174090199") is page


# Phone numbers as real pages write them, each with the country whose pool swaps it.
PHONE_NUMBERS = (
    ("DE", "Mobil: +49 (0) 160-8472068", "+49 (0) 160-8472068", "+491608472068"),
    ("DE", "Tel. 0 93 82 / 84 73 99<br />", "0 93 82 / 84 73 99", "+499382847399"),
    ("DE", '<a href="tel:+493420230900">034202-3090-0</a>', "034202-3090-0", "+493420230900"),
    ("DE", "Tel. +49 (0) 99 73 84 59 \u2013 0", "+49 (0) 99 73 84 59 \u2013 0", "+49997384590"),
    ("AT", "Tel: 0043(0) 316/82 16 36, Fax", "0043(0) 316/82 16 36", "+43316821636"),
    ("NL", "Tel.:+31 (0) 614392096</div>", "+31 (0) 614392096", "+31614392096"),
    ("US", "<p>T 919-951-0052 <br>", "919-951-0052", "+19199510052"),
    ("US", "Call 0117 409 0162 or 2125550143", "2125550143", "+12125550143"),
    ("GB", "Call 0117 409 0162 17/01/2024", "0117 409 0162", "+441174090162"),
)


@pytest.mark.parametrize(("country", "page", "written", "number"), PHONE_NUMBERS)
def test_replace_all_swaps_phone_numbers_as_pages_write_them(
    country: str, page: str, written: str, number: str
) -> None:
    found = Rewriter(country, replace_all=True).find_html(page)
    assert [(f.text, f.number) for f in found if not f.link] == [(written, number)]


def test_a_bare_run_of_digits_needs_a_phone_word_or_a_link() -> None:
    rewriter = Rewriter("US", replace_all=True)
    assert rewriter.find_text("Order 2125550143 shipped") == []
    assert [f.text for f in rewriter.find_text("Phone: 2125550143")] == ["2125550143"]
    assert [f.number for f in rewriter.find_text("(212) 555-0143")] == ["+12125550143"]
    link = rewriter.find_html('<a href="tel:2125550143">x</a>')
    assert [(f.text, f.link) for f in link] == [("2125550143", True)]


# Pages around numbers of one country, written the ways people write them.
COUNTRIES = ("GB", "US", "FR", "DE", "AU")
LOOK_ALIKES = (
    "Order #{n6} shipped",
    "Invoice INV-{n8} paid",
    "Price: £{n3}.{n2} or ${n4}.99",
    "Dated {d}/{m}/20{y} at 10:{n2}",
    "2019-0{m1}-1{m1} 0{m1}:{n2}:{n2}",
    "Up {n2}% since 20{y}",
    "Tracking {n12}",
    "ISBN 978-{n1}-{n3}-{n5}-{n1}",
    "IP 192.168.{n2}.{n2}",
    "Version {n1}.{n2}.{n3}",
    "Pages 211-227 (2003)",
    "SKU{n9}",
    "Code {n9}X",
    "{n3} items, {n4} reviews, {n2} stores",
    "Serial {n16}",
)


def _valid_numbers(country: str, rng: random.Random, count: int) -> list[phonenumbers.PhoneNumber]:
    """Valid numbers of ``country``: its example numbers with random subscriber digits."""
    kinds = (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
    )
    examples = [e for kind in kinds if (e := phonenumbers.example_number_for_type(country, kind))]
    numbers: list[phonenumbers.PhoneNumber] = []
    while len(numbers) < count:
        example = rng.choice(examples)
        nsn = phonenumbers.national_significant_number(example)
        tail = "".join(rng.choice("0123456789") for _ in range(4))
        candidate = phonenumbers.parse(f"+{example.country_code}{nsn[:-4]}{tail}")
        if phonenumbers.region_code_for_number(
            candidate
        ) == country and phonenumbers.is_valid_number(candidate):
            numbers.append(candidate)
    return numbers


def _written(number: phonenumbers.PhoneNumber, rng: random.Random) -> str:
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    style = rng.randrange(7)
    if style == 0:
        return national
    if style == 1:
        return international
    if style == 2:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if style == 3:
        return national.replace(" ", rng.choice(("-", ".", "")))
    if style == 4:
        return "00" + international[1:] if number.country_code != 1 else international
    if style == 5:
        return international.replace(" ", "-", 1)
    return national.replace(" ", "\u00a0")


def _filler(rng: random.Random) -> str:
    template = rng.choice(LOOK_ALIKES)

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    return template.format(
        n1=digits(1),
        n2=digits(2),
        n3=digits(3),
        n4=digits(4),
        n5=digits(5),
        n6=digits(6),
        n8=digits(8),
        n9=digits(9),
        n12=digits(12),
        n16=digits(16),
        d=rng.randint(10, 28),
        m=rng.randint(10, 12),
        m1=rng.randint(1, 9),
        y=rng.randint(10, 24),
    )


@dataclass
class _Page:
    country: str
    text: str
    numbers: list[tuple[int, int, str]]  # where each planted number is, and its E.164


def _corpus(seed: int, pages: int) -> list[_Page]:
    rng = random.Random(seed)
    corpus = []
    for country in COUNTRIES:
        pool = _valid_numbers(country, rng, pages * 4)
        for i in range(pages):
            text, planted = "", []
            for number in pool[i * 4 : i * 4 + 4]:
                text += f"{_filler(rng)}. Call us on "
                written = _written(number, rng)
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                planted.append((len(text), len(text) + len(written), e164))
                text += f"{written} ({rng.choice(('sales', 'service', 'open 9-5'))}). "
            corpus.append(_Page(country, text + _filler(rng), planted))
    return corpus


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_replace_all_finds_what_the_phonenumbers_matcher_finds() -> None:
    """Every planted number the matcher finds is found too (the matcher's own finds in
    the look-alikes, such as ``2019-07-17 07`` of ``2019-07-17 07:88:88``, are not)."""
    corpus = _corpus(seed=2024, pages=50)
    expected = found = 0
    for page in corpus:
        rewriter = Rewriter(page.country, replace_all=True)
        ours = [((f.start, f.end), f.number) for f in rewriter.find_text(page.text)]
        planted = [((start, end), e164) for start, end, e164 in page.numbers]
        theirs = [
            (
                (m.start, m.end),
                phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164),
            )
            for m in phonenumbers.PhoneNumberMatcher(page.text, page.country)
            if phonenumbers.region_code_for_number(m.number) == page.country
        ]
        real = [
            (span, number)
            for span, number in theirs
            if any(number == e164 and _overlaps(span, where) for where, e164 in planted)
        ]
        expected += len(real)
        found += sum(
            any(number == e164 and _overlaps(span, where) for where, e164 in ours)
            for span, number in real
        )
        for span, number in ours:  # everything swapped is a number the page shows
            assert any(
                number == e164 and _overlaps(span, where) for where, e164 in planted + theirs
            ), (page.text, span, number)
    assert expected >= 900
    assert found / expected >= 0.99, (found, expected)


@pytest.mark.parametrize("country", COUNTRIES)
def test_replace_all_finds_nothing_in_look_alikes(country: str) -> None:
    rng = random.Random(country)
    rewriter = Rewriter(country, replace_all=True)
    for _ in range(200):
        text = f"{_filler(rng)}, {_filler(rng)}"
        theirs = [
            (
                (m.start, m.end),
                phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164),
            )
            for m in phonenumbers.PhoneNumberMatcher(text, country)
        ]
        for found in rewriter.find_text(text):
            assert any(
                found.number == e164 and _overlaps((found.start, found.end), where)
                for where, e164 in theirs
            ), text


def test_replace_all_in_html_finds_numbers_only_in_text_and_links() -> None:
    page = _corpus(seed=7, pages=1)[0]
    rewriter = Rewriter(page.country, replace_all=True)
    marked_up = f'<p title="{page.text}">{page.text}</p><script>{page.text}</script>'
    found = rewriter.find_html(marked_up)
    offset = marked_up.index(">") + 1
    assert [(f.start - offset, f.end - offset, f.number) for f in found] == [
        (f.start, f.end, f.number) for f in rewriter.find_text(page.text)
    ]


# ---- the property: only the numbers change ------------------------------------------

# Pools for the property, with a tracking number grouped like every listed number
# (so its digits are poured into the page's positions; other groupings are the
# subject of tests/test_rewrite_style.py).
PROPERTY_POOLS = {
    "GB": (("01174090162", "01134960000"), "+441174960999"),
    "US": (("8004442277", "4045553434"), "+12125550143"),
    "FR": (("0123456789",), "+33198765432"),
}

SEPARATORS = (" ", " ", "-", ".", "/", "\u00a0", "&nbsp;", " - ", "\n")
AFTER_PREFIX = ("", " ", "-", "\u00a0", "&nbsp;")
WORDS = ("call", "us", "on", "today", "Order", "#12", "price", "£3.50", "open", "9-5", "x")


@dataclass(frozen=True)
class _Number:
    """A written number: its pieces, and which are the national digits (to pour into)."""

    pieces: tuple[tuple[str, bool], ...]  # (text, is a national digit position)

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.pieces)

    def poured(self, nsn: str) -> str:
        digits = iter(nsn)
        return "".join(next(digits) if national else text for text, national in self.pieces)


def _group_starts(country: str, nsn: str) -> set[int]:
    """Where phonenumbers starts a new group in the national number ``nsn``."""
    number = phonenumbers.parse(nsn, country)
    written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    groups = written.split(" ", 1)[1].replace("-", " ").split(" ")
    starts, at = set(), 0
    for group in groups[:-1]:
        at += len(group)
        starts.add(at)
    return starts


@st.composite
def written_numbers(draw: st.DrawFn, country: str, nsn: str) -> _Number:
    """The number in one of its forms, grouped as phonenumbers groups it (each gap
    a separator of the page's choosing) or written as one run of digits."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(country)
    cc = str(metadata.country_code)
    trunk = metadata.national_prefix or ""
    prefixes = ["+" + cc, "00" + cc]
    if country == "US":
        prefixes += ["", trunk]
    else:
        prefixes += [f"+{cc} ({trunk})", trunk]
    prefix = draw(st.sampled_from(prefixes))
    pieces: list[tuple[str, bool]] = []
    if prefix:
        pieces.append((prefix, False))
        glued = prefix == trunk and country != "US"  # 0117, 01: the trunk is in the group
        pieces.append(("" if glued else draw(st.sampled_from(AFTER_PREFIX)), False))
    starts = _group_starts(country, nsn) if draw(st.booleans()) else set()
    for i, digit in enumerate(nsn):
        if i in starts:
            pieces.append((draw(st.sampled_from(SEPARATORS)), False))
        letters = keypad_letters(digit) if country == "US" and i >= 3 else ""
        char = draw(st.sampled_from(digit + letters)) if letters else digit
        pieces.append((char, True))
    return _Number(tuple(pieces))


@dataclass(frozen=True)
class _Piece:
    before: str
    number: _Number | None
    after: str
    where: str  # text | link | fixed (script, comment, attribute, noswap, look-alike)


@st.composite
def pieces(draw: st.DrawFn, country: str, nsn: str) -> _Piece:
    number = draw(written_numbers(country, nsn))
    words = " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=4)))
    kind = draw(
        st.sampled_from(
            (
                "text",
                "text",
                "link",
                "attr",
                "script",
                "style",
                "comment",
                "noswap",
                "longer",
                "words",
            )
        )
    )
    if kind == "text":
        tag = draw(st.sampled_from(("p", "span", "b", "td", "li")))
        return _Piece(f"<{tag}>{words} ", number, f" {words}</{tag}>", "text")
    if kind == "link":
        return _Piece('<a class="tel" href="tel:', number, f'">{words}</a>', "link")
    if kind == "attr":
        return _Piece('<span title="', number, f'" data-n=1>{words}</span>', "fixed")
    if kind == "script":
        return _Piece('<script>var phone = "', number, '"; if (a<b) {}</script>', "fixed")
    if kind == "style":
        return _Piece("<style>/* ", number, " */ p{margin:0}</style>", "fixed")
    if kind == "comment":
        return _Piece("<!-- ", number, " -->", "fixed")
    if kind == "noswap":
        return _Piece(f"<div data-dni-noswap><p>{words} ", number, "</p></div>", "fixed")
    if kind == "longer":  # a digit run containing the number
        return _Piece(f"<p>{words} Ref 9", number, "7</p>", "fixed")
    return _Piece(f"<p>{words}</p>", None, "", "fixed")


@st.composite
def pages(draw: st.DrawFn) -> tuple[str, str, list[_Piece]]:
    country = draw(st.sampled_from(sorted(PROPERTY_POOLS)))
    numbers, _ = PROPERTY_POOLS[country]
    nsn = phonenumbers.national_significant_number(
        phonenumbers.parse(draw(st.sampled_from(numbers)), country)
    )
    return country, nsn, draw(st.lists(pieces(country, nsn), min_size=1, max_size=8))


class _Tags(html.parser.HTMLParser):
    """The tag structure of a page, tel: link targets aside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.events: list[tuple[str, str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kept = tuple((k, v) for k, v in attrs if not (k == "href" and (v or "").startswith("tel:")))
        self.events.append(("start", tag, kept))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag, ()))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data, ()))


def _tags(page: str) -> list[tuple[str, str, tuple[tuple[str, str | None], ...]]]:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser.events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages())
def test_only_the_numbers_change(page: tuple[str, str, list[_Piece]]) -> None:
    country, nsn, parts = page
    numbers, tracking = PROPERTY_POOLS[country]
    target = phonenumbers.parse(tracking)
    target_nsn = phonenumbers.national_significant_number(target)
    original = "".join(p.before + (p.number.text if p.number else "") + p.after for p in parts)

    def rewritten(part: _Piece) -> str:
        if part.number is None or part.where == "fixed":
            number = part.number.text if part.number else ""
        elif part.where == "link":
            number = tracking
        else:
            number = part.number.poured(target_nsn)
        return part.before + number + part.after

    expected = "".join(rewritten(p) for p in parts)
    rewriter = Rewriter(country, numbers)
    out = rewriter.rewrite_html(original, tracking)
    assert out == expected
    assert _tags(out) == _tags(original)
    same = phonenumbers.format_number(
        phonenumbers.parse(nsn, country), phonenumbers.PhoneNumberFormat.E164
    )
    assert rewriter.rewrite_html(original, same) == original


# ---- the command ---------------------------------------------------------------


def _run(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout_bytes, result.output


def test_cli_rewrites_a_page_byte_for_byte(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    raw = b'<p>\xff Call <a href="tel:01011231234">0101 123 1234</a> \xc3\xa9</p>\n'
    page.write_bytes(raw)
    pool = str(EXAMPLES / "pools" / "geographic-city.response.json")
    code, out, text = _run("rewrite", pool, str(page), "--number", "+441174090162")
    assert code == 0, text
    assert out == raw.replace(b"tel:01011231234", b"tel:+441174090162").replace(
        b"0101 123 1234", b"0117 409 0162"
    )


def test_cli_reads_stdin_and_plain_text() -> None:
    pool = str(EXAMPLES / "pools" / "geographic-city.response.json")
    code, out, _ = _run(
        "rewrite", pool, "-", "--number", "+441174090162", "--text", stdin=b"<b>01011231234</b>"
    )
    assert code == 0
    assert out == b"<b>01174090162</b>"


def test_cli_picks_a_pool_by_name(tmp_path: Path) -> None:
    first = load_example("geographic-city.response")
    second = load_example("tollfree.response")
    second["replacement_configuration"]["numbers_to_replace"] = ["0800 088 5600"]
    pools = tmp_path / "pools.json"
    pools.write_text(json.dumps([first, second]))
    page = tmp_path / "page.html"
    page.write_text("0800 088 5600 / 0101 123 1234")
    code, _, text = _run("rewrite", str(pools), str(page), "--number", "+448000885644")
    assert code == 2
    assert "pick one with --pool" in text
    assert "ABC Company 126" in text
    code, out, _ = _run(
        "rewrite", str(pools), str(page), "--number", "+448000885644", "--pool", "abc company 126"
    )
    assert code == 0
    assert out == b"0800 088 5644 / 0101 123 1234"
    code, _, text = _run("rewrite", str(pools), str(page), "--number", "+4480", "--pool", "nope")
    assert code == 2
    assert "no pool named 'nope'" in text


def test_cli_rejects_a_tracking_number_that_is_no_number(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("x")
    pool = str(EXAMPLES / "pools" / "geographic-city.response.json")
    code, _, text = _run("rewrite", pool, str(page), "--number", "12")
    assert code == 2
    assert "'12' is not a phone number" in text
