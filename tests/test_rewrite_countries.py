"""Every region phonenumbers supports, each number written in each of its forms.

For every region and number type with an example number, a pool lists the
example; the page shows it in phonenumbers' national, international, E.164 and
RFC 3966 forms (in text and as a ``tel:`` target). Each must be found, and be
rewritten to the tracking number (another number of the same type) in the same
form: phonenumbers' own format of the tracking number, since the page wrote the
example in phonenumbers' format.
"""

from __future__ import annotations

import functools

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from dni_engine.rewrite import Rewriter

TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE)
FORMS = {
    "national": PhoneNumberFormat.NATIONAL,
    "international": PhoneNumberFormat.INTERNATIONAL,
    "e164": PhoneNumberFormat.E164,
    "rfc3966": PhoneNumberFormat.RFC3966,
}


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _tracking_for(example: phonenumbers.PhoneNumber, region: str) -> phonenumbers.PhoneNumber:
    """Another valid number of the example's region and type: a changed last digit."""
    nsn = phonenumbers.national_significant_number(example)
    kind = phonenumbers.number_type(example)
    for position in (1, 2, 3):
        for digit in "1234567890":
            if nsn[-position] == digit:
                continue
            other = nsn[:-position] + digit + nsn[len(nsn) - position + 1 :]
            number = phonenumbers.parse(f"+{example.country_code}{other}")
            if (
                phonenumbers.is_valid_number(number)
                and phonenumbers.region_code_for_number(number) == region
                and phonenumbers.number_type(number) == kind
            ):
                return number
    raise LookupError(f"no other number like {_e164(example)}")


@functools.cache
def _cases() -> list[tuple[str, phonenumbers.PhoneNumber, phonenumbers.PhoneNumber]]:
    cases = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        seen = set()
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None or _e164(example) in seen:
                continue
            if phonenumbers.region_code_for_number(example) != region:
                continue
            seen.add(_e164(example))
            try:
                tracking = _tracking_for(example, region)
            except LookupError:
                continue
            cases.append((region, example, tracking))
    return cases


def _written(number: phonenumbers.PhoneNumber, form: str) -> str:
    return phonenumbers.format_number(number, FORMS[form])


@functools.cache
def _listing(region: str) -> Rewriter:
    """One rewriter per region, listing every example number of the region."""
    return Rewriter(region, [_e164(example) for r, example, _ in _cases() if r == region])


@functools.cache
def _everything(region: str) -> Rewriter:
    return Rewriter(region, replace_all=True)


def test_every_region_is_covered() -> None:
    regions = {region for region, _, _ in _cases()}
    assert len(regions) >= len(phonenumbers.SUPPORTED_REGIONS) - 5
    assert len(_cases()) >= 500


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_listed_number_is_found_and_written_in_its_form(form: str) -> None:
    misses = []
    for region, example, tracking in _cases():
        rewriter = _listing(region)
        written = _written(example, form)
        expected = _written(tracking, form)
        page = f'<p>Call {written} today</p><a href="tel:{_e164(example)}">{written}</a>'
        wanted = f'<p>Call {expected} today</p><a href="tel:{_e164(tracking)}">{expected}</a>'
        out = rewriter.rewrite_html(page, _e164(tracking))
        if out != wanted:
            misses.append((region, written, out))
    assert not misses, f"{len(misses)} misses, e.g. {misses[:5]}"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_listed_tel_target_is_found_in_its_form(form: str) -> None:
    misses = []
    for region, example, tracking in _cases():
        rewriter = _listing(region)
        target = _written(example, form).removeprefix("tel:")
        page = f'<a href="tel:{target}">x</a>'
        if rewriter.rewrite_html(page, _e164(tracking)) != f'<a href="tel:{_e164(tracking)}">x</a>':
            misses.append((region, target))
    assert not misses, f"{len(misses)} misses, e.g. {misses[:5]}"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_replace_all_finds_every_region_in_its_form(form: str) -> None:
    misses = []
    for region, example, _ in _cases():
        written = _written(example, form)
        found = _everything(region).find_text(f"Call {written} today")
        if [f.number for f in found] != [_e164(example)]:
            misses.append((region, written, [f.text for f in found]))
    assert not misses, f"{len(misses)} misses, e.g. {misses[:8]}"


@pytest.mark.parametrize("form", sorted(FORMS))
def test_replace_all_writes_every_region_in_its_form(form: str) -> None:
    misses = []
    for region, example, tracking in _cases():
        written = _written(example, form)
        expected = _written(tracking, form)
        page = f'<p>Call {written} today</p><a href="tel:{_e164(example)}">{written}</a>'
        wanted = f'<p>Call {expected} today</p><a href="tel:{_e164(tracking)}">{expected}</a>'
        out = _everything(region).rewrite_html(page, _e164(tracking))
        if out != wanted:
            misses.append((region, written, out))
    assert not misses, f"{len(misses)} misses, e.g. {misses[:5]}"
