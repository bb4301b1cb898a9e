"""Handshakes; for each request writes 4 MiB to stderr, then answers correctly.

If the supervisor stopped reading stderr, the write would block when the pipe
(64 KiB) is full and the answer would never come.
"""

import os
import sys

from vmctl.protocol import (
    PROTOCOL_VERSION,
    Hello,
    Ok,
    Shutdown,
    Value,
    decode_request,
    encode,
    raw_json,
)

out = sys.stdout.buffer
out.write(encode(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)))
out.flush()
for line in sys.stdin.buffer:
    request = decode_request(line)
    if isinstance(request, Shutdown):
        break
    request_id = getattr(request, "id", 0)
    for i in range(64):
        sys.stderr.write(f"spew {i:02d} " + "s" * 65526 + "\n")
    sys.stderr.write("spew done\n")
    sys.stderr.flush()
    out.write(encode(Value(id=request_id, value_type="number", preview="42", json=raw_json(42))))
    out.write(encode(Ok(id=request_id, cpu_ms=1.0)))
    out.flush()
