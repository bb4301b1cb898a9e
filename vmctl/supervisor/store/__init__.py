"""The store room: the daemon's records in one SQLite file.

It owns the database: the schema and its migrations (``schema.py``), the two connection
threads (``thread.py``), the row <-> Struct conversions (``rows.py``), the
:class:`Store` whose typed methods are the only way in (``store.py``), and how the ids
and timestamps of its records are made (``models.py``; the records are the contract's
objects of ``vmctl/api/models.py``). SQLite's errors leave it as the small tree of
``errors.py``. It may import the standard library, msgspec, ``vmctl.api`` and the daemon's
``metrics``, nothing of ``sessions`` or ``http``.
"""

from vmctl.supervisor.store.errors import (
    Duplicate,
    RowNotFound,
    StoreError,
    StoreFull,
    TemplateInUse,
    TemplateNameTaken,
)
from vmctl.supervisor.store.eventlog import ExecutionLog
from vmctl.supervisor.store.rows import EventPage, ReplayPage
from vmctl.supervisor.store.store import Store, open_store

__all__ = [
    "Duplicate",
    "EventPage",
    "ExecutionLog",
    "ReplayPage",
    "RowNotFound",
    "Store",
    "StoreError",
    "StoreFull",
    "TemplateInUse",
    "TemplateNameTaken",
    "open_store",
]
