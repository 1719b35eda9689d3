"""The registry PKI: the registry decides identities, CSRs must prove key possession, chains fail closed."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from crossway.core.errors import PeerUntrusted
from crossway.core.ids import GatewayId, MemberId
from crossway.security.keys import generate_signing_key, generate_tls_key
from crossway.security.pki import (
    CertificateRequestInvalid,
    CertKind,
    build_csr,
    cert_fingerprint,
    cert_to_pem,
    create_ca,
    gateway_uri,
    inspect_certificate,
    issue_certificate,
    verify_issued_by,
)

MEMBER = MemberId.parse("EE/GOV/70000001")
GATEWAY = GatewayId.parse("EE/GOV/70000001/gw1")
NOW = 1_700_000_000_000
DAY = 86_400_000
CA = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


@pytest.fixture(scope="module")
def ca() -> CA:
    key = generate_tls_key()
    return create_ca("EE", key, now_ms=NOW), key


def _uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )


def test_the_ca_is_a_pathlen_zero_cert_signer_named_for_its_instance(ca: CA) -> None:
    cert, _ = ca
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.ca and bc.path_length == 0
    assert ku.key_cert_sign and ku.crl_sign
    assert cert.subject.rfc4514_string() == "CN=Crossway EE CA"


def test_a_tls_certificate_names_the_member_and_the_gateway_and_keeps_host_names(ca: CA) -> None:
    ca_cert, ca_key = ca
    csr = build_csr(
        generate_tls_key(),
        subject_uri="crossway://EE/GOV/99999999",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    cert = issue_certificate(ca_cert, ca_key, csr, kind=CertKind.TLS, uri=gateway_uri(GATEWAY), days=30, now_ms=NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert _uris(cert) == ["crossway://EE/GOV/70000001", "crossway-gateway://EE/GOV/70000001/gw1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_the_registry_sets_the_identity_not_the_csr(ca: CA) -> None:
    ca_cert, ca_key = ca
    csr = build_csr(generate_signing_key(), subject_uri="crossway://EE/GOV/66666666")
    cert = issue_certificate(ca_cert, ca_key, csr, kind=CertKind.SIGNING, uri=MEMBER.uri, days=30, now_ms=NOW)
    info = inspect_certificate(cert_to_pem(cert))
    assert _uris(cert) == ["crossway://EE/GOV/70000001"]
    assert info.member == MEMBER and info.gateway is None
    assert "66666666" not in cert.subject.rfc4514_string()


def test_a_signing_certificate_is_for_non_repudiation_and_not_for_tls_servers(ca: CA) -> None:
    ca_cert, ca_key = ca
    csr = build_csr(generate_signing_key("EdDSA"), subject_uri=MEMBER.uri)
    cert = issue_certificate(ca_cert, ca_key, csr, kind=CertKind.SIGNING, uri=MEMBER.uri, days=30, now_ms=NOW)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_a_csr_whose_signature_does_not_verify_is_rejected(ca: CA) -> None:
    ca_cert, ca_key = ca
    der = build_csr(generate_tls_key(), subject_uri="crossway://EE/GOV/70000001").public_bytes(
        serialization.Encoding.DER
    )
    tampered = x509.load_der_x509_csr(der.replace(b"crossway://EE/GOV/7", b"crossway://EE/GOV/8"))
    with pytest.raises(CertificateRequestInvalid, match="signature"):
        issue_certificate(ca_cert, ca_key, tampered, kind=CertKind.TLS, uri=gateway_uri(GATEWAY), days=1)


def test_a_tls_certificate_needs_a_p256_key_and_a_gateway_uri(ca: CA) -> None:
    ca_cert, ca_key = ca
    ed_csr = build_csr(generate_signing_key("EdDSA"), subject_uri="x")
    with pytest.raises(CertificateRequestInvalid, match="P-256"):
        issue_certificate(ca_cert, ca_key, ed_csr, kind=CertKind.TLS, uri=gateway_uri(GATEWAY), days=1)
    ec_csr = build_csr(generate_tls_key(), subject_uri="x")
    with pytest.raises(CertificateRequestInvalid, match="gateway"):
        issue_certificate(ca_cert, ca_key, ec_csr, kind=CertKind.TLS, uri=MEMBER.uri, days=1)


def test_inspection_reads_pem_and_der_alike_and_is_cached(ca: CA) -> None:
    ca_cert, ca_key = ca
    csr = build_csr(generate_tls_key(), subject_uri="x")
    cert = issue_certificate(
        ca_cert, ca_key, csr, kind=CertKind.TLS, uri=gateway_uri(GATEWAY), days=2, serial=4242, now_ms=NOW
    )
    pem = cert_to_pem(cert)
    info = inspect_certificate(pem)
    assert inspect_certificate(pem) is info
    assert inspect_certificate(info.der) == info
    assert info.serial == "4242" and info.sha256 == cert_fingerprint(cert)
    assert info.member == MEMBER and info.gateway == GATEWAY
    assert info.not_before_ms < NOW < info.not_after_ms <= NOW + 2 * DAY
    with pytest.raises(PeerUntrusted):
        inspect_certificate(b"garbage")


def test_the_chain_check_finds_the_issuer_and_fails_closed_otherwise(ca: CA) -> None:
    ca_cert, ca_key = ca
    other_key = generate_tls_key()
    other_ca = create_ca("EE", other_key, now_ms=NOW)
    csr = build_csr(generate_tls_key(), subject_uri="x")
    cert = issue_certificate(ca_cert, ca_key, csr, kind=CertKind.TLS, uri=gateway_uri(GATEWAY), days=1, now_ms=NOW)
    assert verify_issued_by(cert, [other_ca, ca_cert], NOW) == ca_cert
    with pytest.raises(PeerUntrusted, match="not issued by any registry CA"):
        verify_issued_by(cert, [other_ca], NOW)
    with pytest.raises(PeerUntrusted, match="expired"):
        verify_issued_by(cert, [ca_cert], NOW + 2 * DAY)
    with pytest.raises(PeerUntrusted, match="not valid before"):
        verify_issued_by(cert, [ca_cert], NOW - DAY)
