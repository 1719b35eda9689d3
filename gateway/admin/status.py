"""What an operator asks a gateway: its status, as one snapshot (``Admin/GetStatus``).

The runtime owns every piece (health, registry source, audit sink and log, keys, NATS
connections), so it builds the snapshot; the admin port only asks for one per call through a
``StatusSource`` and puts it on the wire. Nothing here holds a secret: ids, states, counters,
dates and certificate subjects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protos.crossway.v1 import admin_pb2 as pb

__all__ = ["CertificateInfo", "GatewayStatusSnapshot", "HealthInfo", "NatsInfo", "StatusSource"]


@dataclass(frozen=True, slots=True)
class HealthInfo:
    name: str  # "" = the gateway as a whole
    status: str  # SERVING, NOT_SERVING, UNKNOWN
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    kind: str  # tls | signing
    subject: str
    not_after_ms: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class NatsInfo:
    name: str  # audit | checkpoints | registry | policies
    state: str
    server: str = ""


@dataclass(frozen=True, slots=True)
class GatewayStatusSnapshot:
    gateway: str
    now_ms: int
    health: tuple[HealthInfo, ...] = ()
    registry_serial: int = 0
    registry_issued_at_ms: int = 0
    registry_expires_at_ms: int = 0
    policy_version: int = -1
    audit_spooled: int = 0
    audit_pending: int = 0
    log_size: int = 0
    checkpoint_size: int = 0
    checkpoint_at_ms: int = 0
    certificates: tuple[CertificateInfo, ...] = ()
    nats: tuple[NatsInfo, ...] = ()

    def to_pb(self) -> pb.GatewayStatus:
        return pb.GatewayStatus(
            gateway=self.gateway,
            now_ms=self.now_ms,
            health=[pb.HealthEntry(name=h.name, status=h.status, reason=h.reason) for h in self.health],
            registry_serial=self.registry_serial,
            registry_issued_at_ms=self.registry_issued_at_ms,
            registry_expires_at_ms=self.registry_expires_at_ms,
            policy_version=self.policy_version,
            audit_spooled=self.audit_spooled,
            audit_pending=self.audit_pending,
            log_size=self.log_size,
            checkpoint_size=self.checkpoint_size,
            checkpoint_at_ms=self.checkpoint_at_ms,
            certificates=[
                pb.CertificateStatus(
                    kind=c.kind, subject=c.subject, not_after_ms=c.not_after_ms, fingerprint=c.fingerprint
                )
                for c in self.certificates
            ],
            nats=[pb.NatsConnection(name=n.name, state=n.state, server=n.server) for n in self.nats],
        )


StatusSource = Callable[[], GatewayStatusSnapshot]
