"""Shared fixtures: the vendor's example pools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dni_engine.stores import MemoryStore, Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SEED_KINDS = ("geographic-city", "geographic-area-code", "tollfree", "national")


def load_example(name: str) -> Any:
    """The parsed JSON of ``examples/pools/<name>.json``."""
    return json.loads((EXAMPLES / "pools" / f"{name}.json").read_text())


@pytest.fixture(params=SEED_KINDS)
def seed_kind(request: pytest.FixtureRequest) -> str:
    """Each of the vendor document's four pool kinds."""
    return str(request.param)


STORE_KINDS = ("memory",)


@pytest.fixture(params=STORE_KINDS)
def store_factory(request: pytest.FixtureRequest) -> Callable[[], Store]:
    """Makes empty lease stores of each kind; the lease and engine tests run on every kind."""
    kind = request.param
    if kind == "memory":
        return MemoryStore
    raise LookupError(f"no store kind {kind!r}")
