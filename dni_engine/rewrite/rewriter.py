"""The :class:`Rewriter` of a pool, and one per pool object."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from dni_engine.phone import parse_number
from dni_engine.rewrite.anynumber import AllFinder
from dni_engine.rewrite.listed import Listed, ListedFinder
from dni_engine.rewrite.numbers import national_prefix, target_of
from dni_engine.rewrite.stream import ByteRewriteStream, RewriteStream, _whole_page
from dni_engine.schema import AnyPool

__all__ = ["NumberOnPage", "Rewriter", "compile_rewriter", "rewrite_html", "rewrite_text"]

_log = logging.getLogger("dni_engine.rewrite")


@dataclass(frozen=True, slots=True)
class NumberOnPage:
    """A number :class:`Rewriter` would swap: ``text[start:end]`` is the number as the page
    wrote it, ``number`` the same in E.164; ``link`` is true in a ``tel:``/``callto:`` target."""

    start: int
    end: int
    text: str
    number: str
    link: bool


class Rewriter:
    """Swaps one pool's numbers on pages for a tracking number. Build it once per pool
    (:func:`compile_rewriter` caches it) and call it for every page; it is immutable
    and safe to share between threads.

    ``country`` is the pool's country (ISO 3166 alpha-2, or ``None`` when unknown:
    then only entries written with ``+`` are found and ``replace_all`` finds
    nothing). ``numbers_to_replace`` entries are read as numbers of that country,
    vanity letters allowed; entries that are no phone number there are listed in
    :attr:`ignored` and otherwise skipped. ``replace_all`` swaps every valid number
    of the country instead.
    """

    __slots__ = ("_cc", "_finder", "country", "ignored", "numbers", "replace_all")

    def __init__(
        self,
        country: str | None,
        numbers_to_replace: Sequence[str] = (),
        *,
        replace_all: bool = False,
    ) -> None:
        country = country.strip().upper() if country else None
        self.country = country
        self.replace_all = replace_all
        metadata = PhoneMetadata.metadata_for_region(country, None) if country else None
        self._cc: int | None = metadata.country_code if metadata is not None else None
        self._finder: ListedFinder | AllFinder | None = None
        listed: list[Listed] = []
        ignored: list[str] = []
        numbers: list[str] = []
        if replace_all:
            if metadata is not None and country is not None:
                self._finder = AllFinder(country)
        else:
            for entry in numbers_to_replace:
                try:
                    parsed = parse_number(entry, country)
                except ValueError:
                    parsed = None
                if parsed is None or not phonenumbers.is_possible_number(parsed):
                    ignored.append(entry)
                    continue
                cc = parsed.country_code or 0
                nsn = phonenumbers.national_significant_number(parsed)
                prefix = national_prefix(cc)
                listed.append(Listed(cc, nsn, prefix.digits, prefix.needed(nsn)))
                numbers.append(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))
            if listed:
                self._finder = ListedFinder(listed)
        #: The ``numbers_to_replace`` entries in E.164, in the pool's order.
        self.numbers: tuple[str, ...] = tuple(numbers)
        #: ``numbers_to_replace`` entries that are not phone numbers of the pool's country.
        self.ignored: tuple[str, ...] = tuple(ignored)

    @classmethod
    def for_pool(cls, pool: AnyPool) -> Rewriter:
        """The rewriter of ``pool`` (a request or a response); see :func:`compile_rewriter`."""
        config = pool.replacement_configuration
        return cls(
            pool.country,
            config.numbers_to_replace or (),
            replace_all=config.replace_all_numbers,
        )

    def __repr__(self) -> str:
        what = "all numbers" if self.replace_all else ", ".join(self.numbers) or "nothing"
        return f"Rewriter({self.country or 'unknown country'}: {what})"

    def rewrite_html(self, html: str, tracking_number: str | None) -> str:
        """``html`` with this pool's numbers swapped for ``tracking_number``.

        Numbers in text keep their written form; ``tel:``/``callto:`` link targets
        get E.164. Nothing else changes, byte for byte. Without a tracking number,
        or when nothing is swapped, ``html`` itself is returned. Never raises: on
        unexpected input the page comes back unchanged.
        """
        return self._rewrite(html, tracking_number, html=True)

    def rewrite_text(self, text: str, tracking_number: str | None) -> str:
        """``text`` (plain text, not HTML) with this pool's numbers swapped for
        ``tracking_number``, each keeping its written form. Same guarantees as
        :meth:`rewrite_html`."""
        return self._rewrite(text, tracking_number, html=False)

    def stream(self, tracking_number: str | None, *, html: bool = True) -> RewriteStream:
        """A :class:`~dni_engine.rewrite.stream.RewriteStream` rewriting one page fed
        in pieces of ``str``: the concatenation of what its ``feed`` and ``close``
        return is :meth:`rewrite_html` (``rewrite_text`` when not ``html``) of the
        whole page. It holds back only what the next characters may still change
        (an open tag, a possible number, a bounded tail)."""
        target = None
        if tracking_number and self._finder is not None:
            try:
                target = target_of(tracking_number, self.country)
            except Exception:  # as rewrite_html: the page passes through
                _log.warning("pages passed through: bad tracking number", exc_info=True)
        return RewriteStream(self._finder, target, self._cc, html=html)

    def stream_bytes(
        self, tracking_number: str | None, *, encoding: str = "utf-8", html: bool = True
    ) -> ByteRewriteStream:
        """:meth:`stream` for a page fed as bytes of ``encoding`` (decoded
        incrementally; bytes invalid in it pass through as they are); what is given
        out is bytes of the same encoding."""
        return ByteRewriteStream(self.stream(tracking_number, html=html), encoding)

    def find_html(self, html: str) -> list[NumberOnPage]:
        """The numbers :meth:`rewrite_html` would swap in ``html``, in page order."""
        return self._find(html, html=True)

    def find_text(self, text: str) -> list[NumberOnPage]:
        """The numbers :meth:`rewrite_text` would swap in ``text``, in order."""
        return self._find(text, html=False)

    def _find(self, text: str, *, html: bool) -> list[NumberOnPage]:
        if self._finder is None or not isinstance(text, str):
            return []
        return [
            NumberOnPage(
                start=f.start,
                end=f.end,
                text=text[f.start : f.end],
                number=f"+{f.cc}{f.nsn}",
                link=f.link,
            )
            for f in self._finder.find(text, html)
        ]

    def _rewrite(self, text: str, tracking_number: str | None, *, html: bool) -> str:
        if not tracking_number or self._finder is None or not isinstance(text, str) or not text:
            return text
        try:
            target = target_of(tracking_number, self.country)
        except Exception:  # the page must be served whatever it holds
            _log.warning("page left unchanged: rewriting it failed", exc_info=True)
            return text
        if target is None:
            return text
        return _whole_page(self._finder, text, target, self._cc, html=html)


# ---- one rewriter per pool -----------------------------------------------------

_rewriters: dict[int, tuple[weakref.ref[AnyPool], Rewriter]] = {}
_rewriters_lock = threading.Lock()


def compile_rewriter(pool: AnyPool) -> Rewriter:
    """The :class:`Rewriter` of ``pool``, built on first use and cached while the pool
    object lives (pools are immutable, so the cache never goes stale)."""
    key = id(pool)
    cached = _rewriters.get(key)
    if cached is not None and cached[0]() is pool:
        return cached[1]
    rewriter = Rewriter.for_pool(pool)

    def forget(_: object, key: int = key) -> None:
        with _rewriters_lock:
            entry = _rewriters.get(key)
            if entry is not None and entry[0]() is None:
                del _rewriters[key]

    with _rewriters_lock:
        _rewriters[key] = (weakref.ref(pool, forget), rewriter)
    return rewriter


def rewrite_html(pool: AnyPool, html: str, tracking_number: str | None) -> str:
    """``compile_rewriter(pool).rewrite_html(html, tracking_number)``."""
    return compile_rewriter(pool).rewrite_html(html, tracking_number)


def rewrite_text(pool: AnyPool, text: str, tracking_number: str | None) -> str:
    """``compile_rewriter(pool).rewrite_text(text, tracking_number)``."""
    return compile_rewriter(pool).rewrite_text(text, tracking_number)
