"""The jail: the second wall around every worker, for the day code gets out of the engine.

It owns the operating system's confinement of a worker process (docs/security.md):
no new privileges, no capabilities, an unprivileged uid when the daemon is root,
Landlock, a seccomp filter and an empty network namespace. :mod:`.spec` is what the
supervisor asks for and the worker applies; :mod:`.jail` applies it in the child
between fork and the first line of worker or plugin code; :mod:`.probe` says what
this host provides. It imports nothing of vmctl's: the worker (which applies it),
the supervisor (which asks for it) and the CLI's ``vmctl doctor`` all use it.
"""
