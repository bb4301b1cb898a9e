"""``python -m benchmarks [--quick] [--json] [--only GROUP ...]``: measure and print.

Runs each group of scenarios in turn (worker through its handle, the HTTP API
against a real daemon, the store alone, live executions, the floors vmctl is
measured against, how it scales with sessions and output) in one temporary
directory that is removed at the end, then prints the machine, one table row
per scenario with the target it answers and whether that holds, and issue 14's
targets (or, with ``--json``, the same as one JSON document). Progress goes to
stderr. Exit status: 0 when every scenario ran (whether or not the targets hold), 1
when one could not, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import loop
from benchmarks.api import measure_api
from benchmarks.errors import BenchmarkError
from benchmarks.floors import measure_floors
from benchmarks.live import measure_live
from benchmarks.machine import describe_machine, finished
from benchmarks.plan import DEFAULT, QUICK, Plan
from benchmarks.report import PERCENTILES, Report, format_json, format_text
from benchmarks.scale import measure_scale
from benchmarks.stats import Summary
from benchmarks.store import measure_store
from benchmarks.targets import judge, verdicts
from benchmarks.worker import measure_worker

Group = Callable[[Plan, Path], list[Summary]]

# In the order they run and print.
GROUPS: dict[str, Group] = {
    "worker": lambda plan, path: loop.run(measure_worker(plan, path)),
    "api": measure_api,
    "store": lambda plan, path: loop.run(measure_store(plan, path)),
    "live": measure_live,
    "floor": measure_floors,
    "scale": measure_scale,
}
# The temporary directory's mode: workers run as an unprivileged uid under root
# (docs/security.md) and must be able to reach their worktrees in it, or the
# daemon would start them without that layer of the jail.
TMP_MODE = 0o711


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Measure vmctl and print percentiles."
    )
    parser.add_argument("--quick", action="store_true", help="a few iterations each (seconds)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--only", action="append", choices=list(GROUPS), metavar="GROUP",
        help=f"run only this group (repeatable): {', '.join(GROUPS)}",
    )  # fmt: skip
    return parser.parse_args(argv)


def measure(plan: Plan, groups: list[str]) -> list[Summary]:
    """Run the groups in a temporary directory removed afterwards, however they end."""
    results: list[Summary] = []
    with tempfile.TemporaryDirectory(prefix="vmctl-bench-") as tmp:
        os.chmod(tmp, TMP_MODE)
        for name in groups:
            load = os.getloadavg()[0]
            print(f"benchmarks: {name} (load {load:.2f}) ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            results += GROUPS[name](plan, Path(tmp) / name)
            print(f"benchmarks: {name} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan_name, plan = ("quick", QUICK) if args.quick else ("default", DEFAULT)
    machine = describe_machine()
    groups = [name for name in GROUPS if args.only is None or name in args.only]
    try:
        results = measure(plan, groups)
    except BenchmarkError as exc:
        print(f"benchmarks: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmarks: interrupted", file=sys.stderr)
        return 130
    results = judge(results)
    report = Report(finished(machine), plan_name, PERCENTILES, results, verdicts(results))
    print(format_json(report) if args.json else format_text(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
