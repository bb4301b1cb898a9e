"""The fork server's records round-trip, and a bad one is one ProtocolError."""

from __future__ import annotations

import msgspec
import pytest

from vmctl.protocol import Frame, ProtocolError
from vmctl.protocol.forking import (
    Exited,
    Fork,
    Forked,
    ForkFailed,
    Ready,
    decode_fork_reply,
    decode_fork_request,
    encode_record,
)

FORK = Fork(id=1, cwd="/tmp/tree", env={"HOME": "/tmp/tree"}, rlimits=((9, 0), (7, 256)))
REPLIES: list[Frame] = [
    Ready(pid=10),
    Forked(id=1, pid=11),
    ForkFailed(id=2, message="fork failed: [Errno 11] Resource temporarily unavailable"),
    Exited(pid=11, status=9),
]


def test_a_fork_request_round_trips_as_one_record_without_newline() -> None:
    record = encode_record(FORK)
    assert not record.endswith(b"\n")
    assert decode_fork_request(record) == FORK


@pytest.mark.parametrize("frame", REPLIES, ids=lambda f: type(f).__name__)
def test_replies_round_trip(frame: Frame) -> None:
    assert decode_fork_reply(encode_record(frame)) == frame  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (b"", "truncated"),
        (b'{"type": "fork", "id": 1}', "missing required field `cwd`"),
        (b'{"type": "ready", "pid": 1}', "Invalid value 'ready'"),
        (
            b'{"type": "fork", "id": 1, "cwd": "/", "env": {}, "rlimits": [], "argv": []}',
            "unknown field `argv`",
        ),
        (b'{"type": "fork", "id": 1, "cwd": "/", "env": {}, "rlimits": [[1]]}', "`$.rlimits[0]`"),
    ],
)
def test_bad_requests_raise_protocol_error(record: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match="bad fork request") as caught:
        decode_fork_request(record)
    assert fragment in str(caught.value)
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_a_request_is_not_a_reply() -> None:
    with pytest.raises(ProtocolError, match="bad fork server frame"):
        decode_fork_reply(encode_record(FORK))
