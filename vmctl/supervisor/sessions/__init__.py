"""The sessions room: sessions, templates, and the life of each execution.

It owns what a client asks for: the :class:`SessionManager` (``manager.py``: the live
sessions and their workers, the one owner of session state), a live session and its turn
(``live.py``), a worker's start with its libraries and startup files (``startup.py``),
one execution's life from request to record (``execution.py``), the templates and their
checked settings (``templates.py``), the rules on worktree paths (``paths.py``) and on
module and library names (``names.py``), each session's worker log, bounded and swept
(``worker_logs.py``), and the domain's errors, each with a stable code (``errors.py``).
It may import ``workers``, ``store``, ``config``, ``metrics`` and the protocol; never ``http`` or
Starlette. It raises its own errors and knows no HTTP status.
"""

from vmctl.supervisor.sessions.errors import VmctlError
from vmctl.supervisor.sessions.manager import SessionManager, open_session_manager
from vmctl.supervisor.sessions.templates import Templates

__all__ = ["SessionManager", "Templates", "VmctlError", "open_session_manager"]
