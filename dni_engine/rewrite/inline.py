"""Numbers split by inline markup: ``Call 0117 <b>496</b> 0123``.

A browser shows ``0117 <b>496</b> 0123`` as one number, so the rewriter finds
it as one: between two digits of a number, beside the separators, may stand
the start and end tags of *inline* elements (:data:`INLINE_ELEMENTS`) and
comments. The found number's span then covers those tags; its *pieces* are
the runs of text between them. Only the pieces' characters are rewritten,
every tag is kept as written.

Counted as inline: the phrasing elements that do not break a line and whose
content is shown (``a``, ``abbr``, ``b``, ``bdi``, ``bdo``, ``cite``, ``code``,
``data``, ``dfn``, ``em``, ``font``, ``i``, ``kbd``, ``mark``, ``q``, ``s``,
``samp``, ``small``, ``span``, ``strong``, ``time``, ``u``, ``var``; with any
attributes, quoted values holding ``>`` included, but no ``<`` inside the
tag), and comments without a ``-``, ``<`` or ``>`` inside. Not counted: ``sub`` and
``sup`` (digits in them are footnote marks and exponents: ``<sup>1</sup>0117
496 0123`` is a number after a footnote mark), ``br`` and every other void
element, block elements, ``script``, ``style``, raw-text and form elements,
and any start tag carrying ``data-dni-noswap`` (it breaks the number: neither
side is swapped as part of it).

Digits of two sibling elements with nothing between them
(``1</a><a href="/p/2">2</a>``: pagination, buttons, table-like lists) are
not one number: where a digit touches the next one through markup, the tags
between them may enter or leave elements, not close one and open another.
That much holds for a listed number, whose digits are known
(``01174<b>96</b>0123``); ``replace_all``, which has to tell where a number
ends, takes any tag between two touching digits as a boundary, as tags are at
a listed number's edges (``5<b>0117 496 0123</b>`` is swapped).
"""

from __future__ import annotations

import itertools
import re

__all__ = [
    "INLINE_ELEMENTS",
    "INLINE_TAG",
    "LOOSE_TAG",
    "is_split",
    "other_tag",
    "pieces",
    "sibling_joins",
    "strict_tags",
    "visible",
]

INLINE_ELEMENTS = (
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "cite",
    "code",
    "data",
    "dfn",
    "em",
    "font",
    "i",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "time",
    "u",
    "var",
)

# No "<" inside a joining tag (the tokenizer allows one): each look at a tag then
# ends at the next "<", which keeps the candidate scan linear on any page.
_ATTR_VALUE = r"""(?:"[^"<]*+"|'[^'<]*+'|[^\t\n\f\r <>"'][^\t\n\f\r <>]*+)"""
_ATTR = (
    r"(?!(?i:data-dni-noswap)(?=[\t\n\f\r />=]))"
    r"[^\t\n\f\r /<>][^\t\n\f\r /<>=]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+" + _ATTR_VALUE + ")?"
)
_NAMES = "|".join(sorted(INLINE_ELEMENTS, key=len, reverse=True))
#: A start or end tag of an inline element (no ``data-dni-noswap``), or a plain
#: comment: read as the HTML5 tokenizer reads it (quoted values may hold ``>``).
INLINE_TAG = (
    r"(?:</?(?i:" + _NAMES + r")(?=[\t\n\f\r />])(?:[\t\n\f\r /]++|" + _ATTR + r")*+>"
    r"|<!--[^<>-]*+-->)"
)
#: A short pattern for any tag or comment, for the listed numbers' large regexes:
#: what it matched is checked with :data:`INLINE_TAG` afterwards.
LOOSE_TAG = r"""<[/!A-Za-z](?:[^<>"']|"[^"<]*"|'[^'<]*')*>"""

_LOOSE = re.compile(LOOSE_TAG)
_STRICT = re.compile(INLINE_TAG)
_OPENING = re.compile(r"<[A-Za-z]")


def is_split(text: str, start: int, end: int) -> bool:
    """Whether the span ``text[start:end]`` holds markup (a number split by tags)."""
    return text.find("<", start, end) >= 0


def strict_tags(text: str, start: int, end: int) -> bool:
    """Whether every tag in ``text[start:end]`` (found with :data:`LOOSE_TAG`) is an
    inline element's tag or a plain comment, as :data:`INLINE_TAG` reads it."""
    return other_tag(text, start, end) < 0


def other_tag(text: str, start: int, end: int) -> int:
    """Where in ``text[start:end]`` the first ``<`` that does not start an inline
    element's tag or a plain comment (as :data:`INLINE_TAG` reads it) stands, or -1."""
    at = text.find("<", start, end)
    while at >= 0:
        tag = _STRICT.match(text, at, end)
        if tag is None:
            return at
        at = text.find("<", tag.end(), end)
    return -1


def sibling_joins(
    text: str, start: int, end: int, *, any_tags: bool = False
) -> list[tuple[int, int]]:
    """The places ``(start, end)`` in the span where tags closing one element and
    opening another stand between two digits (or letters) with no separator:
    there the span is two things, not one number. With ``any_tags``, every place
    where tags alone stand between two digits or letters."""
    joins: list[tuple[int, int]] = []
    runs = pieces(text, start, end)
    for (_, b), (a, _) in itertools.pairwise(runs):
        if not (text[b - 1].isalnum() and text[a].isalnum()):
            continue
        closing = text.find("</", b, a)
        if any_tags or (closing >= 0 and _OPENING.search(text, closing, a)):
            joins.append((b, a))
    return joins


def pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The runs of text between the tags of the span ``text[start:end]``, in order
    (empty runs left out)."""
    found = []
    at = start
    for tag in _LOOSE.finditer(text, start, end):
        if tag.start() > at:
            found.append((at, tag.start()))
        at = tag.end()
    if at < end:
        found.append((at, end))
    return found


def visible(text: str, start: int, end: int) -> tuple[str, list[tuple[int, int]]]:
    """The span's text without its tags, and its pieces (see :func:`pieces`)."""
    runs = pieces(text, start, end)
    return "".join(text[a:b] for a, b in runs), runs
