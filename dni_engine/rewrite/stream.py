"""Rewriting a page that arrives in pieces: :class:`RewriteStream`, :class:`ByteRewriteStream`.

A stream is fed a page piece by piece, of any size, and gives back pieces whose
concatenation is exactly what :meth:`.Rewriter.rewrite_html` (or
``rewrite_text``) makes of the whole page. It gives out at once everything
that can no longer change and holds back only:

- an open tag (a tag's ``>`` not seen yet: the whole tag, with its attributes),
  and likewise an unclosed ``<!DOCTYPE``, bogus comment or CDATA section;
- the last ``RIGHT`` (64) characters, which may still be the start of a number,
  an end tag (a ``</scr`` at the end of a piece) or the context that decides
  one;
- in visible text, back to the last place no number can cross: after a
  character no number holds (``<``, ``>``, ``,``, ``:``, quotes...) or after
  128 characters without a digit, ``+``, ``&`` or ``%``; so only a run of
  digits, separators and letters (a number, or something as long that may be
  one) is held whole; a number may go on through inline elements' tags and
  plain comments (``0117 <b>496</b> 0123``), so a place after a digit or
  letter and only separators and such tags (or a tag not closed yet that may
  be one) is no such place, unless the letters before hold no digit, ``+``,
  ``&`` or ``%`` back to where no number goes on (a number starts with one,
  and holds no more than 32 letters and digits: a cloud of links is no
  number); any other tag (``</li><li>``, ``<div>``, ``<br>``) ends a number,
  as the whole-page finders read it;
- and the ``LEFT`` (64) characters before what is still held, already given
  out, kept as the context the number finders look back at.

For listed numbers a step may cut earlier or later than that, at places the
same reading makes safe, found with a few string searches: right after the
last tag that ends every number (not an inline element's) when one closes in
the last ``_NEAR`` (128) characters before the held tail; and, when none of the
listed numbers' scans matches what is read, at the end of what came when the
last such tag has nothing after it that may start a number (no digit, ``+``,
``&`` or ``%``): nothing is held then, and the next piece may go out as it came,
the very ``str`` fed.

Script, style and comment content is given out as it comes, whatever its
length: a 10 MB script or a page of text without numbers streams through with
a few hundred characters held.

HTML is read two ways, both deciding where a number stands from what came
before it only:

- First by the whole-page reader itself (``markup``'s fast scan and local
  trees), over the page kept whole in memory up to ``KEEP`` (2,000,000)
  characters, since its local tree sometimes reads the page again from its
  start. When it reads a token to the end of what came so far (text with no
  ``<`` after it yet, a script, comment or tag not closed yet), what it said of
  the numbers before the cut holds (but in an unclosed tag, which is held, up
  to ``HOLD`` characters) and it steps back to read that token again with more
  of the page: to where the token starts, or in text and raw content to the
  end of what was given out, which the rest cannot change; where its local
  tree read the token, to where the step started (up to ``REREAD`` characters
  back). What comes of a script, style or comment not closed yet
  is looked through for its end only, neither the finders nor the reader
  reading it.
- Past any of those bounds, by :class:`_Reader`: the page read so far is read
  once with the tree from its start (:class:`~dni_engine.rewrite.tree.Tree`,
  the script data escape states followed here, so a piece boundary inside
  ``<script><!--`` or a ``</scr`` at the end of a piece changes nothing), and
  then only the held part and the context are kept.

One exception, which a stream cannot honour: a ``data-dni-noswap`` on a
``<body>`` or ``<html>`` start tag that comes after the page's first numbers (a
second ``<body>`` tag's attributes are added to the body) hides the whole page,
numbers given out earlier included; the whole-page rewrite then swaps nothing,
the stream swaps nothing from there on.

A stream never raises into its host but for misuse (feeding after
:meth:`~RewriteStream.close`, feeding what is not ``str`` / ``bytes``): on an
internal failure it logs once and passes the rest of the page through unchanged
(what was given out cannot be taken back; the whole-page rewrite would have
returned the page unchanged).
"""

from __future__ import annotations

import bisect
import codecs
import copy
import logging
import re
from collections.abc import Iterable

from dni_engine._native import mypyc_attr
from dni_engine.errors import DniError
from dni_engine.phone import FORMATTING_CHARS
from dni_engine.rewrite.anynumber import AllFinder
from dni_engine.rewrite.inline import INLINE_ELEMENTS, INLINE_TAG, pieces
from dni_engine.rewrite.listed import ListedFinder, _Scan
from dni_engine.rewrite.markup import (
    _ASCII_LOWER,
    _COMMENT_END,
    _END,
    _END_TAG_OF,
    _HIDDEN,
    _TAG,
    _TEXT,
    _attributes,
    _ci,
    _doctype,
    _link_target,
    _self_closing,
    _token_at,
)
from dni_engine.rewrite.markup import _Reader as _FastReader
from dni_engine.rewrite.numbers import Target
from dni_engine.rewrite.style import replacement_for
from dni_engine.rewrite.tree import DATA, PLAINTEXT, SCRIPT, Tree

__all__ = [
    "HOLD",
    "KEEP",
    "LEFT",
    "REREAD",
    "RIGHT",
    "ByteRewriteStream",
    "RewriteStream",
    "StreamClosedError",
]

_log = logging.getLogger("dni_engine.rewrite")

#: Characters kept before what is still held: the context number finders look back at.
LEFT = 64
#: Characters held at the end of what was fed: what they start is not decided yet.
RIGHT = 64
_GAP = 128
#: The page read so far is kept (for the fast reader's re-reads from the start) up
#: to this many characters; beyond, the stream reads on with the tree alone.
KEEP = 2_000_000
#: What the fast reader may hold while a number lies in a token not ended yet
#: (text, a script, a comment, a tag) before the stream reads on with the tree alone.
HOLD = 32_768
#: How far back the whole-page reader may have to read a token again (a script
#: in its escaped states not closed yet, a step its local tree read) before the
#: stream reads on with the tree alone.
REREAD = 262_144

_SEPARATORS = "".join(re.escape(ch) for ch in sorted(FORMATTING_CHARS | {"\n", "\r"}))
# A character no number (listed or any) can hold: not a letter or digit of any
# script, separator, "+", or part of a character reference or percent-encoding.
_BREAKER = rf"[^\w{_SEPARATORS}+&#;%]"
# A stretch of _GAP characters or more without what starts a number.
_NO_STARTER_RUN = re.compile(rf"[^0-9+&%]{{{_GAP},}}")

