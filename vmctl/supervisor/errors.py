"""The API's one error type and the contract's code-to-status table.

Every failure a client may see travels as an :class:`ApiError` up to the one
handler in ``app.py`` that renders the envelope
``{"error": {"code", "message", "details"}}``. Anything else that escapes a
handler is a bug: it is logged with the request id and answered ``INTERNAL``.
"""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "NOT_FOUND": 404,
    "TEMPLATE_NOT_FOUND": 404,
    "SESSION_NOT_FOUND": 404,
    "EXECUTION_NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "TEMPLATE_NAME_TAKEN": 409,
    "TEMPLATE_IN_USE": 409,
    "DUPLICATE": 409,
    "SESSION_NOT_READY": 409,
    "SESSION_BUSY": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "INVALID_PATH": 422,
    "OUTPUT_LIMIT_EXCEEDED": 422,
    "EXECUTION_TIMEOUT": 422,
    "MEMORY_LIMIT_EXCEEDED": 422,
    "STARTUP_MODE_UNSUPPORTED": 422,
    "MODULE_NOT_ALLOWED": 422,
    "STARTUP_FAILED": 422,
    "CAPACITY_EXCEEDED": 503,
    "WORKER_CRASHED": 500,
    "INTERNAL": 500,
}


class ApiError(Exception):
    """A failure with a stable code; the status comes from :data:`STATUS_BY_CODE`."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = STATUS_BY_CODE[code]

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r})"


def validation_error(field: str, message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message, {"field": field})


def not_found(kind: str, ident: str) -> ApiError:
    """``kind`` is template, session or execution."""
    return ApiError(
        f"{kind.upper()}_NOT_FOUND", f"{kind.capitalize()} not found", {f"{kind}_id": ident}
    )
