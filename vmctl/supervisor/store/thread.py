"""A thread that owns one SQLite connection and runs jobs on it for the event loop.

SQLite calls block, so the store never makes one on the event loop: each of its
connections lives on a :class:`ConnectionThread`, which runs the jobs queued to
it in order, each in one transaction, and settles an asyncio future with the
result. This module knows nothing of the store's schema; ``store.py`` and ``rows.py``
hold the SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")

CLOSE_TIMEOUT_S = 10.0  # for the thread to finish the queued work and close its connection


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # COMMIT itself can fail and leave it open
            conn.execute("ROLLBACK")
        raise


def _set_result(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():  # done = cancelled: the caller stopped waiting, the work is done anyway
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


@dataclasses.dataclass(frozen=True, slots=True)
class _Reply(Generic[_T]):
    """A future on the event loop, settled from a store thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[_T]

    @classmethod
    def new(cls) -> _Reply[_T]:
        loop = asyncio.get_running_loop()
        return cls(loop, loop.create_future())

    def succeed(self, result: _T) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(_set_result, self.future, result)

    def fail(self, error: BaseException) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_set_exception, self.future, error)


@dataclasses.dataclass(frozen=True, slots=True)
class _Job(Generic[_T]):
    fn: Callable[[sqlite3.Connection], _T]
    reply: _Reply[_T]


class ConnectionThread:
    """Owns one connection; runs the jobs queued to it in order, one transaction each."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        begin: str,
        translate: Callable[[Exception], Exception],
    ) -> None:
        self._connect = connect
        self._translate = translate  # SQLite's errors -> the store's domain errors
        self._begin = begin
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()  # None: stop
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._opened: _Reply[None] | None = None
        self.stopping = False

    async def start(self) -> None:
        """Start the thread; return once its connection is open, or raise why it could not open."""
        self._opened = _Reply.new()
        self._thread.start()
        await self._opened.future

    async def run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self.stopping:
            raise RuntimeError(f"{self._thread.name}: the store is closed")
        reply: _Reply[_T] = _Reply.new()
        self._jobs.put(_Job(fn, reply))
        return await reply.future

    def stop(self) -> None:
        """Ask the thread to finish the jobs queued so far, close its connection and exit."""
        if not self.stopping:
            self.stopping = True
            self._jobs.put(None)

    async def wait_stopped(self) -> None:
        if self._thread.ident is None:  # never started
            return
        await asyncio.to_thread(self._thread.join, CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("%s did not stop within %.0fs", self._thread.name, CLOSE_TIMEOUT_S)

    def _main(self) -> None:
        assert self._opened is not None
        try:
            conn = self._connect()
        except Exception as exc:
            self._opened.fail(self._translate(exc))
            return
        try:
            self._opened.succeed(None)
            while (job := self._jobs.get()) is not None:
                self._run_job(conn, job)
        finally:
            conn.close()

    def _run_job(self, conn: sqlite3.Connection, job: _Job[Any]) -> None:
        try:
            with transaction(conn, self._begin):
                result = job.fn(conn)
        except Exception as exc:  # the thread must outlive any job, or every later caller hangs
            job.reply.fail(self._translate(exc))
        else:
            job.reply.succeed(result)
