"""The workers room: worker processes and what one execution in them costs.

It owns every worker process the daemon runs: its handle (``handle.py``: the handshake,
one request at a time, the hard deadline, the kill on a protocol violation), its OS
process (``process.py``: pipes, reap, kill ladder), how it is started behind one seam
(``launcher.py``: spawned with the set-up of ``spawn.py``, or forked by the fork server
of ``forkserver.py`` and ``forked.py``), its bounded pipes (``pipes.py``), and the
outcome of one execution with its limits accounting (``outcome.py``). It may import the
protocol, ``config``, ``metrics`` and the contract's value types in ``vmctl/api/models.py``
(``Limits``, the event types, the metrics); never the ``Store``, ``sessions`` or ``http``. It knows
nothing of sessions, templates or HTTP: a handle runs what it is given and says how it
ended.
"""

from vmctl.supervisor.workers.handle import Job, WorkerHandle, WorkerStartError, open_worker
from vmctl.supervisor.workers.launcher import SPAWN_ONLY, Launcher
from vmctl.supervisor.workers.outcome import Outcome, RecordedEvent
from vmctl.supervisor.workers.spawn import SpawnSpec

__all__ = [
    "SPAWN_ONLY",
    "Job",
    "Launcher",
    "Outcome",
    "RecordedEvent",
    "SpawnSpec",
    "WorkerHandle",
    "WorkerStartError",
    "open_worker",
]
