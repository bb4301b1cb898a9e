"""Console batches through the handle: one event per line, in order, limits exact per line.

The echo plugin sends batches of chosen sizes between single Console frames and system
events (``batches`` in testdata/plugins/echo.py); the real worker sends what its writer
coalesced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from supervisor.handles import LIMITS, PluginSpec, Run, repl, types
from vmctl.api.models import Limits
from vmctl.supervisor.workers import Outcome, SpawnSpec, open_worker
from vmctl.supervisor.workers.outcome import payload_size


def run_code(run: Run, spec: SpawnSpec, code: str, limits: Limits) -> tuple[Outcome, Outcome]:
    """``code``'s outcome under ``limits``, then that of a plain request on the same worker."""

    async def main() -> tuple[Outcome, Outcome]:
        handle = await open_worker(spec)
        try:
            outcome = await handle.execute(repl(code), limits)
            return outcome, await handle.execute(repl("1"), LIMITS)
        finally:
            await handle.aclose()

    result: tuple[Outcome, Outcome] = run(main())
    return result


def texts(outcome: Outcome) -> list[str]:
    return [event.payload["text"] for event in outcome.events if event.type == "console"]


def test_batch_lines_are_events_in_order_among_single_frames_and_system_events(
    plugin: PluginSpec, run: Run
) -> None:
    outcome, _ = run_code(run, plugin("echo"), "batches 1 3 c s 2 c 1", LIMITS)
    assert outcome.status == "ok"
    assert types(outcome) == ["console"] * 4 + ["system"] + ["console"] * 4 + ["value"]
    assert texts(outcome) == [str(n) for n in range(1, 9)]
    assert outcome.events[1].payload == {"level": "log", "text": "2"}


@pytest.mark.parametrize(
    "max_events",
    [
        4,  # the last line of the first batch is the last event kept
        6,  # the limit falls inside the second batch
        8,  # the last line of the second batch is the last event kept
    ],
)
def test_max_events_is_exact_at_and_inside_a_batch(
    plugin: PluginSpec, run: Run, max_events: int
) -> None:
    limits = Limits(2000, 5000, 64, max_events=max_events, max_output_kb=64)
    outcome, after = run_code(run, plugin("echo"), "batches 1 4 4 4", limits)
    assert (outcome.status, outcome.limit, outcome.limit_value) == (
        "error",
        "max_events",
        max_events,
    )
    assert types(outcome) == ["console"] * max_events + ["system"]
    assert texts(outcome) == [str(n) for n in range(1, max_events + 1)]
    assert after.status == "ok"  # the worker was told to stop, and stopped


@pytest.mark.parametrize(
    ("tokens", "kept"),
    [
        ("4 3", 7),  # seven lines and the value fit
        ("4 4", 8),  # eight lines fill 1 KiB to the byte: the value crosses it
        ("5 5", 8),  # the ninth line, inside the second batch, crosses it
    ],
)
def test_max_output_kb_is_exact_inside_a_batch(
    plugin: PluginSpec, run: Run, tokens: str, kept: int
) -> None:
    # {"level":"log","text":"..."} is 25 bytes plus 103 characters: 128 bytes a line.
    limits = Limits(2000, 5000, 64, max_events=50, max_output_kb=1)
    outcome, after = run_code(run, plugin("echo"), f"batches 103 {tokens}", limits)
    consoles = [event for event in outcome.events if event.type == "console"]
    assert [payload_size(event.payload) for event in consoles] == [128] * kept
    if kept == 7:
        assert (outcome.status, types(outcome)[-1]) == ("ok", "value")
    else:
        assert (outcome.status, outcome.limit) == ("error", "max_output_kb")
        assert (outcome.metrics.output_bytes, types(outcome)[-1]) == (1024, "system")
    assert after.status == "ok"


def test_the_real_workers_batches_keep_console_lines_before_the_exception(
    tmp_path: Path, run: Run
) -> None:
    spec = SpawnSpec(argv=(sys.executable, "-m", "vmctl.worker"), cwd=str(tmp_path), mem_mb=64)
    limits = Limits(10_000, 10_000, 64, max_events=50_000, max_output_kb=4096)
    code = "for (let i = 0; i < 20000; i++) console.log(i); throw new Error('last')"
    outcome, after = run_code(run, spec, code, limits)
    assert (outcome.status, outcome.code) == ("error", "JS_EXCEPTION")
    assert types(outcome) == ["console"] * 20_000 + ["exception"]
    assert texts(outcome) == [str(i) for i in range(20_000)]
    assert outcome.events[-1].payload["message"] == "Error: last"
    assert after.status == "ok"
