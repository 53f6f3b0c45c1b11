"""``make demo``: the main job on the example pools, with the embedded store."""

from __future__ import annotations

from pathlib import Path

from dni_engine.schema import load_pools
from dni_engine.summary import pool_summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    """Validate the example pools and print a summary of each."""
    files = sorted((EXAMPLES / "pools").glob("*.response.json"))
    for path in files:
        for pool in load_pools(path.read_bytes(), source=str(path)):
            print(pool_summary(pool))
            print()
    print(f"{len(files)} example pools validated.")


if __name__ == "__main__":
    main()
