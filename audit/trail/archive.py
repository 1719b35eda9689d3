"""Payload archiving: each side's request and response bodies, encrypted to the auditors only.

Off by default (``[audit] archive_payloads``). When on, a gateway seals, per audit record, one
``ArchivedPayload`` and publishes it to its own stream (``CROSSWAY_AUDIT_ARCHIVE``, subject
``crossway.archive.<gateway tokens>``, ``Nats-Msg-Id`` = record id), not inside the record: records
stay small and their Merkle leaves unchanged whether archiving is on or off, and a large body
never slows the audit stream. The link is the record itself: the record's ``request_sha256`` /
``response_sha256`` (covered by the signed Merkle checkpoints) must equal the digests of the
opened bodies, and the record id, message id, gateway and side are the AEAD's associated data,
so an archive cannot be swapped onto another record nor altered without the opening failing.

Scheme (multi-recipient envelope; same primitives as ``crossway.security.encryption``):

1. a fresh 256-bit content key encrypts the framed bodies with AES-256-GCM (random nonce);
2. for each auditor public key, an ephemeral X25519 key pair gives ``shared`` (RFC 7748), HKDF-SHA256
   (RFC 5869, ``salt = ephemeral_public || auditor_public``, ``info = b"crossway/v1 archive key"``)
   gives a key-wrapping key, and AES-256-GCM wraps the content key under the same AAD;
3. the content key and the ephemeral private keys are dropped at once: the gateway keeps no key
   that can open an archive, and the plaintext never reaches the queue, the spool or NATS.

Bodies are framed (``u32`` count, then ``u32`` length + bytes per part) so a stream's messages come
back as the parts they were. Errors never contain key, nonce or payload bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.trail.errors import PayloadArchiveInvalid
from audit.trail.record import AuditRecord
from crossway import backbone

__all__ = [
    "ARCHIVE_STREAM",
    "ARCHIVE_SUBJECTS",
    "ArchivedPayload",
    "OpenedPayload",
    "archive_subject",
    "open_payload",
    "seal_payload",
]

ARCHIVE_STREAM: Final = backbone.ARCHIVE_STREAM
ARCHIVE_SUBJECT_PREFIX: Final = backbone.ARCHIVE_PREFIX
ARCHIVE_SUBJECTS: Final = ARCHIVE_SUBJECT_PREFIX + ".>"
_KEY_INFO: Final = b"crossway/v1 archive key"
_NONCE: Final = 12
_FRAME = struct.Struct(">I")


def archive_subject(gateway_id: str) -> str:
    """``crossway.archive.<the gateway's audit subject tokens>``."""
    return backbone.archive_subject(gateway_id)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise PayloadArchiveInvalid(f"archived payload: {what} is not base64") from exc


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _wrapping_key(shared: bytes, ephemeral_public: bytes, auditor_public: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + auditor_public, info=_KEY_INFO)
    return AESGCM(hkdf.derive(shared))


def _frame(parts: Sequence[bytes]) -> list[bytes]:
    out = [_FRAME.pack(len(parts))]
    for part in parts:
        out += (_FRAME.pack(len(part)), bytes(part))
    return out


def _unframe(data: memoryview, offset: int) -> tuple[tuple[bytes, ...], int]:
    def u32(at: int) -> int:
        if at + 4 > len(data):
            raise PayloadArchiveInvalid("archived payload: framing is truncated")
        return int(_FRAME.unpack_from(data, at)[0])

    count, offset = u32(offset), offset + 4
    parts: list[bytes] = []
    for _ in range(count):
        size, offset = u32(offset), offset + 4
        if offset + size > len(data):
            raise PayloadArchiveInvalid("archived payload: framing is truncated")
        parts.append(bytes(data[offset : offset + size]))
        offset += size
    return tuple(parts), offset


@dataclass(frozen=True, slots=True)
class Recipient:
    """The content key wrapped for one auditor key (ids are SHA-256 of the raw public key)."""

    key_id: str
    ephemeral_public: str
    nonce: str
    wrapped_key: str


