"""The demo federation's members, subsystems and services, the population register's policy and descriptors, and one agency's files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

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