_TAG_START = re.compile(r"</?[A-Za-z]")
_LAST_BREAKER = re.compile(rf"(?s:.*){_BREAKER}")
_A_BREAKER = re.compile(_BREAKER)
_LAST_STARTER = re.compile(r"(?s:.*)[0-9+&%]")
_STARTER = re.compile(r"[0-9+&%]")
# Every number either finder reports holds an ASCII digit (both scan for one).
_DIGIT = re.compile(r"[0-9]")
_SHORT = 1024
# The end of raw content (its end tag, a script's "<!--", a comment's "--!>") may
# start in this many last characters of what came: looked for again from there.
_TAIL = 16
_SEPARATOR_SET = frozenset(FORMATTING_CHARS | {"\n", "\r"})
# What _BREAKER does not match, but for letters and digits (str.isalnum, as \w).
_NOT_BREAKERS = _SEPARATOR_SET | frozenset("_+&#;%")

# Script data: what changes the tokenizer's state (data, escaped, double escaped).
_SCRIPT_EVENTS = (
    re.compile(r"<!--|</(?i:script)(?=[\t\n\f\r />])", re.ASCII),
    re.compile(r"-->|<(/?)(?i:script)(?=[\t\n\f\r />])", re.ASCII),
    re.compile(r"-->|</(?i:script)(?=[\t\n\f\r />])", re.ASCII),
)
_IN_COMMENT = 1

_Mark = tuple[int, int, tuple[int, int] | None]
# The whole-page reader's state before a step: pos, raw, full, the token's
# start, end, kind and link, and a copy of its local tree.
_Saved = tuple[
    int, tuple[int, str, bool] | None, bool, int, int, int, tuple[int, int] | None, Tree | None
]

