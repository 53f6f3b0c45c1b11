"""How `dni-engine` fails, as a process: one `error: ...` line, status 2 for misuse, 1 for failures.

Every case runs the command as a user does (a child process) and checks that
stderr is exactly one line starting with ``error:``, that no traceback appears
anywhere, and the documented exit status.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dni_engine.emulator import Emulator, EmulatorServer
from tests.conftest import EXAMPLES, ROOT

SITE = str(EXAMPLES / "site" / "pools.json")
REQUEST = str(EXAMPLES / "pools" / "national.request.json")
RESPONSE = str(EXAMPLES / "pools" / "geographic-city.response.json")
ACCESS_LOG = str(EXAMPLES / "traffic" / "access.log")
USAGE, FAILURE = 2, 1
# Settings that would simulate for minutes: a check made after the run would show.
LONG_RUN = ("--visitors-per-hour", "1000", "--hours", "8000")


# The command's own settings never leak in from the shell that runs the tests.
_OUTER = {k: v for k, v in os.environ.items() if k not in ("DNI_API_TOKEN", "DNI_REDIS_URL")}


def dni(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dni_engine.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_OUTER, **(env or {})},
        timeout=120,
        check=False,
    )


def assert_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """The one error line of ``result``, after checking its status and shape."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0]
    assert result.returncode == status, lines[0]
    return lines[0]


def test_the_help_documents_the_exit_statuses() -> None:
    result = dni("--help")
    assert result.returncode == 0
    assert "Exit status:" in result.stdout
    assert "1  the work failed" in result.stdout
    assert "2  usage error" in result.stdout


# ---- usage errors: status 2, before any work -----------------------------------------------

MISSING = "/nonexistent-folder/file"
NEVER_WRITTEN = os.path.join(tempfile.gettempdir(), "dni-engine-test-never-written.log")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # files that are not there, or not files
        (["validate", MISSING + ".json"], ["FILES", "no such file"]),
        (["show", SITE, MISSING + ".json"], ["no such file"]),
        (["lint", MISSING + ".json"], ["no such file"]),
        (["match", MISSING + ".json", "--url", "https://x/"], ["no such file"]),
        (["rewrite", MISSING + ".json", SITE, "--number", "+441174090162"], ["no such file"]),
        (["rewrite", RESPONSE, MISSING + ".html", "--number", "+441174090162"], ["PAGE.html"]),
        (["pools", "create", "--group", "1", MISSING + ".json"], ["FILE", "no such file"]),
        (["simulate", SITE, "--access-log", MISSING + ".log"], ["--access-log", "no such file"]),
        (["simulate", SITE, "--access-log", str(EXAMPLES)], ["is a directory"]),
        (["simulate", MISSING + ".json"], ["no such file"]),
        # outputs into folders that are not there
        (["simulate", SITE, *LONG_RUN, "--plot", MISSING + ".png"], ["--plot", "does not exist"]),
        (
            ["simulate", SITE, *LONG_RUN, "--write-access-log", MISSING + ".log"],
            ["--write-access-log", "folder /nonexistent-folder does not exist"],
        ),
        (["simulate", SITE, *LONG_RUN, "--plot", f"{SITE}/sizing.png"], ["is not a folder"]),
        (["simulate", SITE, *LONG_RUN, "--plot", str(EXAMPLES)], ["is a directory"]),
        # numbers out of range, checked before anything is built or run
        (["simulate", SITE, "--quantity", "1..10000000"], ["--quantity", "between 1 and 1000"]),
        (["simulate", SITE, "--quantity", "0..3"], ["between 1 and 1000"]),
        (["simulate", SITE, "--quantity", "5..2"], ["--quantity", "a range a..b"]),
        (["simulate", SITE, "--quantity", "1" * 5000], ["--quantity"]),
        (["simulate", SITE, "--hours", "1e12"], ["--hours", "0<x<=8784"]),
        (["simulate", SITE, "--hours", "nan"], ["--hours", "not a finite number"]),
        (["simulate", SITE, "--hours", "0"], ["--hours"]),
        (["simulate", SITE, "--visitors-per-hour", "inf"], ["--visitors-per-hour", "finite"]),
        (["simulate", SITE, "--visitors-per-hour", "2e6"], ["--visitors-per-hour"]),
        (
            ["simulate", SITE, "--visitors-per-hour", "100000", "--hours", "8000"],
            ["800,000,000 sessions", "at most 10,000,000"],
        ),
        (
            [
                "simulate",
                SITE,
                "--visitors-per-hour",
                "10000",
                "--hours",
                "500",
                "--write-access-log",
                NEVER_WRITTEN,
            ],
            ["5,000,000 sessions", "--write-access-log takes at most 1,000,000"],
        ),
        (["simulate", SITE, "--target", "5"], ["--target", "0<x<=1"]),
        (["simulate", SITE, "--target", "nan"], ["--target"]),
        (["simulate", SITE, "--metric", "blocking", "--target", "1"], ["--target", "below 1"]),
        (["simulate", SITE, "--cooldown", "1e9"], ["--cooldown", "43200"]),
        (["simulate", SITE, "--call-share", "2"], ["--call-share"]),
        (["simulate", SITE, "--seed", "-1"], ["--seed"]),
        (["simulate", SITE, "--seed", str(2**64)], ["--seed"]),
        (["simulate", SITE, "--visitors-per-hour", "5", "--access-log", ACCESS_LOG], ["not both"]),
        (["match", SITE, "--url", "https://x/", "--priority", "41001"], ["is not KEY=N"]),
        (["match", SITE, "--url", "https://x/", "--priority", "nosuch=1"], ["no pool has"]),
        (["lint", SITE, "--priority", f"41001={10**20}"], ["--priority", "1,000,000,000"]),
        (["rewrite", RESPONSE, SITE, "--number", "not-a-number"], ["--number"]),
        (["rewrite", SITE, SITE, "--number", "+441174090162"], ["pick one with --pool"]),
        (["rewrite", SITE, SITE, "--number", "+4411", "--pool", "nosuch"], ["--pool"]),
        (["emulator", "--port", "70000"], ["--port", "65535"]),
        (["emulator", "--latency", "nan"], ["--latency"]),
        (["emulator", "--latency", "1e9"], ["--latency"]),
        (["emulator", "--error-rate", "2"], ["--error-rate"]),
        (["emulator", "--drop-rate", "nan"], ["--drop-rate"]),
        (["emulator", "--retry-after", "-1"], ["--retry-after"]),
        (["emulator", "--stock", str(10**12)], ["--stock"]),
        (["pools", "create", "--group", str(2**63), REQUEST], ["--group"]),
        (["pools", "create", "--group", "-1", REQUEST], ["--group"]),
        (["pools", "create", "--group", "1", "--base-url", "localhost:8080", REQUEST], ["URL"]),
        # click's own usage errors, in the same style
        (["simulate"], ["Missing argument"]),
        (["simulate", SITE, "--bogus"], ["--bogus", "dni-engine simulate --help"]),
        (["simulate", SITE, "--hours", "many"], ["--hours", "many"]),
        (["nosuch"], ["nosuch"]),
        (["schema", "nosuch"], ["nosuch"]),
    ],
)
def test_usage_errors(args: list[str], words: list[str]) -> None:
    result = dni(*args, env={"DNI_API_TOKEN": "token"})
    assert_error(result, USAGE, *words)
    assert result.stdout == ""  # nothing was simulated, written or served
    assert not os.path.exists(NEVER_WRITTEN)


