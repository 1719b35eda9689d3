from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from crossway.core.errors import ConfigError, SignatureInvalid
from crossway.security.signing import Signer, sha256, verify_signature

KEY_ID = "ab" * 32
HEADER = b"\x0a\x1a01J00000000000000000000000\x10\x01header bytes"


def _keys() -> list[tuple[str, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey]]:
    return [("ES256", ec.generate_private_key(ec.SECP256R1())), ("EdDSA", ed25519.Ed25519PrivateKey.generate())]


@pytest.mark.parametrize(("algorithm", "key"), _keys())
def test_a_signature_verifies_with_the_signers_public_key(algorithm: str, key: ed25519.Ed25519PrivateKey) -> None:
    signer = Signer(key, KEY_ID)
    assert signer.algorithm == algorithm
    assert signer.key_id == KEY_ID
    verify_signature(key.public_key(), algorithm, HEADER, signer.sign(HEADER), key_id=KEY_ID)


@pytest.mark.parametrize(("algorithm", "key"), _keys())
def test_tampered_data_is_rejected(algorithm: str, key: ed25519.Ed25519PrivateKey) -> None:
    signature = Signer(key, KEY_ID).sign(HEADER)
    with pytest.raises(SignatureInvalid, match=f"{algorithm} signature for key {KEY_ID} does not verify"):
        verify_signature(key.public_key(), algorithm, HEADER + b"x", signature, key_id=KEY_ID)


@pytest.mark.parametrize(("algorithm", "key"), _keys())
def test_a_signature_from_another_key_is_rejected(algorithm: str, key: ed25519.Ed25519PrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else ed25519.Ed25519PrivateKey.generate()
    signature = Signer(other, KEY_ID).sign(HEADER)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_signature(key.public_key(), algorithm, HEADER, signature)


def test_an_ec_key_with_the_eddsa_algorithm_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = Signer(key, KEY_ID).sign(HEADER)
    with pytest.raises(SignatureInvalid, match=f"says EdDSA but key {KEY_ID} is an ES256 key"):
        verify_signature(key.public_key(), "EdDSA", HEADER, signature, key_id=KEY_ID)


def test_an_ed25519_key_with_the_es256_algorithm_is_rejected() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(SignatureInvalid, match="says ES256"):
        verify_signature(key.public_key(), "ES256", HEADER, Signer(key, KEY_ID).sign(HEADER))


@pytest.mark.parametrize("algorithm", ["none", "HS256", "RS256", "es256", ""])
def test_unknown_algorithms_are_rejected(algorithm: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(SignatureInvalid, match="is not allowed"):
        verify_signature(key.public_key(), algorithm, HEADER, Signer(key, KEY_ID).sign(HEADER))


@pytest.mark.parametrize(("algorithm", "key"), _keys())
def test_an_empty_signature_is_rejected(algorithm: str, key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(SignatureInvalid, match="is empty"):
        verify_signature(key.public_key(), algorithm, HEADER, b"")


def test_garbage_instead_of_a_der_signature_is_rejected_not_crashed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureInvalid):
        verify_signature(key.public_key(), "ES256", HEADER, b"\x30\x02\x01")


def test_error_messages_never_contain_the_signature_or_data_bytes() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signature = Signer(key, KEY_ID).sign(HEADER)
    with pytest.raises(SignatureInvalid) as info:
        verify_signature(key.public_key(), "EdDSA", b"other data", signature, key_id=KEY_ID)
    text = str(info.value)
    assert signature.hex() not in text and repr(signature) not in text and "other data" not in text


def test_unsupported_signing_keys_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="secp384r1"):
        Signer(ec.generate_private_key(ec.SECP384R1()), KEY_ID)
    with pytest.raises(ConfigError, match="RSAPrivateKey"):
        Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048), KEY_ID)  # type: ignore[arg-type]


def test_a_signer_cannot_be_changed_after_creation() -> None:
    signer = Signer(ed25519.Ed25519PrivateKey.generate(), KEY_ID)
    with pytest.raises(AttributeError):
        signer._key_id = "other"
    assert "Signer(algorithm='EdDSA'" in repr(signer)


def test_sha256_is_the_standard_digest() -> None:
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
