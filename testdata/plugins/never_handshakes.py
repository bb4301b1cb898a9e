"""Starts, says so on stderr, and never sends its Hello."""

import sys
import threading

sys.stderr.write("never_handshakes: loading forever\n")
sys.stderr.flush()
threading.Event().wait()