def test_the_api_token_is_a_usage_error_when_missing_or_unusable() -> None:
    for token, words in (("", ["set DNI_API_TOKEN"]), ("two words", ["DNI_API_TOKEN"])):
        result = dni("pools", "create", "--group", "1", REQUEST, env={"DNI_API_TOKEN": token})
        line = assert_error(result, USAGE, *words)
        assert "two words" not in line  # a token is never printed


# ---- failures: status 1 --------------------------------------------------------------------


def test_invalid_pool_content_is_one_failure_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "", "match_period": 0}')
    for args in (["match", str(bad), "--url", "https://x/"], ["show", str(bad)]):
        line = assert_error(dni(*args), FAILURE, "bad.json", "problems found")
        assert "; " in line  # every problem, on the one line
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert_error(dni("lint", str(empty)), FAILURE, "holds no pools")


def test_an_access_log_without_page_views_is_a_failure(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("nonsense\n")
    assert_error(dni("simulate", SITE, "--access-log", str(log)), FAILURE, "no page views")


def test_a_write_that_fails_during_the_work_is_a_failure() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    result = dni("simulate", SITE, "--hours", "1", "--write-access-log", "/dev/full")
    assert_error(result, FAILURE, "cannot write /dev/full", "No space left")


def test_pools_create_with_a_response_instead_of_a_request_is_a_failure() -> None:
    result = dni("pools", "create", "--group", "1", RESPONSE, env={"DNI_API_TOKEN": "token"})
    assert_error(result, FAILURE, "expected one pool request")


@pytest.fixture
def strict_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator(tokens=["the-right-token"])) as running:
        yield running


def test_a_server_refusing_is_a_failure(strict_server: EmulatorServer) -> None:
    args = ["pools", "create", "--group", "3", "--base-url", strict_server.url, REQUEST]
    refused = dni(*args, env={"DNI_API_TOKEN": "a-wrong-token"})
    assert_error(refused, FAILURE, "401")
    created = dni(*args, env={"DNI_API_TOKEN": "the-right-token"})
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["group_id"] == 3


def test_an_emulator_port_in_use_is_a_failure() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = dni("emulator", "--port", str(port))
    assert_error(result, FAILURE, f"cannot listen on 127.0.0.1:{port}")
    assert result.stdout == ""


def test_an_output_beside_existing_files_is_written(tmp_path: Path) -> None:
    log = tmp_path / "traffic.log"
    log.write_text("old\n")
    result = dni("simulate", SITE, "--hours", "1", "--write-access-log", str(log))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "old" not in log.read_text()
