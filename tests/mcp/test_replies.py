"""What the tools answer, without a daemon: console text kept within its budget."""

from __future__ import annotations

from vmctl.api.models import Event, Execution, ExecutionStatus
from vmctl.mcp import replies


def console(seq: int, text: str, level: str = "log") -> Event:
    payload = {"level": level, "text": text}
    return Event(execution_id="e", seq=seq, ts="", type="console", payload=payload)


def test_short_output_is_kept_whole() -> None:
    transcript = replies.Transcript()
    transcript.add([console(1, "a"), console(2, "b", "warn")])
    assert transcript.console("e") == "a\n[warn] b\n"


def test_long_output_keeps_its_head_and_tail_and_says_what_was_cut() -> None:
    transcript = replies.Transcript(head=20, tail=20)
    transcript.add([console(seq, f"line {seq:03}") for seq in range(1, 101)])
    text = transcript.console("e")
    lines = text.split("\n")[:-1]
    assert lines[:2] == ["line 001", "line 002"] and lines[2].startswith("[… ")
    assert lines[3:] == ["line 099", "line 100"]
    assert transcript.cut_after_seq == 2
    assert "96 console lines (864 characters) cut here" in text
    assert "after_seq 2" in text


def test_one_huge_line_is_cut_within_the_budget() -> None:
    transcript = replies.Transcript(head=100, tail=100)
    transcript.add([console(1, "x" * 10_000)])
    assert len(transcript.console("e")) <= 100


def test_limits_and_cancels_are_tool_errors_but_exceptions_are_not() -> None:
    def ended(status: ExecutionStatus, code: str | None) -> Execution:
        error = {"code": code, "message": "m"} if code else None
        return Execution(
            id="e", session_id="s", kind="repl", status=status, started_at="", error=error
        )

    transcript = replies.Transcript()
    assert not replies.run_reply(ended("ok", None), transcript, False, 1).is_error
    assert not replies.run_reply(ended("error", "JS_EXCEPTION"), transcript, False, 1).is_error
    assert not replies.run_reply(ended("running", None), transcript, False, 1).is_error
    endings: list[tuple[ExecutionStatus, str]] = [
        ("timeout", "EXECUTION_TIMEOUT"),
        ("error", "OUTPUT_LIMIT_EXCEEDED"),
        ("cancelled", "CANCELLED"),
        ("crashed", "WORKER_CRASHED"),
    ]
    for status, code in endings:
        reply = replies.run_reply(ended(status, code), transcript, False, 1)
        assert reply.is_error and reply.text.startswith(f"{code}: "), reply.text


def test_output_schemas_are_objects_with_their_definitions() -> None:
    schema = replies.output_schema(replies.EventsPage)
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"execution", "events", "next_after_seq"}
    assert {"Execution", "Event"} <= set(schema["$defs"])
