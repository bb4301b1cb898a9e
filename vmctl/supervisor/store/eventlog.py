"""Running executions' events, committed while they run: one writer, commits in groups.

Each running execution has an :class:`ExecutionLog`, opened with its ``running``
record. Its recorder appends events (already numbered and encoded); the
:class:`EventLog`'s one flusher task gathers what every log has pending, at most
:data:`FLUSH_DELAY` after the first of them arrived (or at once when :data:`FLUSH_EVENTS`
are waiting, or an execution ended), and hands it to the store's writer as one
transaction: the running rows not yet written, the events, each execution's metrics so
far, and the final rows of the executions that ended. While that transaction runs the
next group gathers, so the writer never waits for the worker nor the worker for the
writer. An execution that ends before its group is committed (a quick one) is written
once, as it ended, with its events: no running row, no round trip of its own. One that
must be stored as running before anyone is told of it (a client that does not wait is
answered its running record) asks for it with :meth:`ExecutionLog.commit_running`.

Only after a commit does a log's ``committed_seq`` move, and its waiters (long-polls,
streams) wake: nobody reads an event that a crash could still take back. A log whose
events are not yet committed past :data:`WINDOW_EVENTS` (or :data:`WINDOW_BYTES`) is
``full``: its producer stops reading the worker until :meth:`ExecutionLog.when_drained`
calls back, so the daemon holds a bounded window of each execution's events, whatever
its limits (design.md, "The event path").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

from vmctl.api.models import Execution, ExecutionMetrics
from vmctl.supervisor.metrics import Metrics
from vmctl.supervisor.store import rows

logger = logging.getLogger(__name__)

FLUSH_DELAY = 0.01  # seconds from a group's first event to its commit, when it stays small
FLUSH_EVENTS = 5_000  # a group this large is committed at once
WINDOW_EVENTS = 20_000  # events of one execution appended but not yet committed
WINDOW_BYTES = 8 * 1024 * 1024  # their payloads' bytes
RETRY_SECONDS = 1.0  # an ended record the store refused is tried again this much later
CLOSE_ATTEMPTS = 3  # flushes at shutdown before what the store refuses is given up


# An events row as it is inserted, in rows.EVENT_INSERT's order: (execution_id, seq, ts,
# type, payload). A batch has the same shape, its payload a JSON array of payloads and
# its seq the first of theirs (rows.EVENTS_INSERT): a flood is a few hundred of them,
# which SQLite splits into rows without a Python object per event.
_Row = tuple[str, int, str, str, str]


@dataclasses.dataclass(slots=True)
class _Group:
    """What one log hands a group commit."""

    log: ExecutionLog
    rows: list[_Row]  # single events
    batches: list[_Row]  # batches of events
    events: int  # in rows and batches
    last_seq: int  # of the last of them
    size: int  # their payloads' bytes
    running: Execution | None  # its running row, if not yet written
    final: Execution | None  # its final row, if it ended
    metrics: ExecutionMetrics | None  # its metrics so far, if it has new events


class ExecutionLog:
    """One running execution's events: appended, committed, and who waits for them."""

    def __init__(self, owner: EventLog, running: Execution) -> None:
        self.execution_id = running.id
        self.running = running  # its record as it started
        self.running_committed = False  # its row is in the store (running, or ended)
        self.appended_seq = 0
        self.committed_seq = 0
        self.ended = False  # its final row is committed
        self.events_lost = 0  # appended but never committed (their commit failed)
        self._final_refused = False  # a commit with its ended record failed
        self._owner = owner
        self._pending: list[_Row] = []
        self._pending_batches: list[_Row] = []
        self._pending_events = 0
        self._pending_bytes = 0
        self._in_flight_bytes = 0
        self._final: Execution | None = None
        self._running_wanted: asyncio.Future[None] | None = None  # commit_running waits
        self._metrics: Callable[[], ExecutionMetrics] | None = None
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._changed = asyncio.Event()
        self._drained: list[Callable[[], None]] = []

    def append(self, type: str, payload: str, ts: str) -> int:
        """Add the next event (its payload as JSON text); returns its seq."""
        self.appended_seq += 1
        self._pending.append((self.execution_id, self.appended_seq, ts, type, payload))
        self._pending_events += 1
        self._pending_bytes += len(payload)
        self._owner.wake(self._pending_events)
        return self.appended_seq

    def extend(self, type: str, count: int, payloads: str, ts: str) -> None:
        """Add ``count`` events of one type and time, in order (a batch of console lines);
        ``payloads`` is the JSON array of their payloads."""
        first = self.appended_seq + 1
        self._pending_batches.append((self.execution_id, first, ts, type, payloads))
        self.appended_seq += count
        self._pending_events += count
        self._pending_bytes += len(payloads)
        self._owner.wake(self._pending_events)

    def track(self, metrics: Callable[[], ExecutionMetrics]) -> None:
        """Where the execution's metrics so far are read: each commit of new events writes
        them into its running record."""
        self._metrics = metrics

    @property
    def full(self) -> bool:
        """Too much is appended and not yet committed: stop producing until drained."""
        backlog = self.appended_seq - self.committed_seq
        return (
            backlog >= WINDOW_EVENTS or self._pending_bytes + self._in_flight_bytes >= WINDOW_BYTES
        )

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the log is no longer :attr:`full` (now, if it is not)."""
        if not self.full:
            callback()
        else:
            self._drained.append(callback)

    async def wait(self, after_seq: int, timeout: float) -> None:
        """Until an event after ``after_seq`` is committed, the execution ended, or ``timeout``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.committed_seq <= after_seq and not self.ended:
                    changed = self._changed
                    await changed.wait()

    async def wait_ended(self) -> None:
        """Until the final record is committed (or could not be)."""
        with contextlib.suppress(Exception):
            await asyncio.shield(self._done)

    async def commit_running(self) -> None:
        """Commit the running row now and wait for it (before anything else is appended).

        If that commit fails, the error is raised and the row is not tried again: the
        caller discards the log, and the execution does not run.
        """
        if self.running_committed:
            return
        self._running_wanted = asyncio.get_running_loop().create_future()
        self._owner.wake(FLUSH_EVENTS)
        await self._running_wanted

    async def finish(self, final: Execution) -> None:
        """Commit what is pending and then ``final`` (the ended record); wait for it."""
        self._final = final
        self._owner.wake(FLUSH_EVENTS)
        await asyncio.shield(self._done)

    @property
    def uncommitted_running(self) -> Execution | None:
        """The running record, while its row is not in the store yet: the truth until then
        (a reader of the store would not find the execution at all)."""
        return None if self.running_committed else self.running

    # -- for the flusher -----------------------------------------------------------

    def _take(self) -> _Group | None:
        """What the next commit writes for this log, if anything."""
        events, size = self._pending_events, self._pending_bytes
        running = None if self.running_committed else self.running
        if not events and running is None and self._final is None:
            return None
        rows, self._pending = self._pending, []
        batches, self._pending_batches = self._pending_batches, []
        self._pending_events = self._pending_bytes = 0
        self._in_flight_bytes += size
        metrics = self._metrics() if events and self._metrics is not None else None
        return _Group(
            self, rows, batches, events, self.appended_seq, size, running, self._final, metrics
        )

    def _committed(self, seq: int, bytes_committed: int, final: bool) -> None:
        self.running_committed = True  # with this commit, if not before
        if self._running_wanted is not None and not self._running_wanted.done():
            self._running_wanted.set_result(None)
        self.committed_seq = max(self.committed_seq, seq)
        self._in_flight_bytes -= bytes_committed
        if final:
            self.ended = True
            if not self._done.done():
                self._done.set_result(None)
        self._notify()
        if not self.full:
            callbacks, self._drained = self._drained, []
            for callback in callbacks:
                callback()

    @property
    def unwritten_final(self) -> Execution | None:
        """The ended record a failed commit could not write: the truth until it is written.

        Only after a failure: before its first commit an ended record must not be shown,
        or a reader would think every event committed while the last ones are on their way.
        """
        if self._final_refused and not self.ended:
            return self._final
        return None

    def _failed(self, error: BaseException, final: bool, lost: int) -> None:
        if self._running_wanted is not None and not self._running_wanted.done():
            self.running_committed = True  # given up: its caller discards the log
            self._running_wanted.set_exception(error)
        self.events_lost += lost
        self._final_refused = self._final_refused or final
        if final and not self._done.done():
            self._done.set_exception(error)  # the waiting client learns now; the row is retried
        self._notify()
        # What could not be committed is gone: its producer must not wait for it.
        self._in_flight_bytes = 0
        self.committed_seq = self.appended_seq - self._pending_events
        callbacks, self._drained = self._drained, []
        for callback in callbacks:
            callback()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


