"""End-to-end body encryption from the client gateway to the provider member.

Scheme (ephemeral-static ECDH, in the spirit of HPKE base mode, RFC 9180, without its framing):

1. the client makes an ephemeral X25519 key pair per exchange and computes
   ``shared = X25519(ephemeral_private, recipient_public)`` (RFC 7748);
2. two AES-256-GCM keys are derived with HKDF-SHA256 (RFC 5869), with
   ``salt = ephemeral_public || recipient_public`` (binds both public keys, so a shared secret
   from another key pair never yields the same keys) and ``info`` = ``b"crossway/v1 request"`` or
   ``b"crossway/v1 response"`` (direction separation: a request frame can never be opened as a
   response frame, and the two directions never reuse a (key, nonce) pair between them);
3. each frame gets a fresh random 12-byte nonce; the caller's AAD (message id + sequence) binds
   the frame to its place in the exchange, so frames cannot be swapped or replayed within it.

The client keeps the ephemeral private key to open the responses, so it needs no key of its own.
Random 96-bit nonces are safe here: one key encrypts the frames of one exchange only, far below
the 2^32-messages bound of NIST SP 800-38D §8.3.

Errors never contain key, nonce or plaintext bytes.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossway.core.errors import DecryptionFailed
from crossway.security.signing import sha256

__all__ = [
    "ClientSession",
    "KEY_SIZE",
    "NONCE_SIZE",
    "PUBLIC_KEY_SIZE",
    "ProviderSession",
    "REQUEST_INFO",
    "RESPONSE_INFO",
    "recipient_key_id",
]

PUBLIC_KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
KEY_SIZE: Final = 32
REQUEST_INFO: Final = b"crossway/v1 request"
RESPONSE_INFO: Final = b"crossway/v1 response"


def recipient_key_id(recipient_public_raw: bytes) -> bytes:
    """The fingerprint put in ``EncryptionInfo.recipient_key_id``: SHA-256 of the raw public key."""
    return sha256(recipient_public_raw)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _derive(shared: bytes, salt: bytes, info: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(shared)
    return AESGCM(key)


def _exchange(private_key: X25519PrivateKey, peer_public_raw: bytes, what: str) -> bytes:
    if len(peer_public_raw) != PUBLIC_KEY_SIZE:
        raise DecryptionFailed(f"{what} is {len(peer_public_raw)} bytes, expected {PUBLIC_KEY_SIZE}")
    try:
        # cryptography rejects all-zero shared secrets (small-order points) with ValueError.
        return private_key.exchange(X25519PublicKey.from_public_bytes(peer_public_raw))
    except Exception as exc:
        raise DecryptionFailed(f"{what} is not a usable X25519 public key") from exc


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_SIZE)
    return nonce, aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    if len(nonce) != NONCE_SIZE:
        raise DecryptionFailed(f"{what} nonce is {len(nonce)} bytes, expected {NONCE_SIZE}")
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionFailed(
            f"{what} does not authenticate: altered, out of place, or encrypted under another key"
        ) from exc
    except Exception as exc:  # fail closed on anything the library raises
        raise DecryptionFailed(f"{what} could not be decrypted ({type(exc).__name__})") from exc


class ClientSession:
    """The client gateway's side of one exchange: seals requests, opens responses."""

    __slots__ = ("_request", "_response", "ephemeral_public", "recipient_key_id")

    def __init__(self, ephemeral_public: bytes, recipient_key_id: bytes, request: AESGCM, response: AESGCM) -> None:
        self.ephemeral_public = ephemeral_public
        self.recipient_key_id = recipient_key_id
        self._request = request
        self._response = response

    def __repr__(self) -> str:
        return f"ClientSession(recipient_key_id={self.recipient_key_id.hex()})"

    @classmethod
    def start(cls, recipient_public_raw: bytes) -> ClientSession:
        """Begin an exchange encrypted to the provider's raw 32-byte X25519 public key."""
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = _raw_public(ephemeral.public_key())
        shared = _exchange(ephemeral, recipient_public_raw, "provider encryption key")
        salt = ephemeral_public + recipient_public_raw
        # The ephemeral private key is dropped here: only the derived keys are kept.
        return cls(
            ephemeral_public,
            recipient_key_id(recipient_public_raw),
            _derive(shared, salt, REQUEST_INFO),
            _derive(shared, salt, RESPONSE_INFO),
        )

    def seal_request(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt one request frame; returns ``(nonce, ciphertext)``."""
        return _seal(self._request, plaintext, aad)

    def open_response(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt one response frame; :class:`DecryptionFailed` when it does not authenticate."""
        return _open(self._response, nonce, ciphertext, aad, "encrypted response frame")


class ProviderSession:
    """The provider gateway's side of one exchange: opens requests, seals responses."""

    __slots__ = ("_request", "_response", "recipient_key_id")

    def __init__(self, recipient_key_id: bytes, request: AESGCM, response: AESGCM) -> None:
        self.recipient_key_id = recipient_key_id
        self._request = request
        self._response = response

    def __repr__(self) -> str:
        return f"ProviderSession(recipient_key_id={self.recipient_key_id.hex()})"

    @classmethod
    def accept(cls, private_key: X25519PrivateKey, ephemeral_public: bytes, recipient_key_id: bytes) -> ProviderSession:
        """Accept an exchange the client encrypted to our key (``EncryptionInfo`` fields)."""
        own_public = _raw_public(private_key.public_key())
        own_id = sha256(own_public)
        # Checked first, so a body for a rotated-out key gets a clear error instead of a tag failure.
        if recipient_key_id != own_id:
            raise DecryptionFailed(
                f"body was encrypted to another key ({recipient_key_id.hex()[:16]}…), not ours ({own_id.hex()[:16]}…)"
            )
        shared = _exchange(private_key, ephemeral_public, "client ephemeral key")
        salt = ephemeral_public + own_public
        return cls(own_id, _derive(shared, salt, REQUEST_INFO), _derive(shared, salt, RESPONSE_INFO))

    def open_request(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt one request frame; :class:`DecryptionFailed` when it does not authenticate."""
        return _open(self._request, nonce, ciphertext, aad, "encrypted request frame")

    def seal_response(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt one response frame; returns ``(nonce, ciphertext)``."""
        return _seal(self._response, plaintext, aad)
