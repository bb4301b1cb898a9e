"""The objects of the REST contract as the store keeps them: vmctl.api's, and how ids and
timestamps are made.

Timestamps are RFC 3339 strings in UTC with millisecond precision, made by :func:`utc_now`
and stored as such, so memory and store agree to the letter.
"""

from __future__ import annotations

import datetime
import functools
import math
import time
import uuid


def timestamp(epoch_seconds: float) -> str:
    """A moment as ``2026-11-21T09:00:00.123Z``: RFC 3339, UTC, milliseconds."""
    # Rounded to the microsecond as datetime.fromtimestamp rounds, then cut to the
    # millisecond; the second's text is made once per second (strftime is the slow part).
    fraction, whole = math.modf(epoch_seconds)
    seconds, microseconds = divmod(round(fraction * 1_000_000), 1_000_000)
    return f"{_second(int(whole) + seconds)}.{microseconds // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second(epoch_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def utc_now() -> str:
    """Now, as :func:`timestamp` writes it."""
    return timestamp(time.time())


def new_id() -> str:
    return str(uuid.uuid4())
