"""The demo federation's members, subsystems and services, the population register's policy and descriptors, and one agency's files."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization
from google.protobuf import descriptor_pb2

from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from crossway.demo.processes import ManagedProcess
from crossway.security.keys import generate_tls_key, save_pem, save_private_key
from crossway.security.pki import self_signed
from protos.demo.population.v1 import population_pb2

INSTANCE = "EE"


TAX = MemberId(INSTANCE, "GOV", "70000001")


POPULATION = MemberId(INSTANCE, "GOV", "70000002")


POPULATION_SERVICE = ServiceId(SubsystemId(POPULATION, "population"), "population.v1.PersonRegistry")


TAX_SUBSYSTEM = SubsystemId(TAX, "tax")


MARKETING_SUBSYSTEM = SubsystemId(TAX, "marketing")


DEMO_POLICY = """\
// Who may use the population register (provider EE/GOV/70000002/population).
// Deny by default: the marketing subsystem has no permit, so its calls are refused.

@id("tax-uses-population-register")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"population.v1.PersonRegistry/*",
  resource == Crossway::Service::"EE/GOV/70000002/population/population.v1.PersonRegistry"
);
"""


def population_descriptor_set() -> bytes:
    """The FileDescriptorSet the registry publishes for the sample service (what `protoc
    --include_imports --descriptor_set_out` would write)."""
    fds = descriptor_pb2.FileDescriptorSet()
    population_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    return fds.SerializeToString()


@dataclass(slots=True)
class Agency:
    member: MemberId
    gateway: GatewayId
    directory: Path
    process: ManagedProcess | None = None
    client_port: int = 0
    client_mtls_port: int = 0
    peer_port: int = 0
    config_path: Path | None = None
    # http://…/metrics of the gateway (Prometheus, served by its primary process).
    metrics_url: str = ""

    @property
    def client_address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    async def start(self, *, echo: bool, env: dict[str, str] | None) -> None:
        """Start ``crossway gateway run`` on its file; the ports are read from its ready line."""
        assert self.config_path is not None
        self.process = ManagedProcess(
            f"gateway {self.member.code}",
            [sys.executable, "-m", "crossway.cli", "gateway", "run", "--config", str(self.config_path)],
            echo=echo,
            env=env,
        )
        await self.process.start()
        match = await self.process.wait_for(
            # ^: the primary's line, not a worker's (relayed as "[worker N] gateway … ready: …")
            r"^gateway \S+ ready: client=127\.0\.0\.1:(\d+) client_mtls=127\.0\.0\.1:(\d+) peer=127\.0\.0\.1:(\d+)"
            r"(?: metrics=(\S+))?",
            30,
        )
        self.client_port, self.client_mtls_port, self.peer_port = (int(g) for g in match.groups()[:3])
        self.metrics_url = match.group(4) or ""

    def pinned_client_channel(self, subsystem: SubsystemId, ca_pem: bytes) -> grpc.aio.Channel:
        """A channel authenticated by an agency system's pinned client certificate (mTLS)."""
        clients = self.directory / "clients"
        key = serialization.load_pem_private_key((clients / f"{subsystem.name}.key").read_bytes(), None)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        creds = grpc.ssl_channel_credentials(ca_pem, key_pem, (clients / f"{subsystem.name}.crt").read_bytes())
        return grpc.aio.secure_channel(f"127.0.0.1:{self.client_mtls_port}", creds)


def _witness_name(gateway: GatewayId) -> str:
    """The key name of the witness an agency runs beside its gateway."""
    return f"crossway.witness/{gateway}"


def _self_signed_client(directory: Path, subsystem: SubsystemId) -> tuple[Path, Path]:
    """An agency system's own TLS client certificate, pinned by the gateway (X-Road practice)."""
    key = generate_tls_key()
    # Its own trust anchor: the gateway pins it as the only root for this subsystem.
    cert = self_signed(key, str(subsystem), valid_for=dt.timedelta(days=365), anchor=True)
    key_path, cert_path = directory / f"{subsystem.name}.key", directory / f"{subsystem.name}.crt"
    save_private_key(key_path, key)
    save_pem(cert_path, cert)
    return key_path, cert_path
