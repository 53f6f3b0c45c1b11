"""Erlang B against published values."""

from __future__ import annotations

import pytest

from dni_engine.erlang import erlang_b, servers_for


@pytest.mark.parametrize(
    ("load", "servers", "expected"),
    [(1.0, 1, 0.5), (10.0, 10, 0.2146), (10.0, 18, 0.0071), (100.0, 100, 0.0757), (2.0, 0, 1.0)],
)
def test_erlang_b_matches_tables(load: float, servers: int, expected: float) -> None:
    assert erlang_b(load, servers) == pytest.approx(expected, abs=5e-5)


def test_servers_for_is_the_fewest_meeting_the_target() -> None:
    assert servers_for(10.0, 0.01) == 18
    assert servers_for(100.0, 0.01) == 117
    for load in (0.5, 7.0, 42.0):
        n = servers_for(load, 0.02)
        assert erlang_b(load, n) <= 0.02 < erlang_b(load, n - 1)


@pytest.mark.parametrize(("load", "servers"), [(-1.0, 3), (float("nan"), 3), (1.0, -1)])
def test_erlang_b_rejects_nonsense(load: float, servers: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        erlang_b(load, servers)
