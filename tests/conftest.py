"""Shared fixtures. Only ``nats_server`` lives here: a real, private nats-server per test.

Never the machine's own NATS on 4222: each test gets a fresh server on a random port with its
JetStream store in the test's tmp_path. ``await nats_server.stop()`` / ``await nats_server.start()``
restart it on the same port and data directory, so streams survive (restart tests rely on that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crossway.natsbox import EmbeddedNats


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()
