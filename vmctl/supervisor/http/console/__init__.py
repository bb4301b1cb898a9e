"""The web console (``GET /``): one page and its script and style, served by the daemon.

Auth is the daemon's token, given once in the URL (``/?token=...``, as ``vmctl console``
prints it) and then kept in a cookie: the page answers a good token with a redirect to
``/`` that sets the cookie and drops the token from the address bar and the history. The
cookie holds a value derived from the token, not the token; it is ``HttpOnly`` (no script
reads it) and ``SameSite=Strict`` (no other site's page sends it), and the Gate takes it
in place of the bearer header on every route (credentials.py holds both checks). The
page's script talks to the API like any client, and its policy lets it load nothing but
this daemon's files.
"""

from __future__ import annotations

from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from vmctl.supervisor.http.credentials import COOKIE, Token

PAGE = "/"
ASSETS = "/console/"
# The page loads only its own script and style, and talks only to this daemon.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

_LOCKED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmctl</title></head>
<body><h1>vmctl</h1>
<p>This daemon needs its token. Open the address <code>vmctl console</code> prints:
it carries the token once, and the page keeps you signed in until the browser closes.</p>
</body></html>
"""


def _file(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()


def console_routes(token: Token | None) -> list[BaseRoute]:
    """``GET /`` (the page, or the sign-in with ``?token=``) and ``GET /console/{name}``.

    The Gate lets ``GET /`` through without a token (this route checks it); the files
    under ``/console/`` need it, as every other route does.
    """
    page = _file("index.html")
    assets = {name: _file(name) for name in ("console.js", "console.css", "icon.svg")}

    async def console_page(request: Request) -> Response:
        if token is None:
            return HTMLResponse(page, headers=SECURITY_HEADERS)
        given = request.query_params.get("token")
        if given is not None:  # a sign-in, even with a cookie: the address is to lose it
            if not token.is_given(given):
                return HTMLResponse(_LOCKED, status_code=401, headers=SECURITY_HEADERS)
            signed_in = RedirectResponse(PAGE, status_code=303, headers=SECURITY_HEADERS)
            signed_in.set_cookie(COOKIE, token.cookie, path="/", httponly=True, samesite="strict")
            return signed_in
        if token.cookie_shown(request.scope):
            return HTMLResponse(page, headers=SECURITY_HEADERS)
        return HTMLResponse(_LOCKED, status_code=401, headers=SECURITY_HEADERS)

    async def console_asset(request: Request) -> Response:
        name = request.path_params["name"]
        body = assets.get(name)
        if body is None:
            raise HTTPException(404)  # the envelope of any unknown path
        return Response(body, media_type=_TYPES[name[name.rindex(".") :]], headers=SECURITY_HEADERS)

    return [  # not in the OpenAPI document: for a browser, not for programs
        Route(PAGE, console_page, methods=["GET"], include_in_schema=False),
        Route(ASSETS + "{name}", console_asset, methods=["GET"], include_in_schema=False),
    ]
