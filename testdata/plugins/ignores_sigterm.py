"""Handshakes, then ignores everything: requests, Shutdown, stdin EOF and SIGTERM."""

import os
import signal
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

signal.signal(signal.SIGTERM, signal.SIG_IGN)
hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
for _line in sys.stdin.buffer:
    pass
threading.Event().wait()
