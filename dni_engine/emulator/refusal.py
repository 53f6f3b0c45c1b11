"""How the emulator says no: an HTTP status, a message and the fields at fault."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dni_engine.errors import DniError, Problem

__all__ = ["NumbersUnavailable", "Refusal"]


class Refusal(DniError):
    """The emulator refuses a request.

    ``status`` is the HTTP status it answers with, ``message`` one plain
    sentence, and ``problems`` the fields at fault (JSON paths into the
    request body). :meth:`to_json` is the error body the API sends:
    ``{"message": ..., "errors": [{"field": ..., "message": ...}]}``.
    """

    def __init__(self, status: int, message: str, problems: Sequence[Problem] = ()) -> None:
        self.status = status
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [f"{status}: {message}", *(f"  {p}" for p in self.problems)]
        super().__init__("\n".join(lines))

    def to_json(self) -> dict[str, Any]:
        """The JSON error body for this refusal."""
        body: dict[str, Any] = {"message": self.message}
        if self.problems:
            body["errors"] = [{"field": p.path, "message": p.reason} for p in self.problems]
        return body


class NumbersUnavailable(Refusal):
    """The inventory cannot supply the numbers asked for (HTTP 422).

    ``field`` is the request field to change (``quantity``,
    ``phone_number_request.city``...).
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(422, f"numbers unavailable: {reason}", [Problem(field, reason)])
