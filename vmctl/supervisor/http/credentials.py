"""What shows the daemon's token: the bearer header, or the web console's cookie.

One :class:`Token` per app (``app.py``) serves the Gate (middleware.py), which asks every
route but the open ones for it, and the console's page (console/), which signs a browser
in with the token and then knows it by its cookie. The cookie holds a value derived from
the token, not the token: a leaked cookie works for this daemon's page and API, not as a
bearer header anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import cookie_parser
from starlette.types import Scope

COOKIE = "vmctl_console"


def header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


class Token:
    """The daemon's token and what stands for it; every comparison in constant time."""

    def __init__(self, token: str) -> None:
        self._raw = token.encode()
        self._bearer = b"Bearer " + self._raw
        self.cookie = hmac.new(self._raw, b"vmctl web console", hashlib.sha256).hexdigest()

    def shown(self, scope: Scope) -> bool:
        """``Authorization: Bearer <token>``, or, without that header, the cookie."""
        authorization = header(scope, b"authorization")
        if authorization is not None:
            return hmac.compare_digest(authorization, self._bearer)
        return self.cookie_shown(scope)

    def cookie_shown(self, scope: Scope) -> bool:
        cookies = header(scope, b"cookie")
        if cookies is None:
            return False
        given = cookie_parser(cookies.decode("latin-1")).get(COOKIE, "")
        return hmac.compare_digest(given.encode("latin-1", "replace"), self.cookie.encode())

    def is_given(self, text: str) -> bool:
        """Whether ``text`` (a client's, so anything) is the token itself."""
        return hmac.compare_digest(text.encode(), self._raw)
