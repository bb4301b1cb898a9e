"""``python -m vmctl.worker``: one JavaScript session, spoken to over the line protocol.

Run it with the session's worktree as the working directory. It is a plain synchronous
program with two threads, and a third once a script logs in bursts:

- **Frames** go out on a private duplicate of the original stdout. At startup fd 1 is
  pointed at stderr, so nothing the script, Python or a C library prints can corrupt the
  frame stream. The first frame is :class:`~vmctl.protocol.Hello`; every frame is written
  whole under one lock (:class:`~vmctl.worker.channel.FrameWriter`). Console lines leave
  in :class:`~vmctl.protocol.ConsoleBatch` frames: a line after a quiet spell at once, the
  lines that follow it held until the next other frame or a millisecond after the last
  batch. Then **the console thread** (``vmctl-console``, started the first time a line is
  held) sends them, even while the script keeps running.
- **The reader thread** (``vmctl-stdin``) reads stdin line by line. It answers ``Ping`` with
  ``Pong`` at once, even while a script runs; it turns ``Cancel`` into the cancel flag of the
  running request's :class:`~vmctl.worker.limits.Budget` (or marks a waiting request
  cancelled); it queues requests in the :class:`~vmctl.worker.channel.Inbox`. ``Shutdown``
  or end of input closes the inbox, which cancels the running request.
- **The main thread** runs the JavaScript: it takes requests from the inbox one at a time and
  runs each through :class:`~vmctl.worker.session.JsSession`, which ends every request with
  exactly one terminal frame. QuickJS's interrupt handler runs on this thread and stops the
  script when the running request's budget has its cancel flag set or its wall or CPU
  deadline passed (it finds that request in the session's
  :class:`~vmctl.worker.limits.RequestSlot`). Right after the handshake, before its first
  request, this thread loads what only requests need (``JsSession.warm_up``), so the
  supervisor is not kept waiting for it.

When the inbox is closed and drained (requests still waiting are answered ``CANCELLED``),
the worker exits with status 0. It exits with status 1 if the frame pipe breaks, and with
status 2 if the session cannot start (the reason is on stderr; no handshake is sent).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

# msgspec reads type hints with typing_extensions when it is installed (other parts of vmctl
# pull it in), and importing it (with inspect) is about 15 ms of every worker start. For the
# protocol's plain annotations, Python 3.11's typing reads the same hints.
sys.modules.setdefault("typing_extensions", None)  # type: ignore[arg-type]

from vmctl.worker.channel import FrameWriter, Inbox, read_requests  # noqa: E402
from vmctl.worker.session import JsSession  # noqa: E402


def _claim_stdout() -> int:
    """Keep the real stdout for frames only, on a new fd; point fd 1 at stderr."""
    sys.stdout.flush()
    frame_fd = os.dup(1)  # not inherited by children (PEP 446)
    os.dup2(2, 1)
    return frame_fd


def main(ahead: JsSession | None = None) -> int:
    """Serve until the end of input. ``ahead``: the fork server's session made before the
    fork (:meth:`JsSession.ahead`), which this worker adopts instead of making its own."""
    writer = FrameWriter(_claim_stdout())
    try:
        if ahead is None:
            session = JsSession(os.getcwd(), writer)
        else:
            session = ahead
            session.adopt(os.getcwd(), writer)
    except Exception:
        print("vmctl worker: cannot start the session", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 2
    inbox = Inbox()
    try:
        writer.write(session.hello())
        reader = threading.Thread(
            target=read_requests,
            args=(sys.stdin.buffer, writer, inbox),
            name="vmctl-stdin",
            daemon=True,
        )
        reader.start()
        session.warm_up()
        while (job := inbox.take()) is not None:
            session.handle(job, inbox)
    except OSError as exc:
        print(f"vmctl worker: the frame pipe is closed: {exc}", file=sys.stderr)
        return 1
    finally:
        session.close()
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
