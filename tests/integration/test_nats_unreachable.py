"""A gateway pointed at a NATS that does not answer: one line per retry, and it stops on request.

Before issue 13 such a gateway logged a traceback every 2 s and ignored SIGINT and SIGTERM (only
SIGKILL stopped it). A real ``crossway gateway run`` subprocess, with real keys and certificates
from a registry authority, and a loopback port nobody listens on as its NATS URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from crossway.backbone import NatsIdentity
from crossway.core.ids import GatewayId, MemberId
from crossway.demo.processes import ManagedProcess
from crossway.security.pki import CertKind, cert_to_pem
from gateway.provisioning import provision_gateway
from registry import RegistryAuthority
from registry.backbone import RegistryBackbone

MEMBER = MemberId("EE", "GOV", "70000002")
GATEWAY = GatewayId(MEMBER, "gw1")


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gateway_files(tmp_path: Path, nats_url: str) -> Path:
    authority = RegistryAuthority.init(tmp_path / "registry", "EE")
    try:
        authority.add_member(MEMBER, "Population Register")
        authority.add_gateway(GATEWAY, "127.0.0.1:9")
        keys = provision_gateway(tmp_path / "gw" / "keys", GATEWAY)
        tls = authority.issue(keys.tls_csr.read_bytes(), kind=CertKind.TLS, gateway=GATEWAY)
        keys.tls_certificate.write_bytes(cert_to_pem(tls))
        signing = authority.issue(keys.signing_csr.read_bytes(), kind=CertKind.SIGNING, member=MEMBER)
        keys.signing_certificate.write_bytes(cert_to_pem(signing))
        nats = RegistryBackbone(authority).issue_identity(keys.nats_csr.read_bytes(), NatsIdentity.gateway(GATEWAY))
        keys.nats_certificate.write_bytes(cert_to_pem(nats))
    finally:
        authority.close()
    config = tmp_path / "gw" / "gateway.toml"
    config.write_text(
        f"""\
[gateway]
id = "{GATEWAY}"
data_dir = "data"

[listen]
client = "127.0.0.1:0"
peer = "127.0.0.1:0"

[nats]
url = "{nats_url}"
ca = "../registry/nats-ca.pem"
certificate = "keys/nats.crt"
key = "keys/nats.key"

[registry]
anchor = "../registry/anchor.json"

[keys]
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"
signing_key = "keys/signing.key"
signing_certificate = "keys/signing.crt"
"""
    )
    return config


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_a_gateway_whose_nats_does_not_answer_says_so_once_per_retry_and_stops_within_five_seconds(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    config = _gateway_files(tmp_path, f"nats://127.0.0.1:{_dead_port()}")
    gateway = ManagedProcess(
        "gateway", [sys.executable, "-m", "crossway.cli", "gateway", "run", "--config", str(config)]
    )
    await gateway.start()
    try:
        await gateway.wait_for(r"NATS at nats://127\.0\.0\.1:\d+ does not answer .*attempt 2, next in", 30)
        asked = time.monotonic()
        gateway.send_signal(stop_signal)
        await gateway.wait_for("stopped before it was ready", 10)
        # It exits by itself: wait for that, so that the SIGTERM stop() sends to a process still
        # alive is not what ends it (after its loop closed, that signal would kill it: exit -15).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.wait(), 5)
    finally:
        code = await gateway.stop()
    took = time.monotonic() - asked
    assert took < 5.0, f"the gateway took {took:.1f} s to stop"
    assert code == 0
    output = "\n".join(gateway.lines)
    assert "Traceback" not in output
    retries = [line for line in gateway.lines if "does not answer" in line]
    assert retries and all("ConnectionRefusedError" in line for line in retries)
    assert "stopped before it was ready" in output
