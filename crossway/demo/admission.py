"""Admitting the demo's gateways and witnesses at the registry, as its operator would.

Each gateway's keys are made in its own key directory (``gateway init``); the registry issues
its NATS identity, TLS and signing certificates from the requests, and records the member's
encryption key. Witness keys are made where each witness runs, their public keys registered.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from crossway.core.ids import MemberId
from crossway.demo.members import Agency, _witness_name
from crossway.security.keys import save_pem, save_private_key
from crossway.security.natspki import NatsIdentity
from crossway.security.pki import CertKind, cert_to_pem
from gateway.provisioning import GatewayKeyPaths, provision_gateway
from registry import RegistryAuthority
from registry.backbone import RegistryBackbone

__all__ = ["admit_gateway", "admit_witnesses"]


def admit_gateway(authority: RegistryAuthority, agency: Agency) -> GatewayKeyPaths:
    """Register ``agency``'s gateway (at a placeholder address until it has a port), make its keys
    and issue its certificates: NATS identity, peer TLS, signing."""
    authority.add_gateway(agency.gateway, "127.0.0.1:9")
    keys = provision_gateway(agency.directory / "keys", agency.gateway)
    # Its NATS identity: the key was made in the gateway's key directory with the others.
    identity = NatsIdentity.gateway(agency.gateway)
    save_pem(keys.nats_certificate, RegistryBackbone(authority).issue_identity(keys.nats_csr.read_bytes(), identity))
    tls = authority.issue(keys.tls_csr.read_bytes(), kind=CertKind.TLS, gateway=agency.gateway)
    keys.tls_certificate.write_bytes(cert_to_pem(tls))
    signing = authority.issue(keys.signing_csr.read_bytes(), kind=CertKind.SIGNING, member=agency.member)
    keys.signing_certificate.write_bytes(cert_to_pem(signing))
    return keys


def admit_witnesses(authority: RegistryAuthority, agencies: tuple[Agency, ...], workdir: Path) -> dict[str, Path]:
    """A witness per agency (for the others' logs) and an independent audit office; a quorum of 2.
    Returns each witness's name and key file."""
    runners: list[tuple[str, Path, MemberId | None]] = [
        (_witness_name(a.gateway), a.directory / "keys" / "witness.key", a.member) for a in agencies
    ]
    runners.append(("crossway.witness/audit-office", workdir / "audit-office" / "witness.key", None))
    keys: dict[str, Path] = {}
    for name, path, member in runners:
        key = ed25519.Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_private_key(path, key)
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        authority.add_witness(name, raw, member)
        keys[name] = path
    authority.set_witness_quorum(2)
    return keys
