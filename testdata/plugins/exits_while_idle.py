"""Handshakes, then exits with code 4 while idle, when it receives SIGUSR1.

The signal makes the moment deterministic: a test sends it and awaits the exit.
"""

import os
import signal
import sys

from vmctl.protocol import PROTOCOL_VERSION, Hello, encode

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
signal.sigwait({signal.SIGUSR1})
sys.stderr.write("exits_while_idle: leaving\n")
sys.exit(4)
