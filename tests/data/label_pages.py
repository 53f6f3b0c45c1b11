"""Writes ``page_numbers.json``: the labelled numbers of the saved real pages.

Run from the project root, with ``../shared/corpora/pages/`` present::

    python tests/data/label_pages.py

Candidates come from a deliberately over-generous extractor (every run of six
or more digits with separators between them, in text or a ``tel:`` target, as
the rewriter reads HTML) and from ``phonenumbers.PhoneNumberMatcher`` for many
regions. Each candidate is labelled: the phone numbers by hand (``PHONES``
below, each checked against the page: who the number belongs to, and its
country), everything else by rule (``_kind``), every rule's output reviewed by
hand. A candidate no rule explains stops the script: it must be labelled here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dni_engine.rewrite.markup import placed
from tests.page_corpus import LABELS, PAGES, matcher_numbers, read_page

# The country of each page's site (domain, language, imprint); English-language
# sites without a country of their own count as American.
SITE_COUNTRY = {
    "austria.info.radfahren.html": "AT",
    "creativecommons.at.faircoin.html": "AT",
    "demokratiewebstatt.at.luft.html": "AT",
    "futurezone.at.lyft.html": "AT",
    "landwirt.com.sensortechnik.html": "AT",
    "love-hina.ch.0409.html": "CH",
    "simplyscience.ch.erdoel.html": "CH",
    "franceculture.fr.idees.html": "FR",
    "lanouvellerepublique.fr.martin.html": "FR",
    "laviedesidees.fr.evaluation.html": "FR",
    "psl.eu.luniversite.html": "FR",
    "sauvonsluniversite.com.spip.html": "FR",
    "soundofscience.fr.1927.html": "FR",
    "theguardian.com.academics.html": "GB",
    "nationalgeographic.co.uk.goats.html": "GB",
    "luxuriousmagazine.com.polo.html": "GB",
    "reuters.com.parasite.html": "GB",
    "scmp.com.playbook.html": "HK",
    "vancouversun.com.microsoft.html": "CA",
    "lemire.me.json.html": "CA",
    "dw.com.colonial.html": "DE",
    "dw.com.uncork.html": "DE",
    "toralin.de.schmierfett.html": "DE",
}
GERMAN = re.compile(r"""<html[^>]*lang=["']?de""", re.IGNORECASE)

# Every phone number on the pages, checked by hand: (page, text as written) ->
# (country, E.164, note). Each is labelled at every place it is written.
PHONES = {
    ("austria.info.radfahren.html", "0080040020000"): (
        "001",
        "+80040020000",
        "tel: target; the Austrian tourist board's international freephone (UIFN +800)",
    ),
    ("austria.info.radfahren.html", "00800 400 200 00"): (
        "001",
        "+80040020000",
        "international freephone (UIFN) dialled with 00: no country's pool may swap it",
    ),
    ("buchperlen.wordpress.com.html", "0 93 82 / 84 73 99"): (
        "DE",
        "+499382847399",
        "Volkach (09382), written in pairs as older German style does",
    ),
    ("caktusgroup.com.django.html", "919-951-0052"): ("US", "+19199510052", "phone (T)"),
    ("caktusgroup.com.django.html", "919-928-5516"): ("US", "+19199285516", "fax (F)"),
    ("changelog.blog.zwischenbilanz.html", "+49 (0) 89-98103987"): ("DE", "+498998103987", ""),
    ("changelog.blog.zwischenbilanz.html", "+49 (0) 160-8472068"): (
        "DE",
        "+491608472068",
        "German mobile",
    ),
    ("creativecommons.org.html", "1-415-429-6753"): (
        "US",
        "+14154296753",
        "in a tel: target and its text",
    ),
    ("ebrosia.de.zinfandel.html", "+493420230900"): ("DE", "+493420230900", "tel: target"),
    ("ebrosia.de.zinfandel.html", "034202-3090-0"): (
        "DE",
        "+493420230900",
        "the trailing -0 is the switchboard's extension, part of the number dialled",
    ),
    ("landwirt.com.sensortechnik.html", "0043(0) 316/82 16 36"): ("AT", "+43316821636", "Graz"),
    ("landwirt.com.sensortechnik.html", "0043(0) 316/83 56 12"): (
        "AT",
        "+43316835612",
        "Graz, fax",
    ),
    ("toralin.de.schmierfett.html", "0031 (0) 614392096"): (
        "NL",
        "+31614392096",
        "Dutch mobile on a German-language site",
    ),
    ("toralin.de.schmierfett.html", "+31 (0) 614392096"): ("NL", "+31614392096", ""),
    ("viehbacher.com.steuerrecht.html", "+49 (0) 99 73 84 59 \u2013 0"): (
        "DE",
        "+49997384590",
        "' \u2013 0' is the switchboard's extension, part of the number dialled",
    ),
    ("viehbacher.com.steuerrecht.html", "+49 (0) 89 20 80 27 250"): (
        "DE",
        "+4989208027250",
        "Munich, ending in a direct-dial extension (250)",
    ),
}

