"""The Redis store's Lua scripts: package data, and replies decoded by the names they list.

The scripts' headers name every value of the replies the store decodes by name;
these tests hold the Python side (the store's field lists, ``PoolStats`` and
``Lease``) to those headers, so a reordered dataclass or script cannot shift a
counter or a lease field on Redis only.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest

from dni_engine.leases import Lease, PoolStats
from dni_engine.stores import redis as redis_store


def header(script: str) -> str:
    """The script's leading comment, its lines joined by single spaces."""
    lines = []
    for line in script.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def listed(text: str, opening: str) -> tuple[str, ...]:
    """The comma-separated names that follow ``opening`` up to the closing brace."""
    found = re.search(re.escape(opening) + r"([^}]*)\}", text)
    assert found is not None, opening
    return tuple(name.strip() for name in found.group(1).split(","))


@pytest.mark.parametrize(
    ("name", "text"),
    [("pool.lua", redis_store.POOL_SCRIPT), ("registry.lua", redis_store.REGISTRY_SCRIPT)],
)
def test_scripts_are_the_package_data_files(name: str, text: str) -> None:
    shipped = resources.files("dni_engine.stores").joinpath("lua", name)
    assert shipped.read_text(encoding="utf-8") == text
    assert "KEYS[1]" in header(text)
    assert "returns" in header(text)


def test_stats_reply_names_match_the_script_header_and_pool_stats() -> None:
    names = listed(header(redis_store.POOL_SCRIPT), "{'stats', now,")
    assert names == redis_store._STATS_FIELDS
    # Every PoolStats field is set by name: the counters, plus the pool and the time.
    fields = {field.name for field in dataclasses.fields(PoolStats)}
    assert fields == {"pool_key", "at", *redis_store._STATS_FIELDS}


def test_snapshot_names_match_the_script_header_and_lease() -> None:
    script = redis_store.POOL_SCRIPT
    names = listed(header(script), "snapshot {")
    assert names == redis_store._Snapshot._fields
    # The script's SNAPSHOT list holds the record fields that follow the member.
    record = listed(script, "local SNAPSHOT = {")
    assert len(record) == len(names) - 1
    # Every Lease field comes from the snapshot but the two the store knows itself.
    fields = {field.name for field in dataclasses.fields(Lease)}
    assert fields - {"lease_id", "pool_key"} == set(names) - {"member"}


def keys_of(script: str) -> tuple[str, ...]:
    """The names the script's header gives ``KEYS[1]``, ``KEYS[2]``, ... in order."""
    return tuple(re.findall(r"KEYS\[\d+\] (\w+)", header(script)))


def test_keys_match_the_script_headers() -> None:
    assert keys_of(redis_store.POOL_SCRIPT) == redis_store._POOL_KEYS
    assert keys_of(redis_store.REGISTRY_SCRIPT) == redis_store._RegistryKeys._fields