# A number may go on through inline tags (0117 <b>496</b> 0123), never through
# another tag: the finders join digits only across inline elements' tags and
# plain comments (inline.INLINE_TAG; the listed numbers' scan matches any tag
# there but a match across another tag hides nothing, see ListedFinder._matches).
# So a tag, whole, that INLINE_TAG does not read stops the walk back from a cut;
# a tag not closed yet (a "<" and what may start a tag, with quoted values, one
# possibly open) stops it once its name is known, not an inline element's.
# (Each part of a tag is read one way only, so possessively: a failed look at a
# long stretch gives up at once.)
_ANY_TAG = re.compile(r"""<[/!A-Za-z](?:[^<>"']++|"[^"<]*+"|'[^'<]*+')*+>""", re.ASCII)
_INLINE_TAG = re.compile(INLINE_TAG)
_OPEN_TAG = re.compile(
    r"""<(?:[/!A-Za-z](?:[^<>"']++|"[^"<]*+"|'[^'<]*+')*+(?:"[^"<]*+|'[^'<]*+)?)?""", re.ASCII
)
_OPEN_COMMENT = re.compile(r"<!(?:-(?:-[^<>-]*+-?-?)?)?")
_TAG_FIRST = frozenset("/!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TAG_NAME = re.compile(r"</?[A-Za-z][^\t\n\f\r />]*+(?=[\t\n\f\r />])", re.ASCII)
_INLINE_NAMES = frozenset(INLINE_ELEMENTS)
_INLINE_START = re.compile(
    r"</?(?i:" + "|".join(sorted(INLINE_ELEMENTS, key=len, reverse=True)) + r")(?=[\t\n\f\r />])"
)
# How a tag INLINE_TAG may match starts.
_INLINE_OR_COMMENT = re.compile(_INLINE_START.pattern + "|<!--")
_REFERENCE_TAIL = re.compile(r"(?:&#?\w+;|%\w\w)\Z")
# More ASCII letters and digits than a number holds (a listed one 18 at most; a
# run replace_all reads holds digits only), and more characters than its text
# holds after its last digit (those letters, and at most 15 separators between
# two of them: 3, and 3 after each of 4 inline tags).
_UNITS = 32
_REACH = 1024
# How far back from the end of a step a tag that ends every number is looked for
# as the place to cut (held back besides RIGHT: at most this many characters).
_NEAR = 128
# How far back from the end of a piece the tag after which nothing starts a
# number is looked for (_ends_clear).
_CLEAR = 256


def _open_tag(text: str, opening: int, at: int) -> bool:
    """Whether ``text[opening:at]``, a ``<`` with none after it, is a tag not closed
    yet as ``_OPEN_TAG`` reads it. Looked at before the regex, which reads the
    whole of a long tag: a ``>`` after pairs of one kind of quote only closes the
    tag; without a ``>``, anything after a tag's first character is a tag not
    closed yet."""
    gt = text.find(">", opening, at)
    if gt < 0:
        return at == opening + 1 or text[opening + 1] in _TAG_FIRST
    if text.find("'", opening, gt) < 0:
        if text.count('"', opening, gt) % 2 == 0:
            return False
    elif text.find('"', opening, gt) < 0 and text.count("'", opening, gt) % 2 == 0:
        return False
    return _OPEN_TAG.fullmatch(text, opening, at) is not None


def _may_join(text: str, start: int, end: int) -> bool:
    """Whether a tag not closed yet, ``text[start:end]``, may be an inline
    element's (its name not known whole yet, or an inline element's) or a comment."""
    name = _TAG_NAME.match(text, start, end)
    return name is None or _INLINE_START.match(text, start, end) is not None


def _split_before(text: str, lo: int, cut: int) -> int | None:
    """Where a number split by inline tags that ``cut`` may fall in stands, or
    ``None``: the end of the letter or digit before the inline tags and
    separators that reach back from ``cut`` (at least one tag among them, or a
    tag after it that may be inline), when a number may end there
    (:func:`_may_end_number`)."""
    at = cut
    tags = 0
    opening = text.rfind("<", lo, at)
    # The tag that ends at cut, read whole (looked at only when cut may be in a
    # tag not closed yet; otherwise when the walk back comes to it): then cut is
    # in no tag not closed yet.
    closed: re.Match[str] | None = None
    if opening >= 0 and (
        _OPEN_COMMENT.fullmatch(text, opening, at) is not None
        if text.startswith("<!", opening, at)
        else _open_tag(text, opening, at)
    ):
        if text.startswith(">", at - 1):
            closed = _ANY_TAG.fullmatch(text, opening, at)
        if closed is None:
            if not _may_join(text, opening, at):
                return None
            at = opening
            tags = 1
    while at > lo:
        char = text[at - 1]
        if char in _SEPARATOR_SET:
            at -= 1
        elif char == ">":
            # A tag that is not an inline element's, or not read whole as a tag,
            # ends the walk before a '>': no split number. Its name is looked at
            # first, the cheaper test.
            if closed is None:
                opening = text.rfind("<", lo, at)
                if opening < 0:
                    return None
            if not _is_inline_tag(text, opening, at):
                return None
            if closed is None and _ANY_TAG.fullmatch(text, opening, at) is None:
                return None
            closed = None
            at = opening
            tags += 1
        elif char == ";" or text[at - 3 : at - 2] == "%":
            reference = _REFERENCE_TAIL.search(text, max(lo, at - 40), at)
            if reference is None:
                break
            at = reference.start()
        else:
            break
    if not (at > lo and text[at - 1].isascii() and text[at - 1].isalnum()):
        return None
    if not tags and text.startswith("<", cut):  # a tag may follow
        after = _ANY_TAG.match(text, cut)
        if after is None:
            tags = 1 if _may_join(text, cut, len(text)) else 0
        else:
            tags = 1 if _is_inline_tag(text, cut, after.end()) else 0
    return at if tags and _may_end_number(text, lo, at) else None


def _may_end_number(text: str, lo: int, at: int) -> bool:
    """Whether a number may end at ``at`` (after a letter or digit): a digit, ``+``,
    ``&`` or ``%`` (what starts a number, ``_STARTER``) stands in the text of the
    letters, digits, separators and inline tags that reach back from ``at`` (its
    tags left out), within ``_UNITS`` ASCII letters and digits and ``_REACH``
    characters. A number's first letter or digit is a digit, and no number holds
    that many; and none crosses ``lo``. So a cloud of links (``Antrag</a> <a
    href=...>Bundestag</a>``) ends no number, however long. Many tags without
    text between them are not walked through (a number may end there)."""
    pos = at
    units = 0
    chars = 0
    tags = 0
    while pos > lo:
        start = max(lo, pos - 64)
        stop = _LAST_BREAKER.match(text, start, pos)
        begin = stop.end() if stop is not None else start
        if _STARTER.search(text, begin, pos) is not None:
            return True
        for char in text[begin:pos]:
            if char.isascii() and char.isalnum():
                units += 1
        chars += pos - begin
        if units > _UNITS or chars > _REACH:
            return False
        if stop is None:
            pos = begin  # a long stretch without a breaker, or lo
            continue
        # A breaker ends the stretch: a number goes on before it only through an
        # inline element's tag (or a plain comment) that ends there.
        if text[begin - 1] != ">":
            return False
        opening = text.rfind("<", lo, begin)
        if (
            opening < 0
            or not _is_inline_tag(text, opening, begin)
            or _ANY_TAG.fullmatch(text, opening, begin) is None
        ):
            return False
        tags += 1
        if tags > _UNITS:
            return True
        pos = opening
    return False


def _is_inline_tag(text: str, start: int, end: int) -> bool:
    """Whether the tag ``text[start:end]`` is an inline element's or a plain comment
    (``INLINE_TAG``; its name looked at first: most tags are neither)."""
    return (
        _INLINE_OR_COMMENT.match(text, start, end) is not None
        and _INLINE_TAG.fullmatch(text, start, end) is not None
    )


def _before_open_tag(text: str, lo: int, cut: int | None) -> int | None:
    """``cut``, or where the tag not closed yet that ``cut`` falls in starts when
    what of it comes before ``cut`` may hold a number (``None`` when that is not
    after ``lo``): such a tag is held whole, the numbers in its attributes read
    once it is closed (the whole-page reader cannot tell a link target before).
    For ``replace_all``, which reads every digit run: the listed numbers are
    rarely in a tag, which is then held as the reader asks."""
    if cut is None:
        return None
    opening = text.rfind("<", lo, cut)
    if (
        opening < 0
        or text.startswith("<!", opening)  # a comment, however long, is not held
        or _STARTER.search(text, opening, cut) is None
        or not _open_tag(text, opening, cut)
    ):
        return cut
    return opening if opening > lo else None


def _ends_numbers(text: str, opening: int, end: int) -> bool:
    """Whether ``text[opening:end]``, a ``<`` and what follows up to a ``>`` with
    no ``<`` between, starts with a tag name (``_TAG_NAME``) that is not an
    inline element's (``_INLINE_START``): a tag no number goes on through. An
    ASCII name is looked up (the pattern reads ASCII letters case-insensitively
    only); another is matched as ``_INLINE_START`` matches it."""
    name = _TAG_NAME.match(text, opening, end)
    if name is None:
        return False
    written = name.group()
    if written.isascii():
        return written.lstrip("</").lower() not in _INLINE_NAMES
    return _INLINE_START.match(text, opening, end) is None


def _after_ending_tag(text: str, lo: int, hi: int) -> int | None:
    """The end of the last tag in the last ``_NEAR`` characters of ``(lo, hi]`` that
    ends every number (a start or end tag, read from its name, not an inline
    element's), or ``None``. No number crosses it, as :func:`_safe_cut` and
    :func:`_cut_clear_of_splits` find (after a ``>``, a breaker, with no inline
    tag or letter before it that a number may go on through): the same place,
    looked for with a few string searches when a page's tags stand close."""
    start = max(lo, hi - _NEAR)
    gt = text.rfind(">", start, hi)
    while gt >= 0:
        # The last "<" before it, as _split_before looks for it (looked for no
        # further back than _REACH: a ">" in text is no tag).
        opening = text.rfind("<", max(lo, gt - _REACH), gt)
        if opening < 0:
            return None
        end = gt + 1
        if _ends_numbers(text, opening, end):
            return end
        gt = text.rfind(">", start, opening)
    return None


def _ends_clear(text: str) -> bool:
    """Whether, for the listed numbers' scans, no number crosses the end of ``text``
    (a stretch of the page, read from its start) and none in it depends on what
    follows: the last tag in its last ``_CLEAR`` characters that ends every
    number (:func:`_after_ending_tag`'s) has no digit, ``+``, ``&`` or ``%`` after
    it. A scan's match across that tag is no number (its match from the same
    start that ends before the tag, which nothing after the tag changes, stands
    in its place), a match starting in the tag ends in it (before its ``>``), and
    no number starts after it (a listed number starts with a digit or a "+",
    written plainly, as a character reference or percent-encoded)."""
    return _step_cut(text, 0, len(text)) == len(text)


def _step_cut(text: str, lo: int, limit: int) -> int | None:
    """``len(text)`` when :func:`_ends_clear` (the last tag that ends numbers in
    the last ``_CLEAR`` characters, in ``text[lo:]``, has nothing after it that
    starts a number), else :func:`_after_ending_tag`'s cut in ``(lo, limit]``, or
    ``None``: both found in one walk back over the tags."""
    size = len(text)
    start = max(lo, min(limit - _NEAR, size - _CLEAR))
    gt = text.rfind(">", start)
    last = True
    while gt >= 0:
        # The last "<" before it, as _split_before looks for it (looked for no
        # further back than _REACH: a ">" in text is no tag).
        opening = text.rfind("<", max(lo, gt - _REACH), gt)
        if opening < 0:
            return None
        end = gt + 1
        if _ends_numbers(text, opening, end):
            if last and _STARTER.search(text, end) is None:
                return size
            last = False
            if end <= limit:
                return end if end > lo and limit - end <= _NEAR else None
        gt = text.rfind(">", start, opening)
    return None


def _cut_clear_of_splits(text: str, lo: int, cut: int | None, floor: int = -1) -> int | None:
    """``cut``, or an earlier place, that no number split by inline tags crosses;
    ``None`` as well once the search comes down to ``floor`` (an earlier search
    found none up to there)."""
    while cut is not None and cut > floor:
        split = _split_before(text, lo, cut)
        if split is None:
            return cut
        cut = _safe_cut(text, lo, split - 1) if split - 1 > lo else None
    return None


def _whole_page(
    finder: ListedFinder | AllFinder, text: str, target: Target, cc: int | None, *, html: bool
) -> str:
    """``text``, a whole page (HTML when ``html``), with the numbers ``finder``
    finds swapped for ``target`` (``cc`` the pool's country code): what
    :meth:`.Rewriter.rewrite_html` returns. ``text`` itself when nothing is
    swapped; unchanged too, logged, when rewriting fails. Never raises."""
    if not text:
        return text
    try:
        pieces: list[str] = []
        done = 0
        for found in finder.find(text, html):
            replacement = replacement_for(text, found, target, cc)
            if replacement is None:
                continue
            start, end, new = replacement
            pieces += (text[done:start], new)
            done = end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)
    except Exception:  # the page must be served whatever it holds
        _log.warning("page left unchanged: rewriting it failed", exc_info=True)
        return text


