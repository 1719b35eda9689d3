"""Signed checkpoints of a gateway's audit log, and cosignatures by the registry (or peers).

A checkpoint states "gateway G's log holds ``size`` records with Merkle root ``root``" at a time.
The gateway signs its text form with its member signing key (ES256 or EdDSA, the same key that
signs exchanges; the certificate travels with the checkpoint so it verifies offline). A cosigner —
the registry, with the Ed25519 key gateways already pin as their anchor — signs the same text
once it has checked the gateway's signature and that the log only grew since the last checkpoint
it saw. A gateway that showed different logs to different people would need two cosigned
checkpoints that are not consistent, which the cosigner refuses to sign.

A checkpoint may also carry an RFC 3161 timestamp token (``timestamp``: the DER TimeStampResp a
time-stamping authority returned for the SHA-256 of ``body()``), added by the cosigner. It is
outside every signature here — the token authenticates itself — and optional: checkpoints
written before it existed, or while the TSA was down, simply have none (``audit.index.timestamp``
checks it).

The text form is line-based and exact (like a transparency-log checkpoint)::

    crossway.audit.checkpoint/v1
    gateway EE/GOV/70000001/gw1
    size 1234
    root <64 hex>
    time_ms 1700000000000
    key_id <sha256 hex of the signing certificate>
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail.errors import CheckpointInvalid
from crossway.core.errors import SignatureInvalid
from crossway.security.keys import load_certificate
from crossway.security.pki import cert_fingerprint, cert_to_pem
from crossway.security.signing import EDDSA, PublicSigningKey, Signer, verify_signature

__all__ = ["Checkpoint", "Cosignature", "cosign", "sign_checkpoint", "verify_checkpoint"]

_HEADER = "crossway.audit.checkpoint/v1"
_COSIGN_HEADER = b"crossway.audit.cosignature/v1\n"


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
    name: str  # who cosigned, e.g. "registry EE"
    key_id: str  # registry_key_id() of the cosigner's Ed25519 key
    time_ms: int
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key_id": self.key_id, "time_ms": self.time_ms, "signature": _b64(self.signature)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Cosignature:
        return cls(str(doc["name"]), str(doc["key_id"]), int(doc["time_ms"]), _unb64(str(doc["signature"])))


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

    def body(self) -> bytes:
        """The exact bytes the gateway signs."""
        return (
            f"{_HEADER}\ngateway {self.gateway}\nsize {self.size}\nroot {self.root.hex()}\n"
            f"time_ms {self.time_ms}\nkey_id {self.key_id}\n"
        ).encode()

    def cosigned_body(self, name: str, key_id: str, time_ms: int) -> bytes:
        """What a cosigner signs: the checkpoint, the gateway's signature, who cosigned and when."""
        tail = f"signature {_b64(self.signature)}\ncosigner {name}\ncosigner_key {key_id}\ncosigned_ms {time_ms}\n"
        return _COSIGN_HEADER + self.body() + tail.encode()

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


def cosign(checkpoint: Checkpoint, key: ed25519.Ed25519PrivateKey, name: str, key_id: str, time_ms: int) -> Checkpoint:
    """Add a cosignature (the caller has verified the checkpoint and its consistency first)."""
    signature = key.sign(checkpoint.cosigned_body(name, key_id, time_ms))
    cosignature = Cosignature(name, key_id, time_ms, signature)
    return replace(checkpoint, cosignatures=(*checkpoint.cosignatures, cosignature))


def verify_checkpoint(
    checkpoint: Checkpoint,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    *,
    require_cosignature: bool = True,
) -> None:
    """Check a checkpoint; raise ``CheckpointInvalid`` naming the first failed step.

    1. the embedded signing certificate parses and its fingerprint is the checkpoint's key id;
    2. the gateway's signature verifies over the exact text form;
    3. (when required) at least one cosignature is from a trusted cosigner key, and every
       cosignature claiming a trusted key verifies.
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
    # 3. Cosignatures: fail closed on any trusted-key cosignature that does not verify.
    trusted = 0
    for cosignature in checkpoint.cosignatures:
        key = cosigners.get(cosignature.key_id)
        if key is None:
            continue
        try:
            body = checkpoint.cosigned_body(cosignature.name, cosignature.key_id, cosignature.time_ms)
            verify_signature(key, EDDSA, body, cosignature.signature)
        except SignatureInvalid as exc:
            raise CheckpointInvalid(f"{who}: the cosignature of {cosignature.name} does not verify") from exc
        trusted += 1
    if require_cosignature and trusted == 0:
        raise CheckpointInvalid(f"{who}: no cosignature from a trusted cosigner (the registry)")
