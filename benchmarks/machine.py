"""What the numbers were measured on: cores, load, CPU, Python, the versions that matter,
and which vmctl (the git commit, and whether vmctl/ had uncommitted changes)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
from pathlib import Path

import msgspec

# The distributions whose speed the scenarios measure.
PACKAGES = ("quickjs-ng", "uvicorn", "uvloop", "httptools", "starlette", "msgspec", "httpx")
REPO = Path(__file__).resolve().parent.parent
GIT_TIMEOUT = 5.0


class Machine(msgspec.Struct, frozen=True):
    date: str  # UTC, when the run started
    cores: int
    # The 1-minute load average before and after the run: other work on the
    # machine shares its cores with the scenarios.
    load_before: float
    load_after: float | None
    cpu: str
    platform: str
    python: str
    sqlite: str
    packages: dict[str, str]
    vmctl: str  # "3b58a30", "3b58a30 + uncommitted changes in vmctl/", or "unknown"


def describe_machine() -> Machine:
    """The machine now; :func:`finished` adds the load after the run."""
    return Machine(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 0,
        load_before=_load(),
        load_after=None,
        cpu=_cpu_model(),
        platform=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        sqlite=sqlite3.sqlite_version,
        packages={name: _version(name) for name in PACKAGES},
        vmctl=_revision(),
    )


def finished(machine: Machine) -> Machine:
    return msgspec.structs.replace(machine, load_after=_load())


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _revision() -> str:
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "vmctl")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes in vmctl/" if dirty else commit


def _git(*args: str) -> str:
    # No optional locks: `git status` would otherwise refresh the index, and a
    # benchmark run must not take the lock from someone committing meanwhile.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    return subprocess.run(
        ["git", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=True,
    ).stdout.strip()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
