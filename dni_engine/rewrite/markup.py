"""Reading HTML the way its tokenizer does: where a number is text, where a link target."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["placed"]

# The tokenizer's view of a tag: a name, then attributes whose quoted values may
# hold '>' (a quote left open runs to the end of the text), closed by '>'.
_ATTR_VALUE = r"""(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\t\n\f\r >"'][^\t\n\f\r >]*+)"""
_ATTR = r"[^\t\n\f\r />][^\t\n\f\r />=]*+(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+" + _ATTR_VALUE + ")?"
_NOSWAP = "data-dni-noswap"
_NOSWAP_NAME = r"(?i:data-dni-noswap)(?=[\t\n\f\r />=]|\Z)"
_ATTRS = r"(?:[\t\n\f\r /]++|" + _ATTR + r")*+"
_ATTRS_SWAPPABLE = r"(?:[\t\n\f\r /]++|(?!" + _NOSWAP_NAME + ")" + _ATTR + r")*+"
_TAG_NAME = r"[A-Za-z][^\t\n\f\r />]*+"
_RAW_TEXT = ("script", "style", "xmp", "iframe", "noembed", "noframes")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)

_TAG = re.compile(r"<(/?)(" + _TAG_NAME + ")(" + _ATTRS + ")(>?)")
_ATTR_PARTS = re.compile(
    r"([^\t\n\f\r />][^\t\n\f\r />=]*+)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(" + _ATTR_VALUE + "))?"
)
_COMMENT_END = re.compile(r"--!?>")
_LINK_SCHEME = re.compile(r"[\t\n\f\r ]*+(?i:tel|callto):")


def _raw_name(name: str) -> str:
    return f"(?i:{name})(?=[\t\n\f\r />])"


def _raw_element(name: str) -> str:
    """A whole raw-text element: its content runs to its own end tag, whatever it holds."""
    n = _raw_name(name)
    return f"<{n}{_ATTRS}>[^<]*+(?:<(?!/{n})[^<]*+)*+</{n}{_ATTRS}>"


_RAW_CLOSE = {name: re.compile("</" + _raw_name(name)) for name in _RAW_TEXT}

# Everything a number may sit in without being touched, or in which it is text:
# text, complete comments, doctypes and the like, end tags, whole raw-text
# elements, and start tags without data-dni-noswap. Matched from a position
# known to be in text, with the end of the text set to a candidate number's
# start, it stops either exactly there (the number is in text) or at the start
# of whatever encloses the number (a tag, comment or script), or at a
# data-dni-noswap tag. Possessive everywhere: it never backtracks.
_PLAIN_MARKUP = re.compile(
    r"(?:[^<]++"
    r"|<(?![A-Za-z/!?])"
    r"|<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
    r"|<!(?!--)[^>]*+>"
    r"|<\?[^>]*+>"
    r"|</(?![A-Za-z])[^>]*+>"
    r"|</"
    + _TAG_NAME
    + _ATTRS
    + ">"
    + "".join("|" + _raw_element(name) for name in _RAW_TEXT)
    + r"|<(?!(?i:"
    + "|".join(_RAW_TEXT)
    + r")(?=[\t\n\f\r />]|\Z))"
    + _TAG_NAME
    + _ATTRS_SWAPPABLE
    + r">)*+"
)


class _Unit(NamedTuple):
    """One piece of markup starting at a ``<``."""

    end: int  # where it ends (len(text) when it never closes)
    resume: int  # where scanning goes on: past a raw-text element's content
    hidden: bool  # nothing in it (or, for raw text, in its content) is swapped
    tag: re.Match[str] | None  # a complete start or end tag
    name: str  # lower-case tag name
    closing: bool
    noswap: bool
    empty: bool  # a void element or a self-closed tag: it has no content