# The over-generous extractor: six or more digits, separators between them.
_SEP = r"(?:[ \t.\-/()\u00a0\u2010-\u2015]|&nbsp;|&#160;|\r?\n)"
_RUN = re.compile(r"(?<![0-9])\+?\(?[0-9](?:" + _SEP + r"{0,4}[0-9])*")
_REGIONS = ("DE", "AT", "CH", "GB", "US", "CA", "FR", "NL", "IT", "ES", "BE", "PL", "IN", "HK")

_D = r"(?:0?[1-9]|[12]\d|3[01])"
_M = r"(?:0?[1-9]|1[0-2])"
_Y = r"(?:1[5-9]\d\d|20\d\d)"
# Look-alike kinds, by rule: (kind, pattern on the candidate, pattern before it,
# pattern after it). The first that fits names the candidate.
_KINDS = (
    ("date-time", rf"\(?{_D}\.{_M}\.{_Y}(?:\s|&nbsp;|\s-\s)+\d\d?", "", r":\d\d"),
    ("date-time", rf"{_Y} (?:/ )?\d\d", "", r":\d\d"),
    ("date", rf"\(?{_D}\.\s?{_M}\.\s?(?:{_Y}|\d\d)", "", ""),
    ("date", rf"\(?{_D}\.{_M}\.{_Y}(?: \u2013 \d+)?", "", ""),
    ("date", rf"{_D}\.-{_D}\.{_M}\.{_Y}", "", ""),
    ("date", rf"{_D}/{_M}/{_Y}", "", ""),
    ("date", rf"\(?{_Y}-{_M}-{_D}", "", ""),
    ("date", rf"{_D} {_Y}", r"(?:Mai|Juni) $", ""),
    ("date", rf"{_Y}/{_M}(?:/{_D})?", r"(?:/|\.com)$", r"/"),
    ("date", rf"{_Y}{_M}{_D}", r">$", r" Finally"),
    ("month-year", rf"{_M}/{_Y}", "", ""),
    ("month-year", rf"{_Y}-{_M}", r"/news/$", ""),
    ("archive-count", rf"{_Y} (?:&nbsp;)?\(\d+", "", r"\)"),
    ("archive-count", rf"{_Y} \(\d+", "", r"\)"),
    ("page-range", r"\d+\u2013\d+", r"(?:\): |: |pp\.&#160;)$", ""),
    ("eu-directive", r"\d{4}/\d+", r"Richtlinie $", r"/E"),
    ("year-range", rf"\(?{_Y}\s?[-\u2013/]\s?(?:{_Y}|\d\d)", "", ""),
    ("year-range", rf"{_Y} \u2013 \d\d", "", r"th"),
    ("page-range", r"\d+\u2013\d+", "", ""),
    ("page-range", r"\d+-\d+ \(\d{4}", "", r"\)"),
    ("amount", r"\d{1,3}(?:\.\d{3})+", "", ""),
    ("amount", r"\d{1,3}(?: \d{3})+", "", r" Euro"),
    ("amount", r"\d{1,3}\.\d{3} \(\d+", "", r" NEU"),
    ("amount", r"\d+", r"(?:HUF|EUR) $", r",--"),
    ("amount", r"\d+-\d+", r"average of $", r" metric"),
    ("isbn", r"(?:978-?)?[\d-]{9,16}", r"ISBN(?:-1[03])?:? $", ""),
    (
        "issn",
        r"\d{4}-\d{3}[\dX]",
        r"(?:ISSN(?:&nbsp;)?:(?:&nbsp;)?|issn/\d{4}-\d{4}\">|\"issn\">)$",
        "",
    ),
    ("doi", r"10\.\d{4}(?:/[\d.-]+)?", r"(?:doi: |DOI: |>)$", ""),
    ("doi", r"[\d.-]+", r"(?:BHI\.|tvcg\.|/d|pnas\.)$", ""),
    ("pubmed-id", r"\d{7,8}", r"(?:pubmed|pmc/articles/PMC)/?\d+\">$", ""),
    ("arxiv-id", r"\d{4}\.\d{5}", r"arxiv\.org/abs/[\d.]+\">$", ""),
    ("wiki-revision", r"\d+", r"oldid=$", ""),
    ("instagram-id", r"\d+", r"(?:post |_)$", r"(?:_|</span>)"),
    ("url-id", r"\d+", r"(?:answer=|KORE|/-|content/|heise\.de/-)$", ""),
    ("sku", r"\d+", r"itemprop=\"sku\">$", ""),
    ("product-code", r"\d+/\d+", r"HU $", ""),
    ("product-code", r"\d+", r">B $", ""),
    ("imprint-id", r"\d+", r"footer-imprint__text\">\s*$", ""),
    ("case-number", r"\d+/\d+", r"Drucks\. $", ""),
    ("case-number", r"\(?\d+\.\d+\.\d{4} \u2013 \d+", "", r" o "),
    ("case-number", r"\d{2}/\d{3}/\d+", r"btd/$", r"\.pdf"),
    ("decree-number", r"\d{4}-\d{4}", r"n\u00b0 ?$", ""),
    ("eu-directive", r"\d{4}/\d+", r"Richtlinie $", r"/E"),
    ("issue-number", r"\d+/\d{4}", r"SPIEGEL(?:&nbsp;| )$", ""),
    ("version", r"\d+(?:\.\d+)+", r"rev&nbsp;$", ""),
    ("object-name", r"\d{6}", r"known as $", ""),
    ("citation", r"\d+-\d+ \(\d{4}", r"</strong>, $", r"\)"),
    ("model-year", r"\d{4}\. \d+", r"Bj $", r"kmh"),
    ("isbn", r"978-[\d-]+", "", r"_13"),
    ("isbn", r"978-[\d-]+", r"BookSources/[\d-]+\"><bdi>$", ""),
    ("address", r"\d+ \(\d{4}", r"Meander $", r"\)"),
)
_KIND_RULES = [
    (kind, re.compile(body + r"\Z"), re.compile(before), re.compile(after))
    for kind, body, before, after in _KINDS
]


