"""The fork server's control protocol: the supervisor asks for workers, the fork server
says what became of them.

The channel is a Unix ``SOCK_SEQPACKET`` socket pair: one frame per record, so no
newline framing, and file descriptors travel with the record they belong to
(``SCM_RIGHTS``). The supervisor sends :class:`Fork` with the worker's stdin, stdout
and stderr attached, in that order. The fork server sends :class:`Ready` once, then
:class:`Forked` (with a pidfd of the new worker attached) or :class:`ForkFailed` for
each request, and :class:`Exited` when it has reaped a worker. Closing the socket is
the only other message: the fork server then kills its workers and exits.

Both sides ship together, so decoding is strict, as for the worker's frames.
"""

from __future__ import annotations

import msgspec

from vmctl.protocol.frames import Frame, ProtocolError
from vmctl.protocol.jail import NO_JAIL, JailSpec

# A request is a path, a small environment and four limits; a reply is smaller.
MAX_RECORD_BYTES = 64 * 1024
FDS_PER_FORK = 3  # stdin, stdout, stderr


class Fork(Frame, frozen=True, tag="fork"):
    """Fork one worker: its stdin, stdout and stderr come with this record."""

    id: int
    cwd: str  # the worktree
    env: dict[str, str]  # the worker's whole environment
    # (resource, value) pairs, each set as both soft and hard limit.
    rlimits: tuple[tuple[int, int], ...]
    jail: JailSpec = NO_JAIL  # applied in the child after all of the above


class Ready(Frame, frozen=True, tag="ready"):
    """The fork server's first frame: everything a worker imports is imported."""

    pid: int
    netns: bool = False  # it is in an empty network namespace, which its workers inherit


class Forked(Frame, frozen=True, tag="forked"):
    """Request ``id`` became process ``pid``; a pidfd of it comes with this record."""

    id: int
    pid: int


class ForkFailed(Frame, frozen=True, tag="fork_failed"):
    """Request ``id`` could not be forked (the ``fork`` system call failed)."""

    id: int
    message: str


class Exited(Frame, frozen=True, tag="exited"):
    """Worker ``pid`` has been reaped; ``status`` is its wait status, as ``waitpid`` gave it."""

    pid: int
    status: int


ForkReply = Ready | Forked | ForkFailed | Exited

_encoder = msgspec.json.Encoder()
_request_decoder: msgspec.json.Decoder[Fork] = msgspec.json.Decoder(Fork)
_reply_decoder: msgspec.json.Decoder[ForkReply] = msgspec.json.Decoder(ForkReply)


def encode_record(frame: Fork | ForkReply) -> bytes:
    """One frame as one record (no newline: the socket keeps record boundaries)."""
    return _encoder.encode(frame)


def decode_fork_request(record: bytes) -> Fork:
    """Parse one record read by the fork server."""
    try:
        return _request_decoder.decode(record)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad fork request: {exc}") from exc


def decode_fork_reply(record: bytes) -> ForkReply:
    """Parse one record read by the supervisor."""
    try:
        return _reply_decoder.decode(record)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad fork server frame: {exc}") from exc
