"""Starts a grandchild in its process group that ignores SIGTERM and holds stdout/stderr.

The grandchild's pid is in the Hello's ``engine_version`` ("grandchild=<pid>").
Shutdown or stdin EOF: exits 0 and leaves the grandchild behind. A REPL
snippet ``exit``: exits 7 at once, mid-request. Any other request: hangs.
"""

import os
import subprocess
import sys
import threading

from vmctl.protocol import PROTOCOL_VERSION, ExecRepl, Hello, Shutdown, decode_request, encode

grandchild = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 300"])
hello = Hello(PROTOCOL_VERSION, os.getpid(), "fixture", f"grandchild={grandchild.pid}", (), False)
sys.stdout.buffer.write(encode(hello))
sys.stdout.buffer.flush()
for line in sys.stdin.buffer:
    request = decode_request(line)
    if isinstance(request, Shutdown):
        break
    if isinstance(request, ExecRepl) and request.code == "exit":
        os._exit(7)
    threading.Event().wait()
os._exit(0)
