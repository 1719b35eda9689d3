"""The registry authority: directory layout, admission rules, issuing and revoking certificates."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from registry_samples import CLIENT, GW1, POPULATION, PROVIDER, SERVICE, person_registry_descriptor_set

from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, MemberId, ServiceId
from crossway.security.keys import generate_signing_key, generate_tls_key
from crossway.security.pki import CertificateRequestInvalid, CertKind, build_csr, cert_fingerprint, inspect_certificate
from registry import RegistryAuthority, load_anchor


def _csr_pem(key: object, uri: str = "crossway://whatever") -> bytes:
    return build_csr(key, subject_uri=uri, dns_names=["localhost"]).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def test_init_creates_a_private_directory_keys_and_a_pinnable_anchor(authority: RegistryAuthority) -> None:
    directory = authority.directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("ca.key", "config.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    anchor_json = json.loads(authority.anchor_path.read_text())
    assert set(anchor_json) == {"instance", "key_id", "public_key", "ca_sha256"}
    anchor = load_anchor(authority.anchor_path)
    assert anchor.instance == "EE"
    assert anchor.ca_sha256 == cert_fingerprint(authority.ca_certificate)


def test_init_refuses_to_overwrite_an_existing_registry(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="already holds a registry"):
        RegistryAuthority.init(authority.directory, "EE")


def test_a_reopened_registry_keeps_its_ca_and_members(authority: RegistryAuthority) -> None:
    again = RegistryAuthority.open(authority.directory)
    assert again.ca_certificate == authority.ca_certificate
    assert [m.id for m in again.store.members()] == [PROVIDER, CLIENT]
    again.close()


def test_opening_a_directory_without_a_registry_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no registry"):
        RegistryAuthority.open(tmp_path)


def test_duplicates_orphans_and_foreign_instances_are_refused(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        authority.add_member(PROVIDER, "again")
    with pytest.raises(ConfigError, match="not registered"):
        authority.add_subsystem(MemberId.parse("EE/GOV/1").subsystem("x"))
    with pytest.raises(ConfigError, match="instance"):
        authority.add_member(MemberId.parse("FI/GOV/1"), "Finnish")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        authority.add_gateway(GatewayId.parse("EE/GOV/70000001/gw2"), "no-port")


def test_a_service_needs_a_descriptor_set_that_contains_it(authority: RegistryAuthority) -> None:
    other = ServiceId.parse("EE/GOV/70000001/population/population.v1.Other")
    with pytest.raises(ConfigError, match=r"population\.v1\.Other"):
        authority.add_service(other, person_registry_descriptor_set())
    with pytest.raises(ConfigError, match="descriptor set"):
        authority.add_service(other, b"\xff\xff not protobuf")
    assert [s.id for s in authority.store.services()] == [SERVICE]


def test_tls_certificates_go_to_registered_gateways_and_are_recorded(authority: RegistryAuthority) -> None:
    cert = authority.issue(_csr_pem(generate_tls_key()), kind=CertKind.TLS, gateway=GW1)
    info = inspect_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert info.gateway == GW1 and info.member == PROVIDER
    [record] = authority.store.certificates()
    assert (record.serial, record.kind, record.gateway, record.sha256) == (info.serial, "tls", GW1, info.sha256)
    with pytest.raises(CertificateRequestInvalid, match="registered gateways"):
        authority.issue(_csr_pem(generate_tls_key()), kind=CertKind.TLS, gateway=GatewayId.parse("EE/GOV/70000001/gw9"))


def test_signing_certificates_go_to_registered_members_only(authority: RegistryAuthority) -> None:
    cert = authority.issue(
        _csr_pem(generate_signing_key(), "crossway://EE/GOV/70000002"), kind=CertKind.SIGNING, member=PROVIDER
    )
    assert inspect_certificate(cert.public_bytes(serialization.Encoding.PEM)).member == PROVIDER
    with pytest.raises(CertificateRequestInvalid, match="registered members"):
        authority.issue(_csr_pem(generate_signing_key()), kind=CertKind.SIGNING, member=MemberId.parse("EE/GOV/5"))
    with pytest.raises(CertificateRequestInvalid, match="PKCS#10"):
        authority.issue(b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n", kind=CertKind.SIGNING, member=PROVIDER)


def test_revoking_marks_the_certificate_and_unknown_serials_are_an_error(authority: RegistryAuthority) -> None:
    cert = authority.issue(_csr_pem(generate_tls_key()), kind=CertKind.TLS, gateway=GW1)
    authority.revoke(str(cert.serial_number), "key compromise")
    [record] = authority.store.certificates()
    assert record.revoked and record.revoke_reason == "key compromise"
    with pytest.raises(ConfigError, match="no certificate"):
        authority.revoke("12345", "typo")


def test_groups_and_encryption_keys_are_validated(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="32"):
        authority.set_encryption_key(PROVIDER, b"short")
    with pytest.raises(ConfigError, match="not registered"):
        authority.add_group("EE/x", [PROVIDER.subsystem("missing")])
    authority.add_group("EE/x", [POPULATION])
    assert authority.store.groups()["EE/x"] == [POPULATION]


def test_user_token_keys_are_published_by_thumbprint_with_the_member_id_as_default_issuer(
    authority: RegistryAuthority,
) -> None:
    from crossway.security.tokens import jwk_thumbprint
    from registry import verify_configuration

    key = generate_signing_key("ES256").public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_id = authority.add_user_token_key(CLIENT, pem)
    assert key_id == jwk_thumbprint(key)
    config = verify_configuration(authority.build_configuration(), authority.anchor, authority._clock.now_ms())
    client = config.member(CLIENT)
    assert client is not None and set(client.user_token_keys) == {key_id}
    assert client.user_token_issuer == str(CLIENT)
    provider = config.member(PROVIDER)
    assert provider is not None and not provider.user_token_keys

    authority.set_user_token_issuer(CLIENT, "https://idp.tax.example")
    authority.remove_user_token_key(CLIENT, key_id)
    config = verify_configuration(authority.build_configuration(), authority.anchor, authority._clock.now_ms())
    client = config.member(CLIENT)
    assert client is not None and not client.user_token_keys
    assert client.user_token_issuer == "https://idp.tax.example"


def test_a_user_token_key_must_be_a_public_key_fit_for_jwt_signatures(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="not a PEM or DER public key"):
        authority.add_user_token_key(CLIENT, b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="not registered"):
        der = (
            generate_signing_key("EdDSA")
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        authority.add_user_token_key(MemberId.parse("EE/GOV/404"), der)
    with pytest.raises(ConfigError, match="no user-token key"):
        authority.remove_user_token_key(CLIENT, "nope")
