"""The worker process: one JavaScript session in QuickJS, driven over the line protocol.

Start it with ``python -m vmctl.worker`` in the session's worktree (see ``__main__``).
Reading order: ``__main__`` (threads and fds), ``channel`` (frames in and out),
``session`` (what each request does), ``engines`` (what an engine is to the session),
``engine`` (the QuickJS adapter), ``capi`` (the ctypes fence: the wheel's layout and its
checks), ``heap`` (telling out of memory from a throw), ``worktree`` (path rules),
``hostmodules`` (``require``), ``plain`` (the degraded engine).
"""
