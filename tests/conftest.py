"""Shared fixtures: the vendor's example pools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
