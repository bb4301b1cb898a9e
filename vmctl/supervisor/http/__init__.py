"""The http room: the daemon's REST API on Starlette.

It owns the HTTP edge: the app and its one route list (``app.py``), the middleware,
two layers of a few concerns each (``middleware.py``), the ``Host`` names and ``Origin`` values
the daemon answers (``hosts.py``), the handlers (``endpoints.py``), the
request bodies and query parameters with their strict decoding (``bodies.py``), and the
error envelope with the one table from an error's code to its HTTP status
(``errors.py``), and the OpenAPI document generated from all of these (``openapi.py``).
It may import ``sessions`` (the manager, the templates, the domain
errors), the contract's objects in ``vmctl/api`` and ``config``; nothing else of
the daemon reaches into it, and nothing outside it imports Starlette.
"""
