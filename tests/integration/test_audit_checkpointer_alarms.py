"""The checkpointer signs only what its gateway produced, in an order that only grows: a record
naming another gateway, or a stream that went back, stops it with an alarm — never a skip."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from audit.trail import AuditCheckpointer, JetStreamAuditSink
from audit.trail.samples import sample_record
from crossway.backbone import AUDIT_STREAM, audit_subject
from crossway.natsclient import NatsAccess, connect
from crossway.natslocal import LocalBackbone
from crossway.natsstreams import provision_backbone
from crossway.security.keys import generate_signing_key
from crossway.security.pki import cert_fingerprint, cert_to_pem, self_signed
from crossway.security.signing import Signer

GATEWAY = "EE/GOV/70000001/gw1"


def _checkpointer(access: NatsAccess, state: Path) -> AuditCheckpointer:
    key = generate_signing_key("ES256")
    cert = self_signed(key, GATEWAY, valid_for=dt.timedelta(days=1))  # type: ignore[arg-type]
    return AuditCheckpointer(
        access,
        gateway_id=GATEWAY,
        signer=Signer(key, cert_fingerprint(cert)),
        certificate_pem=cert_to_pem(cert).decode(),
        state_dir=state,
        interval_s=0.2,
    )


async def _until(check: object, within: float = 10.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not in time")


async def test_a_record_naming_another_gateway_on_our_subject_stops_the_log_with_an_alarm(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    checkpointer = _checkpointer(gateway_nats, tmp_path / "log")
    await checkpointer.start()
    try:
        async with JetStreamAuditSink(gateway_nats, gateway_id=GATEWAY, spool_dir=tmp_path / "spool") as sink:
            for n in range(3):
                sink.submit(sample_record(n))
        await _until(lambda: checkpointer.published_size == 3)
        # Whoever holds this gateway's NATS key slips in a record in another gateway's name.
        thief = await connect(gateway_nats, name="thief")
        try:
            forged = sample_record(9, gateway="EE/GOV/70000002/gw1").to_json()
            await thief.jetstream().publish(audit_subject(GATEWAY), forged, stream=AUDIT_STREAM)
        finally:
            await thief.close()
        await _until(lambda: checkpointer.alarm is not None)
        assert "is not a record of EE/GOV/70000001/gw1" in str(checkpointer.alarm)
        assert checkpointer.size == 3  # the forged record is not a leaf
    finally:
        await checkpointer.aclose()


async def test_a_restart_on_a_stream_recreated_meanwhile_raises_the_alarm_at_once(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    checkpointer = _checkpointer(gateway_nats, tmp_path / "log")
    await checkpointer.start()
    async with JetStreamAuditSink(gateway_nats, gateway_id=GATEWAY, spool_dir=tmp_path / "spool") as sink:
        for n in range(5):
            sink.submit(sample_record(n))
    await _until(lambda: checkpointer.published_size == 5)
    await checkpointer.aclose()
    # While the gateway is down: the stream deleted and created again, and refilled with 7
    # records of ours (so sequence 5, our last leaf's, exists again — with other bytes).
    admin = await nats_server.admin_connection()
    try:
        await admin.jetstream().delete_stream(AUDIT_STREAM)
    finally:
        await admin.close()
    await provision_backbone(nats_server.admin_access())
    async with JetStreamAuditSink(gateway_nats, gateway_id=GATEWAY, spool_dir=tmp_path / "spool2") as sink:
        for n in range(10, 17):
            sink.submit(sample_record(n))
    restarted = _checkpointer(gateway_nats, tmp_path / "log")
    await restarted.start()
    try:
        await _until(lambda: restarted.alarm is not None)
        assert "went back: sequence 5 (leaf 4) now holds another record" in str(restarted.alarm)
        assert restarted.size == 5
    finally:
        await restarted.aclose()
