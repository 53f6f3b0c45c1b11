"""Writing the tracking number where a number was found, in the way the page wrote it."""

from __future__ import annotations

from dni_engine.rewrite.numbers import Found, Target
from dni_engine.rewrite.separators import NBSP_IN_NUMBER, NUMBER_CHAR

__all__ = ["replacement_for"]


def replacement_for(
    text: str, found: Found, target: Target, pool_cc: int | None
) -> tuple[int, str] | None:
    """``(start, new text)`` replacing ``text[start:found.end]``; ``None`` to keep it."""
    if found.cc == target.cc and found.nsn == target.nsn:
        return None
    if found.link:
        return found.start, target.e164
    written = text[found.start : found.end]
    if found.cc == target.cc and len(found.nsn) == len(target.nsn):
        positions = [m.start(1) for m in NUMBER_CHAR.finditer(written) if m.group(1)]
        chars = list(written)
        for position, digit in zip(positions[-len(target.nsn) :], target.nsn, strict=True):
            chars[position] = digit
        return found.start, "".join(chars)
    international = found.international or target.cc != pool_cc
    new = target.international if international else target.national
    nbsp = NBSP_IN_NUMBER.search(written)
    if nbsp is not None:  # keep the number on one line, as the page did
        new = new.replace(" ", nbsp.group())
    start = found.start
    if written.count(")") > written.count("(") and text[start - 1 : start] == "(":
        start -= 1  # "(0117) ..." matched without its "(": replace the pair
    return start, new
