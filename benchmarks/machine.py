"""What the numbers were measured on: cores, CPU, Python, and the versions that matter."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sqlite3

import msgspec

# The distributions whose speed the scenarios measure.
PACKAGES = ("quickjs-ng", "uvicorn", "uvloop", "httptools", "starlette", "msgspec", "httpx")


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
    )


def finished(machine: Machine) -> Machine:
    return msgspec.structs.replace(machine, load_after=_load())


def _load() -> float:
    return round(os.getloadavg()[0], 2)


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
