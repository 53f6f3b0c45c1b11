"""The characters that may stand between a phone number's digits, in text and in HTML."""

from __future__ import annotations

import html.entities
import re

from dni_engine.phone import FORMATTING_CHARS

__all__ = [
    "END",
    "MAX_SEPARATORS",
    "NBSP_ENTITY",
    "NBSP_IN_NUMBER",
    "NUMBER_CHAR",
    "PLUS_HTML",
    "PLUS_PERCENT",
    "REFERENCE",
    "SEPARATOR_REFERENCE",
    "SEP_CLASS",
    "SEP_CLASS_HTML",
    "SEP_ENTITY",
    "SEP_HTML",
    "SEP_LISTED_HTML",
    "SEP_PERCENT",
    "SEP_TEXT",
]

SEP_CLASS = "[" + "".join(re.escape(ch) for ch in sorted(FORMATTING_CHARS)) + "]"
# In HTML a line break inside text renders as a space, and a non-breaking space
# is often written as an entity.
SEP_CLASS_HTML = (
    "[" + "".join(re.escape(ch) for ch in sorted(FORMATTING_CHARS | {"\n", "\r"})) + "]"
)
NBSP_ENTITY = r"&(?:nbsp|#0*160|#[xX]0*[aA]0);"
MAX_SEPARATORS = 3
SEP_TEXT = f"{SEP_CLASS}{{0,{MAX_SEPARATORS}}}"
SEP_HTML = f"(?:{SEP_CLASS_HTML}|{NBSP_ENTITY}){{0,{MAX_SEPARATORS}}}"


def _references(chars: frozenset[str] | set[str]) -> str:
    """A regex for any character reference (named, decimal, hexadecimal) to ``chars``."""
    named = sorted(
        re.escape(name[:-1])
        for name, value in html.entities.html5.items()
        if value in chars and name.endswith(";")
    )
    decimal = sorted(str(ord(ch)) for ch in chars)
    hexadecimal = sorted(f"{ord(ch):x}" for ch in chars)
    return (
        "&(?:"
        + "".join(f"{name}|" for name in named)
        + f"#0*(?:{'|'.join(decimal)})|#[xX]0*(?i:{'|'.join(hexadecimal)}));"
    )


# Any separator written as a character reference (&ndash;, &#45;, &#x2D;, &nbsp;...):
# a browser shows the character itself.
SEP_ENTITY = _references(FORMATTING_CHARS | {"\n", "\r"})
# Inside a tel: target, separators may be percent-encoded (WordPress writes %20).
SEP_PERCENT = "%(?:20|09|2[dDeEfF]|28|29|[cC]2%[aA]0|[eE]2%80%(?:89|9[0-4]|[aA][fF])|[eE]2%88%92)"
# For listed numbers in HTML: any character reference or percent-encoded byte
# may stand between digits (a short pattern, so a pool's regex compiles fast);
# what it stands for is checked afterwards (SEPARATOR_REFERENCE).
SEP_LISTED_HTML = f"(?:{SEP_CLASS_HTML}|&#?\\w+;|%\\w\\w){{0,{MAX_SEPARATORS}}}"
# Character references and runs of percent-encoded bytes standing for a separator.
SEPARATOR_REFERENCE = re.compile(f"(?:{SEP_ENTITY}|(?:{SEP_PERCENT})+)")
# A "+" written as a character reference or percent-encoded.
PLUS_HTML = _references({"+"})
PLUS_PERCENT = "%2[bB]"
# A character reference or a percent-encoded byte: never a digit position.
REFERENCE = re.compile(r"&#?\w+;|%\w\w")

# One character (or character reference) of a matched number: digits and
# letters are the number's positions, references are kept as written.
NUMBER_CHAR = re.compile(r"&#?[0-9A-Za-z]+;|([0-9A-Za-z])")
NBSP_IN_NUMBER = re.compile(NBSP_ENTITY + "|\u00a0")

# The end of a number: a digit may not touch another digit, a vanity letter
# may not touch a letter or digit.
END = r"(?:(?<=[0-9])(?![0-9])|(?<=[A-Za-z])(?![0-9A-Za-z]))"
