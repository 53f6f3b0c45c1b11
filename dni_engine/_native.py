"""``mypyc_attr``, the class decorator the compiled build reads, for every build.

mypyc reads ``mypy_extensions.mypyc_attr`` when it compiles a module (for
example ``native_class=False``, or ``allow_interpreted_subclasses=True`` on a
public class users may subclass). A pure install needs no mypy: there a
decorator that returns its class unchanged stands in for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

__all__ = ["mypyc_attr"]

if TYPE_CHECKING:
    from _typeshed import IdentityFunction

try:  # read by mypyc when it compiles a module; a pure install needs no mypy
    from mypy_extensions import mypyc_attr
except ImportError:

    def mypyc_attr(*attrs: str, **kwattrs: object) -> IdentityFunction:
        """The class decorator mypyc reads: nothing at run time."""
        return _unchanged


_C = TypeVar("_C")


def _unchanged(cls: _C) -> _C:
    return cls
