"""The CLI follows an execution's event pages wherever it prints all events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cli.runner import Vmctl

Json = Callable[..., Any]

# More lines than one page of events holds (10,000 by default).
LINES = 10_050


def test_events_and_the_transcript_hold_every_page(
    vmctl: Vmctl, vmctl_json: Json, hello_template: dict[str, Any], hello_session: str
) -> None:
    vmctl_json("template", "set-limits", hello_template["id"], "--max-output-kb", "1024")
    code = f"for (let i = 1; i <= {LINES}; i++) console.log('line ' + i); 'end'"
    result = vmctl("exec", "repl", hello_session, code)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "line 1" and f"line {LINES}" in lines and lines[-1] == "end"
    execution_id = vmctl_json("exec", "list", hello_session, "--limit", "1")[0]["id"]
    events = vmctl_json("exec", "events", execution_id)
    assert [event["seq"] for event in events] == list(range(1, LINES + 3))
    later = vmctl_json("exec", "events", execution_id, "--after-seq", "9999")
    assert [event["seq"] for event in later] == list(range(10_000, LINES + 3))
