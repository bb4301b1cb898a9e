"""Handshakes; on its first request closes its stdout and lives on (it can never answer)."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
sys.stdin.buffer.readline()
os.close(1)
threading.Event().wait()
