"""The registry's small PKI: a CA, CSRs, issued gateway TLS and member signing certificates.

Identity lives in URI SANs (ARCHITECTURE.md, "Security model"):

- a member signing certificate carries ``crossway://INSTANCE/CLASS/CODE``;
- a gateway TLS certificate carries the member URI *and* ``crossway-gateway://INSTANCE/CLASS/CODE/NAME``
  so the provider gateway learns both "which member" and "which of its gateways" from one handshake.

The registry decides those URIs; a CSR's own subject and URIs are ignored, only its key and (for TLS)
its DNS/IP names are taken — the names matter only for gRPC's hostname check, not for identity.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crossway.core.errors import ConfigError, CrosswayError, PeerUntrusted
from crossway.core.ids import URI_SCHEME, GatewayId, MemberId, SubsystemId
from crossway.security.keys import PrivateKey

__all__ = [
    "GATEWAY_URI_SCHEME",
    "CertKind",
    "CertificateInfo",
    "CertificateRequestInvalid",
    "build_csr",
    "cert_fingerprint",
    "cert_to_pem",
    "create_ca",
    "gateway_uri",
    "inspect_certificate",
    "issue_certificate",
    "self_signed",
    "verify_issued_by",
]

GATEWAY_URI_SCHEME = "crossway-gateway://"
# Issued certificates start a little in the past so a peer whose clock lags still accepts them.
_BACKDATE = dt.timedelta(minutes=5)


class CertificateRequestInvalid(ConfigError):
    """A CSR that cannot be honoured: bad signature, unsupported key, wrong identity for its kind."""

    code = "registry.csr_invalid"
    default_hint = "generate a fresh key and CSR (EC P-256 for TLS; P-256 or Ed25519 for signing) and submit it again"


class CertKind(enum.Enum):
    TLS = "tls"
    SIGNING = "sign"


def gateway_uri(gateway: GatewayId) -> str:
    """The URI SAN naming one gateway of a member."""
    return f"{GATEWAY_URI_SCHEME}{gateway}"


def _now(now_ms: int | None) -> dt.datetime:
    if now_ms is None:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself (no separate digest); ECDSA uses SHA-256 (ES256).
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _signing_capable(key: PrivateKey) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError(
            f"a {type(key).__name__} cannot sign certificates here",
            hint="use an EC P-256 or Ed25519 key",
        )
    return key


def create_ca(
    instance: str, key: PrivateKey, *, days: int = 3650, now_ms: int | None = None, common_name: str | None = None
) -> x509.Certificate:
    """A self-signed CA for one instance; pathlen 0 because it only ever signs leaf certificates."""
    signer = _signing_capable(key)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"Crossway {instance} CA")])
    start = _now(now_ms) - _BACKDATE
    public = signer.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(signer, _hash_for(signer))
    )


def self_signed(
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    valid_for: dt.timedelta,
    ip_addresses: Sequence[str] = (),
    anchor: bool = False,
) -> x509.Certificate:
    """A self-signed certificate (a pinned client, a test server, a benchmark signer).

    ``anchor``: the certificate is its own trust anchor (pinned as the only root), so it must be
    allowed to sign itself (basic constraints CA, path length 0).
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + valid_for)
    )
    if ip_addresses:
        names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if anchor:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    return builder.sign(key, hashes.SHA256())


def build_csr(
    key: PrivateKey,
    *,
    subject_uri: str,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> x509.CertificateSigningRequest:
    """A CSR naming what the requester *asks* for; the registry decides the identity it gets."""
    signer = _signing_capable(key)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(subject_uri)]
    names += [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_uri)]))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(signer, _hash_for(signer))
    )


