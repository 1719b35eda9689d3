"""Issue 11, item 7: the federation on a 3-node NATS cluster — routes over TLS 1.3 that admit only
the cluster's route identity, every stream at 3 replicas."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio

from crossway.backbone import EVIDENCE_STREAMS, REGISTRY_BUCKET, audit_subject, kv_stream
from crossway.demo.federation import Federation
from crossway.demo.scenario import run_scenario
from crossway.natsauth import Grant, NatsUser, render_authorization
from crossway.natsbox import ClusterMembership, EmbeddedNats, ServerTls
from crossway.natslocal import CLUSTER_NAME, ROUTE, free_port
from crossway.security.keys import load_certificate
from crossway.security.natspki import identity_of_certificate

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("cluster"), nats_nodes=3) as federation:
        yield federation


async def test_the_federation_runs_on_three_nodes_with_every_stream_at_three_replicas(fed: Federation) -> None:
    assert len(fed.nats.urls) == 3
    result = await run_scenario(fed, lambda line: None)
    assert result.ok, result.failures
    nc = await fed.nats.admin_connection()
    try:
        for name in [s.name for s in EVIDENCE_STREAMS] + [kv_stream(REGISTRY_BUCKET)]:
            info = await nc.jetstream(timeout=5).stream_info(name)
            assert info.config.num_replicas == 3, name
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2, name
    finally:
        await nc.close()


async def test_a_server_presenting_a_client_certificate_cannot_join_as_a_route(fed: Federation, tmp_path: Path) -> None:
    # The attacker holds the tax gateway's NATS key and certificate (same CA, EKU clientAuth) and
    # runs a nats-server of their own, routed at the cluster, admitting themselves to everything.
    keys = fed.tax.directory / "keys"
    identity, serial = identity_of_certificate(load_certificate(keys / "nats.crt"))
    users = tmp_path / "rogue-users.conf"
    users.write_text(render_authorization([NatsUser(identity.user(serial), Grant((">",), (">",)))]))
    node_routes = tuple(f"tls://127.0.0.1:{n._cluster.port}" for n in fed.nats.nodes if n._cluster is not None)
    rogue = EmbeddedNats(
        tmp_path / "rogue",
        tls=ServerTls(keys / "nats.crt", keys / "nats.key", fed.workdir / "registry" / "nats-ca.pem"),
        authorization=users,
        server_name="rogue",
        jetstream=False,
        cluster=ClusterMembership(CLUSTER_NAME, free_port(), node_routes, ROUTE.uri),
    )
    await rogue.start()
    try:
        # Its own server presents a client-only certificate: the spy does not check it.
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(keys / "nats.crt", keys / "nats.key")
        received: list[str] = []
        spy = await nats.connect(rogue.url, tls=ctx, connect_timeout=2, allow_reconnect=False)

        async def got(msg: object) -> None:
            received.append(getattr(msg, "subject", ""))

        await spy.subscribe("crossway.audit.>", cb=got)
        await spy.flush()
        # Genuine records on the cluster (the population gateway's side of an exchange, too).
        await run_scenario(fed, lambda line: None)
        await asyncio.sleep(2.0)
        await spy.close()
        assert received == []
        log = rogue.log_path.read_text()
        deadline = time.monotonic() + 5
        while "Authorization Violation" not in log and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            log = rogue.log_path.read_text()
        assert "Authorization Violation" in log  # every node refused it as a route
        assert audit_subject(str(fed.population.gateway))  # (the subject it hoped to read)
    finally:
        await rogue.aclose()
