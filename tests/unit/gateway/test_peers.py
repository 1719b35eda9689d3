"""Which gateway is calling: TLS 1.3, a certificate of the registry CA, not revoked, pinned to a gateway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from gateway_samples import CLIENT, CLIENT_GW, GW1, PROVIDER

from crossway.core.clock import ManualClock
from crossway.core.errors import PeerRevoked, PeerUntrusted
from crossway.core.ids import GatewayId
from crossway.security.keys import PrivateKey, generate_signing_key, generate_tls_key
from crossway.security.pki import CertKind, build_csr, cert_fingerprint, cert_to_pem, gateway_uri
from gateway.provider.peers import PeerIdentity, PeerVerifier
from registry import RegistryAuthority, VerifiedConfiguration

Configure = Callable[[], VerifiedConfiguration]


def _csr(key: PrivateKey, uri: str) -> bytes:
    return build_csr(key, subject_uri=uri).public_bytes(serialization.Encoding.PEM)


def _tls_cert(authority: RegistryAuthority, gateway: GatewayId = GW1) -> x509.Certificate:
    return authority.issue(_csr(generate_tls_key(), gateway_uri(gateway)), kind=CertKind.TLS, gateway=gateway)


def _context(pem: bytes | None, version: bytes = b"TLSv1.3") -> dict[str, list[bytes]]:
    """The shape of grpc's ``ServicerContext.auth_context()`` for a mutual-TLS peer."""
    context = {"ssl_tls_version": [version], "transport_security_type": [b"ssl"]}
    if pem is not None:
        context["x509_pem_cert"] = [pem]
    return context


def test_a_registered_gateway_certificate_identifies_member_and_gateway(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock
) -> None:
    cert = _tls_cert(authority)
    identity = PeerVerifier().identify(_context(cert_to_pem(cert)), configure(), clock.now_ms())
    assert identity == PeerIdentity(str(PROVIDER), str(GW1), cert_fingerprint(cert))


def test_each_gateway_is_told_apart_by_its_own_certificate(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock
) -> None:
    ours, theirs = _tls_cert(authority, GW1), _tls_cert(authority, CLIENT_GW)
    config, verifier = configure(), PeerVerifier()
    assert verifier.identify(_context(cert_to_pem(ours)), config, clock.now_ms()).gateway == str(GW1)
    assert verifier.identify(_context(cert_to_pem(theirs)), config, clock.now_ms()).member == str(CLIENT)


@pytest.mark.parametrize("version", [b"TLSv1.2", b"TLSv1.1", b""])
def test_a_connection_below_tls_1_3_is_untrusted(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock, version: bytes
) -> None:
    pem = cert_to_pem(_tls_cert(authority))
    with pytest.raises(PeerUntrusted, match=r"gateways require TLS 1\.3"):
        PeerVerifier().identify(_context(pem, version), configure(), clock.now_ms())


def test_a_connection_without_tls_is_untrusted(configure: Configure, clock: ManualClock) -> None:
    with pytest.raises(PeerUntrusted, match="uses no TLS"):
        PeerVerifier().identify({}, configure(), clock.now_ms())


def test_a_peer_without_a_certificate_is_untrusted(configure: Configure, clock: ManualClock) -> None:
    with pytest.raises(PeerUntrusted, match="presented no TLS client certificate"):
        PeerVerifier().identify(_context(None), configure(), clock.now_ms())


def test_a_certificate_from_another_ca_is_untrusted(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock, tmp_path: Path
) -> None:
    # Another registry of the same instance, with the same gateway registered: only the CA differs.
    rogue = RegistryAuthority.init(tmp_path / "rogue", "EE", clock=clock)
    try:
        rogue.add_member(PROVIDER, "Population Register")
        rogue.add_gateway(GW1, "gw1.population.example:7443")
        pem = cert_to_pem(_tls_cert(rogue))
    finally:
        rogue.close()
    with pytest.raises(PeerUntrusted, match="was not issued by any registry CA"):
        PeerVerifier().identify(_context(pem), configure(), clock.now_ms())


def test_a_revoked_certificate_is_refused_with_the_next_configuration(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock
) -> None:
    cert = _tls_cert(authority)
    pem, verifier = cert_to_pem(cert), PeerVerifier()
    assert verifier.identify(_context(pem), configure(), clock.now_ms()).gateway == str(GW1)
    authority.revoke(str(cert.serial_number), "key compromise")
    with pytest.raises(PeerRevoked, match=str(cert.serial_number)):
        verifier.identify(_context(pem), configure(), clock.now_ms())


def test_a_certificate_of_the_ca_not_registered_to_any_gateway_is_untrusted(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock
) -> None:
    signing = authority.issue(_csr(generate_signing_key(), PROVIDER.uri), kind=CertKind.SIGNING, member=PROVIDER)
    with pytest.raises(PeerUntrusted, match="is not registered for any gateway"):
        PeerVerifier().identify(_context(cert_to_pem(signing)), configure(), clock.now_ms())


def test_an_expired_certificate_is_untrusted(
    authority: RegistryAuthority, configure: Configure, clock: ManualClock
) -> None:
    pem = cert_to_pem(_tls_cert(authority))
    config = configure()
    with pytest.raises(PeerUntrusted, match="expired"):
        PeerVerifier().identify(_context(pem), config, clock.now_ms() + 400 * 86_400_000)


def test_bytes_that_are_not_a_certificate_are_untrusted(configure: Configure, clock: ManualClock) -> None:
    with pytest.raises(PeerUntrusted, match="cannot be parsed"):
        PeerVerifier().identify(_context(b"-----BEGIN CERTIFICATE-----\nnope\n"), configure(), clock.now_ms())
