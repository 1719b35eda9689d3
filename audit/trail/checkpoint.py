"""Signed checkpoints of a gateway's audit log, and cosignatures by witnesses (the registry, members).

A checkpoint states "gateway G's log holds ``size`` records with Merkle root ``root``" at a time.
Its text form is a C2SP checkpoint (``c2sp.org/tlog-checkpoint``, see ``audit.trail.note``)::

    crossway.audit/EE/GOV/70000001/gw1
    1234
    <base64 root>
    time_ms 1700000000000

The gateway signs that text with its member signing key (Ed25519, or ECDSA P-256 DER — signed-note
types 0x01 and 0x02); the certificate travels with the checkpoint so it verifies offline, and
``key_id`` is its fingerprint. A witness — the registry, or a member gateway named in the
registry configuration — adds a C2SP Ed25519 cosignature (``c2sp.org/tlog-cosignature`` v1: a
POSIX time and a signature over ``cosignature/v1``, the time and the text) once it has checked the
gateway's signature and that the log only grew since the last checkpoint *it* cosigned.
``note()`` is the whole signed note (text, blank line, the gateway's and the witnesses' signature
lines) that transparency-log tools read. A gateway that showed different logs to different
witnesses would need two cosigned checkpoints that are not consistent; ``audit verify`` names such
a pair (same size, another root) with both checkpoints as proof.

Verifiers are configured with witnesses by key name and Ed25519 key (vkeys); a cosignature counts
when its name and key ID match a trusted witness and its signature verifies — one that matches
and does not verify fails the whole checkpoint — and ``quorum`` distinct witnesses must count.

A checkpoint may also carry an RFC 3161 timestamp token (``timestamp``: the DER TimeStampResp a
time-stamping authority returned for the SHA-256 of ``body()``), added by the registry's
cosigner. It is outside every signature here — the token authenticates itself — and optional.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail.errors import CheckpointInvalid
from audit.trail.note import (
    COSIGNATURE_TYPE,
    checkpoint_origin,
    cosignature_message,
    note_key_id,
    signature_line,
    timestamped,
)
from crossway.core.errors import SignatureInvalid
from crossway.security.keys import load_certificate
from crossway.security.pki import cert_fingerprint, cert_to_pem
from crossway.security.signing import EDDSA, PublicSigningKey, Signer, verify_signature

__all__ = ["Checkpoint", "Cosignature", "cosign", "merge_cosignatures", "sign_checkpoint", "verify_checkpoint"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    # Strict and canonical: base64 decoders ignore the padding bits of the last character, so a
    # non-canonical spelling would be a byte of a checkpoint that no signature covers.
    data = base64.b64decode(text.encode(), validate=True)
    if _b64(data) != text:
        raise ValueError("base64 value is not in canonical form")
    return data


def _timestamp(doc: Mapping[str, Any]) -> bytes:
    if "timestamp" not in doc:
        return b""
    token = _unb64(str(doc["timestamp"]))
    if not token:  # absent is the only spelling of "no token", so no byte of a document is free
        raise ValueError("timestamp is present but empty")
    return token


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A C2SP tlog cosignature: the witness's key name, its 4-byte key ID (hex), the POSIX time
    (kept in milliseconds, whole seconds only: the cosignature signs seconds) and the Ed25519
    signature without the time prefix."""

    name: str  # the witness's key name, e.g. "crossway.registry/EE"
    key_id: str  # hex of SHA-256(name || 0x0A || 0x04 || key)[:4]
    time_ms: int
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key_id": self.key_id, "time_ms": self.time_ms, "signature": _b64(self.signature)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Cosignature:
        cosignature = cls(str(doc["name"]), str(doc["key_id"]), int(doc["time_ms"]), _unb64(str(doc["signature"])))
        if cosignature.time_ms % 1000 or len(bytes.fromhex(cosignature.key_id)) != 4:
            # Whole seconds are what is signed; any other spelling would be bytes no signature covers.
            raise ValueError("a cosignature's time is whole seconds and its key ID 4 bytes")
        return cosignature


