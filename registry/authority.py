"""The registry as one object: its directory, database, CA and configuration signing key.

Used in-process by the demo and tests, and by ``crossway registry …``. A registry directory holds::

    registry.db          members, services, certificates (registry.store)
    ca.key, ca.pem       the CA that issues gateway TLS and member signing certificates (EC P-256)
    config.key           Ed25519 key that signs the configuration document
    anchor.json          what gateways pin (registry.anchor)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.message import DecodeError

from crossway.core.clock import Clock, SystemClock
from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from crossway.security.keys import (
    PrivateKey,
    generate_tls_key,
    load_certificate,
    load_private_key,
    load_x25519_public_raw,
    save_pem,
    save_private_key,
)
from crossway.security.pki import (
    CertificateRequestInvalid,
    CertKind,
    cert_fingerprint,
    cert_to_pem,
    create_ca,
    gateway_uri,
    issue_certificate,
)
from crossway.security.tokens import jwk_thumbprint
from protos.crossway.v1.registry_pb2 import SignedConfiguration
from registry.anchor import Anchor, load_anchor, registry_key_id
from registry.changes import ChangeLog
from registry.configuration import describe_service
from registry.document import build_document, sign_document
from registry.keyrotation import NEXT_KEY, endorse, load_endorsements, save_endorsements
from registry.lifecycle import Lifecycle
from registry.mailboxes import AcceptanceMode, validate_mailbox
from registry.store import CertificateRecord, MailboxRecord, RegistryStore
from registry.topics import TopicId, validate_topic

__all__ = ["PASSPHRASE_ENV", "RegistryAuthority", "passphrase_from_env"]

# The passphrase of the registry's private keys (CA and configuration signing), when it has one.
PASSPHRASE_ENV = "CROSSWAY_REGISTRY_PASSPHRASE"  # noqa: S105 - the name of a variable, not its value


def passphrase_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The registry keys' passphrase from ``CROSSWAY_REGISTRY_PASSPHRASE`` (None when unset or empty)."""
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV, "")
    return value.encode() if value else None


def _load_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    try:
        return load_private_key(path, passphrase)
    except ConfigError as exc:
        hint = (
            f"set {PASSPHRASE_ENV} to the passphrase the registry was created with"
            if passphrase is None
            else f"{PASSPHRASE_ENV} does not open this key: check it, or unset it if the registry has none"
        )
        raise ConfigError(f"{exc.message}; the registry's keys could not be opened", hint=hint) from exc


UserTokenKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_DB, _CA_KEY, _CA_CERT, _CONFIG_KEY, _ANCHOR = "registry.db", "ca.key", "ca.pem", "config.key", "anchor.json"


def _checked_address(peer_address: str) -> str:
    host, sep, port = peer_address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"gateway address {peer_address!r} is not HOST:PORT", hint="e.g. gw1.example.org:8443")
    return peer_address


def _user_token_public_key(data: bytes) -> UserTokenKey:
    # 1. it parses as a public key, 2. of a type and size JWT verification accepts (RFC 8725 §3.5)
    try:
        key = load_pem_public_key(data) if data.lstrip().startswith(b"-----") else load_der_public_key(data)
    except ValueError as exc:
        raise ConfigError("the user-token key is not a PEM or DER public key", hint="give a 'PUBLIC KEY' file") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key
    raise ConfigError(
        f"a {type(key).__name__} cannot sign end-user tokens here",
        hint="use an EC P-256/P-384, Ed25519 or RSA (2048 bits or more) key",
    )


