"""Handshakes; answers its first request with an unexpected frame, then hangs.

``unexpected_frame.py unknown-id``: a console event for a request never sent.
``unexpected_frame.py second-hello``: a second Hello.
"""

import os
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, Console, Hello, decode_request, encode

out = sys.stdout.buffer
hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", "0", ("exec_repl",), False)
out.write(encode(hello))
out.flush()
request_id = getattr(decode_request(sys.stdin.buffer.readline()), "id", 0)
if sys.argv[1] == "second-hello":
    out.write(encode(hello))
else:
    out.write(encode(Console(id=request_id + 1000, level="log", text="who asked?")))
out.flush()
threading.Event().wait()
