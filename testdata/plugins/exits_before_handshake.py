"""Fails before its handshake: a message on stderr, exit code 3."""

import sys

sys.stderr.write("fatal: the engine could not be loaded\n")
sys.exit(3)