class RegistryAuthority:
    """Admits members, issues certificates, revokes them and signs the configuration."""

    def __init__(
        self,
        directory: Path,
        store: RegistryStore,
        ca_cert: x509.Certificate,
        ca_key: PrivateKey,
        config_key: ed25519.Ed25519PrivateKey,
        clock: Clock,
    ) -> None:
        self.directory = directory
        self.store = store
        self._ca_cert = ca_cert
        self._ca_key = ca_key
        self._config_key = config_key
        self._clock = clock
        instance = store.get_meta("instance")
        if instance is None:
            raise ConfigError(f"registry database in {str(directory)!r} has no instance", hint="run `registry init`")
        self.instance = instance
        # Issue 17: every change is signed into the change log in its own transaction, and what
        # the operator removed or disabled is applied on top of the store when publishing.
        key_id = registry_key_id(config_key.public_key())
        self.changes = ChangeLog(directory / _DB, config_key.sign, key_id, clock.now_ms)
        store.on_change = self.changes.append_in
        self.lifecycle = Lifecycle(directory / _DB, store, clock.now_ms, self.changes.append_in)

    # -- lifecycle --------------------------------------------------------------------------------
    @classmethod
    def init(
        cls, directory: Path, instance: str, *, clock: Clock | None = None, passphrase: bytes | None = None
    ) -> RegistryAuthority:
        """Create a new registry in ``directory`` (0700); refuses to touch an existing one.

        With ``passphrase`` the CA and configuration-signing keys are stored encrypted with it
        (PKCS#8, the best encryption cryptography offers); every later ``open`` needs it.
        """
        clock = clock or SystemClock()
        MemberId.parse(f"{instance}/X/x")  # validates the instance with the identifier rules
        directory = Path(directory)
        existing = [n for n in (_DB, _CA_KEY, _CONFIG_KEY, _ANCHOR) if (directory / n).exists()]
        if existing:
            raise ConfigError(
                f"{str(directory)!r} already holds a registry ({', '.join(existing)})",
                hint="use another --dir, or `registry` commands on the existing one",
            )
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        ca_key = generate_tls_key()
        ca_cert = create_ca(instance, ca_key, now_ms=clock.now_ms())
        config_key = ed25519.Ed25519PrivateKey.generate()
        save_private_key(directory / _CA_KEY, ca_key, passphrase)
        save_pem(directory / _CA_CERT, ca_cert)
        save_private_key(directory / _CONFIG_KEY, config_key, passphrase)
        public = config_key.public_key()
        anchor = Anchor(instance, registry_key_id(public), public, cert_fingerprint(ca_cert))
        (directory / _ANCHOR).write_text(anchor.to_json(), encoding="utf-8")
        store = RegistryStore(directory / _DB)
        store.set_meta("instance", instance)
        return cls(directory, store, ca_cert, ca_key, config_key, clock)

    @classmethod
    def open(cls, directory: Path, *, clock: Clock | None = None, passphrase: bytes | None = None) -> RegistryAuthority:
        directory = Path(directory)
        if not (directory / _DB).exists():
            raise ConfigError(f"no registry in {str(directory)!r}", hint="run `crossway registry init` first")
        config_key = _load_key(directory / _CONFIG_KEY, passphrase)
        if not isinstance(config_key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{str(directory / _CONFIG_KEY)!r} is not an Ed25519 key")
        return cls(
            directory,
            RegistryStore(directory / _DB),
            load_certificate(directory / _CA_CERT),
            _load_key(directory / _CA_KEY, passphrase),
            config_key,
            clock or SystemClock(),
        )

    def close(self) -> None:
        self.lifecycle.close()
        self.changes.close()
        self.store.close()

    def clock_now_ms(self) -> int:
        return self._clock.now_ms()

    @property
    def ca_certificate(self) -> x509.Certificate:
        return self._ca_cert

    @property
    def anchor_path(self) -> Path:
        return self.directory / _ANCHOR

    @property
    def anchor(self) -> Anchor:
        public = self._config_key.public_key()
        # The keys retired by rotations are listed in anchor.json (registry.keyrotation).
        previous = load_anchor(self.anchor_path).previous_keys if self.anchor_path.exists() else ()
        return Anchor(self.instance, registry_key_id(public), public, cert_fingerprint(self._ca_cert), previous)

    # -- admission --------------------------------------------------------------------------------
    def _own(self, member: MemberId) -> None:
        if member.instance != self.instance:
            raise ConfigError(f"{member} belongs to instance {member.instance}, this registry is {self.instance}")

    def add_member(self, member_id: MemberId, name: str) -> None:
        self._own(member_id)
        self.store.add_member(member_id, name)

    def add_subsystem(self, subsystem: SubsystemId) -> None:
        self.store.add_subsystem(subsystem)

    def add_gateway(self, gateway: GatewayId, peer_address: str) -> None:
        self.store.add_gateway(gateway, _checked_address(peer_address))

    def set_gateway_address(self, gateway: GatewayId, peer_address: str) -> None:
        """A gateway moved (or, in the demo, got its port from the OS); published with the next configuration."""
        self.store.set_gateway_address(gateway, _checked_address(peer_address))

    def add_service(self, service: ServiceId, file_descriptor_set: bytes, require_encryption: bool = False) -> None:
        """Register a service; its descriptor set must contain the named gRPC service."""
        try:
            FileDescriptorSet.FromString(file_descriptor_set)
            describe_service(file_descriptor_set, service.grpc_service)
        except (DecodeError, ValueError) as exc:  # both mean "not the right descriptor set"
            raise ConfigError(
                f"descriptor set for {service} is unusable: {exc}",
                hint="build it with `protoc --include_imports --descriptor_set_out=FILE`",
            ) from exc
        self.store.add_service(service, file_descriptor_set, require_encryption)

    def set_mailbox(
        self,
        subsystem: SubsystemId,
        *,
        message_types: Sequence[str] = (),
        file_descriptor_set: bytes = b"",
        document_content_types: Sequence[str] = (),
        require_encryption: bool = False,
        acceptance: AcceptanceMode = AcceptanceMode.HANDOVER,
        acceptance_window_ms: int = 0,
    ) -> None:
        """Give ``subsystem`` a mailbox for registered delivery (or reconfigure it)."""
        validate_mailbox(
            subsystem, message_types, file_descriptor_set, document_content_types, acceptance, acceptance_window_ms
        )
        self.store.put_mailbox(
            MailboxRecord(
                subsystem,
                tuple(sorted(set(message_types))),
                file_descriptor_set if message_types else b"",
                tuple(document_content_types),
                require_encryption,
                acceptance.value,
                acceptance_window_ms if acceptance is AcceptanceMode.ACCEPT_REJECT else 0,
            )
        )

    def set_topic(self, topic: str, event_type: str, file_descriptor_set: bytes, key_field: str = "") -> None:
        """Register a topic of its publishing subsystem (issue 15), or reconfigure it."""
        tid = TopicId.parse(topic)
        validate_topic(tid, event_type, file_descriptor_set, key_field)
        self.store.put_topic(str(tid), tid.publisher, event_type, file_descriptor_set, key_field)

    def set_encryption_key(self, member: MemberId, x25519_public_raw: bytes) -> None:
        load_x25519_public_raw(x25519_public_raw)  # validates length
        self.store.set_encryption_key(member, x25519_public_raw)

    def add_user_token_key(self, member: MemberId, public_key: bytes) -> str:
        """Register a key ``member`` signs end-user tokens with (PEM or DER); returns its key id.

        Providers verify a client's ``user_token`` against these keys only. The key id is the
        RFC 7638 thumbprint, the default ``kid`` of a token.
        """
        key = _user_token_public_key(public_key)
        key_id = jwk_thumbprint(key)
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.store.add_user_token_key(member, key_id, der)
        return key_id

    def remove_user_token_key(self, member: MemberId, key_id: str) -> None:
        """Withdraw a user-token key (rotation, compromise); gone from the next configuration."""
        if not self.store.remove_user_token_key(member, key_id):
            raise ConfigError(f"{member} has no user-token key {key_id}", hint="`registry list` shows the key ids")

    def set_user_token_issuer(self, member: MemberId, issuer: str) -> None:
        """The ``iss`` of ``member``'s end-user tokens, when its identity provider does not use the member id."""
        if not issuer or any(c.isspace() for c in issuer):
            raise ConfigError(f"user-token issuer {issuer!r} must be non-empty without spaces")
        self.store.set_user_token_issuer(member, issuer)

    # -- witnesses of the audit logs (issue 12) -----------------------------------------------------
    def add_witness(self, name: str, public_raw: bytes, member: MemberId | None = None) -> None:
        """A witness besides the registry: its C2SP key name and raw Ed25519 key; ``member`` runs it."""
        if not name or any(c.isspace() or c == "+" for c in name):
            raise ConfigError(f"witness name {name!r} must be non-empty, without spaces or '+'",
                              hint="a schema-less URL, e.g. witness.tax.example/gw1")  # fmt: skip
        if len(public_raw) != 32:
            raise ConfigError("a witness key is a 32-byte Ed25519 public key", hint="pass the witness's vkey")
        self.store.add_witness(name, public_raw, member)

    def set_witness_quorum(self, quorum: int) -> None:
        """How many distinct witnesses (the registry counted) must cosign a checkpoint."""
        most = 1 + len(self.store.witnesses())
        if not 1 <= quorum <= most:
            raise ConfigError(f"witness quorum {quorum} is not between 1 and {most} (the registry and "
                              f"{most - 1} witness(es))", hint="add witnesses first")  # fmt: skip
        self.store.set_meta("witness_quorum", str(quorum))

    def add_group(self, code: str, members: list[SubsystemId]) -> None:
        if not code or any(c.isspace() for c in code):
            raise ConfigError(f"group code {code!r} must be non-empty without spaces")
        self.store.add_group(code, members)

    # -- certificates -----------------------------------------------------------------------------
    def issue(
        self,
        csr_pem: bytes,
        *,
        kind: CertKind,
        gateway: GatewayId | None = None,
        member: MemberId | None = None,
        days: int = 365,
    ) -> x509.Certificate:
        """Issue a TLS certificate to a registered gateway or a signing certificate to a member."""
        try:
            if csr_pem.lstrip().startswith(b"-----"):
                csr = x509.load_pem_x509_csr(csr_pem)
            else:
                csr = x509.load_der_x509_csr(csr_pem)
        except ValueError as exc:
            raise CertificateRequestInvalid("the certificate request is not a PEM or DER PKCS#10 CSR") from exc
        if kind is CertKind.TLS:
            if gateway is None or not self.store.has_gateway(gateway):
                raise CertificateRequestInvalid(
                    f"TLS certificates are issued to registered gateways; {gateway} is not one",
                    hint="`registry gateway add` it first, then pass --gateway",
                )
            owner, uri = gateway.member, gateway_uri(gateway)
        else:
            if member is None or not self.store.has_member(member):
                raise CertificateRequestInvalid(
                    f"signing certificates are issued to registered members; {member} is not one",
                    hint="`registry member add` it first, then pass --member",
                )
            owner, uri, gateway = member, member.uri, None
        now = self._clock.now_ms()
        cert = issue_certificate(self._ca_cert, self._ca_key, csr, kind=kind, uri=uri, days=days, now_ms=now)
        der = cert.public_bytes(serialization.Encoding.DER)
        self.store.record_certificate(
            CertificateRecord(
                serial=str(cert.serial_number),
                kind=kind.value,
                member=owner,
                gateway=gateway,
                sha256=hashlib.sha256(der).hexdigest(),
                der=der,
                issued_at_ms=now,
                revoked_at_ms=None,
                revoke_reason=None,
            )
        )
        return cert

    def revoke(self, serial: str, reason: str) -> None:
        self.store.revoke(serial.strip(), reason, self._clock.now_ms())

    # -- configuration ----------------------------------------------------------------------------
    def _document(self, serial: int, issued_at_ms: int, expires_at_ms: int) -> bytes:
        document = build_document(
            self.store,
            instance=self.instance,
            serial=serial,
            issued_at_ms=issued_at_ms,
            expires_at_ms=expires_at_ms,
            ca_pems=[cert_to_pem(self._ca_cert)],
        )
        return self.lifecycle.apply(document)

    def state_digest(self) -> str:
        """A digest of the content alone (no serial, no times): changes iff a publication is due."""
        return hashlib.sha256(self._document(0, 0, 0)).hexdigest()

    def build_configuration(self, *, validity_s: int = 600, now_ms: int | None = None) -> bytes:
        """A fresh ``SignedConfiguration``: next serial, valid for ``validity_s`` from now."""
        if validity_s <= 0:
            raise ConfigError(f"configuration validity must be positive, got {validity_s}s")
        now = self._clock.now_ms() if now_ms is None else now_ms
        serial = self.store.next_configuration_serial()
        signed = sign_document(self._document(serial, now, now + validity_s * 1000), self._config_key)
        endorsements = load_endorsements(self.directory)
        if not endorsements:
            return signed
        # The key history goes beside the signed document (issue 17): gateways pinning an older
        # key follow it to this one.
        envelope = SignedConfiguration.FromString(signed)
        envelope.key_endorsements.extend(endorsements)
        return envelope.SerializeToString()

    # -- configuration key rotation without a flag day (issue 17, registry.keyrotation) ------------
    def announce_next_key(self, passphrase: bytes | None = None) -> str:
        """Make the next configuration key and endorse it with the current one; returns its id."""
        if (self.directory / NEXT_KEY).exists():
            raise ConfigError("a next configuration key is already announced", hint="`registry key rotate` to it")
        successor = ed25519.Ed25519PrivateKey.generate()
        save_private_key(self.directory / NEXT_KEY, successor, passphrase)
        endorsement = endorse(self._config_key, self.instance, successor.public_key())
        save_endorsements(self.directory, [*load_endorsements(self.directory), endorsement])
        key_id = registry_key_id(successor.public_key())
        self.changes.append(f"announce the next configuration key {key_id}")
        return key_id

    def rotate_key(self, passphrase: bytes | None = None) -> str:
        """Sign with the announced key from now on; the old one is retired (kept, listed in the anchor)."""
        if not (self.directory / NEXT_KEY).exists():
            raise ConfigError("no next configuration key was announced", hint="`registry key announce` first")
        successor = _load_key(self.directory / NEXT_KEY, passphrase)
        if not isinstance(successor, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{self.directory / NEXT_KEY} is not an Ed25519 key")
        retired, old_id = self._config_key, registry_key_id(self._config_key.public_key())
        previous = (*self.anchor.previous_keys, retired.public_key())
        os.replace(self.directory / _CONFIG_KEY, self.directory / f"config-retired-{old_id[:16]}.key")
        os.replace(self.directory / NEXT_KEY, self.directory / _CONFIG_KEY)
        self._config_key = successor
        new_id = registry_key_id(successor.public_key())
        public = successor.public_key()
        anchor = Anchor(self.instance, new_id, public, cert_fingerprint(self._ca_cert), previous)
        (self.directory / _ANCHOR).write_text(anchor.to_json(), encoding="utf-8")
        self.changes.use_key(successor.sign, new_id)
        self.changes.append(f"rotate the configuration key {old_id} to {new_id}")
        return new_id
