"""Handshakes; on its first request sends two console events, then dies of SIGSEGV."""

import os
import signal
import sys

from vmctl.protocol import PROTOCOL_VERSION, Console, Hello, decode_request, encode

out = sys.stdout.buffer
out.write(encode(Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)))
out.flush()
request = decode_request(sys.stdin.buffer.readline())
request_id = getattr(request, "id", 0)
out.write(encode(Console(id=request_id, level="log", text="first")))
out.write(encode(Console(id=request_id, level="log", text="second")))
out.flush()
sys.stderr.write("dies_mid_request: about to crash\n")
sys.stderr.flush()
os.kill(os.getpid(), signal.SIGSEGV)
