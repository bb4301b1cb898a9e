"""Request bodies and query parameters: strict decoding and field validation.

The contract separates two failures. A body that is not JSON, is the wrong
JSON type, has a field of the wrong type or an unknown field is
``INVALID_REQUEST`` (msgspec's strict decoder finds all of these). A required
field that is missing or empty is ``VALIDATION_ERROR``: the body Structs make
every field optional so that msgspec does not report those, and
:func:`required` does. So is a free-form JSON field (``args``, ``env``,
``config``) nested deeper than ``MAX_JSON_DEPTH``: kept, it could make every
list it appears in fail to encode. So is an integer outside SQLite's 64 bits (every
integer field is :data:`Int64`), or a number too large for a float: msgspec finds both,
and :func:`decode_body` tells them from the type errors.

These Structs are also the request bodies of the OpenAPI document (openapi.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from vmctl.api.models import MAX_JSON_DEPTH
from vmctl.json_depth import nests_deeper
from vmctl.supervisor.http.errors import RequestError
from vmctl.supervisor.sessions.errors import validation_error

# SQLite's integers: a value past them could be neither stored nor compared.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
Int64 = Annotated[int, msgspec.Meta(ge=MIN_INTEGER, le=MAX_INTEGER)]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """Base of request bodies."""


class CreateTemplate(Body):
    name: str | None = None
    engine: str | None = None


class LimitsPatch(Body):
    cpu_ms: Int64 | None = None
    wall_ms: Int64 | None = None
    mem_mb: Int64 | None = None
    max_events: Int64 | None = None
    max_output_kb: Int64 | None = None


class ResolverPatch(Body):
    roots: list[str] | None = None
    extensions: list[str] | None = None
    allow_absolute_repo_imports: bool | None = None


class RuntimePatch(Body):
    esm: bool | None = None
    strict: bool | None = None
    console: bool | None = None


class LifecyclePatch(Body):
    # null turns a timeout off, so only a key left out keeps the current value.
    idle_timeout_ms: Int64 | msgspec.UnsetType | None = msgspec.UNSET
    max_lifetime_ms: Int64 | msgspec.UnsetType | None = msgspec.UNSET
    restart: Literal["never", "on-crash"] | None = None


class PutSettings(Body):
    limits: LimitsPatch | None = None
    resolver: ResolverPatch | None = None
    runtime: RuntimePatch | None = None
    lifecycle: LifecyclePatch | None = None


class CreateCapability(Body):
    kind: str | None = None
    name: str | None = None
    enabled: bool = False
    config: dict[str, Any] = {}


class CreateStartupFile(Body):
    path: str | None = None
    order_index: Int64 = 0
    mode: str = "eval"


class NameBody(Body):
    name: str | None = None


class CreateSession(Body):
    template_id: str | None = None
    workspace_id: str | None = None
    base_commit_oid: str | None = None
    worktree_path: str | None = None


class RestartBody(Body):
    replay: bool = False


class ReplBody(Body):
    session_id: str | None = None
    input: str | None = None
    wait: bool = True  # False: 202 with the running record, the code runs on


class RunFileBody(Body):
    session_id: str | None = None
    path: str | None = None
    args: dict[str, Any] | None = None
    env: dict[str, Any] | None = None
    wait: bool = True


B = TypeVar("B", bound=Body)

_decoders: dict[type[Body], msgspec.json.Decoder[Any]] = {}


def decode_body(raw: bytes, body_type: type[B]) -> B:
    """Decode ``raw`` strictly into ``body_type``, or raise INVALID_REQUEST."""
    decoder = _decoders.get(body_type)
    if decoder is None:
        decoder = _decoders[body_type] = msgspec.json.Decoder(body_type)
    try:
        body: B = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid_field(exc) from exc
    except msgspec.DecodeError as exc:
        # msgspec's message names the offending path, e.g. "at `$.limits.cpu_ms`".
        raise RequestError("INVALID_REQUEST", f"Invalid request body: {exc}") from exc
    except RecursionError:
        # msgspec recurses once per nesting level: a body of 100k brackets fits in 1 MiB.
        raise RequestError("INVALID_REQUEST", "Invalid request body: nested too deeply") from None
    for field in body.__struct_fields__:
        value = getattr(body, field)
        if isinstance(value, dict | list) and nests_deeper(value, MAX_JSON_DEPTH):
            raise validation_error(field, f"{field} nests deeper than {MAX_JSON_DEPTH} levels")
    return body


# msgspec's messages for a number out of range: its own bounds (a JSON number no float
# holds, "1e400") and the Meta bounds of Int64. Any other is a wrong type or field.
_OUT_OF_RANGE = re.compile(
    r"(?:Number out of range|Expected `int` [<>]= -?\d+) - at `\$\.?(?P<path>.*)`"
)


def _invalid_field(exc: msgspec.ValidationError) -> RequestError | Exception:
    """VALIDATION_ERROR for a number out of range (the field is given, the value is
    invalid); INVALID_REQUEST for the rest (a wrong type, an unknown field)."""
    match = _OUT_OF_RANGE.fullmatch(str(exc))
    if match is None:
        return RequestError("INVALID_REQUEST", f"Invalid request body: {exc}")
    field = match["path"] or "$"
    return validation_error(field, f"{field} is out of range: {exc}")


def given(patch: Body | None) -> dict[str, Any]:
    """The fields of a patch the client gave: those not left at their default (``None``,
    or ``UNSET`` for a field whose ``null`` means something)."""
    if patch is None:
        return {}
    return {
        field.name: getattr(patch, field.name)
        for field in msgspec.structs.fields(patch)
        if getattr(patch, field.name) is not field.default
    }


def required(value: str | None, field: str) -> str:
    """A required string field: missing or empty is VALIDATION_ERROR."""
    if value is None or value == "":
        raise validation_error(field, f"{field} is required")
    return value


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid_field(value: str | None, field: str) -> str:
    """A required id: a canonical UUID, any case, returned in lowercase."""
    lowered = required(value, field).lower()
    if not _UUID.fullmatch(lowered):
        raise validation_error(field, f"{field} must be a UUID, got {value!r}")
    return lowered


def int_param(
    raw: str | None, field: str, default: int, minimum: int, maximum: int = MAX_INTEGER
) -> int:
    """An integer query parameter from ``minimum`` to ``maximum``."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(field, f"{field} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise validation_error(field, f"{field} must be at least {minimum}, got {value}")
    if value > maximum:
        raise validation_error(
            field, f"{field} must be at most {maximum}, got {value}", maximum=maximum
        )
    return value
