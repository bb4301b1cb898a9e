"""The store's errors, and the one place SQLite's errors become them.

Nothing above the store imports :mod:`sqlite3`: a constraint that fails inside a
write job leaves it through :func:`constraints` as one of these, and anything
else SQLite raises leaves its thread through :func:`as_store_error`::

    StoreError              the store could not do it (SQLite's message inside)
    ├── StoreFull           no room left on its disk (SQLITE_FULL): nothing was written
    ├── RowNotFound         the template / session / execution referred to does not exist
    ├── TemplateNameTaken   another template has that name
    ├── TemplateInUse       a session of the template is not closed
    └── Duplicate           a unique key (capability kind+name, startup file path)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping


class StoreError(Exception):
    """The store could not do what was asked."""


class StoreFull(StoreError):
    """A write found no room left for the store (its disk, or its file's size limit)."""


class RowNotFound(StoreError):
    def __init__(self, resource: str, id: str) -> None:
        super().__init__(f"{resource} {id} not found")
        self.resource = resource
        self.id = id


class TemplateNameTaken(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a template named {name!r} already exists")
        self.name = name


class TemplateInUse(StoreError):
    def __init__(self, template_id: str, session_ids: list[str]) -> None:
        super().__init__(f"template {template_id} is used by sessions not closed: {session_ids}")
        self.template_id = template_id
        self.session_ids = session_ids


class Duplicate(StoreError):
    """A row with the same unique key exists; ``key`` maps each key field to the value given."""

    def __init__(self, resource: str, key: Mapping[str, object], message: str = "") -> None:
        described = ", ".join(f"{field}={value!r}" for field, value in key.items())
        super().__init__(message or f"{resource} with {described} already exists")
        self.resource = resource
        self.key = dict(key)


@contextlib.contextmanager
def constraints(
    missing: StoreError | None = None, unique: Mapping[str, StoreError] | None = None
) -> Iterator[None]:
    """Turn constraint failures in the block into domain errors.

    ``missing`` is raised for a failed foreign key (the parent row is gone);
    ``unique`` maps SQLite's ``table.column, ...`` of a failed unique key to its error.
    """
    try:
        yield
    except sqlite3.IntegrityError as exc:
        message = str(exc)
        columns = message.removeprefix("UNIQUE constraint failed: ")
        if missing is not None and message == "FOREIGN KEY constraint failed":
            raise missing from exc
        if unique is not None and columns in unique:
            raise unique[columns] from exc
        raise


def as_store_error(exc: Exception) -> Exception:
    """What a caller sees of an exception raised on a store thread."""
    if isinstance(exc, sqlite3.Error):
        full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        error = (StoreFull if full else StoreError)(f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc
