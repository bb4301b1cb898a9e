"""The Python client against a real daemon (the root conftest's, one per module)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from real_daemon import Daemon
from vmctl.api.models import Limits
from vmctl.client import Client


@pytest.fixture
def client(daemon: Daemon) -> Iterator[Client]:
    with Client(daemon.url, daemon.token) as client:
        yield client
    daemon.close_open_sessions()


@pytest.fixture
def gated_template(client: Client) -> str:
    """A template with the fs module and a minute of time, under a unique name."""
    template = client.create_template(f"gated-{uuid.uuid4()}")
    client.add_module(template.id, "fs")
    client.update_settings(template.id, limits=Limits(cpu_ms=60_000, wall_ms=60_000))
    return template.name


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """The file that lets TICKS end; made at the end of the test whatever happened."""
    yield tmp_path / "go"
    (tmp_path / "go").touch()
