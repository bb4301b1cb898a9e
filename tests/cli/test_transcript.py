"""Rendering an execution's events as a terminal shows them (pure, no daemon)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cli.samples import event, execution, plain
from vmctl.api.models import Event, Execution
from vmctl.cli import transcript
from vmctl.cli.transcript import Line, Transcript


def lines(record: Execution, items: Sequence[Event]) -> list[Line]:
    """Every line of the transcript, fed one event at a time as the stream brings them."""
    view = Transcript(record.kind)
    out = [line for item in items for line in view.event(item)]
    return out + view.end(record)


def render(record: Execution, items: Sequence[Event]) -> str:
    return "\n".join(line.text for line in lines(record, items))


def test_limit_errors_are_described_in_words() -> None:
    limit = {"code": "OUTPUT_LIMIT_EXCEEDED", "limit": "max_events", "limit_value": 100}
    assert transcript.describe_error("error", limit) == "stopped: max_events limit of 100 reached"
    wall = {"code": "EXECUTION_TIMEOUT", "limit": "wall_ms", "limit_value": 500}
    assert transcript.describe_error("timeout", wall) == "stopped: wall_ms limit of 500 ms reached"
    memory = {"code": "MEMORY_LIMIT_EXCEEDED", "limit": "mem_mb", "limit_value": 32}
    assert transcript.describe_error("error", memory) == "stopped: mem_mb limit of 32 MB reached"


def test_other_errors_name_status_message_and_code() -> None:
    crashed = {"code": "WORKER_CRASHED", "message": "worker exited with signal 9"}
    assert (
        transcript.describe_error("crashed", crashed)
        == "crashed: worker exited with signal 9 (WORKER_CRASHED)"
    )
    assert transcript.describe_error("cancelled", {"message": "session closed"}) == (
        "cancelled: session closed"
    )


def test_transcript_prints_console_lines_then_the_value() -> None:
    items = [
        event(1, "input_echo", text="console.log('hi'); 1+1"),
        event(2, "console", level="log", text="hi"),
        event(3, "console", level="warn", text="careful"),
        event(4, "value", type="number", preview="2", json=2),
    ]
    text = render(execution(), items)
    assert plain(text) == "hi\ncareful\n2"
    assert click.style("careful", fg="yellow") in text


def test_warn_and_error_lines_go_to_standard_error() -> None:
    levels = ["log", "info", "debug", "warn", "error"]
    items = [event(i, "console", level=level, text=level) for i, level in enumerate(levels, 1)]
    items.append(event(6, "value", type="number", preview="1", json=1))
    routed = [(plain(line.text), line.err) for line in lines(execution(), items)]
    assert routed == [
        ("log", False), ("info", False), ("debug", False), ("warn", True), ("error", True),
        ("1", False),
    ]  # fmt: skip


def test_each_event_gives_its_lines_as_it_arrives() -> None:
    view = Transcript("repl")
    assert view.event(event(1, "input_echo", text="x")) == []
    assert view.event(event(2, "console", level="log", text="now")) == [Line("now")]
    # A system note waits: the end may replace it with the record's error in words...
    assert view.event(event(3, "system", level="warn", message="output truncated")) == []
    # ...and the next event shows it was not the last.
    released = view.event(event(4, "console", level="log", text="later"))
    assert [plain(line.text) for line in released] == ["[vmctl] output truncated", "later"]


def test_transcript_of_a_file_run_omits_an_undefined_value() -> None:
    items = [event(1, "console", level="log", text="hi"), event(2, "value", type="undefined",
             preview="undefined", json=None)]  # fmt: skip
    assert plain(render(execution(kind="run_file"), items)) == "hi"
    assert plain(render(execution(kind="repl"), items)) == "hi\nundefined"


def test_transcript_shows_an_exception_with_its_stack_once() -> None:
    payload = {
        "message": "TypeError: x is not a function",
        "name": "TypeError",
        "stack": "TypeError: x is not a function\n    at <eval> (<input>:1)\n",
    }
    error = execution("error", error={"message": payload["message"], "name": "TypeError"})
    text = plain(render(error, [event(1, "exception", **payload)]))
    assert text == "TypeError: x is not a function\n    at <eval> (<input>:1)"


def test_transcript_ends_a_limited_run_with_the_limit_in_words() -> None:
    note = {"level": "error", "message": "Execution stopped", "limit": "max_events"}
    items = [event(1, "console", level="log", text="line 1"), event(2, "system", **note)]
    error = {"code": "OUTPUT_LIMIT_EXCEEDED", "limit": "max_events", "limit_value": 1}
    text = plain(render(execution("error", error=error), items))
    assert text == "line 1\nstopped: max_events limit of 1 reached"


def test_transcript_keeps_system_notes_that_add_something() -> None:
    items = [
        event(1, "system", level="warn", message="output truncated"),
        event(2, "system", level="error", message="Worker crashed: killed by signal 9"),
    ]
    error = {"code": "WORKER_CRASHED", "message": "worker killed by signal 9\nstderr tail"}
    text = plain(render(execution("crashed", error=error), items))
    assert text.split("\n") == [
        "[vmctl] output truncated",
        "crashed: worker killed by signal 9 (WORKER_CRASHED)",
        "stderr tail",
    ]


def test_transcript_of_a_status_without_error_names_the_status() -> None:
    assert plain(render(execution("cancelled"), [])) == "cancelled"
