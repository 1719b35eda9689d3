"""Identities on the NATS backbone, and the CA that issues them (dedicated to NATS, EC P-256).

nats-server's ``verify_and_map`` logs a client in as the user whose name equals one of the
client certificate's SANs (email, DNS, then URI) or its subject DN (notes/nats-security.md §1):
*any* certificate from the ``ca_file`` CA carrying a matching name is that user. So NATS gets a
CA of its own — never the one that issues gateways' peer TLS certificates, whose SANs name
members and gateways — and each certificate it issues names exactly one identity, in one URI SAN:

    crossway-nats://<role>/<name>?serial=<certificate serial, hex>

The serial makes each certificate its own NATS user, so revoking one certificate (the registry
drops its user entry and reloads the server) locks out that certificate and no other. Roles:
``gateway`` (name = gateway id), ``registry``, ``index``, ``cosigner``, ``auditor``, ``admin``
(the operator's stream-administration credential, held by no running component) and ``route``
(the cluster's route identity, only in server certificates). Client certificates carry EKU
clientAuth only; server certificates serverAuth + clientAuth (routes dial each other).

Private keys are made where they are used (:func:`request_identity` writes key + CSR); only the
CSR travels to the registry.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crossway.backbone import NATS_URI_SCHEME, NatsIdentity, NatsRole, identity_of_certificate
from crossway.core.errors import ConfigError
from crossway.security.keys import (
    PrivateKey,
    generate_tls_key,
    load_certificate,
    load_private_key,
    save_pem,
    save_private_key,
)
from crossway.security.pki import CertificateRequestInvalid, create_ca, key_usage

__all__ = [
    "NATS_URI_SCHEME",
    "NatsCA",
    "NatsIdentity",
    "NatsRole",
    "identity_of_certificate",
    "request_identity",
]

# The identity types live with the backbone's other names (crossway.backbone), so the NATS client
# can read an identity without depending on this CA; they are re-exported here.
_BACKDATE = dt.timedelta(minutes=5)


def request_identity(directory: Path, stem: str = "nats", passphrase: bytes | None = None) -> tuple[Path, Path]:
    """Make a NATS key (0600) and its CSR in ``directory``; the key never leaves it. Returns both paths."""
    key_path, csr_path = directory / f"{stem}.key", directory / f"{stem}.csr"
    if key_path.exists():
        raise ConfigError(f"{key_path} already exists", hint="remove it, or request into another directory")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_tls_key()
    save_private_key(key_path, key, passphrase)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crossway nats identity")]))
        .sign(key, hashes.SHA256())
    )
    save_pem(csr_path, csr)
    return key_path, csr_path


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = (
            x509.load_pem_x509_csr(csr_pem)
            if csr_pem.lstrip().startswith(b"-----")
            else x509.load_der_x509_csr(csr_pem)
        )
    except ValueError as exc:
        raise CertificateRequestInvalid("the certificate request is not a PEM or DER PKCS#10 CSR") from exc
    # 1. the requester holds the key (PKCS#10 self-signature), 2. an EC P-256 key (TLS 1.3 everywhere)
    if not csr.is_signature_valid:
        raise CertificateRequestInvalid("the certificate request's signature does not verify")
    public = csr.public_key()
    if not (isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)):
        raise CertificateRequestInvalid("a NATS key must be EC P-256", hint="make it with `crossway nats request`")
    return csr


class NatsCA:
    """The CA of NATS identities: ``nats-ca.pem`` and ``nats-ca.key`` in one directory."""

    CERT, KEY = "nats-ca.pem", "nats-ca.key"

    def __init__(self, certificate: x509.Certificate, key: PrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @classmethod
    def create(cls, directory: Path, instance: str, *, passphrase: bytes | None = None) -> NatsCA:
        if (directory / cls.KEY).exists():
            raise ConfigError(f"{directory / cls.KEY} already exists", hint="open it instead of creating a new CA")
        key = generate_tls_key()
        cert = create_ca(instance, key, common_name=f"Crossway {instance} NATS CA")
        save_private_key(directory / cls.KEY, key, passphrase)
        save_pem(directory / cls.CERT, cert)
        return cls(cert, key)

    @classmethod
    def open(cls, directory: Path, *, passphrase: bytes | None = None) -> NatsCA:
        return cls(load_certificate(directory / cls.CERT), load_private_key(directory / cls.KEY, passphrase))

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / cls.KEY).exists()

    def _builder(self, csr: x509.CertificateSigningRequest, days: int, serial: int) -> x509.CertificateBuilder:
        start = dt.datetime.now(dt.UTC) - _BACKDATE
        public = csr.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)  # _load_csr checked it
        return (
            x509.CertificateBuilder()
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True, content_commitment=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            # Python 3.13's default TLS context verifies strictly (VERIFY_X509_STRICT): a
            # certificate without its issuer's key identifier is refused.
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.certificate.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        assert isinstance(self._key, ec.EllipticCurvePrivateKey)
        return builder.sign(self._key, hashes.SHA256())

    def issue_identity(self, csr_pem: bytes, identity: NatsIdentity, *, days: int = 365) -> x509.Certificate:
        """A client certificate naming ``identity`` (chosen by the issuer, not the CSR) and nothing else."""
        if identity.role is NatsRole.ROUTE:
            raise CertificateRequestInvalid("route identities go into server certificates", hint="use issue_server")
        csr = _load_csr(csr_pem)
        serial = x509.random_serial_number()
        builder = (
            self._builder(csr, days, serial)
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.uri)]))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.user(serial))]), critical=False
            )
        )
        return self._sign(builder)

    def issue_server(
        self,
        csr_pem: bytes,
        *,
        name: str,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        route: NatsIdentity | None = None,
        days: int = 365,
    ) -> x509.Certificate:
        """A NATS server's certificate; with ``route``, also its identity towards the other nodes."""
        csr = _load_csr(csr_pem)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if route is not None:
            if route.role is not NatsRole.ROUTE:
                raise CertificateRequestInvalid(f"{route} is not a route identity")
            names.append(x509.UniformResourceIdentifier(route.uri))
        builder = (
            self._builder(csr, days, x509.random_serial_number())
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nats server {name}")]))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
        )
        return self._sign(builder)
