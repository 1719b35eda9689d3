"""Key files: atomic 0600 writes, clear errors that name the file and never the key."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from crossway.core.errors import ConfigError
from crossway.security.keys import (
    generate_signing_key,
    generate_tls_key,
    generate_x25519_key,
    key_fingerprint,
    load_certificate,
    load_private_key,
    load_public_key,
    load_x25519_public_raw,
    save_pem,
    save_private_key,
    x25519_public_raw,
)
from crossway.security.pki import cert_to_pem, create_ca


def test_signing_keys_are_p256_for_es256_and_ed25519_for_eddsa() -> None:
    es = generate_signing_key("ES256")
    assert isinstance(es, ec.EllipticCurvePrivateKey) and isinstance(es.curve, ec.SECP256R1)
    assert isinstance(generate_signing_key("EdDSA"), ed25519.Ed25519PrivateKey)


def test_an_unknown_signing_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError, match="RS256"):
        generate_signing_key("RS256")


def test_a_saved_private_key_is_mode_0600_and_loads_back(tmp_path: Path) -> None:
    key = generate_tls_key()
    path = tmp_path / "keys" / "tls.key"
    save_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_fingerprint(load_private_key(path).public_key()) == key_fingerprint(key.public_key())
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_wrong_passphrase_names_the_file_and_not_the_key(tmp_path: Path) -> None:
    path = tmp_path / "sign.key"
    save_private_key(path, generate_signing_key(), passphrase=b"correct horse")
    assert b"ENCRYPTED" in path.read_bytes()
    with pytest.raises(ConfigError) as info:
        load_private_key(path, passphrase=b"wrong")
    assert str(path) in info.value.message
    assert "BEGIN" not in str(info.value)
    with pytest.raises(ConfigError, match="passphrase"):
        load_private_key(path)


def test_a_missing_key_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.key"):
        load_private_key(tmp_path / "nope.key")


def test_certificates_and_public_keys_load_from_pem_and_der(tmp_path: Path) -> None:
    key = generate_tls_key()
    ca = create_ca("EE", key)
    save_pem(tmp_path / "ca.pem", ca)
    save_pem(tmp_path / "ca.pub", key.public_key())
    assert load_certificate(tmp_path / "ca.pem") == ca
    assert load_certificate(cert_to_pem(ca)) == ca
    assert load_certificate(ca.public_bytes(serialization.Encoding.DER)) == ca
    assert key_fingerprint(load_public_key(tmp_path / "ca.pub")) == key_fingerprint(key.public_key())
    with pytest.raises(ConfigError):
        load_certificate(b"not a certificate")


def test_x25519_keys_round_trip_as_32_raw_bytes_and_are_fingerprinted_raw() -> None:
    key = generate_x25519_key()
    raw = x25519_public_raw(key)
    assert len(raw) == 32
    assert x25519_public_raw(load_x25519_public_raw(raw)) == raw
    assert key_fingerprint(key.public_key()) == hashlib.sha256(raw).hexdigest()
    with pytest.raises(ConfigError, match="32"):
        load_x25519_public_raw(raw[:31])
