"""Sends a Hello of a protocol version the supervisor does not speak, then waits."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

hello = Hello(PROTOCOL_VERSION + 1, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
threading.Event().wait()
