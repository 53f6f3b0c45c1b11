"""Showing a visitor's tracking number wherever a page shows the business's number.

A pool names the numbers to swap: the ``numbers_to_replace`` it lists, or, with
``replace_all_numbers``, every valid number of its country.
:func:`compile_rewriter` turns a pool once into a :class:`Rewriter`; its
``rewrite_html`` / ``rewrite_text`` then swap each such number on a page for the
tracking number, keeping the way the page wrote it::

    rewriter = compile_rewriter(pool)               # cached per pool object
    html = rewriter.rewrite_html(html, "+441174090163")

How numbers are found
    Listed numbers are compiled ahead of time into a few regular expressions (a
    trie of every written form: ``+CC``, ``00CC``, ``+CC (0)``, national trunk
    prefix, and for countries that write it so, no prefix at all), one per
    possible first character. A literal first character lets the regex engine
    skip through the page at ``str.find`` speed. Between any two digits up to
    three separators may stand (spaces, dots, dashes, slashes, parentheses,
    non-breaking spaces, and in HTML character references such as ``&nbsp;``
    and, in ``tel:`` targets, percent-encoded ones); from the fourth national digit
    on, a keypad letter may stand for its digit (``1-800-444-CARS``). A number
    touching another digit (or, when it ends in a letter, another letter) is
    part of something longer and is left alone.

    With ``replace_all_numbers`` a cheap scan finds runs of digits and separators;
    each run is read whole (its dates, times, ranges and amounts explained) and
    cut into candidate windows, and a window counts only when ``phonenumbers``
    confirms it is a valid number of the pool's country, with the guards
    ``phonenumbers.PhoneNumberMatcher`` applies and stricter ones: nothing
    unexplained beside it in its run, no id, path, price or time around it, its
    digit groups where the country's grouping has them, and a bare digit run
    only after a phone word (see :mod:`dni_engine.rewrite.anynumber`).

How HTML is read
    The page is never parsed into a tree and written back: it is scanned, and
    only the characters of each swapped number change. A number is swapped
    where an HTML5 parser puts it in a text node (outside ``<script>``,
    ``<style>`` and any element carrying ``data-dni-noswap``, and its
    descendants) and in the first ``href`` of an element when it is a
    ``tel:``/``callto:`` link, and nowhere else: not in other attributes,
    comments, scripts or styles. The tokenizer's states (script escapes,
    RCDATA, RAWTEXT, PLAINTEXT, CDATA in foreign content) and, where it
    matters, the tree-construction rules (implied end tags closing a
    ``data-dni-noswap`` element, foreign content, ``select``, ``frameset``) are
    followed (:mod:`~dni_engine.rewrite.markup`, :mod:`~dni_engine.rewrite.tree`).
    A number split by inline markup (``0117 <b>496</b> 0123``) is one number
    when each piece between the tags is text and the tags are those of inline
    elements (:mod:`~dni_engine.rewrite.inline`); only its pieces are rewritten.
    The scan runs only as far as the last candidate number, mostly inside one
    regular expression, in time linear in the page.

How the replacement is written
    A ``tel:``/``callto:`` target gets the tracking number in E.164 (its ``;ext=``
    kept, a ``;phone-context=`` dropped). Elsewhere the tracking number takes the
    form the page wrote the number in (``+CC``, ``00CC``, ``+CC (0)``, national),
    and its grouping: where the page grouped the number as the tracking number
    groups itself, its digits are poured into the page's digit positions; a
    number written as one run of digits stays one; otherwise it is written in its
    own grouping with the page's separators, parentheses and prefix
    (``020 7839 5555`` becomes ``0117 409 0162``). See :mod:`.style`. A number that
    already is the tracking number is left exactly as written.

A page arriving in pieces
    ``rewriter.stream(tracking_number)`` (``stream_bytes`` for bytes of a known
    charset) gives a :class:`~dni_engine.rewrite.stream.RewriteStream`: fed the
    pieces, it gives back pieces whose concatenation is exactly the whole-page
    rewrite, holding back only what the next characters may still change (an open
    tag, a possible number, a short tail). See :mod:`.stream`.

Rewriting never raises: on any unexpected input the page comes back unchanged.
"""

from __future__ import annotations

from dni_engine.rewrite.numbers import parse_tracking_number
from dni_engine.rewrite.rewriter import (
    NumberOnPage,
    Rewriter,
    compile_rewriter,
    rewrite_html,
    rewrite_text,
)
from dni_engine.rewrite.stream import ByteRewriteStream, RewriteStream, StreamClosedError

__all__ = [
    "ByteRewriteStream",
    "NumberOnPage",
    "RewriteStream",
    "Rewriter",
    "StreamClosedError",
    "compile_rewriter",
    "parse_tracking_number",
    "rewrite_html",
    "rewrite_text",
]
