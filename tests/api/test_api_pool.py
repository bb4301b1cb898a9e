"""The warm pool (``--pool-size``): a session create claims a worker started ahead of need.

Each test runs its own daemon: waiting workers outlive the test that made them until
their daemon stops, which the suite's leak check would count against the next test.
A waiting worker is found as the fork server's child that no session runs.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from real_daemon import Daemon, error_code, running_daemon, session_body, wait_until

POOL = ("--pool-size", "2")
# Long enough for a fork and a handshake on a loaded 2-core machine.
REFILL_TIMEOUT = 15.0

STARTUP = """\
globalThis.fromStartup = {
  order: [...(globalThis.fromStartup?.order ?? []), "00"],
  at: performance.now(),
  random: Math.random(),
};
"""

# What a session shows of its worker's context, the same in a fresh one and a claimed one.
BATTERY = [
    "Object.getOwnPropertyNames(globalThis).sort().join()",
    "['console', 'setTimeout', 'setInterval', 'queueMicrotask', 'structuredClone', 'crypto',"
    " 'URL', 'TextEncoder', 'AbortController', 'performance', 'require', 'process', 'Buffer',"
    " '__ARGS__', 'fromStartup'].map((n) => `${n}:${typeof globalThis[n]}`).join()",
    "JSON.stringify(fromStartup.order)",
    "Object.keys(performance).join() + typeof performance.now + typeof performance.timeOrigin",
    "JSON.stringify(Object.getOwnPropertyDescriptor(globalThis, 'performance'),"
    " (k, v) => (k === 'value' ? typeof v : v))",
    "(() => { try { null.x } catch (e) { return e.stack } })()",
    "let declared = 1; declared",
    "new Date(0).getTimezoneOffset()",
]


@pytest.fixture
def readable_tree() -> Iterator[Path]:
    """A worktree the worker user may read (so a root daemon's workers drop their uid),
    with a startup file."""
    with tempfile.TemporaryDirectory(prefix="vmctl-pool-") as name:
        os.chmod(name, 0o755)
        tree = Path(name)
        (tree / "startup.js").write_text(STARTUP)
        os.chmod(tree / "startup.js", 0o644)
        yield tree


def _template(client: httpx.Client, startup: bool = False) -> dict[str, Any]:
    template: dict[str, Any] = client.post("/templates", json={"name": f"t-{uuid.uuid4()}"}).json()
    if startup:
        added = client.post(
            f"/templates/{template['id']}/startup-files",
            json={"path": "startup.js", "order_index": 0},
        )
        assert added.status_code == 201, added.text
    return template


def _create(client: httpx.Client, template: dict[str, Any], tree: Path) -> dict[str, Any]:
    response = client.post("/sessions", json=session_body(template["id"], tree))
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def _repl(client: httpx.Client, session: dict[str, Any], code: str) -> Any:
    record = client.post("/executions/repl", json={"session_id": session["id"], "input": code})
    body = record.json()
    assert body["status"] == "ok", body
    return body["result"]["json"]


def _summary(client: httpx.Client) -> dict[str, Any]:
    summary: dict[str, Any] = client.get("/runtime/summary").json()
    return summary


def _metric(daemon: Daemon, client: httpx.Client, name: str) -> float:
    text = client.get(daemon.url + "/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def _waiting_pids(daemon: Daemon, client: httpx.Client) -> set[int]:
    """The fork server's children that no session runs: the waiting (or starting) ones."""
    forkservers = [
        child
        for child in psutil.Process(daemon.proc.pid).children()
        if "vmctl.worker.forkserver" in child.cmdline()
    ]
    assert len(forkservers) == 1
    workers = {child.pid for child in forkservers[0].children()}
    return workers - set(_summary(client)["workers"].values())


def _wait_full(daemon: Daemon, client: httpx.Client, size: int = 2) -> set[int]:
    """Wait until ``size`` workers wait (and nothing else is being started); their pids."""

    def full() -> bool:
        pooled: int = _summary(client)["pooled_workers"]
        return pooled == size == len(_waiting_pids(daemon, client))

    wait_until(full, REFILL_TIMEOUT)
    return _waiting_pids(daemon, client)


def _wait_gone(pids: set[int]) -> None:
    wait_until(lambda: not any(psutil.pid_exists(pid) for pid in pids), REFILL_TIMEOUT)


def _age_ms(pid: int) -> float:
    """How long ``pid`` has run, from the kernel's boot clock (/proc, in clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return (uptime - started / ticks) * 1000


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {key: fields[key].strip() for key in ("Uid", "Gid", "NoNewPrivs", "Seccomp", "CapEff")}


def _worker(session: dict[str, Any]) -> psutil.Process:
    return psutil.Process(session["runtime_meta"]["pid"])


def test_a_claimed_worker_is_indistinguishable_from_a_fresh_one(
    tmp_path: Path, readable_tree: Path
) -> None:
    with (
        running_daemon(tmp_path / "fresh", ["--pool-size", "0"]) as plain,
        plain.client() as plain_client,
        running_daemon(tmp_path / "pooled", POOL) as daemon,
        daemon.client() as client,
    ):
        reference = _create(plain_client, _template(plain_client, startup=True), readable_tree)
        template = _template(client, startup=True)
        first = _create(client, template, readable_tree)  # a fresh worker: the pool was empty
        waiting = _wait_full(daemon, client)
        # Let the waiting workers age, so a clock that counted from their fork would show it.
        wait_until(lambda: min(_age_ms(pid) for pid in waiting) > 300)
        started = time.perf_counter()
        claimed = _create(client, template, readable_tree)
        first_answer = "[performance.now(), fromStartup.at]"
        startup_at, now = _repl(client, claimed, first_answer)[::-1]
        session_age_ms = (time.perf_counter() - started) * 1000
        other = _create(client, template, readable_tree)

        assert claimed["runtime_meta"]["pid"] in waiting
        assert first["runtime_meta"]["pid"] not in waiting
        _repl(plain_client, reference, first_answer)
        _repl(client, first, first_answer)
        answers = [
            [_repl(c, s, code) for code in BATTERY]
            for c, s in ((plain_client, reference), (client, first), (client, claimed))
        ]
        assert answers[1] == answers[0] and answers[2] == answers[0]

        # The context's clock starts with the session, not when the worker was forked.
        assert 0 <= startup_at <= now <= session_age_ms
        # Each worker seeds its own random numbers.
        randoms = [
            _repl(c, s, "[fromStartup.random, Math.random(), Math.random()]")
            for c, s in ((plain_client, reference), (client, claimed), (client, other))
        ]
        assert len({str(r) for r in randoms}) == 3

        # The same jail, for the same worktree, as the same user.
        meta = [s["runtime_meta"] for s in (reference, first, claimed)]
        assert meta[0]["sandbox"] == meta[1]["sandbox"] == meta[2]["sandbox"]
        assert len({m["mem_mb"] for m in meta}) == 1
        statuses = [_status(_worker(s).pid) for s in (reference, first, claimed)]
        assert statuses[0] == statuses[1] == statuses[2]
        assert {_worker(s).cwd() for s in (reference, first, claimed)} == {str(readable_tree)}

        # Its stderr goes to the session's log, not to the pool's file.
        log = daemon.home / "sessions" / claimed["id"] / "worker.log"
        assert log.exists()
        opened = {f.path for f in psutil.Process(daemon.proc.pid).open_files()}
        assert str(log) in opened
        waiting = _wait_full(daemon, client)
        assert len(list((daemon.home / "pool").iterdir())) == len(waiting)
        daemon.close_open_sessions()
        plain.close_open_sessions()


def test_the_next_session_claims_a_waiting_worker_and_the_pool_refills(
    tmp_path: Path, worktree: Path
) -> None:
    with running_daemon(tmp_path / "home", POOL) as daemon, daemon.client() as client:
        template = _template(client)
        _create(client, template, worktree)
        assert _metric(daemon, client, "vmctl_worker_pool_claims_total") == 0
        waiting = _wait_full(daemon, client)
        second = _create(client, template, worktree)
        assert second["runtime_meta"]["pid"] in waiting  # it was up before the request
        assert _metric(daemon, client, "vmctl_worker_pool_claims_total") == 1
        refilled = _wait_full(daemon, client)
        assert len(refilled - waiting) == 1  # one new worker beside the one left
        assert _metric(daemon, client, "vmctl_worker_pool_size") == 2
        # Another worktree is another key: its first session starts a worker of its own.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        third = _create(client, template, elsewhere)
        assert third["runtime_meta"]["pid"] not in refilled
        daemon.close_open_sessions()


@pytest.mark.parametrize("change", ["settings", "startup file", "library", "delete"])
def test_a_change_to_the_template_drains_its_waiting_workers(
    tmp_path: Path, worktree: Path, change: str
) -> None:
    (worktree / "startup.js").write_text(STARTUP)
    with running_daemon(tmp_path / "home", POOL) as daemon, daemon.client() as client:
        template = _template(client)
        other = _template(client)  # another template's pool is left alone
        session = _create(client, template, worktree)
        _create(client, other, worktree)
        waiting = _wait_full(daemon, client, size=4)
        url = f"/templates/{template['id']}"
        if change == "settings":
            changed = client.put(f"{url}/settings", json={"limits": {"mem_mb": 64}})
        elif change == "startup file":
            changed = client.post(
                f"{url}/startup-files", json={"path": "startup.js", "order_index": 0}
            )
        elif change == "library":
            (daemon.home / "libraries").mkdir(exist_ok=True)
            (daemon.home / "libraries" / "lib.js").write_text("globalThis.fromLibrary = 7;\n")
            changed = client.post(f"{url}/libraries", json={"name": "lib"})
        else:
            client.post(f"/sessions/{session['id']}/close")
            changed = client.delete(url)
        assert changed.status_code in (200, 201, 204), changed.text

        kept = _wait_full(daemon, client, size=2)  # the other template's
        drained = waiting - kept
        assert len(drained) == 2 and kept < waiting
        _wait_gone(drained)
        if change == "delete":
            refused = client.post("/sessions", json=session_body(template["id"], worktree))
            assert error_code(refused) == "TEMPLATE_NOT_FOUND"
            return
        after = _create(client, template, worktree)
        assert after["runtime_meta"]["pid"] not in waiting
        if change == "settings":
            assert after["runtime_meta"]["mem_mb"] == 64
        elif change == "startup file":
            assert _repl(client, after, "fromStartup.order") == ["00"]
        else:
            assert _repl(client, after, "fromLibrary") == 7
        daemon.close_open_sessions()


def test_with_pool_size_0_no_worker_is_started_ahead(tmp_path: Path, worktree: Path) -> None:
    with (
        running_daemon(tmp_path / "home", ["--pool-size", "0"]) as daemon,
        daemon.client() as client,
    ):
        template = _template(client)
        sessions = [_create(client, template, worktree) for _ in range(3)]
        forks = 'vmctl_worker_starts_total{how="fork"}'
        assert _metric(daemon, client, forks) == 3  # one start per session, none besides
        assert _waiting_pids(daemon, client) == set()
        assert _summary(client)["pooled_workers"] == 0
        assert _metric(daemon, client, "vmctl_worker_pool_claims_total") == 0
        assert not (daemon.home / "pool").exists() or not any((daemon.home / "pool").iterdir())
        assert len({s["runtime_meta"]["pid"] for s in sessions}) == 3
        daemon.close_open_sessions()


def test_no_waiting_worker_outlives_the_daemon(tmp_path: Path, worktree: Path) -> None:
    with running_daemon(tmp_path / "home", POOL) as daemon, daemon.client() as client:
        _create(client, _template(client), worktree)
        waiting = _wait_full(daemon, client)
        assert daemon.stop() == 0
    assert not any(psutil.pid_exists(pid) for pid in waiting)
    assert not any((daemon.home / "pool").iterdir())


def test_a_full_pool_never_refuses_a_session(tmp_path: Path, worktree: Path) -> None:
    args = [*POOL, "--max-sessions", "2"]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as client:
        template = _template(client)
        first = _create(client, template, worktree)
        # One place is free: the pool takes it, and no more.
        waiting = _wait_full(daemon, client, size=1)
        second = _create(client, template, worktree)
        assert second["runtime_meta"]["pid"] in waiting
        assert first["status"] == second["status"] == "ready"
        # Two sessions hold both places; the pool is never counted against them.
        refused = client.post("/sessions", json=session_body(template["id"], worktree))
        assert error_code(refused) == "CAPACITY_EXCEEDED"
        daemon.close_open_sessions()


def test_a_waiting_worker_gives_its_place_up_to_a_session(tmp_path: Path, worktree: Path) -> None:
    args = [*POOL, "--max-sessions", "2"]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as client:
        _create(client, _template(client), worktree)
        waiting = _wait_full(daemon, client, size=1)
        # A session on another key needs a fresh worker: the waiting one gives its place up.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        second = _create(client, _template(client), elsewhere)
        assert second["runtime_meta"]["pid"] not in waiting
        _wait_gone(waiting)
        assert _summary(client)["pooled_workers"] == 0
        daemon.close_open_sessions()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_a_waiting_worker_that_dies_is_replaced_and_never_handed_out(
    tmp_path: Path, worktree: Path, sig: signal.Signals
) -> None:
    # A stopped one is found by the heartbeat, as an idle session's worker is, and killed.
    args = [*POOL, "--heartbeat-interval", "0.2"]
    with running_daemon(tmp_path / "home", args) as daemon, daemon.client() as client:
        template = _template(client)
        _create(client, template, worktree)
        waiting = _wait_full(daemon, client)
        killed = min(waiting)
        os.kill(killed, sig)
        wait_until(lambda: not psutil.pid_exists(killed), REFILL_TIMEOUT)
        replaced = _wait_full(daemon, client)
        assert killed not in replaced and len(replaced & waiting) == 1
        sessions = [_create(client, template, worktree) for _ in range(3)]
        assert killed not in {s["runtime_meta"]["pid"] for s in sessions}
        assert all(_repl(client, s, "1 + 1") == 2 for s in sessions)
        assert "warm pool: waiting worker" in daemon.log()
        daemon.close_open_sessions()


def test_a_session_is_stored_starting_while_its_claimed_worker_runs_the_startup(
    tmp_path: Path, readable_tree: Path
) -> None:
    # A claimed worker with nothing to run makes its session ready at once (it is written
    # once, ready); one with startup files to run is stored as starting while they run.
    (readable_tree / "slow.js").write_text(
        "globalThis.release = Date.now() + 1500;\n"
        "while (Date.now() < release && !globalThis.fromStartup) {}\n"
    )
    with running_daemon(tmp_path / "home", POOL) as daemon, daemon.client() as client:
        template = _template(client)
        client.post(
            f"/templates/{template['id']}/startup-files",
            json={"path": "slow.js", "order_index": 0},
        )
        _create(client, template, readable_tree)  # a fresh worker: now the template is in use
        waiting = _wait_full(daemon, client)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            creating = pool.submit(_create, client, template, readable_tree)
            seen: list[dict[str, Any]] = []

            def listed_starting() -> bool:
                seen[:] = client.get("/sessions", params={"status": "starting"}).json()
                return bool(seen)

            wait_until(listed_starting, REFILL_TIMEOUT)
            session = creating.result(timeout=REFILL_TIMEOUT)
        assert [s["id"] for s in seen] == [session["id"]]
        assert session["status"] == "ready" and session["runtime_meta"]["pid"] in waiting
        assert client.get(f"/sessions/{session['id']}").json() == session


def test_a_waiting_worker_whose_jail_a_fresh_start_would_not_get_is_not_handed_out(
    tmp_path: Path, readable_tree: Path
) -> None:
    with running_daemon(tmp_path / "home", POOL) as daemon, daemon.client() as client:
        template = _template(client)
        first = _create(client, template, readable_tree)
        if "uid" not in first["runtime_meta"]["sandbox"]:
            pytest.skip("workers keep the daemon's uid here: no jail layer depends on the tree")
        waiting = _wait_full(daemon, client)
        # The worker user can no longer read the tree: a worker started now would keep the
        # daemon's uid, so the waiting ones, which dropped theirs, must not stand in.
        os.chmod(readable_tree, 0o700)
        session = _create(client, template, readable_tree)
        assert session["runtime_meta"]["pid"] not in waiting
        assert "uid" not in session["runtime_meta"]["sandbox"]
        assert _repl(client, session, "1 + 1") == 2
