"""Handshakes, then answers its first request with a debug print on stdout, then waits."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
sys.stdin.buffer.readline()
print("debug: handling the request", flush=True)
threading.Event().wait()
