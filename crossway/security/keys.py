"""Private and public keys on disk: generation, atomic 0600 files, loading with clear errors.

Private keys never leave the machine that generated them (the registry only ever sees CSRs),
so this module is where the file-permission and no-secrets-in-messages rules are enforced.
Every error names the file, never the key bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from crossway.core.errors import ConfigError

__all__ = [
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "generate_signing_key",
    "generate_tls_key",
    "generate_x25519_key",
    "key_fingerprint",
    "load_certificate",
    "load_private_key",
    "load_public_key",
    "load_x25519_public_raw",
    "save_pem",
    "save_private_key",
    "write_text_atomically",
    "x25519_public_raw",
]

SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PrivateKey: TypeAlias = PrivateKeyTypes
PublicKey: TypeAlias = PublicKeyTypes

_ALGORITHMS = ("ES256", "EdDSA")


def generate_signing_key(algorithm: str = "ES256") -> SigningKey:
    """A message-signing key: EC P-256 for ``ES256`` or Ed25519 for ``EdDSA`` (RFC 8037)."""
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(
        f"unknown signing algorithm {algorithm!r}",
        hint=f"use one of {', '.join(_ALGORITHMS)}",
    )


def generate_x25519_key() -> x25519.X25519PrivateKey:
    """An X25519 key that clients encrypt bodies to (ECDH, RFC 7748)."""
    return x25519.X25519PrivateKey.generate()


def generate_tls_key() -> ec.EllipticCurvePrivateKey:
    """A gateway TLS key; P-256 because every TLS 1.3 stack (incl. gRPC's BoringSSL) supports it."""
    return ec.generate_private_key(ec.SECP256R1())


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # Create the temporary file with the final mode from the start (os.open with 0o600), so the
    # key is never readable by others, not even for the instant between write and chmod.
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path | str, text: str, mode: int = 0o600) -> None:
    """Replace a file's content at once (readers never see half a file), created with ``mode``."""
    _write_atomically(Path(path), text.encode(), mode)


def save_private_key(path: Path | str, key: PrivateKey, passphrase: bytes | None = None) -> None:
    """Write ``key`` as PEM PKCS#8, encrypted when a passphrase is given, atomically, mode 0600."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _write_atomically(Path(path), pem, 0o600)


def save_pem(path: Path | str, item: x509.Certificate | x509.CertificateSigningRequest | PublicKey) -> None:
    """Write a certificate, CSR or public key as PEM (public material: mode 0644)."""
    if isinstance(item, x509.Certificate | x509.CertificateSigningRequest):
        data = item.public_bytes(serialization.Encoding.PEM)
    else:
        data = item.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_atomically(Path(path), data, 0o644)


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}",
            hint="check the path and the file's permissions",
        ) from exc


def load_private_key(path: Path | str, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM private key; a wrong or missing passphrase is a ConfigError naming the file."""
    data = _read(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        # cryptography raises TypeError when a passphrase is missing or given for a plain key.
        hint = "give the key's passphrase" if passphrase is None else "this key is not encrypted; omit the passphrase"
        raise ConfigError(f"private key file {str(path)!r} cannot be opened as given", hint=hint) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"private key file {str(path)!r} is not a readable PEM private key, or the passphrase is wrong",
            hint="check the file and its passphrase",
        ) from exc


def load_public_key(data_or_path: bytes | Path | str) -> PublicKey:
    """Load a PEM or DER SubjectPublicKeyInfo public key from bytes or a file."""
    data = data_or_path if isinstance(data_or_path, bytes) else _read(data_or_path, "public key")
    try:
        if data.lstrip().startswith(b"-----"):
            return serialization.load_pem_public_key(data)
        return serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        where = "" if isinstance(data_or_path, bytes) else f" in {str(data_or_path)!r}"
        raise ConfigError(f"not a PEM or DER public key{where}", hint="export the public key as PEM") from exc


def load_certificate(data_or_path: bytes | Path | str) -> x509.Certificate:
    """Load one PEM or DER X.509 certificate from bytes or a file."""
    data = data_or_path if isinstance(data_or_path, bytes) else _read(data_or_path, "certificate")
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        where = "" if isinstance(data_or_path, bytes) else f" in {str(data_or_path)!r}"
        raise ConfigError(f"not a PEM or DER X.509 certificate{where}", hint="check the certificate file") from exc


def x25519_public_raw(key: x25519.X25519PrivateKey | x25519.X25519PublicKey) -> bytes:
    """The raw 32-byte X25519 public key, as carried in the registry document."""
    public = key.public_key() if isinstance(key, x25519.X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_x25519_public_raw(raw: bytes) -> x25519.X25519PublicKey:
    """Parse a raw 32-byte X25519 public key."""
    if len(raw) != 32:
        raise ConfigError(
            f"an X25519 public key is 32 raw bytes, got {len(raw)}",
            hint="export the key with x25519_public_raw or as PEM",
        )
    return x25519.X25519PublicKey.from_public_bytes(raw)


def key_fingerprint(public_key: PublicKey) -> str:
    """SHA-256 hex of the DER SubjectPublicKeyInfo; of the raw 32 bytes for X25519.

    X25519 keys travel raw (protocol field ``recipient_key_id``), so their id is computed over
    what the peer actually has; other keys use the SPKI so the id covers the algorithm too.
    """
    if isinstance(public_key, x25519.X25519PublicKey):
        data = x25519_public_raw(public_key)
    else:
        data = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(data).hexdigest()
