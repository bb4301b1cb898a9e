"""An execution's events come in pages: ``limit``, and ``X-Next-After-Seq`` while more follow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import Daemon, error_code

Make = Callable[..., dict[str, Any]]

NEXT = "X-Next-After-Seq"
MIB = 1024 * 1024


def _logging(api: httpx.Client, session_id: str, lines: int) -> str:
    """An execution of ``lines`` console lines (``lines + 2`` events); its id."""
    code = f"for (let i = 1; i <= {lines}; i++) console.log(i); 'done'"
    response = api.post("/executions/repl", json={"session_id": session_id, "input": code})
    assert response.status_code == 201, response.text
    assert response.json()["metrics"]["events"] == lines + 2
    execution_id: str = response.json()["id"]
    return execution_id


def _page(api: httpx.Client, execution_id: str, **params: int) -> httpx.Response:
    response = api.get(f"/executions/{execution_id}/events", params=params)
    assert response.status_code == 200, response.text
    return response


def test_pages_follow_one_another_until_no_header_says_more(
    api: httpx.Client, make_session: Make
) -> None:
    execution_id = _logging(api, make_session()["id"], 23)  # 25 events
    seqs: list[list[int]] = []
    headers: list[str | None] = []
    after = 0
    while True:
        response = _page(api, execution_id, after_seq=after, limit=10)
        seqs.append([event["seq"] for event in response.json()])
        headers.append(response.headers.get(NEXT))
        if NEXT not in response.headers:
            break
        after = int(response.headers[NEXT])
    assert seqs == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert headers == ["10", "20", None]


def test_a_page_that_ends_with_the_last_event_has_no_header(
    api: httpx.Client, make_session: Make
) -> None:
    execution_id = _logging(api, make_session()["id"], 8)  # 10 events
    response = _page(api, execution_id, limit=10)
    assert len(response.json()) == 10 and NEXT not in response.headers
    assert _page(api, execution_id, after_seq=10).json() == []


def test_the_default_page_is_ten_thousand_events(
    api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    session = make_session(make_template(max_output_kb=1024))
    execution_id = _logging(api, session["id"], 10_001)  # 10,003 events
    first = _page(api, execution_id)
    assert len(first.json()) == 10_000 and first.headers[NEXT] == "10000"
    rest = _page(api, execution_id, after_seq=10_000)
    assert [event["seq"] for event in rest.json()] == [10_001, 10_002, 10_003]
    assert NEXT not in rest.headers
    assert len(_page(api, execution_id, limit=100_000).json()) == 10_003


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "100001"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"after_seq": "-1"},
        {"after_seq": str(2**63)},
    ],
)
def test_out_of_range_paging_parameters_are_refused(
    api: httpx.Client, make_session: Make, params: dict[str, str]
) -> None:
    execution_id = _logging(api, make_session()["id"], 1)
    response = api.get(f"/executions/{execution_id}/events", params=params)
    assert response.status_code == 400, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"]["field"] == next(iter(params))


def test_serving_the_largest_pages_leaves_the_daemon_no_bigger(
    api: httpx.Client, daemon: Daemon, make_template: Make, make_session: Make
) -> None:
    # Once glibc kept each big answer's memory (about 50 MiB for a page of 100,000 events).
    session = make_session(make_template(max_events=100_000, max_output_kb=8192))
    execution_id = _logging(api, session["id"], 99_998)
    process = psutil.Process(daemon.proc.pid)
    sizes = []
    for _ in range(3):
        page = _page(api, execution_id, limit=100_000)
        assert len(page.content) > 10 * MIB
        sizes.append(process.memory_info().rss)
    assert sizes[2] - sizes[0] < 4 * MIB, [size // MIB for size in sizes]