Commit = Callable[[Callable[[sqlite3.Connection], None]], Awaitable[None]]


class EventLog:
    """The running executions' logs and the one task that commits them in groups."""

    def __init__(self, commit: Commit, metrics: Metrics) -> None:
        self._commit = commit  # runs a job in one transaction on the store's writer
        self._commit_seconds = metrics.store_commit
        self._logs: dict[str, ExecutionLog] = {}
        self._wanted = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._closing = False
        self._close_attempts = 0

    def open(self, running: Execution) -> ExecutionLog:
        """The log of ``running``, just started: its row goes with its first commit."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-log")
        log = ExecutionLog(self, running)
        self._logs[running.id] = log
        self.wake(0)
        return log

    def discard(self, log: ExecutionLog) -> None:
        """Forget a log whose execution was never written (its running row was refused)."""
        self._logs.pop(log.execution_id, None)

    def get(self, execution_id: str) -> ExecutionLog | None:
        """The log of a running execution of this daemon (None once it has ended)."""
        return self._logs.get(execution_id)

    def wake(self, pending: int) -> None:
        self._wanted.set()
        if pending >= FLUSH_EVENTS:
            self._urgent.set()

    async def aclose(self) -> None:
        """Commit what is pending (every running execution has finished by now), then stop.

        Ended records the store still refuses after :data:`CLOSE_ATTEMPTS` tries are left
        ``running`` in it; the next start marks them cancelled.
        """
        self._closing = True
        self._wanted.set()
        self._urgent.set()
        if self._task is not None:
            await self._task
        unwritten = [log.execution_id for log in self._logs.values() if log.unwritten_final]
        if unwritten:
            logger.error("the ended records of %s could not be written", ", ".join(unwritten))

    def _retry_later(self) -> None:
        if self._retry is None or self._retry.cancelled():
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(RETRY_SECONDS, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.wake(FLUSH_EVENTS)

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            if not self._urgent.is_set():  # an execution that ended needs no timer
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_DELAY):
                        await self._urgent.wait()
            self._wanted.clear()
            self._urgent.clear()
            try:
                await self._flush()
            except Exception:  # the task must outlive a bug, or every execution would hang
                logger.exception("the event log's flush failed")
            if self._closing:
                self._close_attempts += 1
                waiting = any(
                    log._pending_events or log.unwritten_final for log in self._logs.values()
                )
                if not waiting or self._close_attempts >= CLOSE_ATTEMPTS:
                    return
                self._wanted.set()

    async def _flush(self) -> None:
        groups = [group for log in list(self._logs.values()) if (group := log._take())]
        if not groups:
            return
        started = time.perf_counter()
        try:
            await self._commit(lambda conn: _write(conn, groups))
        except Exception as exc:
            lost = sum(group.events for group in groups)
            logger.error(
                "%d event(s) of %d execution(s) could not be committed and are lost: %s",
                lost, len(groups), exc,
            )  # fmt: skip
            for group in groups:
                group.log._failed(exc, group.final is not None, group.events)
            if any(group.final is not None for group in groups):
                # An ended record stays in memory and is tried again (alone: its lost
                # events are not), so no row says running longer than the store refuses.
                self._retry_later()
            await self._commit_running_alone([g.log for g in groups if g.final is None])
            return
        self._commit_seconds.observe(time.perf_counter() - started)
        for group in groups:
            log = group.log
            last = group.last_seq if group.events else log.committed_seq
            log._committed(last, group.size, group.final is not None)
            if group.final is not None:
                self._logs.pop(log.execution_id, None)

    async def _commit_running_alone(self, logs: list[ExecutionLog]) -> None:
        """After a failed group, its running rows in a small transaction of their own (a
        full disk may still take one): the executions exist in the store while they run,
        as when their rows went first. Those still refused go with the next group."""
        unwritten = [log for log in logs if log.uncommitted_running is not None]
        if not unwritten:
            return
        running = [log.running for log in unwritten]
        try:
            await self._commit(lambda conn: _insert_running(conn, running))
        except Exception:
            return
        for log in unwritten:
            log.running_committed = True


def _insert_running(conn: sqlite3.Connection, running: list[Execution]) -> None:
    for execution in running:
        rows.insert_execution(conn, execution)


def _write(conn: sqlite3.Connection, groups: list[_Group]) -> None:
    """One group commit: every execution's rows not yet written (each as it ended, if it
    has, else as it started), new events, and metrics so far."""
    for group in groups:
        # Rows before events: an event's execution must exist.
        if group.final is not None:
            rows.finish_execution(conn, group.final)
        elif group.running is not None:
            rows.insert_execution(conn, group.running)
    conn.executemany(rows.EVENT_INSERT, itertools.chain.from_iterable(g.rows for g in groups))
    conn.executemany(rows.EVENTS_INSERT, itertools.chain.from_iterable(g.batches for g in groups))
    for group in groups:
        if group.final is None and group.metrics is not None:
            conn.execute(
                "UPDATE executions SET metrics = ? WHERE id = ? AND status = 'running'",
                (rows.to_json(group.metrics), group.log.execution_id),
            )
