"""A correct worker that writes every frame in two pieces, flushed apart."""

import os
import time

from vmctl.protocol import (
    PROTOCOL_VERSION,
    Console,
    ExecRepl,
    Frame,
    Hello,
    Ok,
    Shutdown,
    Value,
    decode_request,
    encode,
    raw_json,
)


def send(frame: Frame) -> None:
    line = encode(frame)
    half = len(line) // 2
    os.write(1, line[:half])
    time.sleep(0.005)  # let the first piece be read on its own
    os.write(1, line[half:])


send(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False))
with open(0, "rb") as stdin:
    for line in stdin:
        request = decode_request(line)
        if isinstance(request, Shutdown):
            break
        if isinstance(request, ExecRepl):
            send(Console(id=request.id, level="log", text=f"got {request.code}"))
            send(
                Value(
                    id=request.id,
                    value_type="string",
                    preview=request.code,
                    json=raw_json(request.code),
                )
            )
            send(Ok(id=request.id, cpu_ms=0.5))