class StreamClosedError(DniError, ValueError):
    """A piece fed to a stream after its :meth:`~RewriteStream.close`."""


def _safe_cut(text: str, lo: int, hi: int) -> int | None:
    """The last place in ``(lo, hi]`` no number crosses, or ``None``."""
    if hi > lo:  # most often right after a breaker: the end itself
        last = text[hi - 1]
        if not (last.isalnum() or last in _NOT_BREAKERS):
            return hi
    # After _GAP characters without a digit, "+", "&" or "%", at the end (none
    # when one stands in the last _GAP characters): looked at first, since then
    # the end itself is most often such a place.
    look = max(0, hi - _GAP - 16)
    recent = max(look, hi - _GAP)
    gap = -1  # where a cut after such a stretch may stand from, when there is one
    if _STARTER.search(text, recent, hi) is None:
        starter = _LAST_STARTER.match(text, look, recent)  # none after recent
        gap = (starter.end() if starter else look) + _GAP
        if hi > gap and hi > lo and text[hi - 1] not in _SEPARATOR_SET:
            return hi
    best = lo
    # Most often found near the end: looked for in the last 64 characters, then
    # the last 1024 (the match backtracks from the end of its stretch).
    close = max(lo, hi - 64)
    breaker = _LAST_BREAKER.match(text, close, hi)
    if breaker is None and close > lo:
        near = max(lo, hi - 1024)
        breaker = _LAST_BREAKER.match(text, near, close)
        if breaker is None and near > lo:
            # The last breaker before near is no earlier than the last "<" or ">";
            # looked for 1024 characters at a time, each first searched forward (a
            # look back costs more, a long stretch of path data or base64 holds none).
            bracket = max(text.rfind("<", lo, near), text.rfind(">", lo, near))
            start = bracket if bracket > lo else lo
            while near > start:
                stretch = max(start, near - 1024)
                if _A_BREAKER.search(text, stretch, near) is not None:
                    breaker = _LAST_BREAKER.match(text, stretch, near)
                    break
                near = stretch
    if breaker is not None:
        best = breaker.end()
    if best < hi and gap >= 0:
        for at in range(hi, max(gap, best), -1):
            if text[at - 1] not in _SEPARATOR_SET:
                best = at
                break
    if best <= lo:  # no breaker: an earlier gap, in what comes last
        earlier = _gap_cut(text, max(lo, hi - 4096), hi)
        if earlier is not None:
            best = earlier
    return best if best > lo else None


def _gap_cut(text: str, lo: int, hi: int) -> int | None:
    """The last place in ``(lo, hi]`` after ``_GAP`` characters of it without a
    digit, "+", "&" or "%", not right after a separator; or ``None``."""
    for run in reversed(list(_NO_STARTER_RUN.finditer(text, lo, hi))):
        start, end = run.span()
        for at in range(end, start + _GAP - 1, -1):
            if text[at - 1] not in _SEPARATOR_SET:
                return at
    return None


