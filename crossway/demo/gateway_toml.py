"""The demo gateways' ``gateway.toml`` files: what every gateway shares, and each agency's part.

Plain functions of what they need (no federation object): ``common`` is the shared part already
rendered for the agency (:meth:`CommonSettings.render`, which a federation may extend), so the
file each gateway reads is visible in one place, like the reference docs/gateway.toml.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from crossway.demo.business import BUSINESS_POLICY, business_services_toml
from crossway.demo.members import MARKETING_SUBSYSTEM, POPULATION_SERVICE, Agency, _self_signed_client
from crossway.security.keys import save_pem

__all__ = ["CommonSettings", "write_business_gateway", "write_provider_gateway", "write_tax_gateway"]


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """What every demo gateway's file says the same way."""

    workers: int
    nats_urls: Sequence[str]
    nats_ca: Path
    shared_replay: bool
    strict_audit: bool
    unsafe_release_before_durable: bool
    auditor_keys: Sequence[Path]
    extra_toml: str  # appended to every gateway's file (tests add tables)

    def render(self, agency: Agency) -> str:
        return f"""\
[gateway]
id = "{agency.gateway}"
data_dir = "data"
workers = {self.workers}
peer_connections = {self.workers}

[listen]
client = "127.0.0.1:0"
peer = "127.0.0.1:0"

[nats]
urls = [{", ".join(f'"{u}"' for u in self.nats_urls)}]
ca = "{self.nats_ca.resolve()}"
certificate = "keys/nats.crt"
key = "keys/nats.key"
shared_replay = {_flag(self.shared_replay)}

[registry]
anchor = "../registry/anchor.json"
source = "nats"

[keys]
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"
signing_key = "keys/signing.key"
signing_certificate = "keys/signing.crt"
encryption_key = "keys/encryption.key"

[audit]
strict = {_flag(self.strict_audit)}
{"unsafe_release_before_durable = true" if self.unsafe_release_before_durable else ""}
{self._archive()}
[tracing]
export = "spans.jsonl"

[metrics]
listen = "127.0.0.1:0"
{self.extra_toml}"""

    def _archive(self) -> str:
        if not self.auditor_keys:
            return ""
        keys = ", ".join(f'"{k.resolve()}"' for k in self.auditor_keys)
        return f"archive_payloads = true\nauditor_keys = [{keys}]\n"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _write(agency: Agency, text: str) -> None:
    agency.config_path = agency.directory / "gateway.toml"
    agency.config_path.write_text(text)


def _policies(agency: Agency, name: str, policy: str) -> None:
    policies = agency.directory / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / name).write_text(policy)


def write_tax_gateway(
    agency: Agency,
    common: str,
    idp_public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
) -> None:
    """The client agency: callers with JWTs of its identity provider, and one pinned certificate."""
    clients = agency.directory / "clients"
    clients.mkdir(parents=True, exist_ok=True)
    _self_signed_client(clients, MARKETING_SUBSYSTEM)
    save_pem(agency.directory / "idp.pub", idp_public_key)
    _write(
        agency,
        common
        + f"""
[client_auth.jwt]
issuer = "https://idp.tax.example"
audience = "crossway:{agency.gateway}"
public_keys = ["idp.pub"]

[[client_auth.certificates]]
subsystem = "{MARKETING_SUBSYSTEM}"
certificate = "clients/marketing.crt"
""",
    )


def write_provider_gateway(agency: Agency, common: str, policy: str, backend_port: int) -> None:
    """A population register gateway: its Cedar policy and the gRPC backend behind it."""
    _policies(agency, "population.cedar", policy)
    _write(
        agency,
        common
        + f"""
[policies]
dir = "policies"

[[services]]
id = "{POPULATION_SERVICE}"
adapter = "grpc"
address = "127.0.0.1:{backend_port}"
""",
    )


def write_business_gateway(agency: Agency, common: str, sap_service_url: str) -> None:
    """The business register: its SAP system (REST and OData), and an archive whose SAP is down."""
    _policies(agency, "business.cedar", BUSINESS_POLICY)
    with socket.socket() as probe:  # the archive's SAP system: a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    _write(
        agency,
        common
        + '\n[policies]\ndir = "policies"\n'
        + business_services_toml(sap_service_url, f"http://127.0.0.1:{dead_port}/odata/v2/business/"),
    )
