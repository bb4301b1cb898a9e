"""The objects of the REST contract as the store keeps them: vmctl.api's, and how ids and
timestamps are made.

Timestamps are RFC 3339 strings in UTC with millisecond precision, made by :func:`utc_now`
and stored as such, so memory and store agree to the letter.
"""

from __future__ import annotations

import datetime
import time
import uuid


def timestamp(epoch_seconds: float) -> str:
    """A moment as ``2026-11-21T09:00:00.123Z``: RFC 3339, UTC, milliseconds."""
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> str:
    """Now, as :func:`timestamp` writes it."""
    return timestamp(time.time())


def new_id() -> str:
    return str(uuid.uuid4())
