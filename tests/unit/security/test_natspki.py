"""NATS identities: one per certificate, named exactly once, issued by a CA of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crossway.core.errors import InvalidIdentifier
from crossway.security.natspki import NatsCA, NatsIdentity, NatsRole, identity_of_certificate, request_identity
from crossway.security.pki import CertificateRequestInvalid

GATEWAY = NatsIdentity.gateway("EE/GOV/70000001/gw.1")


def test_a_user_name_names_role_name_and_serial_and_parses_back() -> None:
    user = GATEWAY.user(0xAB12)
    assert user == "crossway-nats://gateway/EE/GOV/70000001/gw.1?serial=ab12"
    assert NatsIdentity.parse_user(user) == (GATEWAY, 0xAB12)


def test_the_inbox_prefix_keeps_each_identity_to_its_own_tokens() -> None:
    # '.' in a name would otherwise add subject tokens (and so reach into another inbox).
    assert GATEWAY.inbox_prefix == "_INBOX.gateway.EE.GOV.70000001.gw_2E1"
    assert NatsIdentity(NatsRole.INDEX, "a.b").inbox_prefix == "_INBOX.index.a_2Eb"


@pytest.mark.parametrize("name", ["", "a b", "x*", "a>", "ü"])
def test_labels_outside_the_safe_charset_are_refused(name: str) -> None:
    with pytest.raises(InvalidIdentifier):
        NatsIdentity(NatsRole.AUDITOR, name)


def test_a_gateway_identity_must_be_a_gateway_id() -> None:
    with pytest.raises(InvalidIdentifier):
        NatsIdentity(NatsRole.GATEWAY, "EE/GOV/70000001")


def test_an_issued_certificate_names_exactly_the_identity_asked_for_and_is_for_clients_only(tmp_path: Path) -> None:
    ca = NatsCA.create(tmp_path / "ca", "EE")
    _key, csr = request_identity(tmp_path / "me")
    cert = ca.issue_identity(csr.read_bytes(), GATEWAY)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [type(n) for n in san] == [x509.UniformResourceIdentifier]  # no DNS, email or IP to match on
    assert identity_of_certificate(cert) == (GATEWAY, cert.serial_number)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(ca.certificate)


def test_the_key_stays_where_it_was_made_and_is_not_overwritten(tmp_path: Path) -> None:
    key, csr = request_identity(tmp_path / "me")
    assert key.stat().st_mode & 0o777 == 0o600 and csr.exists()
    with pytest.raises(Exception, match="already exists"):
        request_identity(tmp_path / "me")


def test_a_csr_with_a_bad_signature_or_key_type_is_refused(tmp_path: Path) -> None:
    ca = NatsCA.create(tmp_path / "ca", "EE")
    key = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(key, None)
    )
    with pytest.raises(CertificateRequestInvalid, match="P-256"):
        ca.issue_identity(csr.public_bytes(Encoding.PEM), GATEWAY)
    with pytest.raises(CertificateRequestInvalid):
        ca.issue_identity(b"garbage", GATEWAY)


def test_a_route_identity_goes_only_into_server_certificates(tmp_path: Path) -> None:
    ca = NatsCA.create(tmp_path / "ca", "EE")
    _key, csr = request_identity(tmp_path / "node")
    route = NatsIdentity(NatsRole.ROUTE, "crossway")
    with pytest.raises(CertificateRequestInvalid):
        ca.issue_identity(csr.read_bytes(), route)
    cert = ca.issue_server(csr.read_bytes(), name="n1", route=route)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [route.uri]
