"""``python -m benchmarks [--quick] [--json] [--only GROUP ...]``: measure and print.

Runs each group of scenarios in turn (worker through its handle, the HTTP API
against a real daemon, the store alone) in one temporary directory that is
removed at the end, then prints the machine and one table row per scenario
(or, with ``--json``, the same as JSON). Progress goes to stderr.
Exit status: 0 when every scenario ran, 1 when one could not, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import loop
from benchmarks.api import measure_api
from benchmarks.errors import BenchmarkError
from benchmarks.live import measure_live
from benchmarks.machine import describe_machine, finished
from benchmarks.plan import DEFAULT, QUICK, Plan
from benchmarks.report import PERCENTILES, Report, format_json, format_text
from benchmarks.stats import Summary
from benchmarks.store import measure_store
from benchmarks.worker import measure_worker

Group = Callable[[Plan, Path], list[Summary]]

# In the order they run and print.
GROUPS: dict[str, Group] = {
    "worker": lambda plan, path: loop.run(measure_worker(plan, path)),
    "api": measure_api,
    "store": lambda plan, path: loop.run(measure_store(plan, path)),
    "live": measure_live,
}


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
        for name in groups:
            print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
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
    report = Report(finished(machine), plan_name, PERCENTILES, results)
    print(format_json(report) if args.json else format_text(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
