"""GET /metrics: scraped before and after what the test makes happen, each metric moved by
exactly that (docs/metrics.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, get_args

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from real_daemon import Daemon, error_code, wait_until
from vmctl.api.models import SESSION_STATUSES, ExecutionStatus, LimitName
from vmctl.supervisor import metrics as daemon_metrics
from vmctl.supervisor.http.metrics import CONTENT_TYPE

Make = Callable[..., dict[str, Any]]
# A sample as the scrape names it: its name and its labels.
Key = tuple[str, frozenset[tuple[str, str]]]
Scrape = dict[Key, float]

SPIN = "for (;;) {}"


def _scrape(daemon: Daemon, api: httpx.Client) -> Scrape:
    response = api.get(daemon.url + "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(scrape: Scrape, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def _moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def _moves(
    before: Scrape, after: Scrape, name: str, label: str, values: tuple[str, ...]
) -> dict[str, float]:
    return {value: _moved(before, after, name, **{label: value}) for value in values}


def _repl(api: httpx.Client, session_id: str, code: str, **body: Any) -> httpx.Response:
    return api.post("/executions/repl", json={"session_id": session_id, "input": code, **body})


def _execution_id(response: httpx.Response) -> str:
    """The execution a 201 answered with, or the one a 422/500 names."""
    body = response.json()
    execution_id: str = (
        body["id"] if response.status_code == 201 else body["error"]["details"]["execution_id"]
    )
    return execution_id


def _cancelled_spin(api: httpx.Client, session_id: str) -> str:
    started = _repl(api, session_id, SPIN, wait=False)
    assert started.status_code == 202, started.text
    execution_id: str = started.json()["id"]
    # Running for sure once its first event is committed (a long-poll: no sleep).
    events = api.get(f"/executions/{execution_id}/events", params={"wait_ms": 10_000}, timeout=20)
    assert events.json()[0]["type"] == "input_echo"
    cancelled = api.post(f"/executions/{execution_id}/cancel", timeout=20)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    return execution_id


# -- the endpoint ------------------------------------------------------------------------


def test_metrics_need_the_token_like_the_api(daemon: Daemon, api: httpx.Client) -> None:
    before = _scrape(daemon, api)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = httpx.get(daemon.url + "/metrics", headers=headers)
        assert refused.status_code == 401 and error_code(refused) == "UNAUTHORIZED"
        assert "vmctl_" not in refused.text
    after = _scrape(daemon, api)
    assert (
        _moved(
            before, after, "vmctl_http_requests_total", route="/metrics", method="GET", status="401"
        )
        == 2
    )
    assert (
        _moved(
            before, after, "vmctl_http_requests_total", route="/metrics", method="GET", status="200"
        )
        == 1
    )


def test_every_series_is_there_from_the_start(daemon: Daemon, api: httpx.Client) -> None:
    scrape = _scrape(daemon, api)
    for status in daemon_metrics.EXECUTION_STATUSES:
        assert ("vmctl_executions_total", frozenset({("status", status)})) in scrape
    for cause in daemon_metrics.CRASH_CAUSES:
        assert ("vmctl_worker_crashes_total", frozenset({("cause", cause)})) in scrape
    for limit in daemon_metrics.LIMITS:
        assert ("vmctl_limit_stops_total", frozenset({("limit", limit)})) in scrape
    for status in SESSION_STATUSES:
        assert ("vmctl_sessions", frozenset({("status", status)})) in scrape
    for timeout in daemon_metrics.LIFECYCLE_TIMEOUTS:
        assert ("vmctl_sessions_expired_total", frozenset({("timeout", timeout)})) in scrape
    for outcome in daemon_metrics.REPLAY_OUTCOMES:
        assert ("vmctl_session_replays_total", frozenset({("outcome", outcome)})) in scrape
    assert _value(scrape, "vmctl_worker_pool_size") == 0  # no warm pool yet
    assert _value(scrape, "vmctl_forkserver_up") in (0, 1)


def test_the_label_values_are_the_contracts() -> None:
    finals = tuple(s for s in get_args(ExecutionStatus) if s != "running")
    assert sorted(daemon_metrics.EXECUTION_STATUSES) == sorted(finals)
    assert daemon_metrics.SESSION_STATUSES == SESSION_STATUSES
    assert sorted(daemon_metrics.LIMITS) == sorted(get_args(LimitName))


def test_two_apps_in_one_process_count_apart() -> None:
    first, second = daemon_metrics.Metrics(), daemon_metrics.Metrics()
    first.executions.labels("ok").inc()
    assert first.registry.get_sample_value("vmctl_executions_total", {"status": "ok"}) == 1
    assert second.registry.get_sample_value("vmctl_executions_total", {"status": "ok"}) == 0


# -- what happened -------------------------------------------------------------------------


def test_each_metric_moves_by_what_happened(
    daemon: Daemon, api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    before = _scrape(daemon, api)
    limited = make_session(make_template(wall_ms=300, max_events=20))
    plain = make_session()
    closed = make_session()
    assert api.post(f"/sessions/{closed['id']}/close").status_code == 200

    ok = _repl(api, limited["id"], "1 + 1")
    threw = _repl(api, limited["id"], "throw new Error('no')")
    timed_out = _repl(api, limited["id"], SPIN)
    flooded = _repl(api, limited["id"], "for (let i = 0; i < 100; i++) console.log(i)")
    assert [r.status_code for r in (ok, threw, timed_out, flooded)] == [201, 201, 422, 422]
    assert threw.json()["status"] == "error"
    assert error_code(timed_out) == "EXECUTION_TIMEOUT"
    assert error_code(flooded) == "OUTPUT_LIMIT_EXCEEDED"
    ids = [_execution_id(r) for r in (ok, threw, timed_out, flooded)]
    ids.append(_cancelled_spin(api, plain["id"]))
    records = [api.get(f"/executions/{execution_id}").json() for execution_id in ids]
    after = _scrape(daemon, api)

    statuses = daemon_metrics.EXECUTION_STATUSES
    assert _moves(before, after, "vmctl_executions_total", "status", statuses) == {
        "ok": 1, "error": 2, "timeout": 1, "cancelled": 1, "crashed": 0,
    }  # fmt: skip
    assert _moves(before, after, "vmctl_limit_stops_total", "limit", daemon_metrics.LIMITS) == {
        "cpu_ms": 0, "wall_ms": 1, "mem_mb": 0, "max_events": 1, "max_output_kb": 0,
    }  # fmt: skip
    wall = [record["metrics"]["wall_ms"] / 1000 for record in records]
    assert _moved(before, after, "vmctl_execution_wall_seconds_count") == 5
    assert _moved(before, after, "vmctl_execution_wall_seconds_sum") == pytest.approx(sum(wall))
    assert _moved(before, after, "vmctl_execution_wall_seconds_bucket", le="0.25") == sum(
        1 for seconds in wall if seconds <= 0.25
    )
    events = sum(record["metrics"]["events"] for record in records)
    output = sum(record["metrics"]["output_bytes"] for record in records)
    assert _moved(before, after, "vmctl_events_ingested_total") == events > 20
    assert _moved(before, after, "vmctl_output_bytes_ingested_total") == output > 0
    assert _moved(before, after, "vmctl_store_commit_seconds_count") >= 1
    assert _moved(before, after, "vmctl_store_commit_seconds_sum") > 0

    starts = _moves(before, after, "vmctl_worker_starts_total", "how", ("fork", "spawn"))
    forked = _value(after, "vmctl_forkserver_up") == 1
    assert starts == ({"fork": 3, "spawn": 0} if forked else {"fork": 0, "spawn": 3})
    crashes = _moves(
        before, after, "vmctl_worker_crashes_total", "cause", daemon_metrics.CRASH_CAUSES
    )
    assert set(crashes.values()) == {0}

    sessions = _moves(before, after, "vmctl_sessions", "status", SESSION_STATUSES)
    assert sessions == {"starting": 0, "ready": 2, "crashed": 0, "closed": 1}
    assert _value(after, "vmctl_workers_live") == 2
    assert _value(after, "vmctl_workers_busy") == 0

    def requests(route: str, method: str, status: int) -> float:
        labels = {"route": route, "method": method, "status": str(status)}
        return _moved(before, after, "vmctl_http_requests_total", **labels)

    assert requests("/api/v1/sessions", "POST", 201) == 3
    assert requests("/api/v1/sessions/{session_id}/close", "POST", 200) == 1
    assert requests("/api/v1/executions/repl", "POST", 201) == 2
    assert requests("/api/v1/executions/repl", "POST", 422) == 2
    assert requests("/api/v1/executions/repl", "POST", 202) == 1
    assert requests("/api/v1/executions/{execution_id}/cancel", "POST", 200) == 1
    assert requests("/api/v1/executions/{execution_id}", "GET", 200) == 5
    assert requests("/metrics", "GET", 200) == 1  # the scrape before; this one is not yet done


def test_crashes_are_counted_by_cause(
    daemon: Daemon, api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    dies = make_session(make_template("dies"))  # SIGSEGV on its first request
    hangs = make_session(make_template("hangs", wall_ms=200, cpu_ms=200))  # ignores interrupts
    before = _scrape(daemon, api)
    crashed = _repl(api, dies["id"], "1")
    killed = _repl(api, hangs["id"], "1")  # at wall_ms + HARD_DEADLINE_GRACE
    assert crashed.status_code == 500 and error_code(crashed) == "WORKER_CRASHED"
    assert killed.status_code == 422 and error_code(killed) == "EXECUTION_TIMEOUT"
    after = _scrape(daemon, api)

    crashes = _moves(
        before, after, "vmctl_worker_crashes_total", "cause", daemon_metrics.CRASH_CAUSES
    )
    assert {cause: n for cause, n in crashes.items() if n} == {"signal": 1, "hard_deadline": 1}
    assert _moved(before, after, "vmctl_executions_total", status="crashed") == 1
    assert _moved(before, after, "vmctl_executions_total", status="timeout") == 1
    assert _moved(before, after, "vmctl_limit_stops_total", limit="wall_ms") == 1
    assert _moved(before, after, "vmctl_sessions", status="crashed") == 2
    assert _moved(before, after, "vmctl_sessions", status="ready") == -2
    assert _value(after, "vmctl_workers_live") == 0
    assert (
        _moved(
            before,
            after,
            "vmctl_http_requests_total",
            route="/api/v1/executions/repl",
            method="POST",
            status="500",
        )
        == 1
    )


# -- bounded labels --------------------------------------------------------------------------


def test_made_up_paths_and_methods_add_no_series(daemon: Daemon, api: httpx.Client) -> None:
    session_route = "/api/v1/sessions/{session_id}"

    def requests(route: str, method: str, status: int) -> tuple[str, frozenset[tuple[str, str]]]:
        labels = {"route": route, "method": method, "status": str(status)}
        return ("vmctl_http_requests_total", frozenset(labels.items()))

    def unknown_session() -> None:
        assert api.get(f"/sessions/{uuid.uuid4()}").status_code == 404

    def others(turn: int) -> None:
        assert api.get(f"/{uuid.uuid4()}/{uuid.uuid4()}").status_code == 404
        # Methods no route takes (uvicorn's parser refuses ones it does not know at all).
        method = ("PROPFIND", "MKCOL", "PURGE", "LOCK")[turn % 4]
        assert api.request(method, "/sessions").status_code == 405
        # Refused before it was routed: counted under the route it would have reached.
        assert httpx.get(f"{daemon.url}/api/v1/sessions/{uuid.uuid4()}").status_code == 401

    unknown_session()
    others(0)  # each kind's series exists before the first scrape
    before = _scrape(daemon, api)
    for turn in range(1000):
        unknown_session()
        if turn % 10 == 0:
            others(turn)
    after = _scrape(daemon, api)

    assert set(after) == set(before)
    moved = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    assert moved[requests(session_route, "GET", 404)] == 1000
    assert moved[requests(session_route, "GET", 401)] == 100
    assert moved[requests("unmatched", "GET", 404)] == 100
    assert moved[requests("/api/v1/sessions", "other", 405)] == 100


def test_expired_sessions_and_replays_are_counted(
    daemon: Daemon, api: httpx.Client, make_template: Make, make_session: Make
) -> None:
    template = make_template()
    replayed = make_session(template)
    assert _repl(api, replayed["id"], "globalThis.n = 1").status_code == 201
    expiring = make_session(template)
    before = _scrape(daemon, api)

    restart = f"/sessions/{replayed['id']}/restart"
    assert api.post(restart, json={"replay": True}).status_code == 200
    put = api.put(
        f"/templates/{template['id']}/settings", json={"lifecycle": {"max_lifetime_ms": 1}}
    )
    assert put.status_code == 200, put.text

    def closed() -> bool:
        sessions = (api.get(f"/sessions/{s['id']}").json() for s in (replayed, expiring))
        return all(s["status"] == "closed" for s in sessions)

    wait_until(closed, timeout=15)
    after = _scrape(daemon, api)
    assert _moves(before, after, "vmctl_session_replays_total", "outcome", ("whole",)) == {
        "whole": 1
    }
    expired = _moves(
        before, after, "vmctl_sessions_expired_total", "timeout", daemon_metrics.LIFECYCLE_TIMEOUTS
    )
    assert expired == {"idle_timeout": 0, "max_lifetime": 2}