class _Reader:
    """Reads HTML token by token from its start, as far as each piece allows.

    ``marks`` collects, for the stretch read since the last :meth:`rebase`,
    visible text ``(start, end, None)`` and link targets ``(start, end, (a, b))``.
    """

    def __init__(self) -> None:
        self.tree = Tree(local=False)
        self.pos = 0
        self.inside = 0  # _IN_COMMENT: in a comment whose end was not seen yet
        self.script = 0  # script data state: 0 data, 1 escaped, 2 double escaped
        self.script_from = 0  # where the script state holds from
        self.marks: list[_Mark] = []

    def rebase(self, shift: int, given: int | None = None) -> None:
        """Move to ``shift`` characters later; marks up to ``given`` (what was given
        out; by default everything read) are dropped, the rest kept."""
        given = self.pos if given is None else given
        self.marks = [
            (a - shift, b - shift, None if link is None else (link[0] - shift, link[1] - shift))
            for a, b, link in (self.marks if given < self.pos else ())
            if b > given
        ]
        self.pos -= shift
        self.script_from -= shift

    def hidden_all(self) -> bool:
        return self.tree.hide_from is not None

    def advance(self, text: str, limit: int, final: bool) -> None:
        """Read tokens of ``text`` from ``pos`` up to ``limit`` (the whole of it when
        ``final``), stopping before anything not decided yet."""
        tree = self.tree
        while self.pos < limit and tree.hide_from is None:
            at = self.pos
            tree.position = at
            if self.inside:
                close = _COMMENT_END.search(text, at)
                if close is None or close.end() > limit:
                    self.pos = limit if close is None else max(at, min(limit, close.start()))
                    return
                self.inside = 0
                self.pos = close.end()
                continue
            if tree.state != DATA:
                if not self._raw(text, at, limit, final):
                    return
                continue
            end, kind, tag = _token_at(text, at, tree.foreign())
            if end <= limit:
                self._token(text, at, end, kind, tag)
                continue
            if tag is not None:
                return  # an open tag: held whole
            if kind == _TEXT and not text.startswith("<![CDATA[", at):
                cut = _safe_cut(text, at, limit)
                if cut is None:
                    return
                if not tree.characters(text[at:cut]):
                    self.marks.append((at, cut, None))
                self.pos = cut
                continue
            if text.startswith("<!--", at) and at + 4 < limit:
                self.inside = _IN_COMMENT
                self.pos = at + 4
                continue
            return  # a CDATA section, bogus comment or odd '<' run: held whole

    def _token(self, text: str, at: int, end: int, kind: int, tag: re.Match[str] | None) -> None:
        """One whole token in the data state (as ``markup._Reader._token_tree``)."""
        tree = self.tree
        self.pos = end
        if tag is None:
            if kind == _TEXT:
                cdata = text.startswith("<![CDATA[", at)
                content = (
                    text[at + 9 : end - 3 if text.endswith("]]>", 0, end) else end]
                    if cdata
                    else text[at:end]
                )
                if not tree.characters(content):
                    self.marks.append((at, end, None))
            elif text[at : at + 9].translate(_ASCII_LOWER) == "<!doctype":
                tree.doctype(*_doctype(text, at, end))
            return
        if not tag.group(4):  # the page ends inside the tag
            return
        name = tag.group(2).translate(_ASCII_LOWER)
        if tag.group(1):
            tree.end_tag(name)
            return
        attrs = _attributes(text, tag.start(3), tag.end(3))
        element = tree.start_tag(name, attrs, _self_closing(text, tag))
        if element is not None and not element.hidden:
            link = _link_target(text, tag.start(3), tag.end(3))
            if link is not None:
                self.marks.append((at, end, link))
        if tree.state == SCRIPT:
            self.script = 0
            self.script_from = end

    def _raw(self, text: str, at: int, limit: int, final: bool) -> bool:
        """Raw content (RCDATA, RAWTEXT, script data, PLAINTEXT) at ``at``; whether to go on."""
        tree = self.tree
        state, name = tree.state, tree.raw_name
        if state == PLAINTEXT:
            cut = limit if final else _safe_cut(text, at, limit)
            if cut is None:
                return False
            if not tree.characters(text[at:cut]):
                self.marks.append((at, cut, None))
            self.pos = cut
            return True
        if state == SCRIPT and name == "script":
            close, until = self._script_end(text, max(at, self.script_from), limit)
        else:
            pattern = _END_TAG_OF.get(name) or re.compile(
                f"</{_ci(re.escape(name))}{_END}", re.ASCII
            )
            match = pattern.search(text, at)
            close = match.start() if match is not None and match.start() < limit else -1
            until = limit
        if close < 0:  # the content goes on past what is decided
            hidden = tree.characters("x")
            end = until
            if not hidden and not final:
                safe = _safe_cut(text, at, limit)
                if safe is None:
                    return False
                end = safe
            if not hidden:
                self.marks.append((at, end, None))
            self.pos = end
            return True
        if close > at:
            if not tree.characters("x"):
                self.marks.append((at, close, None))
            self.pos = close
            return True
        tag = _TAG.match(text, close)
        assert tag is not None
        if not tag.group(4):
            if final:
                self.pos = len(text)
                return True
            return False  # the end tag is held whole
        if tag.end() > limit:
            return False
        tree.end_tag(name)
        self.pos = tag.end()
        return True

    def _script_end(self, text: str, at: int, limit: int) -> tuple[int, int]:
        """``(the '<' of the script's end tag, -1 when none starts before limit;
        where the content read so far ends)``; follows the escape states."""
        pos = at
        while True:
            match = _SCRIPT_EVENTS[self.script].search(text, pos)
            if match is None or match.start() >= limit:
                self.script_from = max(pos, limit)
                return -1, self.script_from
            found = match.group()
            if self.script == 0:
                if found == "<!--":
                    self.script = 1
                    pos = match.start() + 2  # "<!-->" and "<!--->" end it at once
                    continue
                self.script_from = match.start()
                return match.start(), match.start()
            if found == "-->":
                self.script = 0
                pos = match.end()
                continue
            if self.script == 1 and match.group(1):
                self.script_from = match.start()
                return match.start(), match.start()
            self.script = 2 if self.script == 1 else 1
            pos = match.end() + 1


