"""Evidence bundles: one exchange's records with everything needed to check them offline.

A bundle holds, per side, the record's exact bytes, its leaf index, the inclusion proof and the
cosigned checkpoint it is proven against (with the gateway's certificate), plus the cosigners'
public keys. It is canonical JSON (sorted keys, fixed separators), so ``verify_evidence`` can
insist the file is byte-for-byte the canonical form of what it parsed: together with the
signatures and proofs that cover every field, changing any single byte makes verification fail.

``verify_evidence`` steps, each failing closed with ``EvidenceInvalid``:
1. the file is canonical JSON of the known format;
2. the witness keys are well-formed (key name → Ed25519 key); with pinned witnesses (the
   registry's anchor, and the witnesses its configuration names), only those are trusted and
   their quorum applies (without them, the embedded keys and quorum are, and the caller is told
   so); the same for the TSA CA certificates (optional ``tsa_roots``, canonical PEM) and a pinned
   TSA CA;
3. per entry: the record decodes and is of this message and gateway; the checkpoint verifies
   (certificate, gateway signature, a quorum of trusted cosignatures); the inclusion proof links the record's
   leaf hash to the checkpoint's root; a checkpoint's RFC 3161 token, when present, verifies
   (``verify_timestamp``), and is required with ``require_timestamp``;
4. both sides, when present, agree on the fields they share.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import Filters, IndexStore
from audit.index.verify import check_checkpoint_timestamp, compare_sides
from audit.trail import (
    AuditRecord,
    Checkpoint,
    CheckpointInvalid,
    EvidenceInvalid,
    MerkleTree,
    TimestampInvalid,
    leaf_hash,
    verify_checkpoint,
    verify_inclusion,
)
from crossway.security.pki import cert_to_pem

__all__ = ["FORMAT", "EvidenceReport", "build_evidence", "verify_evidence"]

FORMAT = "crossway.audit.evidence/v1"


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def _raw(key: ed25519.Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    message_id: str
    records: tuple[AuditRecord, ...]
    trusted_embedded_keys: bool  # True when no anchor was pinned
    timestamps: tuple[datetime, ...] = ()  # the TSA times of the entries' checkpoints that carry a token
    trusted_embedded_tsa: bool = False  # True when a token was checked against the bundle's own TSA CAs


def build_evidence(
    store: IndexStore,
    message_id: str,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    tsa_roots: Sequence[x509.Certificate] = (),
    *,
    quorum: int = 1,
) -> bytes:
    """The bundle for one message id; raises EvidenceInvalid when a side is not yet provable."""
    rows = store.query(Filters(message_id=message_id))
    if not rows:
        raise EvidenceInvalid(f"no audit record of message {message_id} in the index", hint="check the message id")
    entries: list[dict[str, Any]] = []
    for row in rows:
        checkpoint = _covering(store, row.gateway, row.leaf_index, cosigners, quorum)
        if checkpoint is None:
            raise EvidenceInvalid(
                f"record at leaf {row.leaf_index} of {row.gateway} is not covered by a checkpoint cosigned by "
                f"{quorum} trusted witness(es) yet",
                hint="wait for the next checkpoint (seconds) and export again",
            )
        tree = MerkleTree(
            bytes.fromhex(r.leaf_hash) for r in store.leaves(row.gateway) if r.leaf_index < checkpoint.size
        )
        if tree.size != checkpoint.size or tree.root() != checkpoint.root:
            raise EvidenceInvalid(f"the index's log of {row.gateway} does not match its checkpoint; run audit verify")
        entries.append(
            {
                "gateway": row.gateway,
                "leaf_index": row.leaf_index,
                "record": row.body,
                "proof": [h.hex() for h in tree.inclusion_proof(row.leaf_index, checkpoint.size)],
                "checkpoint": checkpoint.to_dict(),
            }
        )
    doc: dict[str, Any] = {
        "format": FORMAT,
        "message_id": message_id,
        "cosigners": {name: _raw(key) for name, key in sorted(cosigners.items())},
        "entries": entries,
    }
    if quorum > 1:  # only when above one: a bundle of a registry-only federation keeps its old form
        doc["quorum"] = quorum
    # Only when given: a bundle without tokens keeps the exact form older verifiers read.
    if tsa_roots and any(e["checkpoint"].get("timestamp") for e in entries):
        doc["tsa_roots"] = [cert_to_pem(c).decode() for c in tsa_roots]
    return _canonical(doc)


def _covering(
    store: IndexStore, gateway: str, leaf: int, cosigners: Mapping[str, ed25519.Ed25519PublicKey], quorum: int
) -> Checkpoint | None:
    """The largest checkpoint of ``gateway`` that covers ``leaf`` and has its quorum of witnesses."""
    for checkpoint in reversed(store.checkpoints(gateway)):
        if checkpoint.size <= leaf:
            return None
        try:
            verify_checkpoint(checkpoint, cosigners, quorum=quorum)
        except CheckpointInvalid:
            continue  # not (yet) cosigned by enough witnesses: an older one may be
        return checkpoint
    return None


def verify_evidence(
    data: bytes,
    witnesses: Mapping[str, ed25519.Ed25519PublicKey] | None = None,
    *,
    quorum: int = 1,
    tsa_roots: Sequence[x509.Certificate] | None = None,
    require_timestamp: bool = False,
) -> EvidenceReport:
    """``witnesses``: the pinned trust (key name → key: the registry and the configuration's
    witnesses) with its ``quorum``; None trusts the bundle's own keys and quorum."""
    # 1. Canonical JSON of the known format.
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceInvalid("the bundle is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise EvidenceInvalid(f"the bundle is not of format {FORMAT}")
    if _canonical(doc) != data:
        raise EvidenceInvalid("the bundle is not in canonical form: it was edited after export")
    if (
        not {"format", "message_id", "cosigners", "entries"}
        <= set(doc)
        <= {
            "format",
            "message_id",
            "cosigners",
            "entries",
            "tsa_roots",
            "quorum",
        }
    ):
        raise EvidenceInvalid("the bundle has unexpected or missing top-level fields")
    message_id = str(doc["message_id"])
    # 2. Witness keys by name; pinned witnesses narrow trust to themselves, with their quorum.
    trusted: dict[str, ed25519.Ed25519PublicKey] = {}
    try:
        for name, raw in doc["cosigners"].items():
            decoded = base64.b64decode(raw, validate=True)
            if base64.b64encode(decoded).decode() != raw:
                raise EvidenceInvalid(f"the key of witness {name} is not in canonical base64")
            trusted[str(name)] = ed25519.Ed25519PublicKey.from_public_bytes(decoded)
        embedded_quorum = int(doc.get("quorum", 1))
        if "quorum" in doc and embedded_quorum <= 1:
            raise EvidenceInvalid("a quorum in the bundle is above one (one is the default, left out)")
    except (ValueError, TypeError, AttributeError) as exc:
        raise EvidenceInvalid("a witness key or the quorum is malformed") from exc
    if witnesses is not None:
        trusted = dict(witnesses)
    else:
        quorum = embedded_quorum
    roots = _tsa_roots(doc) if tsa_roots is None else list(tsa_roots)
    times: list[datetime] = []
    # 3. Each entry: record, checkpoint, proof.
    records: list[AuditRecord] = []
    entries = doc["entries"]
    if not isinstance(entries, list) or not entries:
        raise EvidenceInvalid("the bundle holds no records")
    for n, entry in enumerate(entries):
        try:
            body = str(entry["record"]).encode()
            record = AuditRecord.from_json(body)
            checkpoint = Checkpoint.from_dict(entry["checkpoint"])
            index = int(entry["leaf_index"])
            proof = [bytes.fromhex(h) for h in entry["proof"]]
            gateway = str(entry["gateway"])
            if set(entry) != {"gateway", "leaf_index", "record", "proof", "checkpoint"}:
                raise EvidenceInvalid(f"entry {n} has unexpected or missing fields")
        except (KeyError, TypeError, ValueError) as exc:
            raise EvidenceInvalid(f"entry {n} is malformed ({type(exc).__name__})") from exc
        if record.message_id != message_id or record.gateway != gateway or checkpoint.gateway != gateway:
            raise EvidenceInvalid(f"entry {n} is not of message {message_id} and gateway {gateway}")
        try:
            verify_checkpoint(checkpoint, trusted, quorum=quorum)
        except CheckpointInvalid as exc:
            raise EvidenceInvalid(f"entry {n}: {exc.message}") from exc
        if not verify_inclusion(index, checkpoint.size, leaf_hash(body), proof, checkpoint.root):
            raise EvidenceInvalid(f"entry {n}: record {record.record_id} is not at leaf {index} of the signed log")
        try:
            stamped = check_checkpoint_timestamp(checkpoint, roots, require_timestamp)
        except TimestampInvalid as exc:
            raise EvidenceInvalid(f"entry {n}: {exc.message}", hint=exc.hint) from exc
        if stamped is not None:
            times.append(stamped)
        records.append(record)
    # 4. Both sides agree.
    by_side = {r.side: r for r in records}
    if len(by_side) != len(records):
        raise EvidenceInvalid("the bundle holds two records of the same side")
    if "client" in by_side and "provider" in by_side:
        differing = compare_sides(by_side["client"], by_side["provider"])
        if differing:
            raise EvidenceInvalid(f"the two sides disagree on {', '.join(differing)}")
    return EvidenceReport(
        message_id, tuple(records), witnesses is None, tuple(times), bool(times) and tsa_roots is None
    )


def _tsa_roots(doc: Mapping[str, Any]) -> list[x509.Certificate]:
    """The bundle's own TSA CA certificates, each in canonical PEM (so no byte of them is free)."""
    pems = doc.get("tsa_roots", [])
    if "tsa_roots" in doc and (not isinstance(pems, list) or not pems):
        raise EvidenceInvalid("the bundle's tsa_roots is not a non-empty list")
    roots: list[x509.Certificate] = []
    for pem in pems:
        try:
            certificate = x509.load_pem_x509_certificate(str(pem).encode())
        except ValueError as exc:
            raise EvidenceInvalid("a TSA CA certificate in the bundle does not parse") from exc
        if cert_to_pem(certificate).decode() != pem:
            raise EvidenceInvalid("a TSA CA certificate in the bundle is not in canonical PEM form")
        # Chain checks take trust anchors as given and never check their own signatures; a
        # bundle's CA must be self-signed and verify, so an edited byte in it cannot pass.
        try:
            certificate.verify_directly_issued_by(certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise EvidenceInvalid("a TSA CA certificate in the bundle is not a self-signed CA that verifies") from exc
        roots.append(certificate)
    return roots
