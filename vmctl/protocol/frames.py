"""The frames that cross the worker boundary, and how a line becomes one.

Both directions are newline-delimited JSON: one frame per line, every frame a
msgspec Struct with a ``type`` tag. The supervisor writes :data:`Request`
frames to the worker's stdin; the worker writes :data:`Reply` frames to its
stdout, starting with exactly one :class:`Hello`.

Per request the worker sends zero or more event frames (:data:`EventFrame`:
:class:`Console`, :class:`Value`, :class:`JsException`, :class:`System`) carrying the request's
``id``, then exactly one terminal frame: :class:`Ok` or :class:`Error`. Console lines may also
come several to a frame, in a :class:`ConsoleBatch`: each of its lines is one console event,
in order, as if it had come in a :class:`Console` frame of its own.

Control frames (:class:`Cancel`, :class:`Ping`, :class:`Shutdown`) may arrive
while a request runs; the worker reads them on its own thread.

Both sides ship together, so decoding is strict: an unknown tag, an unknown
field or a wrong type is a :class:`ProtocolError`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from vmctl.json_depth import MAX_DEPTH, nests_deeper, too_few_brackets

PROTOCOL_VERSION = 1

# Large enough for a 1 MiB REPL input after JSON escaping, small enough that a
# runaway line is refused long before it costs real memory.
MAX_LINE_BYTES = 8 * 1024 * 1024

# How deeply a Value's ``json`` may nest arrays and objects (vmctl/json_depth.py): a deeper
# value is a protocol violation, so no record in the store can be one.
MAX_VALUE_DEPTH = MAX_DEPTH


class ProtocolError(Exception):
    """A line that is not a valid frame of this protocol version."""


class Frame(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every frame; the subclass's ``tag`` names it on the wire."""


# -- shared payloads ----------------------------------------------------------


class ExecLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The limits the worker itself enforces for one request.

    ``cpu_ms`` and ``wall_ms`` interrupt the script softly. ``mem_mb`` is the
    engine's heap limit. Event and output limits are counted by the supervisor.
    """

    cpu_ms: int
    wall_ms: int
    mem_mb: int


# The host modules a template may enable for ``require(name)`` (``RuntimeOptions.modules``),
# and what each gives JavaScript. The supervisor refuses any other name; the worker enables
# no other.
MODULE_CATALOG: dict[str, str] = {
    "fs": "read-only access to files inside the session's worktree",
}


class RuntimeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How scripts are evaluated (the template's ``runtime`` and ``resolver``)."""

    esm: bool = False
    strict: bool = False
    extensions: tuple[str, ...] = (".js", ".mjs")
    # Host modules ``require(name)`` may return (the template's modules, from the catalog).
    modules: tuple[str, ...] = ()


# -- supervisor -> worker -----------------------------------------------------


class ExecRepl(Frame, frozen=True, tag="exec_repl"):
    """Evaluate one REPL snippet in the session's global scope."""

    id: int
    code: str
    limits: ExecLimits
    runtime: RuntimeOptions = RuntimeOptions()


class RunFile(Frame, frozen=True, tag="run_file"):
    """Run a file of the worktree; ``path`` is relative and already cleaned."""

    id: int
    path: str
    limits: ExecLimits
    args: dict[str, Any] = {}
    env: dict[str, Any] = {}
    runtime: RuntimeOptions = RuntimeOptions()


