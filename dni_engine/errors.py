"""The one exception family of dni-engine.

Every error the library raises on purpose is a :class:`DniError`. Configuration
problems are gathered into a single :class:`ConfigError` that lists each problem
with the JSON path of the value at fault, so a user can fix them all in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DniError(Exception):
    """Base class of every error raised by dni-engine."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: where it is and, in plain words, what is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def format_path(loc: Iterable[int | str]) -> str:
    """Render a location tuple as a JSON path: ``('a', 0, 'b')`` -> ``a[0].b``.

    An empty location renders as ``$`` (the document itself).
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


class ConfigError(DniError, ValueError):
    """A configuration (pool JSON, options) is invalid.

    ``problems`` lists every problem found, each with its JSON path; ``str()``
    gives one line per problem.
    """

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.problems)
        summary = f"{head}{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join([summary, *(f"  {p}" for p in self.problems)]))
