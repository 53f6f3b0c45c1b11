"""The characters that may stand between a phone number's digits, in text and in HTML."""

from __future__ import annotations

import re

from dni_engine.phone import FORMATTING_CHARS

__all__ = [
    "END",
    "MAX_SEPARATORS",
    "NBSP_ENTITY",
    "NBSP_IN_NUMBER",
    "NUMBER_CHAR",
    "SEP_CLASS",
    "SEP_CLASS_HTML",
    "SEP_HTML",
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

# One character (or character reference) of a matched number: digits and
# letters are the number's positions, references are kept as written.
NUMBER_CHAR = re.compile(r"&#?[0-9A-Za-z]+;|([0-9A-Za-z])")
NBSP_IN_NUMBER = re.compile(NBSP_ENTITY + "|\u00a0")

# The end of a number: a digit may not touch another digit, a vanity letter
# may not touch a letter or digit.
END = r"(?:(?<=[0-9])(?![0-9])|(?<=[A-Za-z])(?![0-9A-Za-z]))"
