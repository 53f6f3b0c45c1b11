"""``benchmarks/report.py``: candidate/baseline ratios from pytest-benchmark JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"


def bench(group: str, name: str, median: float, role: str | None = None) -> dict[str, object]:
    return {
        "group": group,
        "name": name,
        "stats": {"median": median, "mean": median * 1.1, "min": median * 0.9},
        "extra_info": {"role": role} if role else {},
    }


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPORT), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_report_finds_each_groups_baseline(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps(
            {
                "benchmarks": [
                    bench("by-role", "test_fast", 0.001),
                    bench("by-role", "test_reference", 0.1, role="baseline"),
                    bench("by-name", "test_baseline_scan", 0.02),
                    bench("by-name", "test_rewrite", 0.001),
                    bench("fastest", "test_ping", 0.0001),
                    bench("fastest", "test_visit", 0.0005),
                ]
            }
        )
    )
    done = run(str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["group", "candidate", "baseline"]
    by_group = {line.split()[0]: line for line in lines[1:]}
    assert "test_fast" in by_group["by-role"]
    assert "100.0x faster" in by_group["by-role"]
    assert "20.0x faster" in by_group["by-name"]
    assert "test_visit" in by_group["fastest"]
    assert "5.00x slower" in by_group["fastest"]
    named = run(str(results), "--baseline", "fastest=visit", "--stat", "mean", cwd=tmp_path)
    assert "test_ping" in named.stdout
    assert "5.0x faster" in named.stdout


def test_report_reads_the_default_file(tmp_path: Path) -> None:
    saved = tmp_path / ".benchmarks" / "latest.json"
    saved.parent.mkdir()
    saved.write_text(json.dumps({"benchmarks": [bench("g", "a", 1.0), bench("g", "b", 2.0)]}))
    done = run(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2.00x slower" in done.stdout


def test_report_without_results(tmp_path: Path) -> None:
    done = run(cwd=tmp_path)
    assert done.returncode != 0
    assert "no benchmark results" in done.stderr


def test_report_ends_with_every_ratio_against_its_goal(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    goals = [
        {"group": "sweep", "measure": "serial / 2 workers", "value": 1.2, "goal": 1.8,
         "at_most": False, "unit": "x"},
        {"group": "redis-kept", "measure": "visit / PING", "value": 1.1, "goal": 1.3,
         "at_most": True, "unit": "x"},
        {"group": "web", "measure": "middleware", "value": None, "goal": 1.5,
         "at_most": True, "unit": "x"},
    ]  # fmt: skip
    results.write_text(json.dumps({"benchmarks": [bench("g", "a", 1.0)], "goals": goals}))
    done = run(str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "1 of 2 goals met; 1 missed"
    rows = {line.split()[0]: line for line in lines[-4:-1]}
    assert rows["sweep"].endswith("MISSED")
    assert ">= 1.8x" in rows["sweep"]
    assert rows["redis-kept"].endswith("met")
    assert rows["web"].endswith("not measured")
