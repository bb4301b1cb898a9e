"""Handshakes; on its first request floods 100000 console events, ignoring Cancel, then hangs."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Console, Hello, decode_request, encode

out = sys.stdout.buffer
out.write(encode(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)))
out.flush()
request_id = getattr(decode_request(sys.stdin.buffer.readline()), "id", 0)
for batch in range(100):
    frames = (Console(id=request_id, level="log", text=f"flood {batch}.{i}") for i in range(1000))
    out.write(b"".join(encode(frame) for frame in frames))
    out.flush()
threading.Event().wait()