@dataclass(frozen=True, slots=True)
class Checkpoint:
    gateway: str
    size: int
    root: bytes
    time_ms: int
    key_id: str
    algorithm: str
    certificate_pem: str
    signature: bytes
    cosignatures: tuple[Cosignature, ...] = ()
    timestamp: bytes = b""  # RFC 3161 TimeStampResp (DER) over body(); empty when unstamped

    @property
    def origin(self) -> str:
        return checkpoint_origin(self.gateway)

    def body(self) -> bytes:
        """The C2SP checkpoint note text: what the gateway signs and every cosignature covers."""
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\ntime_ms {self.time_ms}\n".encode()

    def cosigned_body(self, time_ms: int) -> bytes:
        """What a witness signs (tlog-cosignature v1, Ed25519): the header, its time, the text."""
        return cosignature_message(self.body(), time_ms // 1000)

    def note(self) -> str:
        """The whole C2SP signed note: text, blank line, the gateway's and the witnesses' lines."""
        gateway_key = load_certificate(self.certificate_pem.encode()).public_key()
        lines = [signature_line(self.origin, note_key_id(self.origin, gateway_key), self.signature)]
        lines += [
            signature_line(c.name, bytes.fromhex(c.key_id), timestamped(c.time_ms // 1000, c.signature))
            for c in self.cosignatures
        ]
        return self.body().decode() + "\n" + "".join(lines)

    @property
    def cosigned(self) -> bool:
        return bool(self.cosignatures)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "gateway": self.gateway,
            "size": self.size,
            "root": self.root.hex(),
            "time_ms": self.time_ms,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "certificate_pem": self.certificate_pem,
            "signature": _b64(self.signature),
            "cosignatures": [c.to_dict() for c in self.cosignatures],
        }
        # Only when present: an unstamped checkpoint keeps the exact JSON it had before tokens existed.
        if self.timestamp:
            doc["timestamp"] = _b64(self.timestamp)
        return doc

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Checkpoint:
        try:
            return cls(
                gateway=str(doc["gateway"]),
                size=int(doc["size"]),
                root=bytes.fromhex(str(doc["root"])),
                time_ms=int(doc["time_ms"]),
                key_id=str(doc["key_id"]),
                algorithm=str(doc["algorithm"]),
                certificate_pem=str(doc["certificate_pem"]),
                signature=_unb64(str(doc["signature"])),
                cosignatures=tuple(Cosignature.from_dict(c) for c in doc.get("cosignatures", ())),
                timestamp=_timestamp(doc),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointInvalid(f"checkpoint document is malformed ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def from_json(cls, data: bytes | str) -> Checkpoint:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise CheckpointInvalid(f"checkpoint is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise CheckpointInvalid("checkpoint JSON is not an object")
        return cls.from_dict(doc)


def sign_checkpoint(
    signer: Signer, certificate_pem: str, gateway: str, size: int, root: bytes, time_ms: int
) -> Checkpoint:
    unsigned = Checkpoint(gateway, size, root, time_ms, signer.key_id, signer.algorithm, certificate_pem, b"")
    return replace(unsigned, signature=signer.sign(unsigned.body()))


def cosign(checkpoint: Checkpoint, key: ed25519.Ed25519PrivateKey, name: str, time_ms: int) -> Checkpoint:
    """Add a witness's cosignature (the caller has verified the checkpoint and its consistency first)."""
    time_ms -= time_ms % 1000  # the cosignature signs whole seconds
    key_id = note_key_id(name, key.public_key(), COSIGNATURE_TYPE).hex()
    cosignature = Cosignature(name, key_id, time_ms, key.sign(checkpoint.cosigned_body(time_ms)))
    return replace(checkpoint, cosignatures=(*checkpoint.cosignatures, cosignature))


def merge_cosignatures(first: Checkpoint, second: Checkpoint) -> Checkpoint:
    """One checkpoint with the cosignatures of two copies of it (each witness publishes its own)."""
    if first.body() != second.body() or first.signature != second.signature:
        raise CheckpointInvalid(f"checkpoints of {first.gateway} at size {first.size} differ: not one checkpoint")
    held = {(c.name, c.key_id) for c in first.cosignatures}
    extra = tuple(c for c in second.cosignatures if (c.name, c.key_id) not in held)
    return replace(first, cosignatures=(*first.cosignatures, *extra), timestamp=first.timestamp or second.timestamp)


def verify_checkpoint(
    checkpoint: Checkpoint,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    *,
    require_cosignature: bool = True,
    quorum: int = 1,
) -> int:
    """Check a checkpoint; raise ``CheckpointInvalid`` naming the first failed step. Returns how
    many trusted witnesses cosigned it.

    1. the embedded signing certificate parses and its fingerprint is the checkpoint's key id;
    2. the gateway's signature verifies over the exact text form;
    3. every cosignature whose name and key ID match a trusted witness (``cosigners``: key name
       → Ed25519 key) verifies — others are ignored, as signed notes require — and (when
       required) at least ``quorum`` distinct trusted witnesses cosigned.
    """
    who = f"checkpoint of {checkpoint.gateway} at size {checkpoint.size}"
    # 1. The certificate is the one the key id names.
    try:
        certificate = load_certificate(checkpoint.certificate_pem.encode())
    except Exception as exc:
        raise CheckpointInvalid(f"{who}: the signing certificate does not parse") from exc
    # PEM readers ignore base64 padding bits; only the canonical encoding is accepted, so no byte is free.
    if cert_to_pem(certificate).decode() != checkpoint.certificate_pem:
        raise CheckpointInvalid(f"{who}: the signing certificate is not in canonical PEM form")
    if cert_fingerprint(certificate) != checkpoint.key_id:
        raise CheckpointInvalid(f"{who}: the certificate is not the one key id {checkpoint.key_id} names")
    public: PublicSigningKey = certificate.public_key()  # type: ignore[assignment]
    # 2. The gateway's own signature.
    try:
        verify_signature(
            public, checkpoint.algorithm, checkpoint.body(), checkpoint.signature, key_id=checkpoint.key_id
        )
    except SignatureInvalid as exc:
        raise CheckpointInvalid(f"{who}: the gateway's signature does not verify ({exc.message})") from exc
    # 3. Cosignatures: fail closed on any trusted witness's cosignature that does not verify.
    witnesses: set[str] = set()
    for cosignature in checkpoint.cosignatures:
        key = cosigners.get(cosignature.name)
        if key is None or note_key_id(cosignature.name, key, COSIGNATURE_TYPE).hex() != cosignature.key_id:
            continue  # an unknown key (name and ID must both match a trusted one)
        try:
            verify_signature(key, EDDSA, checkpoint.cosigned_body(cosignature.time_ms), cosignature.signature)
        except SignatureInvalid as exc:
            raise CheckpointInvalid(f"{who}: the cosignature of {cosignature.name} does not verify") from exc
        witnesses.add(cosignature.name)
    if require_cosignature and len(witnesses) < max(1, quorum):
        if not witnesses and quorum <= 1:
            raise CheckpointInvalid(f"{who}: no cosignature from a trusted cosigner (the registry)")
        named = ", ".join(sorted(witnesses)) or "none"
        raise CheckpointInvalid(
            f"{who}: cosigned by {len(witnesses)} of the {quorum} trusted witnesses required (by: {named})"
        )
    return len(witnesses)
