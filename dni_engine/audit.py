"""Auditing pages: every phone number they show, which pools swap it, and which none does.

A site's pools swap the numbers they name (their ``numbers_to_replace``, or with
``replace_all_numbers`` every valid number of their country) for a visitor's
tracking number. A page is shown to visitors of every pool, so a number on it is
tracked for a pool's visitors exactly when that pool swaps it; a number no pool
swaps is a place where calls go untracked. :class:`Auditor` finds both::

    auditor = Auditor(pools)                      # once per site
    page = auditor.audit("contact.html", html)    # per page: a PageAudit
    for number in page.numbers:
        number.text, number.number, number.untracked, number.swaps

Numbers are read as the rewriter reads HTML (:meth:`Rewriter.find_html
<dni_engine.rewrite.Rewriter.find_html>`): in text and in ``tel:``/``callto:``
link targets, never in scripts, styles, comments, other attributes or
``data-dni-noswap`` elements, where no pool would swap them either. The numbers
no pool swaps are found by an any-number finder for each country the pools use
(``Rewriter(country, replace_all=True)``): a number found by it that no active
pool swaps is *untracked*. A pool whose status is not active leases no numbers,
so it swaps nothing.

For each pool that swaps a number the audit shows how it would be written: the
number rewritten on its own (a link target inside a link with the scheme the page
used) with the pool's first tracking number as a sample. A pool request has
no numbers yet, so it has no sample.

:func:`report_json` gives the whole audit as JSON-ready data (its shape is
versioned by :data:`FORMAT_VERSION` and documented there); :func:`page_lines`
and :func:`summary_line` the human-readable report.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from phonenumbers import PhoneMetadata

from dni_engine.rewrite import NumberOnPage, Rewriter
from dni_engine.schema import AnyPool, NumberPool

__all__ = [
    "FORMAT_VERSION",
    "AuditedPool",
    "Auditor",
    "Occurrence",
    "PageAudit",
    "Swap",
    "known_country",
    "page_lines",
    "report_json",
    "summary",
    "summary_line",
]

FORMAT_VERSION = 1
"""Version of :func:`report_json`'s shape; it changes only when a field changes meaning
or goes away (new fields may be added within a version).

The shape (``--json`` of ``dni-engine audit``)::

    {
      "version": 1,
      "pools": [                      # in the order of the pool files
        {"index": 0, "key": "41001", "name": "Google Ads", "country": "GB",
         "active": true, "replace_all": false,
         "numbers_to_replace": ["+441174960000"],   # E.164; [] with replace_all
         "ignored": [],               # entries that are not phone numbers
         "sample": "+441174960101"}   # the tracking number samples use, or null
      ],
      "countries": ["GB"],            # searched for numbers no pool swaps
      "pages": [
        {"page": "examples/pages/contact.html",       # as given, "-" for stdin
         "error": null,               # why the page could not be audited
         "numbers": [
           {"line": 9, "column": 14,  # 1-based; columns count characters
            "start": 230, "end": 243, # character offsets in the page
            "text": "0117 496 0000",  # as written
            "number": "+441174960000",
            "link": false,            # in a tel:/callto: link target
            "form": "national",       # national | international | e164 | link
            "status": "swapped",      # swapped | untracked
            "swapped_by": [{"pool": 0, "written_as": "0117 496 0101"}],
            "tracking_number_of": []} # pools that have this number as a tracking number
         ]}
      ],
      "summary": {"pages": 1, "numbers": 5, "swapped": 4, "untracked": 1,
                  "failed": 0}
    }

