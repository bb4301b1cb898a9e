"""A well-behaved worker without an engine: each REPL snippet is a command.

    console N [SIZE]   N console events of SIZE characters (default 1), then the value
    batches W TOKEN... console lines numbered from 1, each left-padded with x to W characters,
                       then the value; a number N sends the next N lines in one ConsoleBatch,
                       ``c`` the next line in a Console frame, ``s`` a system event
    hang               nothing until cancelled
    throw TEXT         an exception event, then a JS_ERROR
    fail CODE TEXT     an error frame with that code (TIMEOUT: the limit is TEXT)
    system TEXT        a worker system event, then the value
    nested N           a value whose json nests N objects deep (past MAX_VALUE_DEPTH: a violation)
    anything else      one console event echoing it, then it as a string value

A file run logs its path; startup files just succeed. A Cancel interrupts the
request between two events (answered CANCELLED); Shutdown or stdin EOF ends it
with code 0. Stdin is read on its own thread, as the real worker does.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
from typing import cast

from vmctl.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Console,
    ConsoleBatch,
    ConsoleLevel,
    Error,
    ErrorCode,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Ok,
    RunFile,
    RunStartup,
    Shutdown,
    System,
    Value,
    decode_request,
    encode,
    raw_json,
)

LOG: ConsoleLevel = "log"
requests: queue.Queue[ExecRepl | RunFile | RunStartup | None] = queue.Queue()
cancelled: set[int] = set()
changed = threading.Condition()


def send(frame: Frame) -> None:
    sys.stdout.buffer.write(encode(frame))
    sys.stdout.buffer.flush()


def read_stdin() -> None:
    for line in sys.stdin.buffer:
        request = decode_request(line)
        if isinstance(request, Shutdown):
            break
        if isinstance(request, Cancel):
            with changed:
                cancelled.add(request.id)
                changed.notify_all()
        elif isinstance(request, ExecRepl | RunFile | RunStartup):
            requests.put(request)
    requests.put(None)


def value(request_id: int, text: str) -> None:
    send(Value(id=request_id, value_type="string", preview=text, json=raw_json(text)))
    send(Ok(id=request_id, cpu_ms=0.1))


def stopped(request_id: int) -> bool:
    if request_id in cancelled:
        send(Error(id=request_id, code="CANCELLED", message="cancelled"))
        return True
    return False


def batches(request_id: int, width: int, tokens: list[str]) -> bool:
    """The ``batches`` command's frames; False when a Cancel stopped it (answered)."""
    numbers = (str(n).rjust(width, "x") for n in itertools.count(1))
    for token in tokens:
        if stopped(request_id):
            return False
        if token == "s":
            send(System(id=request_id, level="info", message="between"))
        elif token == "c":
            send(Console(id=request_id, level="log", text=next(numbers)))
        else:
            lines = tuple((LOG, next(numbers)) for _ in range(int(token)))
            send(ConsoleBatch(id=request_id, lines=lines))
    return True


def repl(request: ExecRepl) -> None:
    rid = request.id
    command, _, rest = request.code.partition(" ")
    if command == "console":
        count, _, size = rest.partition(" ")
        for _ in range(int(count)):
            if stopped(rid):
                return
            send(Console(id=rid, level="log", text="x" * int(size or 1)))
        value(rid, request.code)
    elif command == "batches":
        width, *tokens = rest.split()
        if batches(rid, int(width), tokens):
            value(rid, request.code)
    elif command == "hang":
        with changed:
            changed.wait_for(lambda: rid in cancelled)
        stopped(rid)
    elif command == "throw":
        send(JsException(id=rid, message=f"Error: {rest}", name="Error"))
        send(Error(id=rid, code="JS_ERROR", message=f"Error: {rest}"))
    elif command == "fail":
        code, _, text = rest.partition(" ")
        limit = text if code == "TIMEOUT" else None
        send(Error(id=rid, code=cast(ErrorCode, code), message=text, cpu_ms=0.2, limit=limit))
    elif command == "system":
        send(System(id=rid, level="warn", message=rest))
        value(rid, request.code)
    elif command == "nested":
        nested: object = 1
        for _ in range(int(rest)):
            nested = {"a": nested}
        send(Value(id=rid, value_type="object", preview="{ a: [Object] }", json=raw_json(nested)))
        send(Ok(id=rid, cpu_ms=0.1))
    else:
        send(Console(id=rid, level="log", text=request.code))
        value(rid, request.code)


def main() -> None:
    threading.Thread(target=read_stdin, daemon=True).start()
    operations = ("exec_repl", "run_file", "run_startup")
    send(Hello(PROTOCOL_VERSION, os.getpid(), "echo", "0", operations, soft_interrupt=True))
    while (request := requests.get()) is not None:
        if isinstance(request, ExecRepl):
            repl(request)
        elif isinstance(request, RunFile):
            send(Console(id=request.id, level="log", text=request.path))
            value(request.id, request.path)
        else:
            send(Ok(id=request.id, cpu_ms=0.0))


if __name__ == "__main__":
    main()
