"""Every code the daemon can raise has its HTTP status in the one table of http/errors.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vmctl.supervisor.http.errors import STATUS_BY_CODE
from vmctl.supervisor.sessions import errors
from vmctl.supervisor.workers.outcome import _ENDINGS

SUPERVISOR = Path(errors.__file__).resolve().parents[1]
ERROR_CLASSES = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.VmctlError)
} | {"RequestError"}


def _raised_codes() -> set[str]:
    """The literal codes given to an error class anywhere in the daemon's source."""
    codes = set()
    for path in SUPERVISOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ERROR_CLASSES
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                codes.add(node.args[0].value)
    return codes


RAISED = _raised_codes()


def test_the_source_raises_the_codes_it_is_expected_to() -> None:
    # A scan that found nothing would pass the next test for nothing.
    assert {"SESSION_BUSY", "CAPACITY_EXCEEDED", "INVALID_REQUEST", "STARTUP_FAILED"} <= RAISED


@pytest.mark.parametrize("code", sorted(RAISED))
def test_a_raised_code_has_a_status(code: str) -> None:
    assert code in STATUS_BY_CODE


# ExecutionFailed carries the code of an execution a limit or a crash ended; a throw
# (JS_EXCEPTION) or a cancel (CANCELLED) is answered 201 with its record instead.
FAILURE_CODES = {code for _, code in _ENDINGS.values() if code} - {"JS_EXCEPTION", "CANCELLED"}


@pytest.mark.parametrize("code", sorted(FAILURE_CODES))
def test_an_execution_failure_code_has_a_status(code: str) -> None:
    assert code in STATUS_BY_CODE


def test_not_found_codes_of_every_kind_have_a_status() -> None:
    for kind in ("template", "session", "execution"):
        assert errors.not_found(kind, "x").code in STATUS_BY_CODE