Pages read as UTF-8 keep bytes that are not UTF-8 as one character each for
``start``, ``end`` and ``column``; in strings they appear as U+FFFD.
"""

# The scheme before a link target, as the page wrote it ("tel:", "callto://", ...).
_SCHEME = re.compile(r"(?i:tel|callto):[^\"'<>=]{0,8}\Z")
_E164 = re.compile(r"\+[0-9]{4,15}")
_NBSP = re.compile(r"&(?:nbsp|#0*160|#[xX]0*[aA]0);")
# What a pool's finder depends on: country, numbers_to_replace, replace_all_numbers.
_Config = tuple[str | None, tuple[str, ...], bool]
# Most samples remembered (one per configuration, written form and sample number).
_MAX_SAMPLES = 100_000


def known_country(country: str) -> bool:
    """Whether ``country`` (ISO 3166 alpha-2, any case) has a numbering plan phonenumbers knows."""
    code = country.strip().upper()
    return len(code) == 2 and PhoneMetadata.metadata_for_region(code, None) is not None


@dataclass(frozen=True, slots=True)
class AuditedPool:
    """A pool as the audit reads it: what it swaps and the sample number it writes."""

    index: int
    key: str
    name: str
    country: str | None
    active: bool
    replace_all: bool
    numbers_to_replace: tuple[str, ...]
    ignored: tuple[str, ...]
    sample: str | None

    @property
    def label(self) -> str:
        """``name (key)``, or the name alone when it is the key (a request)."""
        return self.name if self.key == self.name else f"{self.name} ({self.key})"


@dataclass(frozen=True, slots=True)
class Swap:
    """One pool swapping a number: ``written_as`` is the number as that pool writes it with
    its sample tracking number (``None`` when the pool has no numbers yet)."""

    pool: int
    written_as: str | None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One phone number written on a page, and the pools that swap it."""

    start: int
    end: int
    line: int
    column: int
    text: str
    number: str
    link: bool
    form: str
    swaps: tuple[Swap, ...]
    tracking_number_of: tuple[int, ...]

    @property
    def untracked(self) -> bool:
        """Whether no active pool swaps it: calls to it are not tracked."""
        return not self.swaps


@dataclass(frozen=True, slots=True)
class PageAudit:
    """The numbers of one page, in page order; ``error`` says why a page could not be read."""

    page: str
    numbers: tuple[Occurrence, ...]
    error: str | None = None

    @property
    def swapped(self) -> int:
        """How many of its numbers some pool swaps."""
        return sum(1 for n in self.numbers if n.swaps)

    @property
    def untracked(self) -> int:
        """How many of its numbers no pool swaps."""
        return sum(1 for n in self.numbers if not n.swaps)


