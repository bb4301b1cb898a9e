"""Frames round-trip, and every kind of bad line is one ProtocolError."""

from __future__ import annotations

import msgspec
import pytest

from vmctl.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Cancel,
    Console,
    ConsoleBatch,
    Error,
    ExecLimits,
    ExecRepl,
    Frame,
    Hello,
    JsException,
    Library,
    Ok,
    Ping,
    Pong,
    ProtocolError,
    RunFile,
    RunStartup,
    RuntimeOptions,
    Shutdown,
    System,
    Value,
    decode_reply,
    decode_request,
    encode,
)

LIMITS = ExecLimits(cpu_ms=100, wall_ms=200, mem_mb=64)

REQUESTS: list[Frame] = [
    ExecRepl(id=1, code="1 + 1", limits=LIMITS),
    ExecRepl(id=2, code="x", limits=LIMITS, runtime=RuntimeOptions(esm=True, strict=True)),
    RunFile(id=3, path="a/b.mjs", limits=LIMITS, args={"n": [1, 2]}, env={"K": "v"}),
    RunStartup(
        id=4,
        limits=LIMITS,
        libraries=(Library("/home/lib/x.js", "var x = 1"),),
        files=("a.js", "b.js"),
    ),
    Cancel(id=5),
    Ping(id=6),
    Shutdown(),
]

REPLIES: list[Frame] = [
    Hello(
        protocol=PROTOCOL_VERSION,
        pid=42,
        engine="quickjs",
        engine_version="0.17.0.2",
        operations=("exec_repl",),
        soft_interrupt=True,
    ),
    Console(id=1, level="warn", text="careful\nsecond line"),
    ConsoleBatch(id=1, lines=(("log", "a"), ("error", "b\nc"), ("debug", ""))),
    ConsoleBatch(id=1, lines=()),
    Value(id=1, value_type="number", preview="2", json=msgspec.Raw(b"2")),
    Value(id=1, value_type="undefined", preview="undefined", json=msgspec.Raw(b"null")),
    Value(id=1, value_type="function", preview="[Function: f]"),
    JsException(id=1, message="TypeError: boom", name="TypeError", stack="at <repl:1>"),
    System(id=1, level="info", message="note"),
    Pong(id=6),
    Ok(id=1, cpu_ms=0.5),
    Error(id=1, code="TIMEOUT", message="too slow", cpu_ms=200.0, limit="cpu_ms"),
]


@pytest.mark.parametrize("frame", REQUESTS, ids=lambda f: type(f).__name__)
def test_requests_round_trip(frame: Frame) -> None:
    line = encode(frame)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == frame


@pytest.mark.parametrize("frame", REPLIES, ids=lambda f: type(f).__name__)
def test_replies_round_trip(frame: Frame) -> None:
    assert decode_reply(encode(frame)) == frame


def test_value_json_absent_differs_from_null() -> None:
    absent = decode_reply(encode(Value(id=1, value_type="function", preview="f")))
    null = decode_reply(
        encode(Value(id=1, value_type="null", preview="null", json=msgspec.Raw(b"null")))
    )
    assert isinstance(absent, Value) and absent.json is msgspec.UNSET
    assert isinstance(null, Value) and null.json == msgspec.Raw(b"null")


def test_every_frame_carries_its_type_tag() -> None:
    assert msgspec.json.decode(encode(Ping(id=1))) == {"type": "ping", "id": 1}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"not json at all", "malformed"),
        (b"", "truncated"),
        (b"[1, 2]", "Expected `object`"),
        (b'{"id": 1}', "missing required field `type`"),
        (b'{"type": "teleport", "id": 1}', "Invalid value 'teleport'"),
        (b'{"type": "ok", "id": 1, "cpu_ms": 1, "extra": true}', "unknown field `extra`"),
        (b'{"type": "ok", "id": "one", "cpu_ms": 1}', "`$.id`"),
        (b'{"type": "console", "id": 1, "level": "shout", "text": "x"}', "`$.level`"),
        (b'{"type": "console_batch", "id": 1, "lines": [["log", ""], ["yell", ""]]}', "[1][0]`"),
        (b'{"type": "console_batch", "id": 1, "lines": [["log"]]}', "`$.lines[0]`"),
        (b'{"type": "error", "id": 1, "code": "NOPE", "message": "x"}', "`$.code`"),
    ],
)
def test_bad_reply_lines_raise_protocol_error(line: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match="bad reply frame") as caught:
        decode_reply(line)
    assert fragment in str(caught.value)
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_a_request_is_not_a_reply_and_back() -> None:
    with pytest.raises(ProtocolError):
        decode_reply(encode(Ping(id=1)))
    with pytest.raises(ProtocolError):
        decode_request(encode(Pong(id=1)))


def test_over_long_lines_are_refused_before_parsing() -> None:
    line = b'{"type": "console", "id": 1, "level": "log", "text": "' + b"x" * MAX_LINE_BYTES
    with pytest.raises(ProtocolError, match="exceeds the maximum"):
        decode_reply(line)
    with pytest.raises(ProtocolError, match="exceeds the maximum"):
        decode_request(line)
