"""`dni-engine validate`, `schema` and `show` as a user runs them; what lint says of pool status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dni_engine import cli as cli_module
from dni_engine.cli import cli
from tests.conftest import EXAMPLES, load_example


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_validate_accepts_every_example_pool() -> None:
    files = sorted(str(p) for p in (EXAMPLES / "pools").glob("*.json"))
    code, out = run("validate", *files)
    assert code == 0, out
    assert out.count("OK ") == len(files) == 8


def test_validate_lists_three_mistakes_with_their_paths(tmp_path: Path) -> None:
    data = load_example("geographic-city.request")
    data["quantity"] = 0
    data["phone_number_request"]["iso_country"] = "UK"
    data["replacement_configuration"]["tracking_sources"][0]["url_triggers"] = ["gclid=*&&"]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(data))
    code, out = run("validate", str(path))
    assert code == 1
    problem_lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(problem_lines) == 3, out
    assert any(line.strip().startswith("quantity:") for line in problem_lines)
    assert any("phone_number_request.iso_country:" in line for line in problem_lines)
    assert any(
        "replacement_configuration.tracking_sources[0].url_triggers[0]:" in line
        for line in problem_lines
    )


def test_validate_reads_a_list_of_pools(tmp_path: Path) -> None:
    pools = [load_example("national.response"), load_example("tollfree.request")]
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(pools))
    code, out = run("validate", str(path))
    assert code == 0
    assert "OK ABC Company 127" in out
    assert "OK ABC Company 123" in out


def test_validate_gives_one_line_for_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<html>not json</html>")
    code, out = run("validate", str(path))
    assert code == 1
    assert "not valid JSON" in out
    assert "Traceback" not in out


def test_validate_gives_one_line_for_json_of_the_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    path.write_text("[1, 2, 3]")
    code, out = run("validate", str(path))
    assert code == 1
    assert "[0]: a pool must be a JSON object" in out
    assert "Traceback" not in out


def test_validate_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    code, out = run("validate", str(tmp_path / "missing.json"))
    assert code == 2  # a missing file given as an argument is a usage error
    assert "missing.json: no such file" in out


def test_schema_prints_json_schema_of_each_kind() -> None:
    for kind, field in (("request", "phone_number_request"), ("response", "numbers")):
        code, out = run("schema", kind)
        assert code == 0
        document = json.loads(out)
        assert field in document["properties"]


def test_show_summarises_a_pool() -> None:
    code, out = run("show", str(EXAMPLES / "pools" / "tollfree.response.json"))
    assert code == 0
    assert "tollfree" in out
    assert "+448000885644" in out
    assert "gclid=*" in out


def test_console_script_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dni_engine.cli", "validate", str(EXAMPLES / "pools")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout


# ---- hostile files, problems between pools, pool status --------------------------------------


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``dni-engine ARGS`` in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dni_engine.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def huge_match_period() -> str:
    text = json.dumps(load_example("national.response"))
    assert '"match_period": 30' in text
    return text.replace('"match_period": 30', '"match_period": 1' + "0" * 5000)


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param("[" * 100_000, "[0][0][0]", "nested more than 64 levels deep", id="brackets"),
        pytest.param(
            '{"a": ' * 2000 + "1" + "}" * 2000, "a.a.a.a", "levels deep", id="objects-2000-deep"
        ),
        pytest.param(huge_match_period(), "match_period:", "5,001 digits", id="5001-digit-int"),
    ],
)
def test_validate_reports_hostile_json_as_a_problem(
    tmp_path: Path, text: str, path: str, reason: str
) -> None:
    file = tmp_path / "pool.json"
    file.write_text(text)
    done = run_command("validate", str(file))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors, out
    assert str(file) in errors[0]
    assert path in out
    assert reason in out


def test_validate_lists_a_duplicate_name_with_the_other_problems(tmp_path: Path) -> None:
    pools = json.loads((EXAMPLES / "site" / "pools.json").read_text())
    pools[1]["name"] = pools[0]["name"]
    pools[1]["quantity"] = 0
    pools[2]["id"] = pools[0]["id"]
    file = tmp_path / "site.json"
    file.write_text(json.dumps(pools))
    code, out = run("validate", str(file))
    assert code == 1
    assert f"error: {file}: 3 problems found" in out
    problems = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert [p.split(":")[0] for p in problems] == ["[1].quantity", "[1].name", "[2].id"]
    assert "is used twice (also by pool [0]" in problems[1]
    assert "as pool [0] 'Google Ads' does; pool ids are unique" in problems[2]


def deleted_pool(tmp_path: Path) -> Path:
    file = tmp_path / "deleted.json"
    file.write_text(json.dumps(dict(load_example("national.response"), status="deleted")))
    return file


def test_validate_warns_of_a_pool_that_is_not_active_and_still_passes(tmp_path: Path) -> None:
    file = deleted_pool(tmp_path)
    done = run_command("validate", str(file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"OK ABC Company 127  ({file})"]
    assert done.stderr.splitlines() == [
        f"warning: {file}: pool 'ABC Company 127': status 'deleted' is not 'active': "
        "the pool leases no numbers"
    ]


def test_show_warns_of_a_pool_that_is_not_active(tmp_path: Path) -> None:
    done = run_command("show", str(deleted_pool(tmp_path)))
    assert done.returncode == 0
    assert "deleted" in done.stdout
    assert "warning: pool 'ABC Company 127': status 'deleted' is not 'active'" in done.stderr


def test_lint_warns_of_a_pool_that_is_not_active(tmp_path: Path) -> None:
    code, out = run("lint", str(deleted_pool(tmp_path)))
    assert code == 1
    assert "status: warning [inactive-pool] pool 'ABC Company 127': status 'deleted'" in out


def test_lint_refuses_pools_of_two_files_that_clash(tmp_path: Path) -> None:
    site = EXAMPLES / "site" / "pools.json"
    pools = json.loads(site.read_text())
    other = tmp_path / "more.json"
    other.write_text(json.dumps(dict(pools[0], name="Copy of Google Ads")))
    done = run_command("lint", str(site), str(other))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "[6].id" in out
    assert "[6].numbers[0].phone_number" in out
    assert f"[6]-[6] {other}" in out


def test_a_file_too_large_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "MAX_INPUT_BYTES", 100)
    file = tmp_path / "big.json"
    file.write_text(json.dumps(load_example("national.response")))
    code, out = run("validate", str(file))
    assert code == 1
    assert f"error: {file}: larger than 100 bytes; not read" in out
