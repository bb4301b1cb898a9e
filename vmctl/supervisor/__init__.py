"""The daemon: ``python -m vmctl.supervisor``, the supervisor of every worker.

Four rooms, and three modules beside them (uvicorn's shape)::

    server.py       command line, the home and its token, logging, uvicorn, shutdown's order
    connections.py  one HTTP connection, bounded before any request is read
    config.py       DaemonConfig and every default (port, max sessions, graces, caps)

    http/ ──────► sessions/ ──────► workers/
                      │                │ (the contract's value types only)
                      └──────────► store/ ◄┘

- ``http/``: the Starlette app, middleware, handlers, request bodies, the error
  envelope and the one table from an error's code to its status.
- ``sessions/``: the session manager, one execution's life, templates, the rules
  on paths and names, and the domain's errors.
- ``workers/``: a worker's handle and OS process, the launcher over spawn and the
  fork server, pipes, an execution's outcome and limits accounting.
- ``store/``: SQLite, its threads, its rows, its migrations, the contract's objects.

Imports flow one way, along the arrows; ``workers`` and ``store`` never import
``sessions`` or ``http``; nothing outside ``http`` imports Starlette.
"""
