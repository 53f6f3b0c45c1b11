"""Writing the tracking number where a number was found, in the way the page wrote it.

The found number's written form is matched to one of its
:func:`~dni_engine.rewrite.numbers.written_forms` (``+CC``, ``00CC``,
``+CC (0)``, national, another national prefix), and the tracking number is
written in the same form. What follows the prefix (country code, trunk) is the
part whose grouping counts:

- written as one run of digits (``+441174090162``, ``01174090162``,
  ``+44(0)1174090162``): the tracking number's digits, as one run too;
- grouped as the tracking number groups itself (phonenumbers' format, national
  or international as the page wrote it): its digits poured into the page's
  digit positions, every other character kept (``0117-409-0162``);
- grouped otherwise (``020 7839 5555`` against ``0117 409 0162``): the tracking
  number in its own groups, joined by the page's own separators, parentheses
  and prefix as written (``(020) 7839 5555`` becomes ``(0117) 409 0162``).

Vanity letters are positions like digits: ``1-800-444-CARS`` is grouped
3-3-4 like any US number, so the digits are poured; ``1-800-FLOWERS`` is not,
so it becomes ``1-212-555-0143``.

A number split by inline tags (``0117 <b>496</b> 0123``) is restyled as the
text a browser shows (its pieces joined), and the new text is cut back into
the pieces, every tag kept where it was: by character position when the new
text has its digits where the old had them (``0117 <b>409</b> 0162``); otherwise a tag
standing between two digit groups stays between the same two groups
(``<b>020</b> 7839 5555`` becomes ``<b>0117</b> 409 0162``), and one standing
inside a group, or after a group the new text does not have, follows the
same count of digits.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter

from dni_engine.phone import letters_to_digits
from dni_engine.rewrite.inline import visible
from dni_engine.rewrite.numbers import (
    Found,
    Target,
    canonical_text,
    phone_context,
    written_forms,
)
from dni_engine.rewrite.separators import NBSP_IN_NUMBER, NUMBER_CHAR, PLUS_HTML

__all__ = ["replacement_for"]

_PLUS = re.compile(r"\+|" + PLUS_HTML)
_DIGIT = re.compile(r"[0-9]")
_OPENING = re.compile(r"(?:\(|%28|&#0*40;|&#[xX]0*28;|&lpar;)\Z")


def replacement_for(
    text: str, found: Found, target: Target, pool_cc: int | None
) -> tuple[int, int, str] | None:
    """``(start, end, new text)`` replacing ``text[start:end]``; ``None`` to keep it.

    ``start``/``end`` are ``found``'s own span but for a ``(`` the page wrote
    before it, or a ``tel:`` target's ``;phone-context=`` (dropped: an E.164
    number has no context).
    """
    if found.cc == target.cc and found.nsn == target.nsn:
        return None
    if found.link:
        # The whole number goes, with a "(" written before its first digit.
        opening = _OPENING.search(text, max(found.start - 8, 0), found.start)
        start = opening.start() if opening is not None else found.start
        context = phone_context(text, found.end)
        if context is not None:
            return start, context.end(), target.e164 + context.group(1)
        return start, found.end, target.e164
    written = text[found.start : found.end]
    if "<" in written:
        return _split_replacement(text, found, target, pool_cc)
    if found.cc == target.cc:
        restyled = _restyled(written, found.cc, found.nsn, target)
        if restyled is not None:
            return found.start, found.end, restyled
    international = found.international or target.cc != pool_cc
    new = target.international if international else target.national
    nbsp = NBSP_IN_NUMBER.search(written)
    if nbsp is not None:  # keep the number on one line, as the page did
        new = new.replace(" ", nbsp.group())
    start = found.start
    if written.count(")") > written.count("(") and text[start - 1 : start] == "(":
        start -= 1  # "(0117) ..." matched without its "(": replace the pair
    return start, found.end, new


@functools.lru_cache(maxsize=4096)
def _restyled(written: str, cc: int, nsn: str, target: Target) -> str | None:
    """The tracking number written as ``written`` writes the found number ``+{cc}{nsn}``;
    ``None`` when its form cannot be told or the tracking number has no such form.
    Cached: a site writes its number the same few ways on every page."""
    positions = [m.span(1) for m in NUMBER_CHAR.finditer(written) if m.group(1)]
    plus = _PLUS.match(written) is not None
    digits = ("+" if plus else "") + letters_to_digits("".join(written[a:b] for a, b in positions))
    form = next((f for f in written_forms(cc, nsn) if f.digits == digits), None)
    if form is None:
        return None
    ours = next((f for f in written_forms(target.cc, target.nsn) if f.kind == form.kind), None)
    canonical = canonical_text(target.cc, target.nsn, form.kind)
    if ours is None or canonical is None or ours.prefix != form.prefix:
        return None
    national = positions[form.prefix :]
    new_digits = ours.digits.lstrip("+")[ours.prefix :]
    if not national or not new_digits:
        return None
    groups, gaps = _grouping(written, national)
    canonical_spans = [m.span() for m in _DIGIT.finditer(canonical)][ours.prefix :]
    own_groups, _ = _grouping(canonical, canonical_spans)
    head, tail = written[: national[0][0]], written[national[-1][1] :]
    if [len(g) for g in groups] == [len(g) for g in own_groups]:
        chars = list(written)
        for (a, _), digit in zip(national, new_digits, strict=True):
            chars[a] = digit
        return "".join(chars)
    if len(groups) == 1:
        return head + new_digits + tail
    sizes = [len(g) for g in own_groups]
    new_gaps = _gaps_for(gaps, len(sizes) - 1)
    pieces, at = [], 0
    for i, size in enumerate(sizes):
        if i:
            pieces.append(new_gaps[i - 1])
        pieces.append(new_digits[at : at + size])
        at += size
    new = head + "".join(pieces) + tail
    if _balance(new) != _balance(written):
        return None
    return new


def _grouping(
    text: str, positions: list[tuple[int, int]]
) -> tuple[list[list[tuple[int, int]]], list[str]]:
    """The digit positions cut into groups where anything stands between two of them,
    and what stands there."""
    groups: list[list[tuple[int, int]]] = [[positions[0]]]
    gaps: list[str] = []
    for previous, current in itertools.pairwise(positions):
        between = text[previous[1] : current[0]]
        if between:
            gaps.append(between)
            groups.append([current])
        else:
            groups[-1].append(current)
    return groups, gaps


def _gaps_for(gaps: list[str], count: int) -> list[str]:
    """``count`` separators in the page's style, from the ``gaps`` it wrote.

    As many as written: the same, in order. Otherwise the first and the last
    stay where they were (parentheses around the area code close where they
    did) and the ones between are the page's usual separator.
    """
    if count == len(gaps):
        return list(gaps)
    plain = [gap for gap in gaps if "(" not in gap and ")" not in gap]
    if plain:
        usual = Counter(plain).most_common(1)[0][0]
    else:
        usual = gaps[-1].replace("(", "").replace(")", "") or " "
    if count <= 1:
        return gaps[:count]
    return [gaps[0], *([usual] * (count - 2)), gaps[-1]]


def _balance(text: str) -> int:
    return text.count("(") - text.count(")")


def _split_replacement(
    text: str, found: Found, target: Target, pool_cc: int | None
) -> tuple[int, int, str] | None:
    """The replacement of a number split by inline tags: the text a browser shows
    restyled, then cut back into the pieces between the tags, which stay as written."""
    shown, runs = visible(text, found.start, found.end)
    before = 1 if found.start > 0 else 0
    local = text[found.start - before : found.start] + shown
    replaced = replacement_for(
        local, found._replace(start=before, end=before + len(shown)), target, pool_cc
    )
    if replaced is None:
        return None
    start, _, new = replaced
    old = shown
    if start < before:  # the "(" written before the number is replaced too
        old = local[start:before] + shown
        runs = [(runs[0][0] - (before - start), runs[0][1]), *runs[1:]]
    cuts: list[int] = []
    at = 0
    for a, b in runs[:-1]:
        at += b - a
        cuts.append(at)
    points = _cut_points(old, new, cuts)
    out: list[str] = []
    done = 0
    for (a, b), (c, d) in zip(runs, itertools.pairwise([0, *points, len(new)]), strict=True):
        if out or a > runs[0][0]:
            out.append(text[done:a])
        out.append(new[c:d])
        done = b
    return runs[0][0], found.end, "".join(out)


def _cut_points(old: str, new: str, cuts: list[int]) -> list[int]:
    """Where the places ``cuts`` of ``old`` (a number's text) fall in ``new`` (its
    replacement): the same positions when both have their digits at the same
    positions, else the same gap between digit groups, else after the same count
    of digits."""
    old_digits = [m.span(1) for m in NUMBER_CHAR.finditer(old) if m.group(1)]
    new_digits = [m.span(1) for m in NUMBER_CHAR.finditer(new) if m.group(1)]
    if len(old) == len(new) and old_digits == new_digits:
        return cuts
    if not old_digits or not new_digits:
        return [min(cut, len(new)) for cut in cuts]
    old_groups, _ = _grouping(old, old_digits)
    new_groups, _ = _grouping(new, new_digits)
    group_of = [i for i, group in enumerate(old_groups) for _ in group]
    points: list[int] = []
    for cut in cuts:
        count = sum(1 for a, _ in old_digits if a < cut)
        if count == 0:  # in what comes before the first digit
            point = max(new_digits[0][0] - (old_digits[0][0] - cut), 0)
        elif count == len(old_digits):  # after the last digit
            point = min(new_digits[-1][1] + (cut - old_digits[-1][1]), len(new))
        else:
            group = group_of[count - 1]
            between = group_of[count] != group
            if between and group + 1 < len(new_groups):
                gap_start, gap_end = new_groups[group][-1][1], new_groups[group + 1][0][0]
                if cut == old_digits[count][0]:  # at the next group's start
                    point = gap_end
                else:  # as far into the separator as it was
                    point = min(gap_start + cut - old_digits[count - 1][1], gap_end)
            elif count <= len(new_digits):
                point = new_digits[count - 1][1]
            else:
                point = len(new)
        points.append(max(point, points[-1] if points else 0))
    return points
