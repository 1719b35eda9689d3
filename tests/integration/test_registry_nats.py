"""The registry pushes its signed configuration through a real nats-server; gateways follow it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization

from crossway.core.clock import SystemClock
from crossway.core.ids import GatewayId, MemberId
from crossway.natsclient import NatsAccess, connect
from crossway.natslocal import LocalBackbone
from crossway.security.keys import generate_tls_key
from crossway.security.natspki import NatsIdentity, NatsRole
from crossway.security.pki import CertKind, build_csr
from protos.crossway.v1 import registry_pb2, registry_pb2_grpc
from registry import (
    KV_BUCKET,
    KV_KEY,
    ConfigurationPublisher,
    NatsConfigurationSource,
    RegistryAuthority,
    RegistryServer,
    VerifiedConfiguration,
    load_anchor,
    verify_configuration,
)

MEMBER = MemberId.parse("EE/GOV/70000001")
GATEWAY = GatewayId.parse("EE/GOV/70000001/gw1")


def _registry(tmp_path: Path) -> RegistryAuthority:
    authority = RegistryAuthority.init(tmp_path / "registry", "EE")
    authority.add_member(MEMBER, "Population Register")
    authority.add_gateway(GATEWAY, "127.0.0.1:7443")
    return authority


async def _registry_nats(backbone: LocalBackbone) -> NatsAccess:
    return await backbone.grant(NatsIdentity(NatsRole.REGISTRY, "EE"))


def _issue_tls(authority: RegistryAuthority) -> str:
    csr = build_csr(generate_tls_key(), subject_uri="x").public_bytes(serialization.Encoding.PEM)
    return str(authority.issue(csr, kind=CertKind.TLS, gateway=GATEWAY).serial_number)


async def test_a_gateway_source_receives_the_published_configuration_and_a_revocation_within_seconds(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    authority = _registry(tmp_path)
    serial = _issue_tls(authority)
    publisher = ConfigurationPublisher(authority, await _registry_nats(nats_server), validity_s=60, poll_s=0.1)
    await publisher.start()
    source = NatsConfigurationSource(gateway_nats, load_anchor(authority.anchor_path))
    updates: asyncio.Queue[VerifiedConfiguration] = asyncio.Queue()
    try:
        await source.start()
        first = source.current()
        assert not first.is_revoked(serial)
        source.subscribe(updates.put_nowait)

        authority.revoke(serial, "key compromise")
        # The publisher notices the change by itself (as it would after `crossway registry revoke`).
        update = await asyncio.wait_for(updates.get(), 5)
        assert update.serial > first.serial and update.is_revoked(serial)
        assert source.current() is update
    finally:
        await source.aclose()
        await publisher.aclose()
        authority.close()


async def test_the_source_ignores_an_older_serial_and_garbage_pushed_into_the_bucket(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    authority = _registry(tmp_path)
    old = authority.build_configuration(validity_s=60)
    publisher = ConfigurationPublisher(authority, await _registry_nats(nats_server), validity_s=60, poll_s=0.1)
    await publisher.start()
    source = NatsConfigurationSource(gateway_nats, load_anchor(authority.anchor_path))
    # Whoever holds the registry's NATS credential (the only writer of the bucket) replays and garbles.
    nc = await connect(await _registry_nats(nats_server), name="attacker")
    try:
        await source.start()
        newest = source.current().serial
        js = nc.jetstream()
        await js.publish(f"$KV.{KV_BUCKET}.{KV_KEY}", old)
        await js.publish(f"$KV.{KV_BUCKET}.{KV_KEY}", b"not a configuration")
        # A genuine newer one after the bad ones proves the bad ones were processed (and ignored).
        accepted: asyncio.Queue[VerifiedConfiguration] = asyncio.Queue()
        source.subscribe(accepted.put_nowait)
        await publisher.publish_now()
        assert (await asyncio.wait_for(accepted.get(), 5)).serial == newest + 1
        assert accepted.empty()
    finally:
        await nc.close()
        await source.aclose()
        await publisher.aclose()
        authority.close()


async def test_a_source_started_before_the_first_publication_picks_it_up(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    authority = _registry(tmp_path)
    source = NatsConfigurationSource(gateway_nats, load_anchor(authority.anchor_path), retry_s=0.1)
    accepted: asyncio.Queue[VerifiedConfiguration] = asyncio.Queue()
    source.subscribe(accepted.put_nowait)
    await source.start(wait_s=0.5)
    publisher = ConfigurationPublisher(authority, await _registry_nats(nats_server), validity_s=60)
    try:
        await publisher.start()
        assert (await asyncio.wait_for(accepted.get(), 5)).serial == 1
    finally:
        await source.aclose()
        await publisher.aclose()
        authority.close()


async def test_the_registry_server_answers_get_configuration_and_not_modified(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    authority = _registry(tmp_path)
    server = RegistryServer(authority, "127.0.0.1:0", await _registry_nats(nats_server), validity_s=60)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)  # type: ignore[no-untyped-call]
            signed = await stub.GetConfiguration(registry_pb2.GetConfigurationRequest(), timeout=5)
            config = verify_configuration(
                signed.SerializeToString(), load_anchor(authority.anchor_path), SystemClock().now_ms()
            )
            assert config.member(MEMBER) is not None
            same = await stub.GetConfiguration(
                registry_pb2.GetConfigurationRequest(known_serial=config.serial), timeout=5
            )
            assert same.document == b""
    finally:
        await server.aclose()
        authority.close()
