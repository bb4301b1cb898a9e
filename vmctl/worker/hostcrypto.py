"""The host side of JavaScript's ``crypto``: random bytes, random UUIDs and digests.

``webapis.js`` builds ``crypto.getRandomValues``, ``crypto.randomUUID`` and
``crypto.subtle.digest`` on one callable, exposed to it as ``__vmctl_host_crypto(op, arg,
data)`` and taken out of the global scope before any user code runs. It answers JSON text,
``{"ok": value}`` or ``{"error": message, "name": DOMException name}``, and never raises (the
binding would leave the Python error set). Bytes cross as base64 text: the binding cuts
strings at NUL and truncates integers above 32 bits.

Nothing here depends on the request: crypto works between requests too, and needs no gate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sys
import traceback
import uuid

# What the Web Crypto API allows one getRandomValues call.
MAX_RANDOM_BYTES = 65536
# Larger inputs are refused rather than copied through base64 text into the host.
MAX_DIGEST_BYTES = 64 * 1024 * 1024

_DIGESTS = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


class _CryptoError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def call(op: object, arg: object = "", data: object = "") -> str:
    """``__vmctl_host_crypto``: run operation ``op``; its reply as JSON text. Never raises."""
    try:
        if op == "random":
            return _ok(base64.b64encode(os.urandom(_random_length(arg))).decode("ascii"))
        if op == "uuid":
            return _ok(str(uuid.uuid4()))
        if op == "digest":
            return _ok(_digest(arg, data))
        raise _CryptoError("NotSupportedError", f"Unknown crypto operation {op!r}")
    except _CryptoError as exc:
        return json.dumps({"error": str(exc), "name": exc.name})
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return json.dumps(
            {"error": f"internal error in crypto operation {op}", "name": "OperationError"}
        )


def _ok(value: str) -> str:
    return json.dumps({"ok": value})


def _random_length(arg: object) -> int:
    if not isinstance(arg, int | float) or arg != int(arg) or not 0 <= arg <= MAX_RANDOM_BYTES:
        raise _CryptoError(
            "QuotaExceededError",
            f"random byte count must be an integer from 0 to {MAX_RANDOM_BYTES}",
        )
    return int(arg)


def _digest(algorithm: object, data: object) -> str:
    name = str(algorithm).upper()
    if name not in _DIGESTS:
        raise _CryptoError("NotSupportedError", f"Unrecognized algorithm name: {algorithm}")
    if not isinstance(data, str):
        raise _CryptoError("DataError", "digest data must be base64 text")
    if len(data) > (MAX_DIGEST_BYTES + 2) // 3 * 4:
        raise _CryptoError(
            "QuotaExceededError", f"digest input is larger than {MAX_DIGEST_BYTES} bytes (64 MiB)"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise _CryptoError("DataError", f"digest data is not base64: {exc}") from exc
    return base64.b64encode(hashlib.new(_DIGESTS[name], raw).digest()).decode("ascii")
