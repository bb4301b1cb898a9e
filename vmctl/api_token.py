"""The API token: where the daemon and the CLI find it, and how the daemon makes it.

Both look in the same places, so the owner of ``$VMCTL_HOME`` never types it:
the ``VMCTL_AUTH_TOKEN`` environment variable, else the file ``$VMCTL_HOME/token``.
The CLI puts its ``--token`` option first; the daemon creates the file when it is
missing (:func:`daemon_token`): 32 random bytes as URL-safe text, mode 0600, in a
home that is 0700. Standard library only: the CLI and the daemon both import it.
"""

from __future__ import annotations

import contextlib
import os
import secrets

TOKEN_ENV = "VMCTL_AUTH_TOKEN"
TOKEN_NAME = "token"  # in $VMCTL_HOME
TOKEN_BYTES = 32


class TokenError(Exception):
    """The token given or stored cannot be used; the message says which and why."""


def token_path(home: str) -> str:
    return os.path.join(home, TOKEN_NAME)


def check_token(token: str, source: str) -> str:
    """``token`` if it can travel in an ``Authorization`` header: printable ASCII
    without spaces (a stray newline from an editor is stripped by the readers)."""
    if not token or not all(0x20 < ord(c) < 0x7F for c in token):
        raise TokenError(f"the token in {source} must be printable ASCII without spaces")
    return token


def read_token(home: str) -> str | None:
    """The token stored in ``home``, or None when there is no file."""
    path = token_path(home)
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read().strip()
    except FileNotFoundError:
        return None
    return check_token(text, path)


def client_token(home: str, given: str | None = None) -> str | None:
    """What a client sends: ``given`` (``--token``), else ``$VMCTL_AUTH_TOKEN``, else the
    file in ``home``; None when there is none (a daemon with ``--no-auth`` needs none)."""
    if given:
        return check_token(given, "--token")
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return check_token(from_env, TOKEN_ENV)
    try:
        return read_token(home)
    except (PermissionError, TokenError):
        return None  # another user's home: the daemon will answer 401, which says more


def daemon_token(home: str) -> str:
    """The daemon's token: ``$VMCTL_AUTH_TOKEN``, else the file in ``home`` (made 0600
    if it was not), else a new file. ``home`` must exist."""
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return check_token(from_env, TOKEN_ENV)
    existing = read_token(home)
    if existing is not None:
        os.chmod(token_path(home), 0o600)
        return existing
    return _create_token(home)


def _create_token(home: str) -> str:
    """Write a new token file whole, or read the one a concurrent start wrote first.

    The token is written to a private temporary file that is then hard-linked into
    place: link fails if the name exists, so two daemons starting at once agree on
    one token, and no reader ever sees a half-written file.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    tmp = os.path.join(home, f".{TOKEN_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, token_path(home))
        except FileExistsError:
            stored = read_token(home)
            assert stored is not None
            return stored
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return token