class Auditor:
    """Audits pages against one site's pools (see the module docstring).

    ``pools`` are the site's pools, in order; ``countries`` adds countries to
    search for numbers no pool swaps, beyond those of the pools (ISO codes;
    unknown ones are ignored, check them with :func:`known_country`). Pools of
    one configuration (country, ``numbers_to_replace``, ``replace_all_numbers``)
    share one finder, so a site of many pools costs one search per configuration.
    """

    def __init__(self, pools: Sequence[AnyPool], countries: Iterable[str] = ()) -> None:
        self._rewriters: dict[_Config, Rewriter] = {}
        self._config_of: list[_Config] = []
        audited: list[AuditedPool] = []
        tracking: dict[str, list[int]] = {}
        for index, pool in enumerate(pools):
            config = pool.replacement_configuration
            country = pool.country.strip().upper() if pool.country else None
            replace_all = bool(config.replace_all_numbers)
            entries = () if replace_all else tuple(config.numbers_to_replace or ())
            key = (country, entries, replace_all)
            rewriter = self._rewriters.get(key)
            if rewriter is None:
                rewriter = self._rewriters[key] = Rewriter(
                    country, entries, replace_all=replace_all
                )
            self._config_of.append(key)
            numbers = pool.e164_numbers if isinstance(pool, NumberPool) else ()
            for number in numbers:
                tracking.setdefault(number, []).append(index)
            audited.append(
                AuditedPool(
                    index=index,
                    key=pool.key,
                    name=pool.name,
                    country=country,
                    active=pool.is_active,
                    replace_all=replace_all,
                    numbers_to_replace=rewriter.numbers,
                    ignored=rewriter.ignored,
                    sample=numbers[0] if numbers else None,
                )
            )
        #: The pools, in the order given.
        self.pools: tuple[AuditedPool, ...] = tuple(audited)
        self._pools_of: dict[_Config, list[AuditedPool]] = {}
        for audited_pool, config_key in zip(audited, self._config_of, strict=True):
            self._pools_of.setdefault(config_key, []).append(audited_pool)
        searched = {p.country for p in audited if p.country} | {
            c.strip().upper() for c in countries if known_country(c)
        }
        #: The countries searched for numbers no pool swaps, sorted.
        self.countries: tuple[str, ...] = tuple(sorted(searched))
        for country in self.countries:
            self._rewriters.setdefault((country, (), True), Rewriter(country, replace_all=True))
        self._tracking = {number: tuple(indexes) for number, indexes in tracking.items()}
        self._samples: dict[tuple[int, str, str], str | None] = {}

    def audit(self, page: str, text: str) -> PageAudit:
        """The phone numbers on the HTML page ``text`` (named ``page`` in the report).

        Never raises for any text: if finding numbers fails, the audit of the
        page carries the error and no numbers.
        """
        try:
            return PageAudit(page, tuple(self._occurrences(text)))
        except Exception as exc:  # a finder failing must not end the whole audit
            return PageAudit(page, (), f"finding numbers failed: {type(exc).__name__}: {exc}")

    def _occurrences(self, text: str) -> list[Occurrence]:
        found: dict[_Config, list[NumberOnPage]] = {
            key: rewriter.find_html(text) for key, rewriter in self._rewriters.items()
        }
        # Every span any finder found, merged where they overlap: one number each.
        spans = sorted((f.start, f.end) for hits in found.values() for f in hits)
        clusters: list[list[int]] = []
        for start, end in spans:
            if clusters and start < clusters[-1][1]:
                clusters[-1][1] = max(clusters[-1][1], end)
            else:
                clusters.append([start, end])
        if not clusters:
            return []
        starts = [c[0] for c in clusters]
        # hits[i][key]: the find of configuration key in cluster i.
        hits: list[dict[_Config, NumberOnPage]] = [{} for _ in clusters]
        for key, numbers in found.items():
            for f in numbers:
                hits[bisect.bisect_right(starts, f.start) - 1].setdefault(key, f)
        lines = _LineIndex(text)
        occurrences = []
        for (start, end), by_config in zip(clusters, hits, strict=True):
            pool_hits = sorted(
                (
                    (pool, hit)
                    for config, hit in by_config.items()
                    for pool in self._pools_of.get(config, ())
                ),
                key=lambda pool_hit: pool_hit[0].index,
            )
            first = pool_hits[0][1] if pool_hits else next(iter(by_config.values()))
            link = first.link
            shown_start = start
            if not link and _opens_before(text, start, end):
                shown_start -= 1
            swaps = tuple(
                Swap(pool.index, self._written_as(pool, hit, text))
                for pool, hit in pool_hits
                if pool.active
            )
            line, column = lines.position(shown_start)
            occurrences.append(
                Occurrence(
                    start=shown_start,
                    end=end,
                    line=line,
                    column=column,
                    text=text[shown_start:end],
                    number=first.number,
                    link=link,
                    form="link" if link else _form(text[start:end]),
                    swaps=swaps,
                    tracking_number_of=self._tracking.get(first.number, ()),
                )
            )
        return occurrences

    def _written_as(self, pool: AuditedPool, hit: NumberOnPage, page: str) -> str | None:
        """``hit`` as ``pool`` writes it with its sample number, rewritten on its own."""
        if pool.sample is None:
            return None
        if hit.link:
            scheme = _SCHEME.search(page, max(0, hit.start - 16), hit.start)
            quote = "'" if '"' in hit.text else '"'
            prefix = f"<a href={quote}{scheme.group() if scheme else 'tel:'}"
            snippet, suffix = f"{prefix}{hit.text}{quote}>", f"{quote}>"
        else:
            shown = hit.start - 1 if _opens_before(page, hit.start, hit.end) else hit.start
            snippet, prefix, suffix = page[shown : hit.end], "", ""
        key = (pool.index, snippet, pool.sample)
        if key in self._samples:
            return self._samples[key]
        rewriter = self._rewriters[self._config_of[pool.index]]
        written: str | None = None
        if rewriter.find_html(snippet):  # found out of its context too
            out = rewriter.rewrite_html(snippet, pool.sample)
            if out.startswith(prefix) and out.endswith(suffix):
                written = out[len(prefix) : len(out) - len(suffix)]
        if len(self._samples) >= _MAX_SAMPLES:
            self._samples.clear()
        self._samples[key] = written
        return written


class _LineIndex:
    """Line and column (both from 1) of character offsets: lines end at ``\\n``."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


def _opens_before(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` closes a ``(`` written just before it: ``(0117) 496 ...``."""
    written = text[start:end]
    return start > 0 and text[start - 1] == "(" and written.count(")") > written.count("(")


