"""The one exception family of dni-engine.

Every error the library raises on purpose is a :class:`DniError`. Configuration
problems are gathered into a single :class:`ConfigError` that lists each problem
with the JSON path of the value at fault, so a user can fix them all in one go.

The whole tree, each class with the module it lives in; a class that is also a
builtin or third-party exception names that base in brackets, so existing
``except ValueError`` or ``except ImportError`` handlers still catch it::

    DniError                                            dni_engine.errors
    ├── ConfigError [ValueError]                        dni_engine.errors
    ├── StoreError                                      dni_engine.stores.base
    ├── ApiError                                        dni_engine.client
    │   ├── AuthError                                   dni_engine.client
    │   ├── NotFound                                    dni_engine.client
    │   ├── Conflict                                    dni_engine.client
    │   ├── ValidationFailed                            dni_engine.client
    │   ├── RateLimited                                 dni_engine.client
    │   ├── ServerError                                 dni_engine.client
    │   ├── ConnectionFailed                            dni_engine.client
    │   ├── InvalidResponse                             dni_engine.client
    │   └── AmbiguousResult                             dni_engine.client
    ├── Refusal                                         dni_engine.emulator.refusal
    │   └── NumbersUnavailable                          dni_engine.emulator.refusal
    ├── ConnectionDropped [httpx.RemoteProtocolError]   dni_engine.emulator.faults
    ├── MissingExtra [ImportError]                      dni_engine.extras
    │   └── PlotUnavailable                             dni_engine.sizing_report
    ├── StreamClosedError [ValueError]                  dni_engine.rewrite.stream
    └── RedisServerError                                dni_engine.testing.redis_server

:class:`ApiError` and its subclasses are what the vendor API client raises;
:class:`Refusal` is how the local emulator says no (an HTTP status and the
fields at fault), and :class:`ConnectionDropped` an injected fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["ConfigError", "DniError", "Problem", "format_path"]


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

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[Problem, ...], str | None]]:
        """Pickle as the problems and source, so the error crosses to and from worker processes."""
        return (type(self), (self.problems, self.source))
