"""``python -m benchmarks --quick`` runs every scenario against the real components.

Only that it ran and printed is asserted, never how fast: timings are the
benchmark's output, not a test's verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 90.0  # the quick plan takes about 10 s on 2 cores

GROUPS = ("worker", "api", "store", "live", "floor", "scale")
TIME_COLUMNS = (
    "group", "scenario", "n", "median", "p90", "p99", "min", "max", "throughput", "target", "holds"
)  # fmt: skip


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
    assert "an execution of 10,000 events, committed" in result.stdout
    # Every one of issue 14's targets has its row in the default groups, and a verdict.
    targets = result.stdout.split("\nTargets\n", 1)[1].splitlines()[3:]
    assert len(targets) == len(TARGETS)
    assert all(" PASS " in line or " MISS " in line for line in targets), targets


def test_json_output_has_every_statistic_of_each_scenario() -> None:
    result = run_benchmarks("--json", "--only", "store")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plan"] == "quick"
    assert report["machine"]["cores"] >= 1
    assert {entry["group"] for entry in report["results"]} == {"store"}
    for entry in report["results"]:
        assert entry["n"] >= 1
        assert entry["unit"] == "ms"
        assert entry["min"] <= entry["median"] <= entry["p90"] <= entry["p99"] <= entry["max"]
        assert entry["target"] is None and entry["holds"] is None
    # The targets are listed, unmeasured: their rows are in other groups.
    assert len(report["targets"]) == len(TARGETS)
    assert all(verdict["holds"] is None for verdict in report["targets"])


def test_scale_group_runs_alone_with_only() -> None:
    result = run_benchmarks("--json", "--only", "scale")

    assert result.returncode == 0, result.stderr
    names = [entry["name"] for entry in json.loads(result.stdout)["results"]]
    assert {entry["group"] for entry in json.loads(result.stdout)["results"]} == {"scale"}
    assert "1+1, 4 sessions driven at once" in names
    assert "REPL printing 10,000 lines, persisted (201)" in names


def test_an_unknown_group_is_a_usage_error() -> None:
    result = run_benchmarks("--only", "nonsense")

    assert result.returncode == 2
    assert "invalid choice" in result.stderr
