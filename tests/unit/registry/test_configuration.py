"""The signed configuration: what it says, and every way it must fail closed."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from registry_samples import CLIENT, GW1, POPULATION, PROVIDER, SERVICE, TAX

from crossway.core.clock import ManualClock
from crossway.core.errors import RegistryStale, RegistryUntrusted
from crossway.security.keys import generate_signing_key, generate_tls_key, generate_x25519_key, x25519_public_raw
from crossway.security.pki import CertKind, build_csr
from protos.crossway.v1 import registry_pb2
from registry import RegistryAuthority, load_anchor, verify_configuration
from registry.anchor import registry_key_id


def _pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def test_the_document_lists_members_gateways_services_groups_and_keys(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    tls = authority.issue(_pem(build_csr(generate_tls_key(), subject_uri="x")), kind=CertKind.TLS, gateway=GW1)
    sign = authority.issue(
        _pem(build_csr(generate_signing_key(), subject_uri="x")), kind=CertKind.SIGNING, member=PROVIDER
    )
    enc = x25519_public_raw(generate_x25519_key())
    authority.set_encryption_key(PROVIDER, enc)
    config = verify_configuration(authority.build_configuration(), load_anchor(authority.anchor_path), clock.now_ms())

    member = config.member(PROVIDER)
    assert member is not None and member.name == "Population Register"
    assert member.subsystems == frozenset({POPULATION})
    [gateway] = member.gateways
    assert gateway.id == GW1 and gateway.peer_address == "127.0.0.1:7443"
    tls_sha = tls.fingerprint(hashes.SHA256()).hex()
    assert gateway.tls_sha256 == frozenset({tls_sha})
    assert config.gateway_by_tls_sha256(tls_sha) == gateway
    sign_sha = sign.fingerprint(hashes.SHA256()).hex()
    assert config.signing_key(PROVIDER, sign_sha) is not None
    assert config.signing_key(CLIENT, sign_sha) is None
    assert member.encryption_public_key == enc
    assert config.member(CLIENT) is not None and config.member(CLIENT).encryption_public_key is None  # type: ignore[union-attr]

    [service] = config.providers_of("population.v1.PersonRegistry")
    assert service.id == SERVICE and service.require_encryption and config.service(SERVICE) is service
    chat = service.methods["Chat"]
    assert (chat.client_streaming, chat.server_streaming, chat.input_type) == (
        True,
        True,
        "population.v1.GetPersonRequest",
    )
    assert not service.methods["GetPerson"].client_streaming
    assert config.groups_of(TAX) == frozenset({"EE/tax-readers"})
    assert config.groups_of(POPULATION) == frozenset()
    assert config.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert config.ca_certificates == (authority.ca_certificate,)


def test_serials_increase_with_every_build(authority: RegistryAuthority, clock: ManualClock) -> None:
    anchor = load_anchor(authority.anchor_path)
    first = verify_configuration(authority.build_configuration(), anchor, clock.now_ms())
    second = verify_configuration(authority.build_configuration(), anchor, clock.now_ms())
    assert second.serial == first.serial + 1


def test_a_revoked_certificate_leaves_the_pins_and_its_serial_is_listed(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    tls = authority.issue(_pem(build_csr(generate_tls_key(), subject_uri="x")), kind=CertKind.TLS, gateway=GW1)
    sign = authority.issue(
        _pem(build_csr(generate_signing_key(), subject_uri="x")), kind=CertKind.SIGNING, member=PROVIDER
    )
    authority.revoke(str(tls.serial_number), "compromised")
    authority.revoke(str(sign.serial_number), "rolled over")
    config = verify_configuration(authority.build_configuration(), load_anchor(authority.anchor_path), clock.now_ms())
    assert config.is_revoked(str(tls.serial_number)) and config.is_revoked(str(sign.serial_number))
    member = config.member(PROVIDER)
    assert member is not None and member.gateways[0].tls_sha256 == frozenset() and not member.signing_keys


def test_a_tampered_document_is_untrusted(authority: RegistryAuthority, clock: ManualClock) -> None:
    signed = registry_pb2.SignedConfiguration.FromString(authority.build_configuration())
    signed.document = signed.document.replace(b"Population Register", b"Population Registe!")
    with pytest.raises(RegistryUntrusted, match="signature"):
        verify_configuration(signed.SerializeToString(), load_anchor(authority.anchor_path), clock.now_ms())


def test_garbage_is_untrusted(authority: RegistryAuthority, clock: ManualClock) -> None:
    with pytest.raises(RegistryUntrusted):
        verify_configuration(b"\xff\x00garbage", load_anchor(authority.anchor_path), clock.now_ms())
    with pytest.raises(RegistryUntrusted):
        verify_configuration(b"", load_anchor(authority.anchor_path), clock.now_ms())


def test_a_document_signed_by_another_key_fails_against_the_pinned_anchor(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    anchor = load_anchor(authority.anchor_path)
    impostor = ed25519.Ed25519PrivateKey.generate().public_key()
    wrong = dataclasses.replace(anchor, public_key=impostor, key_id=registry_key_id(impostor))
    with pytest.raises(RegistryUntrusted, match="signed by key"):
        verify_configuration(authority.build_configuration(), wrong, clock.now_ms())
    # Same key id but another key: the signature check catches it.
    with pytest.raises(RegistryUntrusted, match="signature"):
        verify_configuration(
            authority.build_configuration(), dataclasses.replace(anchor, public_key=impostor), clock.now_ms()
        )


def test_an_anchor_for_another_instance_or_ca_is_refused(authority: RegistryAuthority, clock: ManualClock) -> None:
    anchor = load_anchor(authority.anchor_path)
    with pytest.raises(RegistryUntrusted, match="instance"):
        verify_configuration(
            authority.build_configuration(), dataclasses.replace(anchor, instance="FI"), clock.now_ms()
        )
    with pytest.raises(RegistryUntrusted, match="CA"):
        verify_configuration(
            authority.build_configuration(), dataclasses.replace(anchor, ca_sha256="00" * 32), clock.now_ms()
        )


def test_an_expired_document_is_stale_and_says_when_it_expired(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    signed = authority.build_configuration(validity_s=60)
    anchor = load_anchor(authority.anchor_path)
    config = verify_configuration(signed, anchor, clock.now_ms())
    clock.advance(60_000)
    with pytest.raises(RegistryStale, match="expired at 2023-11-14T22:14:20"):
        verify_configuration(signed, anchor, clock.now_ms())
    with pytest.raises(RegistryStale):
        config.check_fresh(clock.now_ms())