def _key_usage(*, digital_signature: bool, content_commitment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _csr_host_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns: list[x509.GeneralName] = [x509.DNSName(d) for d in san.get_values_for_type(x509.DNSName)]
    return dns + [x509.IPAddress(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _identity_names(kind: CertKind, uri: str) -> tuple[str, list[x509.GeneralName]]:
    """The subject CN and URI SANs for ``uri`` (validated: it must parse as the right id)."""
    try:
        if kind is CertKind.TLS:
            if not uri.startswith(GATEWAY_URI_SCHEME):
                raise CertificateRequestInvalid(
                    f"a TLS certificate names a gateway ({GATEWAY_URI_SCHEME}…), not {uri!r}",
                    hint="pass gateway_uri(gateway_id)",
                )
            gateway = GatewayId.parse(uri.removeprefix(GATEWAY_URI_SCHEME))
            uris = [gateway.member.uri, uri]
            return str(gateway), [x509.UniformResourceIdentifier(u) for u in uris]
        if not uri.startswith(URI_SCHEME):
            raise CertificateRequestInvalid(
                f"a signing certificate names a member ({URI_SCHEME}…), not {uri!r}",
                hint="pass member_id.uri",
            )
        member = MemberId.parse(uri.removeprefix(URI_SCHEME))
        return str(member), [x509.UniformResourceIdentifier(member.uri)]
    except CrosswayError as exc:
        if isinstance(exc, CertificateRequestInvalid):
            raise
        raise CertificateRequestInvalid(f"certificate identity {uri!r} is not valid: {exc.message}") from exc


def _check_csr(
    csr: x509.CertificateSigningRequest, kind: CertKind
) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    # Step 1: the CSR proves possession of its key (PKCS#10 self-signature, RFC 2986 §3).
    if not csr.is_signature_valid:
        raise CertificateRequestInvalid("the certificate request's signature does not verify")
    public = csr.public_key()
    # Step 2: only key types every gateway can use. TLS keys must be EC (gRPC's TLS stack);
    # signing keys must match an envelope algorithm (ES256 = P-256, EdDSA = Ed25519).
    p256 = isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)
    if kind is CertKind.TLS and not p256:
        raise CertificateRequestInvalid(
            "a gateway TLS key must be EC P-256", hint="generate it with generate_tls_key()"
        )
    if kind is CertKind.SIGNING and not (p256 or isinstance(public, ed25519.Ed25519PublicKey)):
        raise CertificateRequestInvalid(
            "a member signing key must be EC P-256 (ES256) or Ed25519 (EdDSA)",
            hint="generate it with generate_signing_key()",
        )
    assert isinstance(public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)  # narrowed above
    return public


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    csr: x509.CertificateSigningRequest,
    *,
    kind: CertKind,
    uri: str,
    days: int,
    serial: int | None = None,
    now_ms: int | None = None,
) -> x509.Certificate:
    """Issue a leaf certificate for ``csr``'s key with the identity ``uri`` chosen by the registry.

    ``uri`` is :func:`gateway_uri` for ``TLS`` (the member URI is added from it) and the member's
    ``crossway://`` URI for ``SIGNING``. Raises :class:`CertificateRequestInvalid`.
    """
    public = _check_csr(csr, kind)
    common_name, names = _identity_names(kind, uri)
    signer = _signing_capable(ca_key)
    start = _now(now_ms) - _BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if kind is CertKind.TLS:
        builder = builder.add_extension(
            _key_usage(digital_signature=True, content_commitment=False), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        names += _csr_host_names(csr)
    else:
        # Non-repudiation (content_commitment): signatures made with this key are evidence.
        builder = builder.add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, _hash_for(signer))


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 hex of the DER certificate: the id used for TLS pins and signing key ids."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What Crossway reads out of a certificate; ``issuer_sha256`` is None until a chain check."""

    serial: str
    sha256: str
    member: MemberId | None
    gateway: GatewayId | None
    subsystem: SubsystemId | None
    not_before_ms: int
    not_after_ms: int
    issuer_sha256: str | None
    public_key: Any
    der: bytes


def _identity(cert: x509.Certificate) -> tuple[MemberId | None, GatewayId | None, SubsystemId | None]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None, None, None
    member: MemberId | None = None
    gateway: GatewayId | None = None
    subsystem: SubsystemId | None = None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        # Unparseable URIs are ignored rather than fatal: an identity we cannot read is no identity.
        try:
            if uri.startswith(GATEWAY_URI_SCHEME):
                gateway = GatewayId.parse(uri.removeprefix(GATEWAY_URI_SCHEME))
            elif uri.startswith(URI_SCHEME):
                path = uri.removeprefix(URI_SCHEME)
                if path.count("/") == 3:
                    subsystem = SubsystemId.parse(path)
                    member = member or subsystem.member
                else:
                    member = MemberId.parse(path)
        except CrosswayError:
            continue
    if gateway is not None and member is not None and gateway.member != member:
        gateway = None  # contradictory names: trust neither the gateway claim
    return member, gateway, subsystem


@functools.lru_cache(maxsize=1024)
def inspect_certificate(data: bytes) -> CertificateInfo:
    """Parse a PEM or DER certificate into :class:`CertificateInfo`.

    Cached on the bytes: the provider gateway calls this on every request with the peer's PEM
    from grpc's auth context, and a peer presents the same certificate for its whole lifetime.
    Raises :class:`PeerUntrusted` for bytes that are not a certificate.
    """
    try:
        if data.lstrip().startswith(b"-----"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise PeerUntrusted("the presented certificate cannot be parsed") from exc
    der = cert.public_bytes(serialization.Encoding.DER)
    member, gateway, subsystem = _identity(cert)
    return CertificateInfo(
        serial=str(cert.serial_number),
        sha256=hashlib.sha256(der).hexdigest(),
        member=member,
        gateway=gateway,
        subsystem=subsystem,
        not_before_ms=_ms(cert.not_valid_before_utc),
        not_after_ms=_ms(cert.not_valid_after_utc),
        issuer_sha256=None,
        public_key=cert.public_key(),
        der=der,
    )


def verify_issued_by(cert: x509.Certificate, ca_certs: Sequence[x509.Certificate], now_ms: int) -> x509.Certificate:
    """Return the CA among ``ca_certs`` that signed ``cert``, checking both validity windows.

    Raises :class:`PeerUntrusted` (fail closed) when no CA signed it, or it or its CA is expired
    or not yet valid. Revocation is the caller's job (it lives in the registry configuration).
    """
    subject = cert.subject.rfc4514_string()
    issuer: x509.Certificate | None = None
    # Step 1: a registry CA's key signed this certificate.
    for ca in ca_certs:
        try:
            cert.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):  # wrong signature, issuer name or key type
            continue
        issuer = ca
        break
    if issuer is None:
        raise PeerUntrusted(f"certificate {subject!r} was not issued by any registry CA")
    # Step 2: the certificate and its CA are both within their validity windows.
    for which, c in (("certificate", cert), ("issuing CA", issuer)):
        if now_ms < _ms(c.not_valid_before_utc):
            raise PeerUntrusted(
                f"{which} of {subject!r} is not valid before {c.not_valid_before_utc.isoformat()}",
                hint="check this machine's clock (NTP)",
            )
        if now_ms > _ms(c.not_valid_after_utc):
            raise PeerUntrusted(
                f"{which} of {subject!r} expired at {c.not_valid_after_utc.isoformat()}",
                hint="the member must get a new certificate from the registry",
            )
    return issuer
