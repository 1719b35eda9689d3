"""The registry's records as the store hands them out: members, gateways, services, mailboxes,
end-user token keys, and the certificates it issued (peer TLS, signing, NATS)."""

from __future__ import annotations

from dataclasses import dataclass

from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId

__all__ = [
    "CertificateRecord",
    "GatewayRecord",
    "MailboxRecord",
    "MemberRecord",
    "NatsCertificateRecord",
    "ServiceRecord",
    "UserTokenKeyRecord",
]


@dataclass(frozen=True, slots=True)
class MemberRecord:
    id: MemberId
    name: str
    encryption_key: bytes | None


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    id: GatewayId
    peer_address: str


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    id: ServiceId
    file_descriptor_set: bytes
    require_encryption: bool


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    """A subsystem's mailbox (issue 14); ``acceptance`` is 1 (handover) or 2 (accept/reject)."""

    subsystem: SubsystemId
    message_types: tuple[str, ...]
    file_descriptor_set: bytes
    document_content_types: tuple[str, ...]
    require_encryption: bool
    acceptance: int
    acceptance_window_ms: int


@dataclass(frozen=True, slots=True)
class UserTokenKeyRecord:
    """A public key a member signs end-user tokens with; ``key_id`` is its RFC 7638 thumbprint."""

    member: MemberId
    key_id: str
    der: bytes  # SubjectPublicKeyInfo


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    serial: str
    kind: str
    member: MemberId
    gateway: GatewayId | None
    sha256: str
    der: bytes
    issued_at_ms: int
    revoked_at_ms: int | None
    revoke_reason: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None


@dataclass(frozen=True, slots=True)
class NatsCertificateRecord:
    """A certificate of the NATS CA: one identity (role + name) on the backbone."""

    serial: str
    role: str
    name: str
    sha256: str
    issued_at_ms: int
    not_after_ms: int
    revoked_at_ms: int | None
    revoke_reason: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None