def _form(written: str) -> str:
    """How a number in text is written: ``e164``, ``international`` or ``national``."""
    plain = _NBSP.sub(" ", written).strip()
    if _E164.fullmatch(plain):
        return "e164"
    if plain.startswith(("+", "00")):
        return "international"
    return "national"


# ---- reports -----------------------------------------------------------------------


def summary(pages: Sequence[PageAudit]) -> dict[str, int]:
    """Pages read, numbers found, swapped, untracked, and pages that failed."""
    return {
        "pages": len(pages),
        "numbers": sum(len(p.numbers) for p in pages),
        "swapped": sum(p.swapped for p in pages),
        "untracked": sum(p.untracked for p in pages),
        "failed": sum(1 for p in pages if p.error is not None),
    }


def _clean(text: str) -> str:
    """``text`` as valid Unicode: bytes kept by ``surrogateescape`` become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _number_json(n: Occurrence) -> dict[str, Any]:
    return {
        "line": n.line,
        "column": n.column,
        "start": n.start,
        "end": n.end,
        "text": _clean(n.text),
        "number": n.number,
        "link": n.link,
        "form": n.form,
        "status": "untracked" if n.untracked else "swapped",
        "swapped_by": [
            {"pool": s.pool, "written_as": None if s.written_as is None else _clean(s.written_as)}
            for s in n.swaps
        ],
        "tracking_number_of": list(n.tracking_number_of),
    }


def report_json(auditor: Auditor, pages: Sequence[PageAudit]) -> dict[str, Any]:
    """The whole audit as JSON-ready data, in the shape :data:`FORMAT_VERSION` documents."""
    return {
        "version": FORMAT_VERSION,
        "pools": [
            {
                "index": p.index,
                "key": p.key,
                "name": p.name,
                "country": p.country,
                "active": p.active,
                "replace_all": p.replace_all,
                "numbers_to_replace": list(p.numbers_to_replace),
                "ignored": list(p.ignored),
                "sample": p.sample,
            }
            for p in auditor.pools
        ],
        "countries": list(auditor.countries),
        "pages": [
            {
                "page": _clean(page.page),
                "error": page.error,
                "numbers": [_number_json(n) for n in page.numbers],
            }
            for page in pages
        ],
        "summary": summary(pages),
    }


def _shown(text: str) -> str:
    """``text`` on one line: control characters (a line break inside a number) escaped."""
    return "".join(
        ch if unicodedata.category(ch) != "Cc" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def page_lines(auditor: Auditor, page: PageAudit) -> list[str]:
    """The human-readable report of one page: a heading line, then its numbers.

    Each number gets its position, its text, E.164 and form, then one line per
    pool that swaps it (``pool -> as written with the pool's sample``), or
    ``UNTRACKED: no pool swaps it``.
    """
    name = "- (standard input)" if page.page == "-" else page.page
    if page.error is not None:
        return [f"{_shown(name)}: not audited: {page.error}"]
    head = f"{_shown(name)}: {_count(len(page.numbers), 'number')}"
    if page.numbers:
        head += f", {page.swapped} swapped, {page.untracked} untracked"
    lines = [head]
    for n in page.numbers:
        where = f"{n.line}:{n.column}"
        lines.append(f"  {where:<9} {_shown(n.text)}  ({n.number}, {n.form})")
        owners = [auditor.pools[i].label for i in n.tracking_number_of]
        if owners:
            lines.append(f"            a tracking number of {', '.join(owners)}")
        if not n.swaps:
            lines.append("            UNTRACKED: no pool swaps it")
        width = max((len(auditor.pools[s.pool].label) for s in n.swaps), default=0)
        for s in n.swaps:
            written = "(no tracking number yet)" if s.written_as is None else _shown(s.written_as)
            lines.append(f"            {auditor.pools[s.pool].label:<{width}}  -> {written}")
    return lines


def summary_line(pages: Sequence[PageAudit]) -> str:
    """The last line of the human-readable report: pages read and numbers found, swapped,
    untracked (and pages that could not be audited, if any)."""
    total = summary(pages)
    line = (
        f"{_count(total['pages'], 'page')} read: {_count(total['numbers'], 'number')} found, "
        f"{total['swapped']} swapped, {total['untracked']} untracked"
    )
    if total["failed"]:
        line += f"; {total['failed']} not audited"
    return line
