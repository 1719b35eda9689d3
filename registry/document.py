"""Writing the configuration document: the registry's state, serialized and signed.

The counterpart of :mod:`registry.configuration` (which reads it). Only non-revoked certificates are
listed as pins and signing keys; revoked serials are listed too, so a gateway holding an older copy of
a certificate (e.g. a cached peer channel) learns to drop it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from protos.crossway.v1 import registry_pb2
from registry.anchor import registry_key_id
from registry.configuration import FORMAT_VERSION
from registry.store import RegistryStore

__all__ = ["build_document", "sign_document"]


def build_document(
    store: RegistryStore,
    *,
    instance: str,
    serial: int,
    issued_at_ms: int,
    expires_at_ms: int,
    ca_pems: list[bytes],
) -> bytes:
    """Serialize the store's current state as a ``ConfigurationDocument``."""
    certificates = store.certificates()
    live = [c for c in certificates if not c.revoked]
    doc = registry_pb2.ConfigurationDocument(
        format_version=FORMAT_VERSION,
        instance=instance,
        serial=serial,
        issued_at_ms=issued_at_ms,
        expires_at_ms=expires_at_ms,
        ca_certificates=ca_pems,
        revoked_serials=sorted(c.serial for c in certificates if c.revoked),
    )
    for member in store.members():
        info = doc.members.add(id=str(member.id), name=member.name)
        if member.encryption_key:
            info.encryption_public_key = member.encryption_key
        for subsystem in store.subsystems_of(member.id):
            info.subsystems.add(id=str(subsystem))
        for gateway in store.gateways_of(member.id):
            pins = sorted(c.sha256 for c in live if c.kind == "tls" and c.gateway == gateway.id)
            info.gateways.add(id=str(gateway.id), peer_address=gateway.peer_address, tls_certificate_sha256=pins)
        info.signing_certificates.extend(c.der for c in live if c.kind == "sign" and c.member == member.id)
        info.user_token_public_keys.extend(k.der for k in store.user_token_keys(member.id))
        info.user_token_issuer = store.user_token_issuer(member.id)
    for service in store.services():
        doc.services.add(
            id=str(service.id),
            file_descriptor_set=service.file_descriptor_set,
            require_encryption=service.require_encryption,
        )
    for code, subsystems in sorted(store.groups().items()):
        doc.groups.add(id=code, members=[str(s) for s in subsystems])
    for name, public_raw, runner in store.witnesses():
        doc.witnesses.add(name=name, public_key=public_raw, member=runner)
    doc.witness_quorum = int(store.get_meta("witness_quorum") or "0")
    for mailbox in store.mailboxes():
        doc.mailboxes.add(
            subsystem=str(mailbox.subsystem),
            message_types=list(mailbox.message_types),
            file_descriptor_set=mailbox.file_descriptor_set,
            document_content_types=list(mailbox.document_content_types),
            require_encryption=mailbox.require_encryption,
            acceptance=mailbox.acceptance,
            acceptance_window_ms=mailbox.acceptance_window_ms,
        )
    for topic, event_type, fds, key_field in store.topics():
        doc.topics.add(id=topic, event_type=event_type, file_descriptor_set=fds, key_field=key_field)
    return doc.SerializeToString()


def sign_document(document: bytes, key: ed25519.Ed25519PrivateKey) -> bytes:
    """Wrap ``document`` in a ``SignedConfiguration`` signed with the registry's Ed25519 key."""
    signed = registry_pb2.SignedConfiguration(
        document=document,
        signature=key.sign(document),
        key_id=registry_key_id(key.public_key()),
    )
    return signed.SerializeToString()
