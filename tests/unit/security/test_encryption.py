from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossway.core.errors import DecryptionFailed
from crossway.security.encryption import ClientSession, ProviderSession, recipient_key_id


def _raw(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pair() -> tuple[ClientSession, ProviderSession]:
    provider_key = X25519PrivateKey.generate()
    client = ClientSession.start(_raw(provider_key))
    return client, ProviderSession.accept(provider_key, client.ephemeral_public, client.recipient_key_id)


def test_a_request_sealed_by_the_client_opens_at_the_provider() -> None:
    client, provider = _pair()
    nonce, ciphertext = client.seal_request(b"person 38001010000", b"msg-1/0")
    assert len(nonce) == 12 and b"38001010000" not in ciphertext
    assert provider.open_request(nonce, ciphertext, b"msg-1/0") == b"person 38001010000"


def test_a_response_sealed_by_the_provider_opens_at_the_client() -> None:
    client, provider = _pair()
    nonce, ciphertext = provider.seal_response(b"name: Mari", b"msg-1/resp/0")
    assert client.open_response(nonce, ciphertext, b"msg-1/resp/0") == b"name: Mari"


def test_session_fields_match_the_encryption_info_contract() -> None:
    provider_key = X25519PrivateKey.generate()
    client = ClientSession.start(_raw(provider_key))
    assert len(client.ephemeral_public) == 32
    assert client.recipient_key_id == recipient_key_id(_raw(provider_key))
    assert len(client.recipient_key_id) == 32


def test_every_frame_gets_a_fresh_nonce() -> None:
    client, _ = _pair()
    nonces = {client.seal_request(b"x", b"a")[0] for _ in range(100)}
    assert len(nonces) == 100


def test_a_body_encrypted_to_another_key_is_refused_by_key_id() -> None:
    client = ClientSession.start(_raw(X25519PrivateKey.generate()))
    with pytest.raises(DecryptionFailed, match="encrypted to another key"):
        ProviderSession.accept(X25519PrivateKey.generate(), client.ephemeral_public, client.recipient_key_id)


def test_a_wrong_private_key_with_a_forged_key_id_cannot_open_the_body() -> None:
    client = ClientSession.start(_raw(X25519PrivateKey.generate()))
    nonce, ciphertext = client.seal_request(b"secret", b"aad")
    other = X25519PrivateKey.generate()
    provider = ProviderSession.accept(other, client.ephemeral_public, recipient_key_id(_raw(other)))
    with pytest.raises(DecryptionFailed, match="does not authenticate"):
        provider.open_request(nonce, ciphertext, b"aad")


def test_tampered_ciphertext_is_rejected() -> None:
    client, provider = _pair()
    nonce, ciphertext = client.seal_request(b"payload", b"aad")
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(DecryptionFailed, match="does not authenticate"):
        provider.open_request(nonce, tampered, b"aad")


def test_a_frame_with_the_wrong_aad_is_rejected() -> None:
    client, provider = _pair()
    nonce, ciphertext = client.seal_request(b"payload", b"msg-1/1")
    with pytest.raises(DecryptionFailed):
        provider.open_request(nonce, ciphertext, b"msg-1/2")


def test_swapped_frames_are_rejected_because_aad_binds_their_position() -> None:
    client, provider = _pair()
    first = client.seal_request(b"frame one", b"msg-1/1")
    second = client.seal_request(b"frame two", b"msg-1/2")
    with pytest.raises(DecryptionFailed):
        provider.open_request(*second, b"msg-1/1")
    with pytest.raises(DecryptionFailed):
        provider.open_request(*first, b"msg-1/2")


def test_a_request_frame_cannot_be_reflected_as_a_response() -> None:
    client, _ = _pair()
    nonce, ciphertext = client.seal_request(b"payload", b"aad")
    with pytest.raises(DecryptionFailed):
        client.open_response(nonce, ciphertext, b"aad")


def test_a_frame_from_another_exchange_is_rejected() -> None:
    provider_key = X25519PrivateKey.generate()
    first = ClientSession.start(_raw(provider_key))
    second = ClientSession.start(_raw(provider_key))
    provider = ProviderSession.accept(provider_key, second.ephemeral_public, second.recipient_key_id)
    with pytest.raises(DecryptionFailed):
        provider.open_request(*first.seal_request(b"payload", b"aad"), b"aad")


def test_malformed_keys_and_nonces_are_decryption_failures() -> None:
    with pytest.raises(DecryptionFailed, match="expected 32"):
        ClientSession.start(b"short")
    provider_key = X25519PrivateKey.generate()
    with pytest.raises(DecryptionFailed, match="not a usable X25519"):
        ProviderSession.accept(provider_key, bytes(32), recipient_key_id(_raw(provider_key)))
    client, provider = _pair()
    _, ciphertext = client.seal_request(b"payload", b"aad")
    with pytest.raises(DecryptionFailed, match="nonce is 3 bytes"):
        provider.open_request(b"abc", ciphertext, b"aad")


def test_errors_never_contain_plaintext_or_key_bytes() -> None:
    client, provider = _pair()
    nonce, ciphertext = client.seal_request(b"very private", b"aad")
    with pytest.raises(DecryptionFailed) as info:
        provider.open_request(nonce, ciphertext, b"other")
    text = str(info.value)
    assert "very private" not in text and ciphertext.hex() not in text and nonce.hex() not in text
    assert client.ephemeral_public.hex() not in repr(client)
