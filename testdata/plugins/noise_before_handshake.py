"""Prints a banner on stdout before its Hello, then waits."""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

print("Welcome to the worker!", flush=True)
hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
threading.Event().wait()
