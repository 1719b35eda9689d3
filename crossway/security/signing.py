"""JWS-style detached signatures over envelope header bytes.

The envelope's signature covers exactly the serialized ``Header`` bytes as sent (see
``protos/crossway/v1/envelope.proto``); the header carries the body's SHA-256, so one signature
binds both. Two algorithms, named as in JWS (RFC 7518 §3.4, RFC 8037):

- ``ES256``: ECDSA over P-256 with SHA-256. The signature value is **DER-encoded** (the form
  ``cryptography`` produces and X.509 tooling reads), not the fixed 64-byte ``r||s`` of compact
  JWS — the envelope carries the algorithm next to the value, so nothing has to guess.
- ``EdDSA``: Ed25519 (RFC 8032), 64 raw bytes.

Verification fails closed: any exception while verifying becomes :class:`SignatureInvalid`, and
messages name the algorithm and key id, never signature or data bytes.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from crossway.core.errors import ConfigError, SignatureInvalid

__all__ = [
    "ALGORITHMS",
    "ES256",
    "EDDSA",
    "PrivateSigningKey",
    "PublicSigningKey",
    "Signer",
    "algorithm_for_key",
    "sha256",
    "verify_signature",
]

ES256: Final = "ES256"
EDDSA: Final = "EdDSA"
ALGORITHMS: Final = frozenset({ES256, EDDSA})

PrivateSigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicSigningKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# Built once: the signature algorithm object is immutable and reused on every call.
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data`` (32 bytes)."""
    return hashlib.sha256(data).digest()


def algorithm_for_key(key: PrivateSigningKey | PublicSigningKey) -> str:
    """The JWS algorithm name for a key; :class:`ConfigError` for any other key type or curve."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return EDDSA
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        # ES256 is defined for P-256 only; other curves would need ES384/ES512, which we do not offer.
        if isinstance(key.curve, ec.SECP256R1):
            return ES256
        raise ConfigError(
            f"signing key is on curve {key.curve.name}; only P-256 (ES256) and Ed25519 (EdDSA) are supported",
            hint="issue the member a P-256 or Ed25519 signing key",
        )
    raise ConfigError(
        f"signing key type {type(key).__name__} is not supported; use P-256 (ES256) or Ed25519 (EdDSA)",
        hint="issue the member a P-256 or Ed25519 signing key",
    )


class Signer:
    """Signs bytes with one member signing key; ``key_id`` names the signing certificate.

    ``key_id`` is the SHA-256 hex of the signing certificate's DER, supplied by the caller (the
    key store knows the certificate; this module does not parse certificates).
    """

    __slots__ = ("_algorithm", "_key", "_key_id")

    def __init__(self, private_key: PrivateSigningKey, key_id: str) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise ConfigError("signer key id is empty", hint="pass the SHA-256 hex of the signing certificate")
        self._algorithm = algorithm_for_key(private_key)
        self._key = private_key
        self._key_id = key_id

    def __setattr__(self, name: str, value: object) -> None:
        # Frozen after __init__: a signer shared across tasks must not change key under them.
        if hasattr(self, "_key_id"):
            raise AttributeError("Signer is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # Never show the key object (its repr is harmless today, but keep secrets out of logs by design).
        return f"Signer(algorithm={self._algorithm!r}, key_id={self._key_id!r})"

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> PublicSigningKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        """A detached signature over ``data`` (DER for ES256, 64 raw bytes for EdDSA)."""
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        return key.sign(data, _ECDSA_SHA256)


def verify_signature(
    public_key: PublicSigningKey,
    algorithm: str,
    data: bytes,
    signature: bytes,
    *,
    key_id: str = "",
) -> None:
    """Check a detached signature; return on success, raise :class:`SignatureInvalid` otherwise.

    Steps, each failing closed:
    1. the algorithm is one we offer;
    2. the signature is not empty;
    3. the key type matches the algorithm (no EC key with "EdDSA" and the reverse);
    4. the signature verifies over exactly ``data``.

    ``key_id`` only labels the error message (the certificate fingerprint the caller looked up).
    """
    who = f" for key {key_id}" if key_id else ""
    # 1. Unknown algorithm names are refused before anything else is looked at.
    if algorithm not in ALGORITHMS:
        raise SignatureInvalid(f"signature algorithm {algorithm!r}{who} is not allowed (ES256 or EdDSA)")
    # 2. An empty value is never a valid signature; refuse it explicitly rather than lean on the library.
    if not signature:
        raise SignatureInvalid(f"{algorithm} signature{who} is empty")
    # 3. Algorithm confusion: the algorithm must be the one the key itself implies.
    try:
        key_algorithm = algorithm_for_key(public_key)
    except ConfigError as exc:
        raise SignatureInvalid(f"{algorithm} signature{who}: the registered key is of an unsupported type") from exc
    if key_algorithm != algorithm:
        key_label = f"key {key_id}" if key_id else "the key"
        raise SignatureInvalid(f"signature says {algorithm} but {key_label} is an {key_algorithm} key")
    # 4. Verify; any exception at all (bad DER, wrong length, library error) means "does not verify".
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            public_key.verify(signature, data, _ECDSA_SHA256)
    except InvalidSignature as exc:
        raise SignatureInvalid(f"{algorithm} signature{who} does not verify") from exc
    except Exception as exc:
        raise SignatureInvalid(f"{algorithm} signature{who} could not be checked ({type(exc).__name__})") from exc
