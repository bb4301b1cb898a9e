"""What the supervisor asks of a worker's jail, and the names of its layers.

The supervisor decides, per worker, which layers to apply (what the host offers,
under the daemon's ``--sandbox`` mode); the worker's side (vmctl/sandbox/) applies
exactly those, between fork and the first line of worker or plugin code, and fails
to start rather than run with fewer. So the list the supervisor asked for is the
list the running worker has.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Layer = Literal["no_new_privs", "capabilities", "uid", "landlock", "seccomp", "netns"]
# In the order they are applied (netns first: the fork server or the spawned runner
# enters it for the whole process, before anything else).
LAYERS: tuple[Layer, ...] = (
    "netns",
    "no_new_privs",
    "landlock",
    "capabilities",
    "uid",
    "seccomp",
)
SandboxMode = Literal["strict", "auto", "off"]


class JailSpec(msgspec.Struct, frozen=True):
    """The layers one worker gets, and what they need to know."""

    layers: tuple[Layer, ...]
    worktree: str  # read-only under Landlock
    uid: int | None = None  # with the "uid" layer: the uid and gid to become
    gid: int | None = None
    landlock_abi: int = 0  # with the "landlock" layer: the ABI the ruleset targets


NO_JAIL = JailSpec(layers=(), worktree="/")

_decoder = msgspec.json.Decoder(JailSpec)


def encode_jail(spec: JailSpec) -> str:
    return msgspec.json.encode(spec).decode()


def decode_jail(text: str | bytes) -> JailSpec:
    return _decoder.decode(text)