def _kind(html: str, start: int, end: int) -> str | None:
    text = html[start:end]
    before = html[max(0, start - 40) : start]
    for kind, body, lead, tail in _KIND_RULES:
        if not body.match(text):
            continue
        if lead.pattern and not lead.search(before):
            continue
        if tail.pattern and not tail.match(html, end):
            continue
        return kind
    return None


def _candidates(html: str) -> list[tuple[int, int]]:
    """The over-generous extractor's runs and the matcher's numbers, in text."""
    spans = {
        (m.start(), m.end())
        for m in _RUN.finditer(html)
        if sum(ch.isdigit() for ch in m.group()) >= 6
    }
    kept = {(s, e) for s, e, _ in placed(html, sorted(spans))}
    for region in _REGIONS:
        for start, end, _ in matcher_numbers(html, region):
            if not any(s < end and start < e for s, e in kept):
                kept.add((start, end))
    return sorted(kept)


def main() -> int:
    # DNI_LABEL_CACHE=FILE keeps the candidates between runs while labels are reviewed.
    cache_file = os.environ.get("DNI_LABEL_CACHE")
    cache = (
        json.loads(Path(cache_file).read_text()) if cache_file and Path(cache_file).exists() else {}
    )
    pages = {}
    unlabelled = []
    used = set()
    for path in sorted(PAGES.glob("*.html")):
        html = read_page(path)
        name = path.name
        country = SITE_COUNTRY.get(name) or ("DE" if GERMAN.search(html) else "US")
        numbers = []
        if name not in cache:
            cache[name] = _candidates(html)
        for start, end in cache[name]:
            text = html[start:end]
            phone = PHONES.get((name, text))
            if phone is not None:
                used.add((name, text))
                region, e164, note = phone
                entry = {"start": start, "end": end, "text": text, "phone": True}
                entry |= {"country": region, "e164": e164, "kind": "phone"}
                if note:
                    entry["note"] = note
                numbers.append(entry)
                continue
            kind = _kind(html, start, end)
            if kind is None:
                unlabelled.append(f"{name}: {html[max(0, start - 40) : end + 20]!r}")
                continue
            numbers.append({"start": start, "end": end, "text": text, "phone": False, "kind": kind})
        pages[name] = {"country": country, "numbers": numbers}
    if cache_file:
        Path(cache_file).write_text(json.dumps(cache))
    missing = set(PHONES) - used
    if unlabelled or missing:
        print("\n".join(unlabelled + [f"not found: {m}" for m in sorted(missing)]))
        return 1
    document = {
        "about": (
            "Numbers written on the saved pages of ../shared/corpora/pages/ (text and tel: "
            "targets), labelled: phone numbers with their country (ISO region; 001 is "
            "international freephone) and E.164, look-alikes with what they are. Offsets are "
            "into the page decoded as UTF-8, else Windows-1252. Made by tests/data/label_pages.py."
        ),
        "pages": pages,
    }
    LABELS.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    phones = sum(n["phone"] for p in pages.values() for n in p["numbers"])
    looks = sum(not n["phone"] for p in pages.values() for n in p["numbers"])
    print(f"{len(pages)} pages, {phones} phone numbers, {looks} look-alikes")
    return 0


if __name__ == "__main__":
    phonenumbers.PhoneMetadata.metadata_for_region("DE")
    sys.exit(main())
