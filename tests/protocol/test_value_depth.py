"""A Value's json nests at most MAX_VALUE_DEPTH deep; deeper is a protocol violation."""

from __future__ import annotations

import msgspec
import pytest

from vmctl.json_depth import nests_deeper
from vmctl.protocol import (
    MAX_VALUE_DEPTH,
    Console,
    ProtocolError,
    Value,
    decode_reply,
    decode_request,
    encode,
)


def _nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


@pytest.mark.parametrize("depth", [0, 1, 2, MAX_VALUE_DEPTH])
def test_a_value_up_to_the_depth_decodes(depth: int) -> None:
    frame = Value(id=1, value_type="object", preview="p", json=_raw(_nested(depth)))
    decoded = decode_reply(encode(frame))
    assert decoded == frame
    assert isinstance(decoded, Value) and isinstance(decoded.json, msgspec.Raw)
    assert msgspec.json.decode(decoded.json) == _nested(depth)


def test_brackets_inside_strings_do_not_make_a_value_deep() -> None:
    text = msgspec.json.encode({"s": "[" * 500 + "{" * 500})
    frame = Value(id=1, value_type="object", preview="p", json=msgspec.Raw(text))
    assert decode_reply(encode(frame)) == frame


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 900])
def test_a_deeper_value_is_refused(depth: int) -> None:
    line = encode(Value(id=1, value_type="object", preview="p", json=_raw(_nested(depth))))
    with pytest.raises(ProtocolError, match=f"value json nests deeper than {MAX_VALUE_DEPTH}"):
        decode_reply(line)


def test_text_nested_past_the_decoders_recursion_is_a_protocol_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    value = b'{"type":"value","id":1,"value_type":"array","preview":"p","json":'
    with pytest.raises(ProtocolError, match=r"nested too deeply|nests deeper than"):
        decode_reply(value + deep + b"}")
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_request(b'{"type":"run_file","id":1,"path":"a.js","args":{"a":' + deep + b"}}")


def test_other_frames_are_not_walked() -> None:
    frame = Console(id=1, level="log", text="[" * 1000)
    assert decode_reply(encode(frame)) == frame


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[], [[]], [[[]]]], 4), (_nested(500), 500)],
)
def test_nests_deeper_counts_each_array_and_object_as_a_level(value: object, depth: int) -> None:
    assert not nests_deeper(value, depth)
    assert depth == 0 or nests_deeper(value, depth - 1)
