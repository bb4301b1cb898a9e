"""Inputs that once made the daemon answer ``500 INTERNAL``, each found by fuzzing
(test_api_schemathesis.py), and what it answers now."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from real_daemon import JSON_BODY, error_code

BEYOND_64_BITS = [10**21, -(10**21), 2**63, -(2**63) - 1, 2**64, 10**400]


def _post_raw(api: httpx.Client, path: str, raw: str) -> httpx.Response:
    return api.post(path, content=raw.encode(), headers=JSON_BODY)


@pytest.mark.parametrize(
    "number", BEYOND_64_BITS, ids=["1e21", "-1e21", "2^63", "-2^63-1", "2^64", "1e400"]
)
def test_a_startup_order_index_beyond_64_bits_is_a_validation_error(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]], number: int
) -> None:
    # It was a 500: the store could not bind the integer to its column.
    template = make_template()
    body = json.dumps({"path": "a.js", "order_index": number})
    answer = _post_raw(api, f"/templates/{template['id']}/startup-files", body)
    assert answer.status_code == 400, answer.text
    assert error_code(answer) == "VALIDATION_ERROR"
    assert answer.json()["error"]["details"]["field"] == "order_index"
    listed = api.get(f"/templates/{template['id']}/startup-files").json()
    assert listed == []


def test_the_largest_64_bit_order_index_is_kept(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    template = make_template()
    for order_index in (2**63 - 1, -(2**63)):
        body = {"path": f"a{order_index}.js", "order_index": order_index}
        answer = api.post(f"/templates/{template['id']}/startup-files", json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["order_index"] == order_index


@pytest.mark.parametrize("raw_number", ["1e400", "-1e400", "1" + "0" * 400])
def test_a_limit_no_number_type_holds_is_a_validation_error(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]], raw_number: str
) -> None:
    template = make_template()
    body = f'{{"limits": {{"cpu_ms": {raw_number}}}}}'
    answer = api.put(f"/templates/{template['id']}/settings", content=body, headers=JSON_BODY)
    assert answer.status_code == 400, answer.text
    assert error_code(answer) == "VALIDATION_ERROR"
    assert answer.json()["error"]["details"]["field"] == "limits.cpu_ms"


def test_a_float_too_large_in_a_free_form_field_is_a_validation_error(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    template = make_template()
    body = '{"kind": "k", "name": "n", "config": {"x": [1e400]}}'
    answer = _post_raw(api, f"/templates/{template['id']}/capabilities", body)
    assert answer.status_code == 400, answer.text
    assert error_code(answer) == "VALIDATION_ERROR"


def test_a_wrong_type_stays_an_invalid_request(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    template = make_template()
    body = {"path": "a.js", "order_index": "1"}
    answer = api.post(f"/templates/{template['id']}/startup-files", json=body)
    assert answer.status_code == 400
    assert error_code(answer) == "INVALID_REQUEST"


def test_huge_integers_in_args_run_and_come_back(
    api: httpx.Client, make_session: Callable[..., dict[str, Any]], worktree: Path
) -> None:
    # Free-form JSON may hold any integer: it is stored as JSON text, not in a column.
    (worktree / "args.js").write_text("__ARGS__.n > 1e20\n")
    session = make_session()
    body = f'{{"session_id": "{session["id"]}", "path": "args.js", "args": {{"n": {10**30}}}}}'
    answer = _post_raw(api, "/executions/run-file", body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["args"] == {"n": 10**30}
    assert answer.json()["status"] == "ok", answer.text
