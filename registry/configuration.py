"""The signed registry configuration as gateways see it: verified once, then queried per call.

Verification follows numbered, fail-closed steps (sigstore style). Protobuf stops here: the rest of
Crossway sees :class:`VerifiedConfiguration` and its frozen views, whose lookup tables are built
once at construction because the gateways consult them on every exchange.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from crossway.core.errors import (
    ClientDisabled,
    CrosswayError,
    PeerDisabled,
    RegistryStale,
    RegistryUntrusted,
    ServiceDisabled,
)
from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from crossway.security.pki import CertificateInfo, cert_fingerprint, inspect_certificate
from crossway.security.tokens import jwk_thumbprint
from protos.crossway.v1 import registry_pb2
from registry.anchor import Anchor, load_anchor
from registry.keyrotation import trusted_keys
from registry.mailboxes import AcceptanceMode, MailboxView
from registry.topics import TopicId, TopicView

__all__ = [
    "FORMAT_VERSION",
    "Anchor",
    "GatewayView",
    "MailboxView",
    "MemberView",
    "MethodShape",
    "ServiceView",
    "VerifiedConfiguration",
    "describe_service",
    "load_anchor",
    "verify_configuration",
]

FORMAT_VERSION = 1


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class MethodShape:
    name: str
    client_streaming: bool
    server_streaming: bool
    input_type: str
    output_type: str


@dataclass(frozen=True, slots=True)
class GatewayView:
    id: GatewayId
    peer_address: str
    tls_sha256: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class MemberView:
    id: MemberId
    name: str
    subsystems: frozenset[SubsystemId]
    gateways: tuple[GatewayView, ...]
    # key id (SHA-256 hex of the signing certificate's DER) → public key / certificate details.
    signing_keys: Mapping[str, Any]
    signing_certificates: Mapping[str, CertificateInfo]
    encryption_public_key: bytes | None
    # Keys this member signs end-user tokens with (RFC 7638 thumbprint → public key), and the
    # ``iss`` those tokens carry (the member id unless the registry names another).
    user_token_keys: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    user_token_issuer: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class ServiceView:
    id: ServiceId
    require_encryption: bool
    file_descriptor_set: bytes
    methods: Mapping[str, MethodShape] = field(default_factory=lambda: MappingProxyType({}))


def describe_service(file_descriptor_set: bytes, grpc_service: str) -> dict[str, MethodShape]:
    """The methods of ``grpc_service`` in a serialized FileDescriptorSet.

    Raises ValueError when the bytes do not parse or the service is not in the set.
    """
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(file_descriptor_set)
    except DecodeError as exc:
        raise ValueError("not a serialized google.protobuf.FileDescriptorSet") from exc
    for file in fds.file:
        for svc in file.service:
            full = f"{file.package}.{svc.name}" if file.package else svc.name
            if full != grpc_service:
                continue
            return {
                m.name: MethodShape(
                    name=m.name,
                    client_streaming=m.client_streaming,
                    server_streaming=m.server_streaming,
                    # Descriptor type names are fully qualified with a leading dot (".pkg.Msg").
                    input_type=m.input_type.lstrip("."),
                    output_type=m.output_type.lstrip("."),
                )
                for m in svc.method
            }
    raise ValueError(f"the descriptor set has no service {grpc_service!r}")


def _user_token_keys(ders: Any) -> Mapping[str, Any]:
    keys = {}
    for der in ders:
        key = serialization.load_der_public_key(der)  # ValueError → a malformed configuration
        if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise ValueError(f"a user-token key is a {type(key).__name__}")
        keys[jwk_thumbprint(key)] = key
    return MappingProxyType(keys)


class VerifiedConfiguration:
    """An authenticated, parsed configuration document. Immutable; build it with verify_configuration."""

    __slots__ = (
        "_by_tls",
        "_disabled",
        "_groups",
        "_mailboxes",
        "_members",
        "_providers",
        "_revoked",
        "_services",
        "_topics",
        "ca_certificates",
        "ca_pem",
        "expires_at_ms",
        "instance",
        "issued_at_ms",
        "serial",
        "witness_quorum",
        "witnesses",
    )

    def __init__(self, doc: registry_pb2.ConfigurationDocument) -> None:
        self.serial: int = doc.serial
        self.instance: str = doc.instance
        self.issued_at_ms: int = doc.issued_at_ms
        self.expires_at_ms: int = doc.expires_at_ms
        self.ca_certificates: tuple[x509.Certificate, ...] = tuple(
            x509.load_pem_x509_certificate(pem) for pem in doc.ca_certificates
        )
        self.ca_pem: bytes = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.ca_certificates)
        self._revoked: frozenset[str] = frozenset(doc.revoked_serials)
        # "KIND:ID" of what the registry operator disabled (issue 17; registry.lifecycle).
        self._disabled: frozenset[str] = frozenset(doc.disabled)
        members: dict[MemberId, MemberView] = {}
        by_tls: dict[str, GatewayView] = {}
        for m in doc.members:
            gateways = tuple(
                GatewayView(GatewayId.parse(g.id), g.peer_address, frozenset(g.tls_certificate_sha256))
                for g in m.gateways
            )
            for gw in gateways:
                by_tls.update(dict.fromkeys(gw.tls_sha256, gw))
            certs = [inspect_certificate(der) for der in m.signing_certificates]
            members[MemberId.parse(m.id)] = MemberView(
                id=MemberId.parse(m.id),
                name=m.name,
                subsystems=frozenset(SubsystemId.parse(s.id) for s in m.subsystems),
                gateways=gateways,
                signing_keys=MappingProxyType({c.sha256: c.public_key for c in certs}),
                signing_certificates=MappingProxyType({c.sha256: c for c in certs}),
                encryption_public_key=m.encryption_public_key or None,
                user_token_keys=_user_token_keys(m.user_token_public_keys),
                user_token_issuer=m.user_token_issuer or m.id,
            )
        self._members = MappingProxyType(members)
        self._by_tls = MappingProxyType(by_tls)
        services: dict[ServiceId, ServiceView] = {}
        providers: dict[str, list[ServiceView]] = {}
        for s in doc.services:
            sid = ServiceId.parse(s.id)
            methods = describe_service(s.file_descriptor_set, sid.grpc_service)
            view = ServiceView(sid, s.require_encryption, s.file_descriptor_set, MappingProxyType(methods))
            services[sid] = view
            providers.setdefault(sid.grpc_service, []).append(view)
        self._services = MappingProxyType(services)
        self._providers = MappingProxyType({k: tuple(v) for k, v in providers.items()})
        groups: dict[SubsystemId, set[str]] = {}
        for g in doc.groups:
            for s_text in g.members:
                groups.setdefault(SubsystemId.parse(s_text), set()).add(g.id)
        self._groups = MappingProxyType(
            {k: frozenset(g for g in v if f"group:{g}" not in self._disabled) for k, v in groups.items()}
        )
        # Mailboxes for registered delivery (issue 14), by recipient subsystem.
        self._mailboxes = MappingProxyType(
            {
                SubsystemId.parse(m.subsystem): MailboxView(
                    SubsystemId.parse(m.subsystem),
                    frozenset(m.message_types),
                    m.file_descriptor_set,
                    tuple(m.document_content_types),
                    m.require_encryption,
                    AcceptanceMode(m.acceptance),  # ValueError → a malformed configuration
                    m.acceptance_window_ms,
                )
                for m in doc.mailboxes
            }
        )
        # Topics for publish/subscribe (issue 15), by topic id.
        self._topics = MappingProxyType(
            {
                str(t.id): TopicView(TopicId.parse(t.id), t.event_type, t.file_descriptor_set, t.key_field)
                for t in doc.topics
            }
        )
        # Witnesses of the audit logs besides the registry (C2SP key name → Ed25519 key), and how
        # many distinct ones, the registry counted, must cosign a checkpoint (issue 12).
        self.witnesses: Mapping[str, ed25519.Ed25519PublicKey] = MappingProxyType(
            {w.name: ed25519.Ed25519PublicKey.from_public_bytes(w.public_key) for w in doc.witnesses}
        )
        self.witness_quorum: int = max(1, doc.witness_quorum)

    def __repr__(self) -> str:
        return f"<VerifiedConfiguration {self.instance} serial={self.serial} expires={_iso(self.expires_at_ms)}>"

    def member(self, member: MemberId) -> MemberView | None:
        return self._members.get(member)

    def members(self) -> tuple[MemberView, ...]:
        return tuple(self._members.values())

    def providers_of(self, grpc_service: str) -> tuple[ServiceView, ...]:
        """Every registered service with this gRPC name, one per providing subsystem."""
        return self._providers.get(grpc_service, ())

    def service(self, service: ServiceId) -> ServiceView | None:
        return self._services.get(service)

    def services(self) -> tuple[ServiceView, ...]:
        return tuple(self._services.values())

    def is_revoked(self, serial: str) -> bool:
        return serial in self._revoked

    def gateway_by_tls_sha256(self, sha256: str) -> GatewayView | None:
        return self._by_tls.get(sha256.lower())

    def signing_key(self, member: MemberId, key_id: str) -> Any | None:
        view = self._members.get(member)
        return None if view is None else view.signing_keys.get(key_id)

    def mailbox(self, subsystem: SubsystemId) -> MailboxView | None:
        return self._mailboxes.get(subsystem)

    def mailboxes(self) -> tuple[MailboxView, ...]:
        return tuple(self._mailboxes.values())

    def topic(self, topic: str) -> TopicView | None:
        return self._topics.get(topic)

    def topics(self) -> tuple[TopicView, ...]:
        return tuple(self._topics.values())

    def groups_of(self, subsystem: SubsystemId) -> frozenset[str]:
        return self._groups.get(subsystem, frozenset())

    # -- what the registry operator disabled (issue 17) ---------------------------------------

    def is_disabled(self, kind: str, ident: object) -> bool:
        return f"{kind}:{ident}" in self._disabled

    def check_client_enabled(self, client: SubsystemId) -> None:
        """Raise ``client.disabled`` when the subsystem or its member is disabled."""
        if self._disabled:
            for kind, ident in (("subsystem", client), ("member", client.member)):
                if self.is_disabled(kind, ident):
                    raise ClientDisabled(f"the registry disabled {kind} {ident}; {client} may not call")

    def check_service_enabled(self, service: ServiceId) -> None:
        """Raise ``service.disabled`` when the service, its subsystem or its member is disabled."""
        if self._disabled:
            for kind, ident in (
                ("service", service),
                ("subsystem", service.subsystem),
                ("member", service.subsystem.member),
            ):
                if self.is_disabled(kind, ident):
                    raise ServiceDisabled(f"the registry disabled {kind} {ident}; {service} is not served")

    def check_gateway_enabled(self, gateway: GatewayId) -> None:
        """Raise ``peer.disabled`` when the gateway or its member is disabled."""
        if self._disabled:
            for kind, ident in (("gateway", gateway), ("member", gateway.member)):
                if self.is_disabled(kind, ident):
                    raise PeerDisabled(f"the registry disabled {kind} {ident}")

    def check_fresh(self, now_ms: int) -> None:
        """Raise RegistryStale once the document has expired: stale trust data means deny."""
        if now_ms >= self.expires_at_ms:
            raise RegistryStale(
                f"registry configuration serial {self.serial} expired at {_iso(self.expires_at_ms)}",
            )


def verify_configuration(signed: bytes, anchor: Anchor, now_ms: int) -> VerifiedConfiguration:
    """Authenticate and parse a ``SignedConfiguration``; every step fails closed."""
    # Step 1: the envelope parses and has both parts.
    envelope = registry_pb2.SignedConfiguration()
    try:
        envelope.ParseFromString(signed)
    except DecodeError as exc:
        raise RegistryUntrusted("the registry configuration is not a SignedConfiguration") from exc
    if not envelope.document or not envelope.signature:
        raise RegistryUntrusted("the registry configuration has no document or no signature")
    # Step 2: it claims the key we pinned, or a successor the pinned key endorsed (a rotation,
    # registry.keyrotation); any other key is not "maybe fine".
    key = anchor.public_key if envelope.key_id == anchor.key_id else None
    if key is None and envelope.key_endorsements:
        key = trusted_keys(anchor, envelope.key_endorsements).get(envelope.key_id)
    if key is None:
        raise RegistryUntrusted(
            f"the configuration is signed by key {envelope.key_id[:16]}…, the anchor pins {anchor.key_id[:16]}… "
            "and no endorsement from it names that key"
        )
    # Step 3: the Ed25519 signature over exactly the document bytes verifies; parse only after.
    try:
        key.verify(envelope.signature, envelope.document)
    except InvalidSignature as exc:
        raise RegistryUntrusted("the registry configuration's signature does not verify") from exc
    doc = registry_pb2.ConfigurationDocument()
    try:
        doc.ParseFromString(envelope.document)
    except DecodeError as exc:
        raise RegistryUntrusted("the signed configuration document does not parse") from exc
    # Step 4: it is a document for our instance, in a format we understand.
    if doc.format_version != FORMAT_VERSION:
        raise RegistryUntrusted(f"configuration format {doc.format_version} is not supported")
    if doc.instance != anchor.instance:
        raise RegistryUntrusted(f"the configuration is for instance {doc.instance!r}, not {anchor.instance!r}")
    # Step 5: not expired (the "last good copy" rule ends at expiry).
    if now_ms >= doc.expires_at_ms:
        raise RegistryStale(f"registry configuration serial {doc.serial} expired at {_iso(doc.expires_at_ms)}")
    # Step 6: the content is well formed and names the CA the anchor pins.
    try:
        config = VerifiedConfiguration(doc)
    except (CrosswayError, ValueError) as exc:
        raise RegistryUntrusted(f"the signed configuration serial {doc.serial} is malformed: {exc}") from exc
    if anchor.ca_sha256 not in {cert_fingerprint(c) for c in config.ca_certificates}:
        raise RegistryUntrusted("the configuration does not carry the CA certificate the anchor pins")
    return config
