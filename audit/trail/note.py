"""C2SP signed notes, checkpoints and cosignatures: the text forms transparency-log tools read.

- ``c2sp.org/signed-note``: a text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(4-byte key ID || signature)``. Key IDs are the first four bytes of
  SHA-256(key name || 0x0A || signature type || public key) — except ECDSA (type 0x02), whose
  key ID is the truncated SHA-256 of the DER SubjectPublicKeyInfo.
- ``c2sp.org/tlog-checkpoint``: the note text is the origin line, the tree size in decimal and the
  base64 RFC 6962 root hash, then optional extension lines.
- ``c2sp.org/tlog-cosignature`` (Ed25519, type 0x04): the signature is an 8-byte big-endian
  POSIX time followed by an Ed25519 signature over ``cosignature/v1\\n``, ``time <t>\\n`` and the
  whole checkpoint note text.
- verifier keys (vkeys): ``<name>+<hex key ID>+base64(type || public key)``.

Gateways sign their checkpoints with their member signing key: Ed25519 (type 0x01) or ECDSA
P-256 with SHA-256, DER-encoded (type 0x02, as github.com/transparency-dev/witness does).
Witnesses — the registry and member gateways — cosign with Ed25519 keys of their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

__all__ = [
    "COSIGNATURE_TYPE",
    "ECDSA_TYPE",
    "ED25519_TYPE",
    "NoteSignature",
    "Witness",
    "checkpoint_origin",
    "cosignature_message",
    "note_key_id",
    "parse_note",
    "registry_witness_name",
    "signature_line",
]

ED25519_TYPE = 0x01
ECDSA_TYPE = 0x02
COSIGNATURE_TYPE = 0x04
_DASH = "\u2014"


def checkpoint_origin(gateway: str) -> str:
    """A gateway log's origin line and key name: schema-less, no spaces, no plus."""
    return f"crossway.audit/{gateway}"


def registry_witness_name(instance: str) -> str:
    """The registry's name as a witness (key name of its cosignatures)."""
    return f"crossway.registry/{instance}"


def note_key_id(name: str, public_key: object, signature_type: int | None = None) -> bytes:
    """The 4-byte key ID of ``public_key`` under ``name`` (type inferred from the key when None)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).digest()[:4]
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise TypeError(f"no signed-note key type for {type(public_key).__name__}")
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kind = ED25519_TYPE if signature_type is None else signature_type
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw).digest()[:4]


def signature_line(name: str, key_id: bytes, signature: bytes) -> str:
    return f"{_DASH} {name} {base64.b64encode(key_id + signature).decode()}\n"


def cosignature_message(note_text: bytes, time_s: int) -> bytes:
    """What an Ed25519 tlog cosignature (v1) signs."""
    return b"cosignature/v1\ntime " + str(time_s).encode() + b"\n" + note_text


def timestamped(time_s: int, signature: bytes) -> bytes:
    """A cosignature's signature field: big-endian u64 time, then the Ed25519 signature."""
    return struct.pack(">Q", time_s) + signature


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes  # what follows the key ID


def parse_note(note: str) -> tuple[bytes, list[NoteSignature]]:
    """A signed note's text (with its final newline) and its signature lines, strictly."""
    if "\n\n" not in note or not note.endswith("\n"):
        raise ValueError("a signed note is its text, a blank line and signature lines")
    text, _, block = note.rpartition("\n\n")
    signatures = []
    for line in block[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != _DASH or not name or not encoded:
            raise ValueError(f"not a signature line: {line[:80]!r}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError("a signature is not base64") from exc
        if len(raw) < 5:
            raise ValueError("a signature is shorter than its key ID")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return (text + "\n").encode(), signatures


@dataclass(frozen=True, slots=True)
class Witness:
    """A cosigner a verifier trusts: its key name and Ed25519 public key (a C2SP vkey)."""

    name: str
    public_key: ed25519.Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.public_key, COSIGNATURE_TYPE)

    @property
    def vkey(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([COSIGNATURE_TYPE]) + raw).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Witness:
        """Parse ``<name>+<hex key ID>+base64(0x04 || key)``; the key ID must match."""
        try:
            name, key_hex, encoded = vkey.strip().split("+", 2)
            material = base64.b64decode(encoded, validate=True)
            if len(material) != 33 or material[0] != COSIGNATURE_TYPE:
                raise ValueError("not an Ed25519 cosignature (type 0x04) key")
            witness = cls(name, ed25519.Ed25519PublicKey.from_public_bytes(material[1:]))
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"not a witness verifier key: {exc}") from exc
        if not name or witness.key_id.hex() != key_hex.lower():
            raise ValueError("the verifier key's ID does not match its name and key")
        return witness
