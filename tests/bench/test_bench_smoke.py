"""``python -m benchmarks --quick`` runs every scenario against the real components.

Only that it ran and printed is asserted, never how fast: timings are the
benchmark's output, not a test's verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 90.0  # the quick plan takes a few seconds on 2 cores

GROUPS = ("worker", "api", "store")
TIME_COLUMNS = ("group", "scenario", "n", "median", "p90", "p99", "min", "max", "throughput")


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_quick_run_prints_the_machine_and_a_row_per_scenario() -> None:
    result = run_benchmarks()

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("machine:") and "cores" in line for line in lines)
    assert any(line.startswith("packages:") and "quickjs-ng" in line for line in lines)
    header = next(line for line in lines if line.startswith("group"))
    assert header.split()[: len(TIME_COLUMNS)] == list(TIME_COLUMNS)
    rows = [line.split()[0] for line in lines if line.split()[:1] in ([g] for g in GROUPS)]
    assert set(rows) == set(GROUPS)
    assert "REPL 1+1 round trip" in result.stdout
    assert "POST /executions/repl 1+1" in result.stdout
    assert "finish_execution, 10,000 events" in result.stdout


def test_json_output_has_every_statistic_of_each_scenario() -> None:
    result = run_benchmarks("--json", "--only", "store")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plan"] == "quick"
    assert report["machine"]["cores"] >= 1
    assert {entry["group"] for entry in report["results"]} == {"store"}
    for entry in report["results"]:
        assert entry["n"] >= 1
        assert entry["min_ms"] <= entry["median_ms"] <= entry["p90_ms"] <= entry["p99_ms"]
        assert entry["p99_ms"] <= entry["max_ms"]


def test_an_unknown_group_is_a_usage_error() -> None:
    result = run_benchmarks("--only", "nonsense")

    assert result.returncode == 2
    assert "invalid choice" in result.stderr