@dataclass(frozen=True, slots=True)
class ArchivedPayload:
    """One record's bodies, sealed. ``record_id``/``message_id`` also serve the spool and the index."""

    record_id: str
    message_id: str
    gateway: str
    side: str
    recipients: tuple[Recipient, ...]
    nonce: str
    ciphertext: str

    def aad(self) -> bytes:
        return _aad(self.record_id, self.message_id, self.gateway, self.side)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "record_id": self.record_id,
            "message_id": self.message_id,
            "gateway": self.gateway,
            "side": self.side,
            "recipients": [
                {
                    "key_id": r.key_id,
                    "ephemeral_public": r.ephemeral_public,
                    "nonce": r.nonce,
                    "wrapped_key": r.wrapped_key,
                }
                for r in self.recipients
            ],
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ArchivedPayload:
        try:
            doc = json.loads(data)
            recipients = tuple(Recipient(**{k: str(r[k]) for k in Recipient.__slots__}) for r in doc["recipients"])
            return cls(
                **{k: str(doc[k]) for k in ("record_id", "message_id", "gateway", "side", "nonce", "ciphertext")},
                recipients=recipients,
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise PayloadArchiveInvalid(f"archived payload is not well-formed ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class OpenedPayload:
    """The bodies an auditor recovered; each tuple holds the parts as the pipeline saw them."""

    record_id: str
    message_id: str
    side: str
    request: tuple[bytes, ...]
    response: tuple[bytes, ...]

    @property
    def request_sha256(self) -> str:
        return hashlib.sha256(b"".join(self.request)).hexdigest()

    @property
    def response_sha256(self) -> str:
        return hashlib.sha256(b"".join(self.response)).hexdigest()


def _aad(record_id: str, message_id: str, gateway: str, side: str) -> bytes:
    return b"\0".join(
        [b"crossway/v1 archive", record_id.encode(), message_id.encode(), gateway.encode(), side.encode()]
    )


def seal_payload(
    record: AuditRecord, request: Sequence[bytes], response: Sequence[bytes], auditors: Sequence[bytes]
) -> ArchivedPayload:
    """Encrypt one record's bodies to the auditors' raw 32-byte X25519 public keys."""
    if not auditors:
        raise ValueError("payload archiving needs at least one auditor public key")
    aad = _aad(record.record_id, record.message_id, record.gateway, record.side)
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    ciphertext = AESGCM(content_key).encrypt(nonce, b"".join(_frame(request) + _frame(response)), aad)
    recipients = []
    for auditor in auditors:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = _raw(ephemeral.public_key())
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(auditor))
        wrap_nonce = os.urandom(_NONCE)
        wrapped = _wrapping_key(shared, ephemeral_public, auditor).encrypt(wrap_nonce, content_key, aad)
        recipients.append(
            Recipient(hashlib.sha256(auditor).hexdigest(), _b64(ephemeral_public), _b64(wrap_nonce), _b64(wrapped))
        )
    return ArchivedPayload(
        record.record_id,
        record.message_id,
        record.gateway,
        record.side,
        tuple(recipients),
        _b64(nonce),
        _b64(ciphertext),
    )


def open_payload(archived: ArchivedPayload, private_key: X25519PrivateKey) -> OpenedPayload:
    """Open with an auditor's private key; ``PayloadArchiveInvalid`` when it is not for this key or altered."""
    own = _raw(private_key.public_key())
    own_id = hashlib.sha256(own).hexdigest()
    mine = [r for r in archived.recipients if r.key_id == own_id]
    if not mine:
        raise PayloadArchiveInvalid(
            f"archived payload of record {archived.record_id} is not encrypted to this key ({own_id[:16]}…)",
            hint="use the private key of one of the auditor public keys the gateway was configured with",
        )
    aad = archived.aad()
    r = mine[0]
    try:
        ephemeral_public = _unb64(r.ephemeral_public, "ephemeral key")
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        content_key = _wrapping_key(shared, ephemeral_public, own).decrypt(
            _unb64(r.nonce, "nonce"), _unb64(r.wrapped_key, "wrapped key"), aad
        )
        plain = AESGCM(content_key).decrypt(
            _unb64(archived.nonce, "nonce"), _unb64(archived.ciphertext, "ciphertext"), aad
        )
    except InvalidTag as exc:
        raise PayloadArchiveInvalid(
            f"archived payload of record {archived.record_id} does not authenticate: altered or moved to another record"
        ) from exc
    except ValueError as exc:  # a malformed ephemeral key or wrong sizes
        raise PayloadArchiveInvalid(f"archived payload of record {archived.record_id} is malformed") from exc
    view = memoryview(plain)
    request, at = _unframe(view, 0)
    response, at = _unframe(view, at)
    if at != len(view):
        raise PayloadArchiveInvalid(f"archived payload of record {archived.record_id} has trailing bytes")
    return OpenedPayload(archived.record_id, archived.message_id, archived.side, request, response)
