"""`pools list` and `pools get` over real HTTP to the emulator; `validate`, `show` --json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dni_engine.client import Client
from dni_engine.emulator import Emulator, EmulatorServer
from dni_engine.schema import NumberPoolRequest, load_pools
from tests.conftest import EXAMPLES
from tests.test_cli import FAILURE, REQUEST, RESPONSE, SITE, USAGE, assert_error, dni

TOKEN = {"DNI_API_TOKEN": "the-right-token"}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator(tokens=["the-right-token"])) as running:
        yield running


def created(server: EmulatorServer, group: int, *names: str) -> list[int]:
    request = load_pools(Path(REQUEST).read_bytes())[0]
    assert isinstance(request, NumberPoolRequest)
    ids = []
    with Client("the-right-token", base_url=server.url) as client:
        for name in names:
            pool = client.create_number_pool(group, request.model_copy(update={"name": name}))
            ids.append(pool.id)
    return ids


def test_pools_list_prints_the_groups_pools(server: EmulatorServer) -> None:
    first, second = created(server, 7, "Google Ads", "Bing Ads")
    created(server, 8, "Another group")
    listed = dni("pools", "list", "--group", "7", "--base-url", server.url, "--json", env=TOKEN)
    assert listed.returncode == 0, listed.stderr
    pools = json.loads(listed.stdout)
    assert [(p["id"], p["name"], p["group_id"]) for p in pools] == [
        (first, "Google Ads", 7),
        (second, "Bing Ads", 7),
    ]
    table = dni("pools", "list", "--group", "7", "--base-url", server.url, env=TOKEN)
    assert table.returncode == 0, table.stderr
    assert "Google Ads" in table.stdout
    assert "Another group" not in table.stdout
    assert table.stdout.splitlines()[-1] == "2 pools in group 7"


def test_pools_get_prints_the_pool_as_the_api_returns_it(server: EmulatorServer) -> None:
    (pool_id,) = created(server, 3, "Google Ads")
    got = dni("pools", "get", str(pool_id), "--base-url", server.url, env=TOKEN)
    assert got.returncode == 0, got.stderr
    pool = json.loads(got.stdout)
    assert pool["id"] == pool_id
    assert pool["name"] == "Google Ads"
    assert len(pool["numbers"]) == pool["quantity"]
    missing = dni("pools", "get", str(pool_id + 1000), "--base-url", server.url, env=TOKEN)
    assert_error(missing, FAILURE, "404")


def test_pools_list_and_get_need_the_token_and_a_right_one(server: EmulatorServer) -> None:
    no_token = dni("pools", "list", "--group", "1", "--base-url", server.url, env={})
    assert_error(no_token, USAGE, "DNI_API_TOKEN")
    wrong = dni("pools", "get", "1", "--base-url", server.url, env={"DNI_API_TOKEN": "wrong"})
    assert_error(wrong, FAILURE, "401")
    bad_id = dni("pools", "get", "-3", "--base-url", server.url, env=TOKEN)
    assert bad_id.returncode == USAGE


def test_validate_json_reports_every_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"name": "", "quantity": 0}))
    done = dni("validate", "--json", SITE, str(broken), str(tmp_path / "missing.json"))
    assert done.returncode == USAGE  # a missing file is a usage error, checked first
    done = dni("validate", "--json", SITE, str(broken))
    assert done.returncode == FAILURE
    report = json.loads(done.stdout)
    assert report["valid"] is False
    site, bad = report["files"]
    assert site["valid"] is True
    assert site["problems"] == []
    assert [p["key"] for p in site["pools"]] == [p.key for p in load_pools(Path(SITE).read_bytes())]
    assert bad["valid"] is False
    assert bad["pools"] == []
    assert bad["problems"]
    assert all(set(p) == {"path", "reason"} for p in bad["problems"])
    ok = dni("validate", "--json", RESPONSE)
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["valid"] is True


def test_show_json_summarises_each_pool() -> None:
    done = dni("show", "--json", RESPONSE, REQUEST)
    assert done.returncode == 0, done.stderr
    response, request = json.loads(done.stdout)
    assert response["request"] is False
    assert response["kind"] == "geographic"
    assert response["numbers"]
    assert all(n.startswith("+") for n in response["numbers"])
    assert request["request"] is True
    assert request["numbers"] == []
    assert request["id"] is None
    assert response["tracking_sources"][0]["referrer_domain"]
    text = dni("show", RESPONSE)
    assert response["name"] in text.stdout


def test_show_json_of_every_example_is_json() -> None:
    for path in sorted((EXAMPLES / "pools").glob("*.json")):
        done = dni("show", "--json", str(path))
        assert done.returncode == 0, done.stderr
        assert isinstance(json.loads(done.stdout), list)