class Library(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A template library: the supervisor reads it (the jailed worker could not) and
    sends its source; ``path`` names it in stacks and errors."""

    path: str
    source: str


class RunStartup(Frame, frozen=True, tag="run_startup"):
    """Evaluate libraries (sent whole) then startup files (worktree-relative).

    The first failure ends the request with an ``Error`` whose code is
    ``STARTUP_FAILED`` (or ``INVALID_PATH``) and whose message names the file.
    """

    id: int
    limits: ExecLimits
    libraries: tuple[Library, ...] = ()
    files: tuple[str, ...] = ()
    runtime: RuntimeOptions = RuntimeOptions()


class Cancel(Frame, frozen=True, tag="cancel"):
    """Interrupt request ``id`` if it is still running."""

    id: int


class Ping(Frame, frozen=True, tag="ping"):
    id: int


class Shutdown(Frame, frozen=True, tag="shutdown"):
    """Exit as soon as the running request (if any) is interrupted."""


Request = ExecRepl | RunFile | RunStartup | Cancel | Ping | Shutdown


# -- worker -> supervisor -----------------------------------------------------


class Hello(Frame, frozen=True, tag="hello"):
    """The worker's first frame."""

    protocol: int
    pid: int
    engine: str
    engine_version: str
    operations: tuple[str, ...]
    soft_interrupt: bool
    # Why soft interrupts are off, when they are (the failed layout check).
    degraded_reason: str | None = None


ConsoleLevel = Literal["log", "info", "warn", "error", "debug"]


class Console(Frame, frozen=True, tag="console"):
    id: int
    level: ConsoleLevel
    text: str


class ConsoleBatch(Frame, frozen=True, tag="console_batch"):
    """Console lines of request ``id``, oldest first: one console event per line.

    The worker coalesces a script's console lines into these (by size and by time), so a
    flood is about a frame per millisecond rather than a frame per line.
    """

    id: int
    lines: tuple[tuple[ConsoleLevel, str], ...]


class Value(Frame, frozen=True, tag="value"):
    """The value of the last expression; ``json`` is absent when not JSON-representable,
    and nests at most :data:`MAX_VALUE_DEPTH` deep.

    ``json`` is the value's JSON text as it came (``msgspec.Raw``), never decoded on its
    way to a client: the supervisor puts the same bytes in the event, the record and the
    HTTP answer (a 1 MB value decoded and encoded again cost ~17 ms of the event loop).
    """

    id: int
    value_type: str
    preview: str
    json: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class JsException(Frame, frozen=True, tag="exception"):
    """The script threw; ``message`` is the engine's text (``TypeError: boom``)."""

    id: int
    message: str
    name: str | None = None
    stack: str | None = None


class System(Frame, frozen=True, tag="system"):
    id: int
    level: Literal["info", "warn", "error"]
    message: str


class Pong(Frame, frozen=True, tag="pong"):
    id: int


class Ok(Frame, frozen=True, tag="ok"):
    """Terminal: the request finished normally (its ``Value`` came before)."""

    id: int
    cpu_ms: float


ErrorCode = Literal[
    "JS_ERROR",  # the script threw; the JsException event came before
    "TIMEOUT",  # interrupted at cpu_ms or wall_ms (``limit`` says which)
    "MEMORY_LIMIT",  # the engine's allocation limit was hit
    "CANCELLED",  # a Cancel frame interrupted it
    "STARTUP_FAILED",
    "INVALID_PATH",
    "FILE_NOT_FOUND",
    "BAD_REQUEST",
    "INTERNAL",
]


class Error(Frame, frozen=True, tag="error"):
    """Terminal: the request failed; the context survives unless the worker exits."""

    id: int
    code: ErrorCode
    message: str
    cpu_ms: float = 0.0
    limit: str | None = None


Reply = Hello | Console | ConsoleBatch | Value | JsException | System | Pong | Ok | Error
EventFrame = Console | Value | JsException | System


# -- encoding -----------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_reply_decoder: msgspec.json.Decoder[Reply] = msgspec.json.Decoder(Reply)


def raw_json(value: object) -> msgspec.Raw:
    """``value`` as the raw JSON text a Value frame carries."""
    return msgspec.Raw(_encoder.encode(value))


def encode(frame: Frame) -> bytes:
    """One frame as one line, newline included."""
    return _encoder.encode(frame) + b"\n"


def _check_length(line: bytes) -> None:
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"line of {len(line)} bytes exceeds the maximum of {MAX_LINE_BYTES}")


def decode_request(line: bytes) -> Request:
    """Parse one line read by the worker."""
    _check_length(line)
    try:
        return _request_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad request frame: {exc}") from exc
    except RecursionError:
        raise ProtocolError("bad request frame: nested too deeply") from None


def decode_reply(line: bytes) -> Reply:
    """Parse one line read by the supervisor."""
    _check_length(line)
    try:
        frame = _reply_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad reply frame: {exc}") from exc
    except RecursionError:
        raise ProtocolError("bad reply frame: nested too deeply") from None
    if isinstance(frame, Value) and _raw_nests_deeper(frame.json, MAX_VALUE_DEPTH):
        raise ProtocolError(f"bad reply frame: value json nests deeper than {MAX_VALUE_DEPTH}")
    return frame


def _raw_nests_deeper(raw: msgspec.Raw | msgspec.UnsetType, depth: int) -> bool:
    """Whether raw JSON text nests deeper than ``depth``: decoded only when it holds more
    brackets than that (those in strings count too, so a count under it proves it)."""
    if raw is msgspec.UNSET:
        return False
    text = bytes(raw)
    if too_few_brackets(text, depth):
        return False
    try:
        return nests_deeper(msgspec.json.decode(text), depth)
    except (msgspec.DecodeError, RecursionError):
        return True  # not JSON, or too deep for the decoder: refused either way
