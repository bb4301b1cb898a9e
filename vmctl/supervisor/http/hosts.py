"""Which ``Host`` names and ``Origin`` values the daemon answers: the defence against DNS
rebinding and cross-site requests.

A web page can make the owner's browser send requests to the daemon: by rebinding
its own name to 127.0.0.1 (the request then carries the attacker's name in
``Host``), or by posting across sites (the request carries the page's ``Origin``).
The daemon answers only a ``Host`` that names a loopback address, the listen
address or an ``--allow-host`` name, and only requests without an ``Origin`` or
from its own (``http://<such a host>:<port>``) or an ``--allow-origin`` one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from vmctl.supervisor.config import is_loopback


def _canonical(name: str) -> str:
    """A host name lowercased without a final dot; an IP address in its canonical form."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


def _host_name(value: str) -> str | None:
    """The name of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), canonical;
    None when it is not of that form."""
    value = value.strip()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
    else:
        name, _, port = value.partition(":")
        if port and not port.isdigit():
            return None
    return _canonical(name) or None


class AllowedHosts:
    """The names and origins one daemon answers."""

    def __init__(self, listen_host: str, port: int, names: Iterable[str], origins: Iterable[str]):
        self.port = port
        self.names = {_canonical(n) for n in (listen_host, *names)}
        self.origins = frozenset(origins)
        # The Host values nearly every request carries, answered without parsing them.
        usual = {"127.0.0.1", "localhost", "[::1]", listen_host}
        self._usual_hosts = {f"{h}{p}".encode() for h in usual for p in ("", f":{port}")}

    def allows_name(self, name: str) -> bool:
        return is_loopback(name) or name in self.names

    def allows_host(self, header: bytes | None) -> bool:
        """Whether a request with this ``Host`` header (None: absent) is answered."""
        if header in self._usual_hosts:
            return True
        if header is None:
            return False
        name = _host_name(header.decode("latin-1"))
        return name is not None and self.allows_name(name)

    def allows_origin(self, header: bytes) -> bool:
        """Whether a request with this ``Origin`` header is answered: one of ours (plain
        http, our port, a host we answer) or one given with ``--allow-origin``."""
        origin = header.decode("latin-1").strip().lower()
        if origin in self.origins:
            return True
        try:
            parts = urlsplit(origin)
            port = parts.port or 80
        except ValueError:
            return False
        return (
            parts.scheme == "http"
            and parts.hostname is not None
            and port == self.port
            and parts.path == ""
            and self.allows_name(_canonical(parts.hostname))
        )
