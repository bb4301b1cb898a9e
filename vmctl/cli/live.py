"""An execution's events as they happen: its SSE stream, picked up again where it broke.

The daemon keeps every event, so a dropped connection loses nothing: the stream
is asked for again with ``Last-Event-ID`` set to the last event received. A few
tries, with a growing pause between them (enough for a daemon restarting,
short enough not to keep anyone long for a daemon gone), then
:class:`StreamLost`, which says how to pick the output up by hand.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from vmctl.cli.client import Client, ClientError, ConnectionLost, DaemonUnreachable
from vmctl.cli.models import Event, Execution

# The pauses before each reconnect since the last event came; about 8 s in all.
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


class StreamLost(ClientError):
    """The stream broke and did not come back within the retries."""

    def __init__(self, execution_id: str, after_seq: int, reason: str) -> None:
        super().__init__(
            f"{reason}; `vmctl exec follow {execution_id} --after-seq {after_seq}` picks up"
            " the execution's output from there"
        )
        self.execution_id = execution_id
        self.after_seq = after_seq


def live_events(
    client: Client, execution_id: str, after_seq: int = 0
) -> Iterator[list[Event] | Execution]:
    """The events after ``after_seq`` in batches as they arrive, each once and in order,
    then the ended execution's record; reconnects on a dropped connection."""
    last_seq = after_seq
    failures = 0
    resume = False
    while True:
        try:
            with contextlib.closing(
                client.stream_events(execution_id, last_seq, resume=resume)
            ) as stream:
                for item in stream:
                    if isinstance(item, Execution):
                        yield item
                        return
                    # The daemon never repeats an event to a client that resumes; a
                    # duplicate printed twice would still be worse than a check.
                    fresh = [event for event in item if event.seq > last_seq]
                    if fresh:
                        last_seq = fresh[-1].seq
                        failures = 0
                        yield fresh
            reason = f"the stream of execution {execution_id} closed before its end"
        except (ConnectionLost, DaemonUnreachable) as exc:
            reason = str(exc)
        if failures == len(RETRY_DELAYS):
            raise StreamLost(execution_id, last_seq, reason)
        time.sleep(RETRY_DELAYS[failures])  # a pause between network tries, not a wait
        failures += 1
        resume = True
