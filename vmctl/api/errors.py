"""The error envelope every failure is answered with (api-contract.md, "Error envelope").

``{"error": {"code", "message", "details"}}``: ``code`` is stable and is what clients
match on, ``message`` is for people, ``details`` (left out when there are none) names
what the error is about. The daemon's table from a code to its HTTP status is
``STATUS_BY_CODE`` in ``vmctl/supervisor/http/errors.py``; it has exactly these codes.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ErrorCode = Literal[
    "VALIDATION_ERROR",
    "INVALID_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "TEMPLATE_NOT_FOUND",
    "SESSION_NOT_FOUND",
    "EXECUTION_NOT_FOUND",
    "FILE_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "TEMPLATE_NAME_TAKEN",
    "TEMPLATE_IN_USE",
    "DUPLICATE",
    "SESSION_NOT_READY",
    "SESSION_BUSY",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "INVALID_PATH",
    "OUTPUT_LIMIT_EXCEEDED",
    "EXECUTION_TIMEOUT",
    "MEMORY_LIMIT_EXCEEDED",
    "STARTUP_MODE_UNSUPPORTED",
    "MODULE_NOT_ALLOWED",
    "STARTUP_FAILED",
    "CAPACITY_EXCEEDED",
    "STORE_FULL",
    "WORKER_CRASHED",
    "INTERNAL",
]


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """What went wrong: the stable ``code``, a ``message`` for people, and ``details``."""

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(msgspec.Struct):
    """The body of every answer with a status of 400 or more."""

    error: ErrorBody
