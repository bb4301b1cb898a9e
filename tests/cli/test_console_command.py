"""``vmctl console``: the web console's address, which signs a browser in once."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from cli.runner import Vmctl, invoke
from real_daemon import Daemon
from vmctl.supervisor.http.credentials import COOKIE


def test_console_prints_an_address_that_signs_in(vmctl: Vmctl, daemon: Daemon) -> None:
    printed = vmctl("console")
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip()
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == daemon.url and parts.path == "/"
    assert parse_qs(parts.query) == {"token": [daemon.token]}
    with httpx.Client(timeout=30.0) as client:
        signed_in = client.get(url)
        assert signed_in.status_code == 303 and COOKIE in signed_in.cookies
        assert client.get(daemon.url + "/").status_code == 200


def test_console_json_and_an_unreachable_daemon(vmctl: Vmctl, daemon: Daemon) -> None:
    as_json = vmctl("--json", "console")
    assert as_json.exit_code == 0
    assert as_json.stdout.startswith('{\n  "url": "http://127.0.0.1:')
    gone = invoke(
        ["--server-url", "http://127.0.0.1:9", "console"], {"VMCTL_HOME": str(daemon.home)}
    )
    assert gone.exit_code == 1
    assert "http://127.0.0.1:9" not in gone.stdout  # no address printed for a daemon not there
