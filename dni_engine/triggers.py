"""The ``url_triggers`` grammar and its linear-time wildcard matching.

A trigger is ``name`` (the parameter is present) or ``name=pattern``; several
conditions joined by ``&`` must all hold. In a pattern ``*`` and ``%`` both mean
"any run of characters, possibly empty"; everything else is literal. Names and
values compare case-insensitively. Query strings are percent-decoded (``+`` is a
space) before matching; trigger text itself is never decoded, because ``%`` is a
wildcard there.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from dni_engine._frozen import Frozen

__all__ = [
    "MAX_TRIGGER_LENGTH",
    "WILDCARDS",
    "Condition",
    "Glob",
    "Trigger",
    "parse_query",
    "parse_trigger",
    "query_of",
]

MAX_TRIGGER_LENGTH = 512
WILDCARDS = "*%"
_WILDCARD_RUN = re.compile(r"\*{2,}")


@dataclass(frozen=True, slots=True)
class Glob(Frozen):
    """A compiled wildcard pattern: the literal pieces between the ``*`` runs.

    ``Glob.compile('ab*cd*')`` has ``pieces=('ab', 'cd', '')``. Runs of wildcards
    collapse (``a**b`` is ``a*b``), so two globs are equal exactly when they
    accept the same texts. A pattern with no wildcard has a single piece and
    matches only that exact (lower-cased) text. Matching is greedy leftmost,
    which is exact for ``*``-only globs and looks at each character of the
    value at most once per piece boundary (no backtracking).
    """

    pieces: tuple[str, ...]

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        """Compile ``pattern`` (lower-cased, ``%`` read as ``*``)."""
        text = _WILDCARD_RUN.sub("*", pattern.lower().replace("%", "*"))
        return cls(tuple(text.split("*")))

    @property
    def is_literal(self) -> bool:
        """True when the pattern has no wildcard at all."""
        return len(self.pieces) == 1

    @property
    def matches_anything(self) -> bool:
        """True for ``*`` (or ``%``, ``**``...): every text matches."""
        return self.pieces == ("", "")

    @property
    def prefix(self) -> str:
        """The literal text every match starts with (``''`` if it starts with a wildcard)."""
        return self.pieces[0]

    @property
    def literal_length(self) -> int:
        """Number of literal characters; longer means more specific."""
        return sum(len(p) for p in self.pieces)

    def __str__(self) -> str:
        return "*".join(self.pieces)

    def matches(self, value: str) -> bool:
        """True when the already lower-cased ``value`` matches the whole pattern."""
        pieces = self.pieces
        if len(pieces) == 1:
            return value == pieces[0]
        first, last = pieces[0], pieces[-1]
        if len(value) < len(first) + len(last):
            return False
        if not value.startswith(first) or not value.endswith(last):
            return False
        # Each middle piece is searched leftmost in what is left between the
        # first and last pieces; taking the leftmost occurrence never loses a
        # match, so there is nothing to backtrack to.
        pos = len(first)
        end = len(value) - len(last)
        for piece in pieces[1:-1]:
            found = value.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True


@dataclass(frozen=True, slots=True)
class Condition(Frozen):
    """One ``name`` or ``name=pattern`` condition of a trigger.

    ``glob`` is ``None`` when the parameter only has to be present; ``name=*``
    (any value, even empty) means the same and is stored the same way.
    ``written`` keeps the condition as the configuration spelled it. Two
    conditions are equal when they accept the same queries.
    """

    name: str
    glob: Glob | None
    written: str = field(default="", compare=False)

    def holds(self, params: Mapping[str, Sequence[str]]) -> bool:
        """True when the (lower-cased, decoded) query ``params`` satisfy this condition."""
        values = params.get(self.name)
        if values is None:
            return False
        glob = self.glob
        if glob is None:
            return True
        return any(glob.matches(v) for v in values)


@dataclass(frozen=True, slots=True)
class Trigger(Frozen):
    """A parsed url_trigger: all of its ``conditions`` must hold.

    ``text`` is the trigger as written; ``conditions`` are its distinct
    conditions in the order written (a repeated condition counts once).
    """

    text: str
    conditions: tuple[Condition, ...]

    @property
    def specificity(self) -> int:
        """How many distinct conditions the trigger has (more wins between pools)."""
        return len(self.conditions)

    def matches(self, params: Mapping[str, Sequence[str]]) -> bool:
        """True when every condition holds for the decoded query ``params``."""
        return all(c.holds(params) for c in self.conditions)


def parse_trigger(text: str) -> Trigger:
    """Parse one url_trigger, raising ``ValueError`` with a plain reason if malformed.

    Rules: not empty; at most 512 characters; conditions joined by ``&`` are each
    ``name`` or ``name=pattern`` with a non-empty name free of wildcards,
    whitespace and ``#``; the pattern may use ``*``/``%`` wildcards.
    """
    if not isinstance(text, str):
        raise ValueError("a url_trigger must be a string")
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty url_trigger")
    if len(stripped) > MAX_TRIGGER_LENGTH:
        raise ValueError(
            f"url_trigger is {len(stripped)} characters long; the limit is {MAX_TRIGGER_LENGTH}"
        )
    stripped = stripped.removeprefix("?")
    conditions: list[Condition] = []
    for index, part in enumerate(stripped.split("&")):
        if not part:
            raise ValueError(f"condition {index + 1} of the trigger is empty (stray '&')")
        name, has_value, pattern = part.partition("=")
        if not name:
            raise ValueError(f"condition {part!r} has no parameter name before '='")
        bad = [ch for ch in name if ch in WILDCARDS or ch.isspace() or ch == "#"]
        if bad:
            raise ValueError(
                f"parameter name {name!r} may not contain {bad[0]!r}; "
                "wildcards are only allowed in the value"
            )
        if any(ch.isspace() and ch != " " for ch in pattern) or "#" in pattern:
            raise ValueError(f"value pattern {pattern!r} contains a control character or '#'")
        glob = Glob.compile(pattern) if has_value else None
        if glob is not None and glob.matches_anything:
            glob = None  # name=* accepts any value, even an empty one: "present"
        condition = Condition(name.lower(), glob, part)
        if condition not in conditions:
            conditions.append(condition)
    return Trigger(text=text, conditions=tuple(conditions))


def parse_query(query: str, only: Container[str] | None = None) -> dict[str, list[str]]:
    """Decode a query string into lower-cased ``{name: [values...]}``.

    Percent-decoding never fails (bad escapes stay literal, invalid UTF-8 becomes
    U+FFFD); ``+`` is a space; a parameter with no ``=`` has the value ``''``.
    Parameters with an empty name are dropped. With ``only``, parameters whose
    (decoded, lower-cased) name is not in it are skipped without decoding
    their values: a matcher passes the names its rules can use.
    """
    params: dict[str, list[str]] = {}
    if not query:
        return params
    # Most queries have nothing to decode: then no part is looked at for it.
    coded = "%" in query or "+" in query
    for part in query.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name = (
            unquote_plus(raw_name, errors="replace").lower()
            if coded and ("%" in raw_name or "+" in raw_name)
            else raw_name.lower()
        )
        if not name or (only is not None and name not in only):
            continue
        value = (
            unquote_plus(raw_value, errors="replace").lower()
            if coded and ("%" in raw_value or "+" in raw_value)
            else raw_value.lower()
        )
        bucket = params.get(name)
        if bucket is None:
            params[name] = [value]
        else:
            bucket.append(value)
    return params


def query_of(url: str) -> str:
    """The query string of a landing URL: after the first ``?``, before any ``#``.

    The fragment is never part of the query (browsers do not send it), even
    when it holds a ``?``. A URL without ``?`` has an empty query. Never raises
    for a ``str``.
    """
    return url.partition("#")[0].partition("?")[2]