@mypyc_attr(allow_interpreted_subclasses=True)  # a public class: subclassed in both builds
class RewriteStream:
    """One page rewritten piece by piece; see the module docstring.

    Build it with :meth:`.Rewriter.stream`. :meth:`feed` takes the next piece
    (any length, ``str``) and returns what can be given out now (often ``""``);
    :meth:`close` returns the rest. The concatenation of everything returned is
    ``rewriter.rewrite_html(page, tracking_number)`` (``rewrite_text`` with
    ``html=False``) of the concatenated pieces.
    """

    __slots__ = (
        "_base",
        "_budget",
        "_buf",
        "_cc",
        "_clear",
        "_closed",
        "_fast",
        "_finder",
        "_floor",
        "_html",
        "_listed",
        "_matched",
        "_offset",
        "_parts",
        "_passthrough",
        "_pending",
        "_reader",
        "_saved",
        "_size",
        "_skip",
        "_target",
        "_window",
    )

    def __init__(
        self,
        finder: ListedFinder | AllFinder | None,
        target: Target | None,
        cc: int | None,
        *,
        html: bool = True,
    ) -> None:
        self._finder = finder
        self._target = target
        self._cc = cc
        self._html = html
        self._closed = False
        # Nothing to swap: every piece goes out as it comes.
        self._passthrough = finder is None or target is None
        self._buf = ""  # LEFT characters given out already, then what is held
        self._pending = 0  # where in _buf what is held starts
        self._base = 0  # where in the page _buf starts, while the page is kept
        # HTML is read first by the whole-page reader (its fast scan), over the page
        # kept whole (its pieces, joined when the reader is to read on); then, past
        # KEEP or where it cannot go on, by _Reader. The reader is made at the first
        # feed(): a page given whole to close() needs none.
        self._fast: _FastReader | None = None
        self._parts: list[str] = []
        self._size = 0  # the length of the page fed so far, while it is kept
        self._saved: _Saved | None = None
        # While the whole-page reader stands in a hidden element or comment not
        # closed yet: what ends it, and where in the page to look for that from.
        self._skip: tuple[re.Pattern[str], int] | None = None
        # Where in the page a search for a place to cut, from what is held on,
        # found none (while the page is kept).
        self._floor = -1
        self._reader: _Reader | None = None
        self._budget = [2000]
        self._window = (0, 0)
        self._offset = 0  # where in the page the text the finders read starts
        # The listed numbers' finder, in HTML read with the whole-page reader (its
        # steps' first scans are made by feed), and the scans feed made of a buffer.
        self._listed = finder if html and isinstance(finder, ListedFinder) else None
        # Nothing is held, and what was given out ends where no listed number
        # crosses (_ends_clear), or nothing was fed yet.
        self._clear = True
        self._matched: tuple[str, list[tuple[_Scan, re.Match[str]]]] | None = None

    @property
    def held(self) -> int:
        """How many characters fed so far are not given out yet."""
        return len(self._buf) - self._pending

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def feed(self, chunk: str) -> str:
        """Take the next piece of the page; return what can be given out now.

        Raises :class:`StreamClosedError` after :meth:`close` and :class:`TypeError`
        for anything but ``str``; never otherwise.
        """
        if self._closed:
            raise StreamClosedError("feed() after close(): this page is finished")
        if not isinstance(chunk, str):
            raise TypeError(f"a page piece is str, not {type(chunk).__name__}")
        if self._passthrough:
            return chunk
        fast = self._fast
        if fast is None and self._html and self._reader is None:  # the first piece
            fast = self._fast = _FastReader("")
        if fast is not None:
            self._parts.append(chunk)
            self._size += len(chunk)
        # Nothing is held, after a place no listed number crosses (or the page's
        # start): the piece may go out as it came.
        clear = self._clear and self._pending == len(self._buf)
        self._clear = False
        buf = self._buf
        self._buf = ""
        buf += chunk  # in place when it can
        self._buf = buf
        pending = self._pending
        limit = len(buf) - RIGHT
        if limit <= pending:
            return ""  # nothing can be given out yet
        listed = self._listed
        if (
            listed is not None
            and fast is not None
            and pending <= LEFT
            and self._skip is None
            and self._size <= KEEP
        ):
            # The most frequent steps, as _advance_fast makes them: no scan of the
            # listed numbers matches, and the step cuts after a tag that ends
            # numbers, or gives out everything (_ends_clear).
            cut = _step_cut(buf, pending, limit)
            if cut is not None or clear:
                matched = listed.scan(buf, True)
                if not matched:
                    if cut == len(buf):
                        # Nothing held: the next piece may go out as it is too.
                        self._clear = True
                        cut = len(buf)
                        out = chunk if clear else buf[pending:]
                    elif cut is None:
                        self._matched = (buf, matched)
                        return self._advance(final=False)
                    else:
                        out = buf[pending:cut]
                    keep = cut - LEFT
                    self._floor = -1
                    if keep > 0:
                        self._buf = buf[keep:]
                        self._base += keep
                        self._pending = LEFT
                    else:
                        self._pending = cut
                    return out
                self._matched = (buf, matched)
        return self._advance(final=False)

    def close(self, last: str = "") -> str:
        """End the page, ``last`` being its final piece (a page known whole is
        rewritten in one step, as fast as :meth:`.Rewriter.rewrite_html`): return
        everything still held, rewritten. Closing twice returns ``""`` (with a
        ``last`` piece, raises :class:`StreamClosedError`); raises
        :class:`TypeError` for a ``last`` that is not ``str``."""
        if self._closed:
            if last:
                raise StreamClosedError("close() with a piece after close(): this page is finished")
            return ""
        if not isinstance(last, str):
            raise TypeError(f"a page piece is str, not {type(last).__name__}")
        self._closed = True
        if self._passthrough:
            return last
        if not self._buf and self._reader is None:
            # Nothing fed before: the page is ``last``, whole, rewritten as
            # :meth:`.Rewriter.rewrite_html` rewrites it.
            assert self._finder is not None
            assert self._target is not None
            return _whole_page(self._finder, last, self._target, self._cc, html=self._html)
        clear = self._clear and self._pending == len(self._buf)
        self._clear = False
        if last:
            self._take(last)
        listed = self._listed
        if clear and last and listed is not None and self._fast is not None and self._skip is None:
            # Nothing was held: when no scan of the listed numbers matches, the
            # last piece goes out as it came (what _advance_fast would give out).
            buf = self._buf
            matched = listed.scan(buf, True)
            if not matched:
                return last
            self._matched = (buf, matched)
        return self._advance(final=True)

    def _take(self, chunk: str) -> None:
        if self._fast is not None:
            self._parts.append(chunk)
            self._size += len(chunk)
        buf = self._buf
        self._buf = ""
        buf += chunk
        self._buf = buf

    # ---- the work ----------------------------------------------------------------

    def _advance(self, *, final: bool) -> str:
        try:
            if self._fast is not None:
                out = self._advance_fast(final)
                if out is not None:
                    return out
            return self._advance_read(final)
        except Exception:  # the page must be served whatever it holds
            _log.warning("rest of the page passed through: rewriting it failed", exc_info=True)
            return self._give_up()

    def _advance_fast(self, final: bool) -> str | None:
        """A step with the whole-page reader over the page kept whole; ``None`` when
        the stream must read on with :class:`_Reader` instead."""
        buf = self._buf  # the page from _base on
        pending = self._pending
        fast = self._fast
        pre = self._matched  # the scans feed made of buf, if it did
        self._matched = None
        assert fast is not None
        size = self._size
        limit = len(buf) if final else len(buf) - RIGHT
        if limit <= pending:
            return ""
        if not final and size > KEEP:
            self._read_on()
            return None
        listed_finder = self._listed  # (a whole-page reader reads HTML only)
        listed = listed_finder is not None
        if final:
            cut: int | None = len(buf)
        elif listed and (cut := _after_ending_tag(buf, pending, limit)) is not None:
            pass
        else:
            floor = self._floor - self._base
            cut = _cut_clear_of_splits(
                buf,
                pending,
                _safe_cut(buf, pending, limit)
                if listed
                else _before_open_tag(buf, pending, _safe_cut(buf, pending, limit)),
                floor if floor > pending else -1,
            )
        if cut is None:
            self._floor = self._base + limit  # no place to cut up to there
            if len(buf) - pending > HOLD:
                self._read_on()
                return None
            return ""
        skip = self._skip
        if skip is not None:
            # The reader stands in a script, style or comment not closed yet: up to
            # its end (looked for in what came since) no number is swapped, and
            # neither the finder nor the reader need to read what is given out.
            pattern, since = skip
            end = pattern.search(buf, max(0, since - self._base))
            if end is None or end.start() >= cut:
                self._skip = (
                    (pattern, self._base + end.start())
                    if end is not None
                    else (pattern, max(since, self._base + len(buf) - _TAIL))
                )
                out = buf[pending:cut]
                self._given(cut)
                return out
            self._skip = None
        # The reader's state is saved (and the page joined) when it is first asked
        # about a number in this step (_rewrite clears what an earlier step saved);
        # without one it reads nothing.
        matched = None
        if listed_finder is not None and pending <= LEFT:
            # The listed numbers' scans over what the finder reads (the buffer
            # whole): when none matches, nothing is found and nothing placed, and
            # the step gives out what it cuts as it is.
            matched = pre[1] if pre is not None and pre[0] is buf else listed_finder.scan(buf, True)
            if not matched:
                # (When the end of buf is a place no listed number crosses, feed
                # found it and gave buf out whole: _step_cut.)
                out = buf if pending == 0 and cut == len(buf) else buf[pending:cut]
                self._given(cut)
                return out
        budget = self._budget[0]
        start = max(0, pending - LEFT)
        self._offset = self._base + start
        out = self._rewrite(buf[start:] if start else buf, pending - start, cut - start, matched)
        if fast.hide_all:
            return self._give_up()
        saved = self._saved
        self._saved = None
        if final or saved is None or fast.pos < size:
            self._given(cut)
            return out
        # The reader read a token to the end of what came so far (text without a
        # '<' after it, an unclosed script, comment or tag): what it said of the
        # numbers in it holds, but its state is not the page's. It steps back, to
        # read that token again with more of the page: to where the token starts
        # (or, in text and raw content, a place in it the rest cannot change), or,
        # when its tree read the token, to where the step started.
        if fast.tree is None and fast.cut >= 0:
            in_tag = fast.raw is None and _TAG_START.match(fast.text, fast.cut) is not None
            if not in_tag:
                self._step_back(self._base + cut)
                self._given(cut)
                if self._skip is None and size - fast.pos > REREAD:
                    self._read_on()  # no reading the same token again and again
                return out
        else:
            tree = fast.tree
            in_tag = (tree is None or tree.state == DATA) and _TAG_START.match(
                fast.text, fast.token.start
            ) is not None
        token = fast.token
        fast.pos, fast.raw, fast.full = saved[:3]
        token.set(*saved[3:7])
        fast.tree = saved[7]
        if in_tag:  # a number in a tag not closed yet may be a link: wait for its '>'
            self._budget[0] = budget
            if len(buf) - pending > HOLD:
                self._read_on()
                return None
            return ""
        self._given(cut)
        if size - fast.pos > REREAD:
            self._read_on()  # no reading the same token again and again
        return out

    def _step_back(self, given: int) -> None:
        """After a step in which the whole-page reader (its fast scan) read a token
        to the end of the page fed so far, from ``fast.cut``, and what is given out
        ends at ``given`` (in the page): set it where that token, read again with
        more of the page, is to be read from. Text (no ``<`` after it) and raw
        content without an end tag (nor, in a script, a ``<!--``) go on from
        ``given``, a place the rest of the page cannot change. In a hidden one (a
        script, a style) or a comment, what comes is looked through for its end
        before the reader reads on (``_skip``)."""
        fast = self._fast
        assert fast is not None
        text = fast.text
        size = fast.size
        back = fast.cut
        token = fast.token
        raw = fast.raw
        if raw is None:
            if token.kind == _TEXT:  # text running on to the end
                at = max(back, min(given, size))
                token.set(back, at, _TEXT)
                fast.pos = at
                return
            token.set(back, back, _HIDDEN)
            fast.pos = back
            if text.startswith("<!--", back) and size - back >= 6:
                # A comment not closed yet ("<!-->" and "<!--->" would be closed).
                self._skip = (_COMMENT_END, max(back + 4, size - _TAIL))
            return
        state, name, hidden = raw
        if state == SCRIPT and text.find("<!--", back, size) >= 0:
            at = back  # escaped script data: read again from where the token starts
        else:
            # Its end tag may start only in the last characters (RIGHT more than
            # any end tag), after what was given out: the token then ends where
            # the numbers still to be placed start (never at a '<' one of them
            # may hold, as the token's end means an end tag).
            at = max(back, min(given, size))
            if hidden:
                self._skip = (_SCRIPT_EVENTS[0] if state == SCRIPT else _END_TAG_OF[name], at)
        token.set(back, at, _HIDDEN if hidden else _TEXT)
        fast.pos = at

    def _given(self, cut: int) -> None:
        """What the whole-page reader's step gave out ends at ``cut``: only the
        context before it is kept with what is held."""
        self._pending = cut
        self._floor = -1
        keep = cut - LEFT
        if keep > 0:
            self._buf = self._buf[keep:]
            self._base += keep
            self._pending = LEFT

    def _page(self) -> str:
        """The page fed so far, whole. The pieces fed since it was last asked for
        are appended to it, in place when nothing else holds it (the whole-page
        reader's hold on it is dropped first): asked for at each step, it costs a
        copy of each piece, not of the page."""
        parts = self._parts
        if len(parts) > 1:
            fast = self._fast
            if fast is not None:
                fast.text = ""
            page = parts[0]
            parts[0] = ""
            for part in parts[1:]:
                page += part
            self._parts = [page]
            return page
        return parts[0] if parts else ""

    def _save(self) -> None:
        """Before the whole-page reader reads on in a step: give it the page fed so
        far and save its state (it may step back)."""
        fast = self._fast
        assert fast is not None
        page = self._page()
        fast.text = page
        fast.size = len(page)
        fast.cut = -1
        token = fast.token
        tree = copy.deepcopy(fast.tree) if fast.tree is not None else None
        self._saved = (
            fast.pos,
            fast.raw,
            fast.full,
            token.start,
            token.end,
            token.kind,
            token.link,
            tree,
        )

    def _read_on(self) -> None:
        """Leave the whole-page reader: read the page kept so far with the tree, up to
        what was given out, then keep only what :class:`_Reader` needs."""
        page = self._page()
        pending = self._base + self._pending
        reader = _Reader()
        reader.advance(page, pending, False)
        keep = min(reader.pos, max(0, pending - LEFT))
        self._buf = page[keep:]
        self._pending = pending - keep
        reader.rebase(keep)
        self._reader = reader
        self._fast = None
        self._parts = []
        self._base = 0
        self._floor = -1

    def _advance_read(self, final: bool) -> str:
        buf = self._buf
        pending = self._pending
        limit = len(buf) if final else len(buf) - RIGHT
        if limit <= pending:
            return ""
        reader = self._reader
        if reader is not None:
            if reader.hidden_all():
                return self._give_up()
            reader.advance(buf, limit, final)
            if reader.hidden_all():
                return self._give_up()
            cut = len(buf) if final else reader.pos
            if not final:  # numbers go on through inline tags (and, to the finder, raw text's)
                floor = self._floor if self._floor > pending else -1
                clear = _cut_clear_of_splits(buf, pending, cut, floor)
                if clear is None:
                    self._floor = cut  # no place to cut up to there
                cut = clear or pending
        else:
            cut = len(buf) if final else (_safe_cut(buf, pending, limit) or pending)
        if cut <= pending:
            return ""
        self._offset = 0
        out = self._rewrite(buf, pending, cut)
        keep = max(0, cut - LEFT)
        self._buf = buf[keep:]
        self._pending = cut - keep
        self._floor = -1
        if reader is not None:
            reader.rebase(keep, cut)
        return out

    def _give_up(self) -> str:
        """Pass the rest of the page through unchanged, from what is held on."""
        out = self._buf[self._pending :]
        self._buf = ""
        self._pending = 0
        self._passthrough = True
        self._fast = None
        self._reader = None
        self._parts = []
        return out

    def _place(self, text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
        """Where the spans in the window being given out stand (``markup.placed``'s contract)."""
        lo, hi = self._window
        kept: list[tuple[int, int, bool]] = []
        fast = self._fast
        if fast is not None:
            offset = self._offset
            for start, end in spans:
                if lo <= start and end <= hi:
                    if self._saved is None:
                        self._save()
                    if text.find("<", start, end) >= 0:  # split by inline tags
                        if fast.split_in_text(start + offset, end + offset):
                            kept.append((start, end, False))
                        continue
                    where = fast.where(start + offset, end + offset)
                    if where:
                        kept.append((start, end, where == 2))
            return kept
        if self._reader is None:
            return [(s, e, False) for s, e in spans if lo <= s and e <= hi]
        marks = self._reader.marks
        i = 0
        for start, end in spans:
            if start < lo or end > hi:
                continue
            if text.find("<", start, end) >= 0:  # split by inline tags
                if self._split_marked(text, start, end):
                    kept.append((start, end, False))
                continue
            while i < len(marks) and marks[i][1] <= start:
                i += 1
            if i == len(marks):
                break
            mark_start, _, link = marks[i]
            if mark_start > start:
                continue
            if link is None:
                kept.append((start, end, False))
            elif link[0] <= start and end <= link[1]:
                kept.append((start, end, True))
        return kept

    def _split_marked(self, text: str, start: int, end: int) -> bool:
        """Whether each piece of a span split by tags is visible text read by the
        tree reader, each but the last ending where its tag starts a token."""
        assert self._reader is not None
        marks = self._reader.marks
        for a, b in pieces(text, start, end):
            i = bisect.bisect_right(marks, a, key=lambda mark: mark[1])
            if i == len(marks):
                return False
            mark_start, mark_end, link = marks[i]
            if link is not None or mark_start > a or mark_end < b:
                return False
            if b < end and mark_end != b:
                return False
        return True

    def _rewrite(
        self,
        buf: str,
        lo: int,
        hi: int,
        matched: list[tuple[_Scan, re.Match[str]]] | None = None,
    ) -> str:
        finder, target = self._finder, self._target
        assert finder is not None
        assert target is not None
        self._window = (lo, hi)
        self._saved = None
        # No number can stand in a short window without a digit (looked for only in
        # short ones: the finders' scans cost no more than this search in long ones).
        if hi - lo <= _SHORT and _DIGIT.search(buf, lo, hi) is None:
            return buf if lo == 0 and hi == len(buf) else buf[lo:hi]
        if isinstance(finder, AllFinder):
            found = finder.find(buf, self._html, self._place, self._budget)
        else:
            found = finder.find(buf, self._html, self._place, matched)
        if not found:
            return buf if lo == 0 and hi == len(buf) else buf[lo:hi]
        pieces: list[str] = []
        done = lo
        for hit in found:
            replacement = replacement_for(buf, hit, target, self._cc)
            if replacement is None:
                continue
            start, end, new = replacement
            if start < done or end > hi:
                raise RuntimeError(f"a replacement outside what is given out: {start}-{end}")
            pieces += (buf[done:start], new)
            done = end
        pieces.append(buf[done:hi])
        return "".join(pieces)


@mypyc_attr(allow_interpreted_subclasses=True)  # a public class: subclassed in both builds
class ByteRewriteStream:
    """A :class:`RewriteStream` fed bytes of a known ``encoding``: each piece is
    decoded incrementally (a character cut between pieces waits for its last
    byte; bytes invalid in the encoding pass through as they are) and what is
    given out is encoded back. The concatenation of everything returned is the
    whole page's rewrite, encoded."""

    __slots__ = ("_decoder", "_encoding", "_stream")

    def __init__(self, stream: RewriteStream, encoding: str = "utf-8") -> None:
        self._stream = stream
        self._encoding = codecs.lookup(encoding).name
        self._decoder = codecs.getincrementaldecoder(self._encoding)(errors="surrogateescape")

    @property
    def held(self) -> int:
        """How many characters fed so far are not given out yet (bytes of a
        character cut between pieces not counted)."""
        return self._stream.held

    def feed(self, chunk: bytes) -> bytes:
        """Take the next bytes of the page; return the bytes that can be given out now.
        Raises as :meth:`RewriteStream.feed` does (:class:`TypeError` for non-bytes)."""
        if self._stream.closed:
            raise StreamClosedError("feed() after close(): this page is finished")
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"a page piece is bytes, not {type(chunk).__name__}")
        return self._encode(self._stream.feed(self._decoder.decode(chunk)))

    def close(self, last: bytes = b"") -> bytes:
        """End the page, ``last`` being its final bytes: return everything still
        held, rewritten and encoded. Raises as :meth:`RewriteStream.close` does."""
        if self._stream.closed:
            if last:
                raise StreamClosedError("close() with a piece after close(): this page is finished")
            return b""
        if not isinstance(last, bytes | bytearray | memoryview):
            raise TypeError(f"a page piece is bytes, not {type(last).__name__}")
        return self._encode(self._stream.close(self._decoder.decode(last, final=True)))

    def _encode(self, text: str) -> bytes:
        return text.encode(self._encoding, "surrogateescape")
