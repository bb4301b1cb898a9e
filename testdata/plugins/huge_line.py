"""Handshakes; on its first request writes one 10 MiB line (a console frame), then hangs."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, decode_request, encode

out = sys.stdout.buffer
out.write(encode(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)))
out.flush()
request_id = getattr(decode_request(sys.stdin.buffer.readline()), "id", 0)
out.write(b'{"type":"console","id":%d,"level":"log","text":"' % request_id)
chunk = b"x" * 65536
for _ in range(160):  # 10 MiB
    out.write(chunk)
    out.flush()
out.write(b'"}\n')
out.flush()
threading.Event().wait()
