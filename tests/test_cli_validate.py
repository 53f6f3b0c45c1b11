"""`dni-engine validate`, `schema` and `show` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

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
    assert code == 1
    assert "cannot read file" in out


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
