"""The handle's pure parts: event payloads, the per-execution recorder, line and stderr buffers."""

from __future__ import annotations

import io

import msgspec
import pytest

from vmctl.api.models import Limits
from vmctl.protocol import MAX_LINE_BYTES, Console, Error, JsException, System, Value, raw_json
from vmctl.supervisor.workers.outcome import (
    ExecutionRecorder,
    cancelled,
    crashed,
    event_payload,
    from_error,
    payload_size,
)
from vmctl.supervisor.workers.pipes import STDERR_TAIL_BYTES, LineBuffer, StderrSink

LIMITS = Limits(cpu_ms=100, wall_ms=200, mem_mb=64, max_events=3, max_output_kb=1)


def test_event_payloads_are_the_api_payloads() -> None:
    assert event_payload(Console(id=1, level="warn", text="careful")) == (
        "console",
        {"level": "warn", "text": "careful"},
    )
    assert event_payload(
        Value(id=1, value_type="undefined", preview="undefined", json=raw_json(None))
    ) == (
        "value",
        {"type": "undefined", "preview": "undefined", "json": raw_json(None)},  # as it came
    )
    assert event_payload(Value(id=1, value_type="function", preview="[Function: f]")) == (
        "value",
        {"type": "function", "preview": "[Function: f]"},
    )
    assert event_payload(JsException(id=1, message="Error: x")) == (
        "exception",
        {"message": "Error: x"},
    )
    assert event_payload(System(id=1, level="info", message="note")) == (
        "system",
        {"level": "info", "message": "note"},
    )


def test_payload_size_is_compact_utf8_json() -> None:
    assert payload_size({"text": "é"}) == len('{"text":"é"}'.encode())


def test_the_first_ending_wins_and_later_events_are_dropped() -> None:
    recorder = ExecutionRecorder(LIMITS)
    assert recorder.record("console", {"level": "log", "text": "a"})
    assert recorder.end(cancelled("cancel requested"))
    assert not recorder.end(crashed("exited with code 1", ""))
    assert not recorder.record("console", {"level": "log", "text": "late"})
    outcome = recorder.outcome(wall_ms=5.0, cpu_ms=1.0)
    assert outcome.status == "cancelled"
    assert [e.type for e in outcome.events] == ["console", "system"]
    assert (outcome.metrics.events, outcome.metrics.wall_ms, outcome.metrics.cpu_ms) == (
        2,
        5.0,
        1.0,
    )


def test_max_events_stops_on_the_event_after_the_limit() -> None:
    recorder = ExecutionRecorder(LIMITS)
    assert all(recorder.record("console", {"level": "log", "text": str(i)}) for i in range(3))
    assert not recorder.record("console", {"level": "log", "text": "4th"})
    assert recorder.ending is not None and (recorder.ending.status, recorder.ending.limit) == (
        "error",
        "max_events",
    )
    assert len(recorder.events) == 4  # three events and the system note


def test_the_js_error_outcome_carries_the_exception_payload() -> None:
    recorder = ExecutionRecorder(LIMITS)
    recorder.record("exception", {"message": "TypeError: x", "name": "TypeError"})
    recorder.end(from_error(Error(id=1, code="JS_ERROR", message="TypeError: x"), LIMITS))
    outcome = recorder.outcome(1.0, 1.0)
    assert (outcome.status, outcome.exception) == (
        "error",
        {"message": "TypeError: x", "name": "TypeError"},
    )
    assert [e.type for e in outcome.events] == ["exception"]  # no system note for a throw


@pytest.mark.parametrize("text", ["a" * 5000, '"\\' * 3000, "\x01" * 2000, "日本" * 2000])
def test_an_oversized_echo_is_truncated_to_fit_the_budget(text: str) -> None:
    recorder = ExecutionRecorder(LIMITS)
    assert not recorder.record_echo(text)
    echo = recorder.events[0].payload
    kept = echo["text"].removesuffix("…[truncated]")
    assert echo["text"].endswith("…[truncated]") and text.startswith(kept)
    assert payload_size(echo) <= 1024
    # The longest such prefix: one more character would not fit.
    assert payload_size({"text": text[: len(kept) + 1] + "…[truncated]"}) > 1024
    assert recorder.output_bytes == payload_size(echo)
    assert [e.type for e in recorder.events] == ["input_echo", "system"]


def test_outcome_before_the_end_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="before the execution ended"):
        ExecutionRecorder(LIMITS).outcome(0.0, 0.0)


def test_line_buffer_reassembles_pieces_and_splits_batches() -> None:
    lines = LineBuffer()
    assert lines.feed(b'{"a":') == []
    assert lines.feed(b'1}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert lines.feed(b":3}\n") == [b'{"c":3}']
    assert not lines.overflowed


def test_line_buffer_overflows_past_the_maximum_line() -> None:
    lines = LineBuffer()
    lines.feed(b"x" * MAX_LINE_BYTES)
    assert not lines.overflowed
    lines.feed(b"x")
    assert lines.overflowed


def test_stderr_sink_keeps_a_bounded_tail_and_a_capped_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vmctl.supervisor.workers.pipes.STDERR_LOG_MAX_BYTES", 100)
    log = io.BytesIO()
    sink = StderrSink(log)
    sink.write(b"a" * 60)
    sink.write(b"b" * (STDERR_TAIL_BYTES + 60))
    sink.write(b"end")
    assert sink.tail() == "b" * (STDERR_TAIL_BYTES - 3) + "end"
    assert log.getvalue().startswith(b"a" * 60 + b"b" * 40 + b"\n[vmctl: stderr log truncated")
    sink.close()
    assert log.closed


def test_limits_decode_from_the_template_settings_shape() -> None:
    settings = b'{"cpu_ms":2000,"wall_ms":5000,"mem_mb":128,"max_events":50000,"max_output_kb":256}'
    assert msgspec.json.decode(settings, type=Limits) == Limits(2000, 5000, 128, 50000, 256)
