"""Handshakes, takes one request, then hangs: reads nothing more (no Cancel, no Shutdown).

Like a worker stuck in native code. SIGTERM still kills it.
"""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
sys.stdin.buffer.readline()
threading.Event().wait()
