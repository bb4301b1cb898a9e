"""The domain's errors: every failure a client may be told of, each with a stable code.

The sessions room raises these; only ``http/`` turns them into a status and the
envelope (``http/errors.py`` holds the one table). A code is the contract's
(api-contract.md, "Errors"); ``details`` says which object or field it is about::

    VmctlError          code, message, details
    ├── NotFound        TEMPLATE_NOT_FOUND, SESSION_NOT_FOUND, EXECUTION_NOT_FOUND, FILE_NOT_FOUND
    ├── Invalid         VALIDATION_ERROR, INVALID_PATH, MODULE_NOT_ALLOWED, STARTUP_MODE_UNSUPPORTED
    ├── Conflict        TEMPLATE_NAME_TAKEN, TEMPLATE_IN_USE, DUPLICATE, SESSION_NOT_READY,
    │                   SESSION_BUSY
    ├── StartupFailed   STARTUP_FAILED, INVALID_PATH: a session's worker did not start
    ├── ExecutionFailed EXECUTION_TIMEOUT, OUTPUT_LIMIT_EXCEEDED, MEMORY_LIMIT_EXCEEDED,
    │                   WORKER_CRASHED: the execution is recorded, and ended so
    └── Unavailable     CAPACITY_EXCEEDED

The store's own errors become these in :func:`store_call`, the one place that
knows both trees.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from vmctl.supervisor.store import (
    Duplicate,
    RowNotFound,
    StoreError,
    StoreFull,
    TemplateInUse,
    TemplateNameTaken,
)

T = TypeVar("T")


class VmctlError(Exception):
    """A failure with a stable ``code``, a sentence for people, and what it is about."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class NotFound(VmctlError):
    """The object named does not exist."""


class Invalid(VmctlError):
    """The request names something that can never work (a field, a path, a module)."""


class Conflict(VmctlError):
    """The request clashes with the state of an object (a name taken, a session busy)."""


class StartupFailed(VmctlError):
    """A session's worker did not start, or its libraries or startup files failed."""


class ExecutionFailed(VmctlError):
    """The execution ran and is recorded, but a limit or the worker's death ended it."""


class Unavailable(VmctlError):
    """The daemon cannot take this now (full, or shutting down)."""


def not_found(kind: str, ident: str) -> NotFound:
    """``kind`` is template, session or execution."""
    return NotFound(
        f"{kind.upper()}_NOT_FOUND", f"{kind.capitalize()} not found", {f"{kind}_id": ident}
    )


def validation_error(field: str, message: str, **details: Any) -> Invalid:
    return Invalid("VALIDATION_ERROR", message, {"field": field, **details})


def invalid_path(path: str, why: str) -> Invalid:
    return Invalid("INVALID_PATH", f"Invalid path {path!r}: {why}", {"path": path})


async def store_call(call: Awaitable[T]) -> T:
    """A store call, its errors raised as the client is to be told of them."""
    try:
        return await call
    except StoreError as exc:
        translated = _from_store(exc)
        if translated is exc:
            raise
        raise translated from None


def client_error(exc: BaseException) -> VmctlError | None:
    """What a client is told of an exception no handler turned into an answer: a store
    fault it should know of (the disk is full), or None (a bug: ``INTERNAL``)."""
    if isinstance(exc, StoreError):
        translated = _from_store(exc)
        if isinstance(translated, VmctlError):
            return translated
    return None


def _from_store(exc: StoreError) -> VmctlError | StoreError:
    """What the client is told of a store error; a StoreError that is not about the
    request (a failed disk, a corrupt file) stays itself and becomes ``INTERNAL``."""
    match exc:
        case StoreFull():
            return Unavailable(
                "STORE_FULL",
                "The store has no room left on its disk: nothing was written "
                "(reads still work; free space, or let retention prune)",
            )
        case RowNotFound():
            return not_found(exc.resource, exc.id)
        case TemplateNameTaken():
            return Conflict(
                "TEMPLATE_NAME_TAKEN", f"Template name {exc.name!r} is taken", {"name": exc.name}
            )
        case TemplateInUse():
            return Conflict(
                "TEMPLATE_IN_USE",
                "Template is used by a session that is not closed",
                {"template_id": exc.template_id},
            )
        case Duplicate(resource="capability"):
            kind, name = exc.key["kind"], exc.key["name"]
            return Conflict(
                "DUPLICATE",
                f"Capability {kind}/{name} already exists",
                {"kind": kind, "name": name},
            )
        case Duplicate(resource="startup file"):
            path = exc.key["path"]
            return Conflict("DUPLICATE", f"Startup file {path!r} already exists", {"path": path})
    return exc
