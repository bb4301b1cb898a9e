"""What the worker-handle tests share: the fixtures' types, default limits, requests, readers."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from vmctl.api.models import Limits
from vmctl.protocol import ExecRepl
from vmctl.supervisor.workers import Job, Outcome, SpawnSpec

# The types of conftest.py's fixtures.
PluginSpec = Callable[..., SpawnSpec]
Run = Callable[[Coroutine[Any, Any, Any]], Any]
WaitDead = Callable[[int], None]

LIMITS = Limits(cpu_ms=2000, wall_ms=5000, mem_mb=64, max_events=50, max_output_kb=64)


def repl(code: str = "x") -> Job:
    """A REPL request; the handle gives it its id and limits."""
    return functools.partial(ExecRepl, code=code)


def types(outcome: Outcome) -> list[str]:
    return [event.type for event in outcome.events]


async def ticking(gaps: list[float]) -> None:
    """Record the loop's gaps between 5 ms sleeps (how responsive it stayed), until cancelled."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


def decoded(payload: dict[str, Any]) -> dict[str, Any]:
    """An event payload with a value's ``json`` (raw JSON text, as it travels) decoded."""
    if isinstance(payload.get("json"), msgspec.Raw):
        return {**payload, "json": msgspec.json.decode(payload["json"])}
    return payload
