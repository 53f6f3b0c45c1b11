"""End to end: a visit takes a number, and the page shows it in the site's own style."""

from __future__ import annotations

from dni_engine import Engine, NumberPool
from tests.conftest import load_example

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
PAGE = (
    "<html><head><script>var phone='0101 123 1234';</script></head><body>"
    '<p>Call us on 0101 123 1234 or <a href="tel:01011231234">tap to call</a>.</p>'
    "<p data-dni-noswap>Head office: 0101 123 1234</p></body></html>"
)


def engine() -> Engine:
    pool = NumberPool.model_validate(load_example("geographic-city.response"))
    return Engine([pool], clock=lambda: 1_000.0)


def test_a_matching_visit_sees_its_tracking_number_in_the_site_format() -> None:
    dni = engine()
    decision = dni.visit("v1", url="https://shop.example/?gclid=abc", user_agent=BROWSER)
    assert decision.outcome == "new"
    assert decision.number == "+441174090162"
    page = dni.rewrite(PAGE, decision)
    assert "Call us on 0117 409 0162" in page
    assert 'href="tel:+441174090162"' in page
    assert "var phone='0101 123 1234'" in page  # scripts are never touched
    assert "Head office: 0101 123 1234" in page  # nor what the site marked noswap
    assert (
        page.replace("0117 409 0162", "0101 123 1234", 1).replace(
            "tel:+441174090162", "tel:01011231234"
        )
        == PAGE
    )


def test_no_number_means_the_page_object_comes_back_unchanged() -> None:
    dni = engine()
    for decision in (
        dni.visit("v2", url="https://shop.example/", user_agent=BROWSER),  # no gclid
        dni.visit("v3", url="https://shop.example/?gclid=x", user_agent="Googlebot/2.1"),
    ):
        assert decision.number is None
        assert dni.rewrite(PAGE, decision) is PAGE
        assert dni.rewrite_text("Call 0101 123 1234", decision) == "Call 0101 123 1234"


def test_plain_text_is_rewritten_too() -> None:
    dni = engine()
    decision = dni.visit("v4", url="https://shop.example/?gclid=abc", user_agent=BROWSER)
    assert dni.rewrite_text("Call 0101-123-1234 today", decision) == "Call 0117-409-0162 today"
