"""The base of the frozen dataclasses of the compiled modules: pickling and copying them.

``pickle``, ``copy.copy`` and ``copy.deepcopy`` rebuild an object with
``cls.__new__(cls)`` and hand its state to ``__setstate__``. For a frozen
dataclass with ``slots=True`` the standard library supplies a pair of
``__getstate__``/``__setstate__`` that store the field values as a list and set
them back with ``object.__setattr__``, past the frozen ``__setattr__``. It adds
them only when the class defines neither, and mypyc gives every class it
compiles its own pair, which sets the state back with an ordinary ``setattr``:
the frozen ``__setattr__`` then refuses the first field and nothing compiled
would load or copy. :class:`Frozen` defines the standard library's pair once, so
that a compiled subclass inherits it instead of getting mypyc's (in the pure
build the dataclass decorator adds its own, which is the same).

The state is the standard library's (the list of field values in field order),
so a value pickled by either build loads in the other, and values pickled by
earlier pure builds still load. ``__reduce__`` is protocol 2's own answer at every
protocol (protocols 0 and 1 refuse a compiled class otherwise).
"""

from __future__ import annotations

import copyreg
import dataclasses
from typing import Any, Final

__all__ = ["Frozen", "field_values", "restore_fields"]

# What pickle's protocol 2 rebuilds an object with (its NEWOBJ opcode): cls.__new__(cls).
_NEWOBJ: Final = copyreg.__newobj__  # type: ignore[attr-defined]


def field_values(obj: object) -> list[object]:
    """The values of the dataclass instance ``obj``'s fields, in field order."""
    return [getattr(obj, f.name) for f in dataclasses.fields(_instance(obj))]


def restore_fields(obj: object, values: list[object]) -> None:
    """Set the fields of the dataclass instance ``obj`` to ``values``, frozen or not.

    ``values`` are in field order, as :func:`field_values` gives them; extra
    values are ignored and missing ones leave their fields unset (as the
    standard library's ``__setstate__`` does).
    """
    for f, value in zip(dataclasses.fields(_instance(obj)), values, strict=False):
        object.__setattr__(obj, f.name, value)


def _instance(obj: object) -> Any:
    # dataclasses.fields is typed for instances of a known dataclass; this is any one.
    return obj


class Frozen:
    """A base for frozen slotted dataclasses: pickles and copies them by their field values.

    Defines no fields and no slots. ``__getstate__`` is the list of field
    values; ``__setstate__`` sets them on the new, still empty, instance.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[object, ...]:
        """Rebuilt by ``cls.__new__(cls)`` and ``__setstate__``, at every pickle protocol.

        That is what protocols 2 and later do anyway; protocols 0 and 1 would
        otherwise refuse a compiled class, whose type defines its own ``__new__``.
        """
        return (_NEWOBJ, (type(self),), self.__getstate__())

    def __getstate__(self) -> list[object]:
        """The field values, in field order."""
        return field_values(self)

    def __setstate__(self, state: list[object]) -> None:
        """Set the fields to ``state`` (as :meth:`__getstate__` gives it)."""
        restore_fields(self, state)
