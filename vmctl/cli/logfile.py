"""Printing a log file, its last lines, and following it as it grows (``vmctl logs``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

BLOCK = 64 * 1024
# A growing file raises no event we can wait on without inotify; between reads
# we sleep this long, which is what `tail -f` does on filesystems without it.
FOLLOW_INTERVAL = 0.2


def tail_offset(file: BinaryIO, lines: int) -> int:
    """The offset where the last ``lines`` lines of ``file`` begin."""
    end = file.seek(0, os.SEEK_END)
    if lines == 0:
        return end
    position, newlines = end, 0
    while position > 0:
        size = min(BLOCK, position)
        position -= size
        file.seek(position)
        block = file.read(size)
        # A final newline ends the last line rather than starting an empty one.
        if position + size == end and block.endswith(b"\n"):
            block = block[:-1]
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 0x0A:
                newlines += 1
                if newlines == lines:
                    return position + index + 1
    return 0


def copy_out(file: BinaryIO, out: BinaryIO) -> None:
    while chunk := file.read(BLOCK):
        out.write(chunk)
    out.flush()


def print_file(path: Path, lines: int | None = None) -> int:
    """Write ``path`` (or its last ``lines`` lines) to stdout; return the offset reached."""
    out = sys.stdout.buffer
    try:
        with open(path, "rb") as file:
            start = 0 if lines is None else tail_offset(file, lines)
            file.seek(start)
            copy_out(file, out)
            return file.tell()
    except FileNotFoundError:
        raise click.ClickException(f"no log at {path}") from None


def follow(path: Path, offset: int) -> None:
    """Print what is appended to ``path`` after ``offset``, until interrupted.

    A file that shrinks was truncated: start again from its top. A file replaced by a new
    one (the daemon rotated its log) is read to its end, then the new one from its top.
    """
    out = sys.stdout.buffer
    file = open(path, "rb")  # noqa: SIM115 (replaced when the log rotates)
    try:
        file.seek(offset)
        while True:
            copy_out(file, out)
            if _replaced(path, file):
                copy_out(file, out)  # what was written before the rename
                file.close()
                file = open(path, "rb")  # noqa: SIM115
                continue
            if size_of(path, file.tell()) < file.tell():
                file.seek(0)
            time.sleep(FOLLOW_INTERVAL)
    finally:
        file.close()


def _replaced(path: Path, file: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        return False  # between the rename and the new file: look again next time


def size_of(path: Path, default: int) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return default  # removed while followed: keep reading the open file
