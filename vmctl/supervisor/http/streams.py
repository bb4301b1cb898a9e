"""``GET /api/v1/executions/{id}/stream``: an execution's events as server-sent events.

Each committed event is one message (``id: <seq>``, ``event: <type>``, ``data: <event
JSON>``); once the execution has ended and every event is sent, an ``end`` message
carries its record and the stream closes. The stream reads the store at its own pace,
a batch at a time, and between batches waits for the execution's next commit: a reader
that stops reading holds one batch and its own connection, nothing else, and never
slows the worker, the store's writer or another reader. sse-starlette frames the
messages, sends the keep-alive comments and notices a client that left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from vmctl.supervisor.http.bodies import int_param, uuid_field
from vmctl.supervisor.http.errors import encode_json
from vmctl.supervisor.sessions import SessionManager

BATCH = 1_000  # events read from the store per step
KEEPALIVE_SECONDS = 15  # a comment line at least this often on an idle stream
WAIT_SECONDS = 60.0  # one wait for the next commit (the keep-alive runs meanwhile)
SEND_TIMEOUT_SECONDS = 60.0  # a reader that takes no bytes this long is dropped
# How often a stream looks again at an execution this daemon does not run but whose
# record still says running (an instant between its last commit and its end's).
RECHECK_SECONDS = 0.05


async def stream_events(request: Request) -> Response:
    manager: SessionManager = request.state.manager
    execution_id = uuid_field(request.path_params["execution_id"], "execution_id")
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is not None:
        after_seq = int_param(last_event_id, "Last-Event-ID", default=0, minimum=0)
    else:
        after_seq = int_param(
            request.query_params.get("after_seq"), "after_seq", default=0, minimum=0
        )
    await manager.get_execution(execution_id)  # 404 before the stream starts
    return EventSourceResponse(
        _messages(manager, execution_id, after_seq),
        ping=KEEPALIVE_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )


async def _messages(
    manager: SessionManager, execution_id: str, after_seq: int
) -> AsyncIterator[ServerSentEvent | bytes]:
    last = after_seq
    ended = False
    while True:
        batch = await manager.events_after(execution_id, last, BATCH)
        if batch:
            # One write for the batch, not one per event: a flood is a hundred thousand.
            yield b"".join(
                ServerSentEvent(data=data.decode(), event=kind, id=str(seq)).encode()
                for seq, kind, data in batch
            )
            last = batch[-1][0]
        if len(batch) == BATCH:
            continue
        if ended:  # read once more after the record said ended: nothing is left
            record = await manager.get_execution(execution_id)
            yield ServerSentEvent(data=encode_json(record).decode(), event="end")
            return
        record = await manager.get_execution(execution_id)
        if record.status != "running":
            ended = True  # its final commit came with its last events: read them, then end
            continue
        if not await manager.wait_for_events(execution_id, last, WAIT_SECONDS):
            await asyncio.sleep(RECHECK_SECONDS)
