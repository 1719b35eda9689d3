"""An operator brings a backbone up with the CLI only: keys made where they stay, identities issued
by the registry, the users file generated, the streams provisioned by the admin identity."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from crossway.natsbox import EmbeddedNats, ServerTls
from crossway.natsclient import NatsAccess, connect

CROSSWAY = [sys.executable, "-m", "crossway.cli"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CROSSWAY, *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _ok(*args: str) -> str:
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_an_operator_brings_up_a_secured_backbone_with_the_cli(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    reg = ("--dir", str(registry))
    await asyncio.to_thread(_ok, "registry", "init", "--instance", "EE", *reg)
    await asyncio.to_thread(_ok, "registry", "member", "add", "EE/GOV/70000001", "--name", "Tax", *reg)
    await asyncio.to_thread(_ok, "registry", "gateway", "add", "EE/GOV/70000001/gw1", "--address", "h:1", *reg)
    # Each key is made where it will be used; only CSRs go to the registry.
    for who in ("node", "admin", "gateway", "stranger"):
        await asyncio.to_thread(_ok, "nats", "request", "--dir", str(tmp_path / who))
    node, admin, gateway = tmp_path / "node", tmp_path / "admin", tmp_path / "gateway"
    await asyncio.to_thread(
        _ok, "registry", "nats", "server-cert", "--csr", str(node / "nats.csr"), "--name", "n1", *reg,
        "-o", str(node / "nats.crt"),
    )  # fmt: skip
    for directory, role, name in ((admin, "admin", "ops"), (gateway, "gateway", "EE/GOV/70000001/gw1")):
        await asyncio.to_thread(
            _ok, "registry", "nats", "issue", "--csr", str(directory / "nats.csr"), "--role", role, "--name", name,
            *reg, "-o", str(directory / "nats.crt"),
        )  # fmt: skip
    refused = await asyncio.to_thread(
        _run, "registry", "nats", "issue", "--csr", str(tmp_path / "stranger" / "nats.csr"), "--role", "gateway",
        "--name", "EE/GOV/70000001/gw2", *reg, "-o", str(tmp_path / "x.crt"),
    )  # fmt: skip
    assert refused.returncode == 1 and "registry.csr_invalid" in refused.stderr  # not a registered gateway
    users = tmp_path / "users.conf"
    await asyncio.to_thread(_ok, "registry", "nats", "users", "-o", str(users), *reg)
    ca = registry / "nats-ca.pem"
    async with EmbeddedNats(
        tmp_path / "server", tls=ServerTls(node / "nats.crt", node / "nats.key", ca), authorization=users
    ) as server:
        knock = await asyncio.to_thread(_run, "nats", "knock", server.url)
        assert knock.returncode == 0 and knock.stdout.count("refused") == 2
        identity = ("--nats", server.url, "--nats-ca", str(ca))
        as_gateway = (*identity, "--nats-cert", str(gateway / "nats.crt"), "--nats-key", str(gateway / "nats.key"))
        denied = await asyncio.to_thread(_run, "nats", "provision", *as_gateway)
        assert denied.returncode == 1 and "admin identity" in denied.stderr
        as_admin = (*identity, "--nats-cert", str(admin / "nats.crt"), "--nats-key", str(admin / "nats.key"))
        out = await asyncio.to_thread(_ok, "nats", "provision", *as_admin)
        assert "CROSSWAY_AUDIT" in out
        again = await asyncio.to_thread(_ok, "nats", "provision", *as_admin)
        assert "created: nothing" in again
        access = NatsAccess.load(server.url, ca_file=ca, cert_file=gateway / "nats.crt", key_file=gateway / "nats.key")
        nc = await connect(access, name="gw1", allow_reconnect=False)
        try:
            ack = await nc.jetstream().publish("crossway.audit.EE.GOV.70000001.gw1", b"{}", stream="CROSSWAY_AUDIT")
            assert ack.seq == 1
        finally:
            await nc.close()
