"""Shared fixtures: a real, private, secured nats-server per test, and identities to use it with.

Never the machine's own NATS on 4222: each test gets a fresh server on a random port with its
JetStream store in the test's tmp_path, TLS 1.3 only, clients mapped to users by certificate
(``crossway.natslocal``: certificates minted for the run, streams provisioned by an admin
identity). ``await nats_server.stop()`` / ``await nats_server.start()`` restart it on the same port
and data directory, so streams survive (restart tests rely on that). Identities come from
``await nats_server.grant(identity)``; ``gateway_nats`` and ``auditor_nats`` are the usual two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.security.natspki import NatsIdentity, NatsRole

GATEWAY = "EE/GOV/70000001/gw1"


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[LocalBackbone]:
    # The member of the tests' registries: its registry identity may create that member's streams.
    server = LocalBackbone(tmp_path / "nats", members=("EE/GOV/70000001",))
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


@pytest.fixture
async def gateway_nats(nats_server: LocalBackbone) -> NatsAccess:
    """Gateway EE/GOV/70000001/gw1 on the test's NATS."""
    return await nats_server.grant(NatsIdentity.gateway(GATEWAY))


@pytest.fixture
async def auditor_nats(nats_server: LocalBackbone) -> NatsAccess:
    """An auditor: reads the evidence streams, publishes nothing into them."""
    return await nats_server.grant(NatsIdentity(NatsRole.AUDITOR, "tests"))
