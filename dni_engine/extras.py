"""The optional parts of dni-engine and the extra each one needs.

A website installs only the core (``pip install dni-engine``): the schema, the
rules, the engine with its embedded store, the rewriter, the API client and the
``dni-engine`` command. Everything else comes with an extra, and importing it
without that extra raises :class:`MissingExtra`, which names the extra to
install::

    ImportError: dni_engine.stores.redis needs the 'redis' extra: pip install 'dni-engine[redis]'

Each optional module guards its third-party imports the same way::

    try:
        import redis
    except ImportError as exc:
        raise MissingExtra("dni_engine.stores.redis", "redis", exc.name) from exc

so the error is raised when that module is imported, never by ``import dni_engine``.
"""

from __future__ import annotations

from dni_engine.errors import DniError

__all__ = ["MissingExtra"]


class MissingExtra(DniError, ImportError):
    """An optional part of dni-engine was imported without the extra it needs.

    ``part`` is what needs it (``dni_engine.stores.redis``), ``extra`` the extra
    to install (``redis``); ``name`` is the module that could not be imported,
    when known (the chained ``ImportError`` is ``__cause__``).
    """

    def __init__(self, part: str, extra: str, missing: str | None = None) -> None:
        self.part = part
        self.extra = extra
        super().__init__(
            f"{part} needs the {extra!r} extra: pip install 'dni-engine[{extra}]'", name=missing
        )

    def __reduce__(self) -> tuple[type[MissingExtra], tuple[str, str, str | None]]:
        return (type(self), (self.part, self.extra, self.name))
