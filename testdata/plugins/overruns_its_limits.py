"""Handshakes; answers each REPL snippet after passing its limits, as one native operation
the soft interrupt cannot stop would, but within the hard deadline's grace.

    cpu       a value, then ok with cpu_ms 500 past the request's cpu_ms
    wall      a value 200 ms past the request's wall_ms, then ok with cpu_ms 1
    throw     an exception, then JS_ERROR with cpu_ms 500 past the request's cpu_ms
    anything else   a value and ok at once, within the limits
"""

import os
import sys
import time

from vmctl.protocol import (
    PROTOCOL_VERSION,
    Error,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Ok,
    Value,
    decode_request,
    encode,
    raw_json,
)


def send(frame: Frame) -> None:
    sys.stdout.buffer.write(encode(frame))
    sys.stdout.buffer.flush()


def answer(request: ExecRepl) -> None:
    rid, over_cpu = request.id, request.limits.cpu_ms + 500.0
    value = Value(id=rid, value_type="number", preview="42", json=raw_json(42))
    if request.code == "cpu":
        send(value)
        send(Ok(id=rid, cpu_ms=over_cpu))
    elif request.code == "wall":
        time.sleep(request.limits.wall_ms / 1000 + 0.2)  # the fault: asleep past wall_ms
        send(value)
        send(Ok(id=rid, cpu_ms=1.0))
    elif request.code == "throw":
        send(JsException(id=rid, message="Error: late", name="Error"))
        send(Error(id=rid, code="JS_ERROR", message="Error: late", cpu_ms=over_cpu))
    else:
        send(value)
        send(Ok(id=rid, cpu_ms=1.0))


send(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False))
for line in sys.stdin.buffer:
    request = decode_request(line)
    if isinstance(request, ExecRepl):
        answer(request)