def _unit_at(text: str, at: int) -> _Unit:
    """The piece of markup at ``text[at] == '<'``, by the HTML tokenizer's rules."""
    size = len(text)
    if text.startswith("<!--", at):
        if text.startswith(">", at + 4):
            end = at + 5
        elif text.startswith("->", at + 4):
            end = at + 6
        else:
            close = _COMMENT_END.search(text, at + 4)
            end = close.end() if close else size
        return _Unit(end, end, True, None, "", False, False, True)
    tag = _TAG.match(text, at)
    if tag is None:
        if text.startswith(("<!", "<?", "</"), at):  # bogus comment: up to the next '>'
            gt = text.find(">", at + 2)
            end = gt + 1 if gt >= 0 else size
            return _Unit(end, end, True, None, "", False, False, True)
        return _Unit(at + 1, at + 1, False, None, "", False, False, True)  # a lone '<'
    if not tag.group(4):  # the tag never closes: the rest of the text is inside it
        return _Unit(size, size, True, None, "", False, False, True)
    name = tag.group(2).lower()
    closing = bool(tag.group(1))
    end = tag.end()
    if closing:
        return _Unit(end, end, False, tag, name, True, False, True)
    noswap = any(
        attr.group(1).lower() == _NOSWAP
        for attr in _ATTR_PARTS.finditer(text, tag.start(3), tag.end(3))
    )
    empty = name in _VOID or tag.group(3).endswith("/")
    if name in _RAW_TEXT:
        close = _RAW_CLOSE[name].search(text, end)
        resume = close.start() if close else size
        return _Unit(end, resume, True, tag, name, False, noswap, empty)
    return _Unit(end, end, False, tag, name, False, noswap, empty)


def _element_end(text: str, name: str, at: int) -> int:
    """Where the element ``name`` whose start tag ends at ``at`` ends (its end tag counted).

    Same-named elements nested inside are counted; when the end tag is missing
    the element runs to the end of the text.
    """
    depth = 1
    while (lt := text.find("<", at)) >= 0:
        unit = _unit_at(text, lt)
        if unit.tag is not None and unit.name == name:
            if unit.closing:
                depth -= 1
                if depth == 0:
                    return unit.end
            elif not unit.empty:
                depth += 1
        at = unit.resume
    return len(text)


def _link_targets(text: str, tag: re.Match[str]) -> list[tuple[int, int]]:
    """Where numbers may be swapped in ``tag``: its ``href`` values after ``tel:``/``callto:``."""
    targets = []
    for attr in _ATTR_PARTS.finditer(text, tag.start(3), tag.end(3)):
        value_start, value_end = attr.span(2)
        if value_start < 0 or attr.group(1).lower() != "href":
            continue
        body = value_start + 1 if text[value_start] in "\"'" else value_start
        scheme = _LINK_SCHEME.match(text, body, value_end)
        if scheme is not None:
            targets.append((scheme.end(), value_end))
    return targets


def placed(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """The spans (sorted, not overlapping) that may be swapped in HTML ``text``.

    Each comes back as ``(start, end, in_link)``: in text, or (``in_link``) in
    a ``tel:``/``callto:`` link target. Spans anywhere else are dropped.
    """
    placed: list[tuple[int, int, bool]] = []
    safe = 0  # a position in text, up to which the markup has been read
    hidden_to = 0  # nothing before this may be swapped
    links: list[tuple[int, int]] = []  # link targets of the tag read last (safe is its end)
    for start, end in spans:
        if start < hidden_to:
            continue
        if start < safe:  # inside the tag read last
            if any(a <= start and end <= b for a, b in links):
                placed.append((start, end, True))
            continue
        while True:
            plain = _PLAIN_MARKUP.match(text, safe, start)  # always matches, maybe empty
            stop = plain.end() if plain else safe
            if stop >= start:
                placed.append((start, end, False))
                safe = end
                break
            unit = _unit_at(text, stop)
            if unit.hidden:  # a comment, a raw-text element, or markup that never closes
                hidden_to = safe = unit.resume
            elif unit.noswap:
                hidden_to = safe = (
                    unit.end if unit.empty else _element_end(text, unit.name, unit.end)
                )
            elif unit.end <= start:
                safe = unit.end
                continue
            else:
                safe = unit.end
                links = _link_targets(text, unit.tag) if unit.tag is not None else []
                if any(a <= start and end <= b for a, b in links):
                    placed.append((start, end, True))
                break
            if start < hidden_to:
                break
    return placed
