"""The embedded nats-server: starts on a random port, keeps streams across restarts, stops cleanly,
and is never open: TLS 1.3, certificate-mapped users, streams provisioned by the admin identity."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from crossway.backbone import AUDIT_STREAM, EVIDENCE_STREAMS, REGISTRY_BUCKET, kv_stream
from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId
from crossway.natsauth import render_authorization
from crossway.natsbox import EmbeddedNats, ServerTls, find_nats_server
from crossway.natsclient import NatsAccess, connect
from crossway.natslocal import LocalBackbone
from crossway.security.natspki import NatsIdentity, NatsRole


def test_the_binary_is_found_next_to_the_virtualenv_python() -> None:
    assert find_nats_server().name == "nats-server"


async def test_a_server_on_port_zero_gets_a_real_port_and_accepts_an_identity(
    nats_server: LocalBackbone, auditor_nats: NatsAccess
) -> None:
    assert nats_server.port not in (0, 4222)
    assert nats_server.url == f"tls://127.0.0.1:{nats_server.port}"
    nc = await connect(auditor_nats, name="test", connect_timeout=2, allow_reconnect=False)
    try:
        info = await nc.jetstream().stream_info(AUDIT_STREAM)
        assert info.state.messages == 0
    finally:
        await nc.close()


async def test_provisioning_creates_every_evidence_stream_protected_and_the_registry_bucket(
    nats_server: LocalBackbone,
) -> None:
    nc = await nats_server.admin_connection()
    try:
        js = nc.jetstream(timeout=5)
        for spec in EVIDENCE_STREAMS:
            config = (await js.stream_info(spec.name)).config
            assert config.deny_delete and config.deny_purge and not config.allow_rollup_hdrs, spec.name
            assert config.max_age in (None, 0) and config.max_msgs in (None, -1), spec.name
        assert (await js.stream_info(kv_stream(REGISTRY_BUCKET))).config.allow_direct
    finally:
        await nc.close()


async def test_a_restart_keeps_the_port_and_the_streams(nats_server: LocalBackbone, gateway_nats: NatsAccess) -> None:
    port = nats_server.port
    nc = await connect(gateway_nats, name="test", connect_timeout=2, allow_reconnect=False)
    await nc.jetstream().publish("crossway.audit.EE.GOV.70000001.gw1", b"1", timeout=2, stream=AUDIT_STREAM)
    await nc.close()

    await nats_server.stop()
    assert not nats_server.running
    await nats_server.start()
    assert nats_server.port == port

    nc = await nats_server.admin_connection()
    try:
        info = await nc.jetstream().stream_info(AUDIT_STREAM)
        assert info.state.messages == 1
    finally:
        await nc.close()


async def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    async with LocalBackbone(tmp_path) as backbone:
        pid = backbone.pid
        assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_server_that_cannot_start_fails_with_the_tail_of_its_log(tmp_path: Path) -> None:
    async with LocalBackbone(tmp_path / "first") as first:
        # The same port twice: the second server cannot listen and exits.
        node = first.server
        second = EmbeddedNats(
            tmp_path / "second",
            tls=ServerTls(node._tls.cert_file, node._tls.key_file, node._tls.ca_file),
            authorization=first.users_file,
            port=first.port,
            start_timeout=5,
        )
        with pytest.raises(ConfigError) as caught:
            await second.start()
    assert "nats-server" in caught.value.message
    assert "address already in use" in caught.value.message.lower()
    assert not second.running


async def test_a_server_refuses_to_start_without_its_users_file(tmp_path: Path) -> None:
    async with LocalBackbone(tmp_path / "first") as first:
        node = first.server
        lonely = EmbeddedNats(tmp_path / "second", tls=node._tls, authorization=tmp_path / "missing.conf")
        with pytest.raises(ConfigError, match="users file"):
            await lonely.start()


async def test_a_server_killed_from_outside_can_be_started_again(nats_server: LocalBackbone) -> None:
    assert nats_server.pid is not None
    os.kill(nats_server.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert not nats_server.running
    await nats_server.start()
    assert nats_server.running


async def test_a_users_file_with_no_identity_admits_nobody(tmp_path: Path) -> None:
    # nats-server admits any certificate of its CA, unrestricted, when the users list is empty
    # (checked with 2.15.1); the generated file always keeps a user no certificate can name.
    async with LocalBackbone(tmp_path) as backbone:
        access = await backbone.grant(NatsIdentity(NatsRole.AUDITOR, "a"))
        backbone.users_file.write_text(render_authorization([]))
        await backbone.reload()
        with pytest.raises(Exception, match="Authorization Violation"):
            await connect(access, name="test", connect_timeout=2, allow_reconnect=False)


async def test_the_store_on_disk_gives_nothing_away_without_its_key(tmp_path: Path) -> None:
    # An attacker with a copy of the store (a backup of the volume) but not the key: looks for
    # a payload's bytes in every file, then starts a server on the copy with another key.
    marker = b"CROSSWAY-PLAINTEXT-" + os.urandom(8).hex().encode()
    async with LocalBackbone(tmp_path / "nats") as backbone:
        access = await backbone.grant(NatsIdentity.gateway(GatewayId.parse("EE/GOV/70000001/gw1")))
        nc = await connect(access, name="test", connect_timeout=2, allow_reconnect=False)
        for n in range(50):
            await nc.jetstream().publish("crossway.audit.EE.GOV.70000001.gw1", marker + b"%d" % n, stream=AUDIT_STREAM)
        await nc.close()
        node = backbone.server
        assert oct(node.store_key_path.stat().st_mode & 0o777) == "0o600"
        assert node.store_key_path.read_text().strip() not in node.config_path.read_text()
        await backbone.stop()  # flushed
        files = [p for p in node.store_dir.rglob("*") if p.is_file()]
        assert sum(p.stat().st_size for p in files) > 50 * len(marker)  # the records are on disk...
        assert [p for p in files if marker in p.read_bytes()] == []  # ...and none of them readable
        await backbone.start()  # with its key, the store is whole again
        nc = await backbone.admin_connection()
        assert (await nc.jetstream().stream_info(AUDIT_STREAM)).state.messages == 50
        await nc.close()
        await backbone.stop()
        node.store_key_path.write_text(os.urandom(32).hex())  # the copy, started with another key
        await backbone.start()
        nc = await backbone.admin_connection()
        try:
            messages = (await nc.jetstream().stream_info(AUDIT_STREAM)).state.messages
        except Exception:  # the stream could not be loaded at all
            messages = 0
        await nc.close()
        assert messages == 0
