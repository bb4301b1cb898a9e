"""Handshakes; answers each request correctly, but only 5 s after its wall_ms."""

import os
import sys
import time

from vmctl.protocol import PROTOCOL_VERSION, ExecRepl, Hello, Ok, decode_request, encode

out = sys.stdout.buffer
out.write(encode(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)))
out.flush()
for line in sys.stdin.buffer:
    request = decode_request(line)
    if isinstance(request, ExecRepl):
        time.sleep(request.limits.wall_ms / 1000 + 5)
        out.write(encode(Ok(id=request.id, cpu_ms=1.0)))
        out.flush()
