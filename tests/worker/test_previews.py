"""The golden table of preview_cases.py, run through the real worker process.

One ``python -m vmctl.worker`` serves the value, console and exception cases in a
single session (as a user's snippets would share one); every session case gets a
fresh worker. Each snippet is an ExecRepl request, and its Console, Value and
JsException frames are compared with the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from vmctl.protocol import Console, Error, JsException, Ok, Value

from . import (
    preview_cases,
    preview_cases_runtime,
    preview_cases_typescript,
    preview_cases_webapis,
)
from .jsworker import WorkerProcess, open_worker
from .preview_cases import (
    NO_JSON,
    ConsoleCase,
    ExceptionCase,
    SessionCase,
    Text,
    ValueCase,
)

# The first table, then one per part of the runtime added since (issue 12).
TABLES = (preview_cases, preview_cases_runtime, preview_cases_typescript, preview_cases_webapis)
VALUES: tuple[ValueCase, ...] = sum((t.VALUES for t in TABLES), ())
CONSOLE: tuple[ConsoleCase, ...] = sum((t.CONSOLE for t in TABLES), ())
EXCEPTIONS: tuple[ExceptionCase, ...] = sum((t.EXCEPTIONS for t in TABLES), ())
SESSIONS: tuple[SessionCase, ...] = sum((getattr(t, "SESSIONS", ()) for t in TABLES), ())


class Outcome(NamedTuple):
    console: list[tuple[str, str]]
    value: dict[str, Any] | None
    exception: dict[str, Any] | None


class WorkerSession:
    """A REPL session in a real worker: one ExecRepl per snippet, its frames as an Outcome."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker

    def run(self, code: str) -> Outcome:
        console: list[tuple[str, str]] = []
        value: dict[str, Any] | None = None
        exception: dict[str, Any] | None = None
        for frame in self._worker.repl(code):
            match frame:
                case Console(level=level, text=text):
                    console.append((level, text))
                case Value(value_type=kind, preview=preview, json=json):
                    value = {"type": kind, "preview": preview}
                    if json is not msgspec.UNSET:
                        value["json"] = json
                case JsException(message=message, name=name, stack=stack):
                    exception = {"message": message}
                    exception.update({k: v for k, v in (("name", name), ("stack", stack)) if v})
                case Error(code=code_) if code_ != "JS_ERROR":
                    raise AssertionError(f"{code!r} failed in the worker: {frame}")
                case Ok() | Error():
                    pass
        return Outcome(console, value, exception)


def matches(actual: str, expected: Text) -> bool:
    if isinstance(expected, re.Pattern):
        return expected.fullmatch(actual) is not None
    return actual == expected


def _id(code: str) -> str:
    return code if len(code) <= 50 else code[:47] + "..."


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerSession]:
    with open_worker(tmp_path_factory.mktemp("worktree")) as worker:
        yield WorkerSession(worker)


@pytest.mark.parametrize("case", VALUES, ids=[_id(c.code) for c in VALUES])
def test_value_is_described_like_node(session: WorkerSession, case: ValueCase) -> None:
    outcome = session.run(case.code)
    assert outcome.exception is None
    assert outcome.value is not None
    assert outcome.value["type"] == case.type
    assert matches(outcome.value["preview"], case.preview), outcome.value["preview"]
    assert outcome.value.get("json", NO_JSON) == case.json


@pytest.mark.parametrize("case", CONSOLE, ids=[_id(c.code) for c in CONSOLE])
def test_console_prints_like_node(session: WorkerSession, case: ConsoleCase) -> None:
    outcome = session.run(case.code)
    assert outcome.exception is None
    assert [level for level, _ in outcome.console] == [level for level, _ in case.lines]
    for (_, text), (_, expected) in zip(outcome.console, case.lines, strict=True):
        assert matches(text, expected), text


def _with_gaps(cases: tuple[ExceptionCase, ...]) -> list[Any]:
    return [
        pytest.param(
            case, id=_id(case.code), marks=[pytest.mark.xfail(reason=case.gap)] if case.gap else []
        )
        for case in cases
    ]


@pytest.mark.parametrize("case", _with_gaps(EXCEPTIONS))
def test_exception_is_reported_like_node(session: WorkerSession, case: ExceptionCase) -> None:
    outcome = session.run(case.code)
    assert outcome.value is None
    assert outcome.exception is not None
    assert outcome.exception["message"] == case.message
    assert outcome.exception.get("name") == case.name
    if case.stack is not None:
        assert matches(outcome.exception["stack"], case.stack), outcome.exception["stack"]
    if case.name is None:
        assert "stack" not in outcome.exception


@pytest.mark.parametrize("case", SESSIONS, ids=[c.name for c in SESSIONS])
def test_snippets_build_on_each_other(case: SessionCase, worktree: Path) -> None:
    with open_worker(worktree) as worker:
        _check_steps(WorkerSession(worker), case)


def _check_steps(session: WorkerSession, case: SessionCase) -> None:
    for code, expected in case.steps:
        outcome = session.run(code)
        if expected is None:
            assert outcome.exception is not None, code
        else:
            assert outcome.exception is None, (code, outcome.exception)
            assert outcome.value is not None
            assert outcome.value["preview"] == expected, code


def _snippets(table: Any) -> int:
    sessions = getattr(table, "SESSIONS", ())
    return sum(len(getattr(table, name)) for name in ("VALUES", "CONSOLE", "EXCEPTIONS")) + sum(
        len(c.steps) for c in sessions
    )


def test_table_has_at_least_a_hundred_snippets() -> None:
    assert _snippets(preview_cases) >= 100


def test_the_runtime_tables_add_at_least_sixty_snippets() -> None:
    assert sum(_snippets(table) for table in TABLES[1:]) >= 60
