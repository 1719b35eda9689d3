"""The auditor's evidence bundle of one registered delivery: every event, in every gateway log that holds it.

Built from the index: for the message (its delivery key, ``SENDER_SUBSYSTEM/MESSAGE_ID``), each
``delivery`` record of each gateway — the sender's and the recipient's both log every event of
the timeline — with its leaf index, an inclusion proof, and that gateway's latest cosigned
checkpoint; plus the cosigners' public keys. Canonical JSON (format
``crossway.delivery.evidence/v1``)::

    {"format": …, "message": "<sender>/<message id>",
     "cosigners": {<witness key name>: <raw Ed25519 key, base64>},
     "quorum": n,                                   # only when above one
     "logs": {<gateway>: {"checkpoint": {…cosigned checkpoint…},
                          "entries": [{"leaf_index": n, "record": "<record JSON>", "proof": [hex, …]}]}}}

``verify_delivery_evidence`` steps, each failing closed with ``EvidenceInvalid``:
1. the file is canonical JSON of this format with exactly these fields, at every level;
2. the witness keys are well formed (key name → Ed25519 key); pinned witnesses (the registry's
   anchor and the witnesses its configuration names) narrow trust to themselves, with their quorum;
3. per log: its checkpoint is exactly the canonical form of what it parses to and verifies
   (the gateway's certificate and signature, a quorum of trusted cosignatures); per entry: the record is a
   ``delivery`` record of this gateway and message, and its inclusion proof reaches the root;
4. the events the records carry: one event held by two logs is byte-identical in both; each was
   issued by a gateway whose log is in the bundle, signed with that gateway's checkpoint key
   (certified by the registry's cosignature) and its signature verifies; and the issuer's own
   log holds it;
5. the events form one chain of this message (``order_chain``).
Any single changed byte breaks one of these.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import Filters, IndexStore
from audit.trail import (
    AuditRecord,
    AuditRecordInvalid,
    Checkpoint,
    CheckpointInvalid,
    EvidenceInvalid,
    MerkleTree,
    SignedEvent,
    leaf_hash,
    order_chain,
    verify_checkpoint,
    verify_inclusion,
)
from crossway.security.keys import load_certificate

__all__ = [
    "DELIVERY_FORMAT",
    "DeliveryEvidenceReport",
    "LogPart",
    "assemble_delivery_evidence",
    "build_delivery_evidence",
    "verify_delivery_evidence",
]

DELIVERY_FORMAT = "crossway.delivery.evidence/v1"


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def _raw(key: ed25519.Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True, slots=True)
class DeliveryEvidenceReport:
    message: str
    events: tuple[SignedEvent, ...]  # in chain order
    holders: Mapping[str, tuple[str, ...]]  # evidence id → the gateways whose logs hold it
    trusted_embedded_keys: bool  # True when no anchor was pinned

    @property
    def both_sides_hold_everything(self) -> bool:
        gateways = {g for held in self.holders.values() for g in held}
        return len(gateways) >= 2 and all(set(held) == gateways for held in self.holders.values())


@dataclass(frozen=True, slots=True)
class LogPart:
    """One gateway's share of a bundle: its cosigned checkpoint, its log's leaves up to it, and
    the (leaf index, record bytes) of this message's delivery records in it."""

    checkpoint: Checkpoint
    tree: MerkleTree
    records: tuple[tuple[int, str], ...]


def assemble_delivery_evidence(
    message: str, cosigners: Mapping[str, ed25519.Ed25519PublicKey], logs: Mapping[str, LogPart], *, quorum: int = 1
) -> bytes:
    """The canonical bundle from its parts (what ``build_delivery_evidence`` gathers from the index)."""
    out: dict[str, Any] = {}
    for gateway, part in sorted(logs.items()):
        size = part.checkpoint.size
        if part.tree.size != size or part.tree.root() != part.checkpoint.root:
            raise EvidenceInvalid(f"the log of {gateway} does not match its checkpoint; run audit verify")
        if any(index >= size for index, _ in part.records):
            raise EvidenceInvalid(
                f"the delivery records of {gateway} are not covered by a cosigned checkpoint yet",
                hint="wait for the next checkpoint (seconds) and export again",
            )
        out[gateway] = {
            "checkpoint": part.checkpoint.to_dict(),
            "entries": [
                {
                    "leaf_index": index,
                    "record": body,
                    "proof": [h.hex() for h in part.tree.inclusion_proof(index, size)],
                }
                for index, body in sorted(part.records)
            ],
        }
    doc: dict[str, Any] = {
        "format": DELIVERY_FORMAT,
        "message": message,
        "cosigners": {name: _raw(key) for name, key in sorted(cosigners.items())},
        "logs": out,
    }
    if quorum > 1:  # only when above one, as in the exchange bundle
        doc["quorum"] = quorum
    return _canonical(doc)


def build_delivery_evidence(
    store: IndexStore, message: str, cosigners: Mapping[str, ed25519.Ed25519PublicKey], *, quorum: int = 1
) -> bytes:
    """The bundle for one delivery key; raises EvidenceInvalid when part of it is not provable yet."""
    rows = [
        r for r in store.query(Filters(message_id=message)) if r.record().side == "delivery" and r.record().evidence
    ]
    if not rows:
        raise EvidenceInvalid(f"no delivery evidence of message {message} in the index", hint="check SENDER/MESSAGE_ID")
    parts: dict[str, LogPart] = {}
    for gateway in sorted({r.gateway for r in rows}):
        records = tuple((r.leaf_index, r.body) for r in rows if r.gateway == gateway)
        checkpoint = _covering(store, gateway, max(i for i, _ in records), cosigners, quorum)
        if checkpoint is None:
            raise EvidenceInvalid(
                f"the delivery records of {gateway} are not covered by a checkpoint cosigned by {quorum} "
                "trusted witness(es) yet",
                hint="wait for the next checkpoint (seconds) and export again",
            )
        tree = MerkleTree(bytes.fromhex(r.leaf_hash) for r in store.leaves(gateway) if r.leaf_index < checkpoint.size)
        parts[gateway] = LogPart(checkpoint, tree, records)
    return assemble_delivery_evidence(message, cosigners, parts, quorum=quorum)


def _covering(
    store: IndexStore, gateway: str, leaf: int, cosigners: Mapping[str, ed25519.Ed25519PublicKey], quorum: int
) -> Checkpoint | None:
    """The largest checkpoint of ``gateway`` covering ``leaf`` that its quorum of witnesses cosigned."""
    for checkpoint in reversed(store.checkpoints(gateway)):
        if checkpoint.size <= leaf:
            return None
        try:
            verify_checkpoint(checkpoint, cosigners, quorum=quorum)
        except CheckpointInvalid:
            continue
        return checkpoint
    return None


def _embedded_witnesses(doc: Mapping[str, Any]) -> tuple[dict[str, ed25519.Ed25519PublicKey], int]:
    trusted: dict[str, ed25519.Ed25519PublicKey] = {}
    if not isinstance(doc["cosigners"], dict):
        raise EvidenceInvalid("the bundle's witness keys are malformed")
    try:
        for name, raw in doc["cosigners"].items():
            decoded = base64.b64decode(str(raw), validate=True)
            if base64.b64encode(decoded).decode() != raw:
                raise EvidenceInvalid(f"the key of witness {name} is not in canonical base64")
            trusted[str(name)] = ed25519.Ed25519PublicKey.from_public_bytes(decoded)
        quorum = doc.get("quorum", 1)
        if not isinstance(quorum, int) or isinstance(quorum, bool) or ("quorum" in doc and quorum <= 1):
            raise EvidenceInvalid("a quorum in the bundle is a number above one (one is the default, left out)")
    except (ValueError, TypeError) as exc:
        raise EvidenceInvalid("a witness key is malformed") from exc
    return trusted, quorum


def verify_delivery_evidence(
    data: bytes, witnesses: Mapping[str, ed25519.Ed25519PublicKey] | None = None, *, quorum: int = 1
) -> DeliveryEvidenceReport:
    """``witnesses``: the pinned trust (key name → key) with its ``quorum``; None trusts the
    bundle's own keys and quorum (the report says so)."""
    # 1. canonical, known format, exact fields
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceInvalid("the bundle is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != DELIVERY_FORMAT:
        raise EvidenceInvalid(f"the bundle is not of format {DELIVERY_FORMAT}")
    if _canonical(doc) != data:
        raise EvidenceInvalid("the bundle is not in canonical form: it was edited after export")
    fields = set(doc) - {"quorum"}
    if fields != {"format", "message", "cosigners", "logs"} or not isinstance(doc["logs"], dict) or not doc["logs"]:
        raise EvidenceInvalid("the bundle has unexpected or missing fields")
    message = str(doc["message"])
    # 2. witnesses: the pinned ones, else the bundle's own
    embedded, embedded_quorum = _embedded_witnesses(doc)
    if witnesses is None:
        trusted, quorum = embedded, embedded_quorum
    else:
        # Pinned: the bundle's own witness keys must be pinned ones, key for key (so no byte of
        # them is free), and its quorum can only ask for more than the pinned one.
        for name, key in embedded.items():
            pinned = witnesses.get(name)
            if pinned is None or _raw(pinned) != _raw(key):
                raise EvidenceInvalid(f"the bundle's witness {name} is not one of the pinned witnesses")
        trusted, quorum = dict(witnesses), max(quorum, embedded_quorum)
    # 3. each log: checkpoint, records, proofs
    checkpoints: dict[str, Checkpoint] = {}
    carried: dict[str, list[tuple[str, SignedEvent]]] = {}
    for gateway, log in doc["logs"].items():
        if not isinstance(log, dict) or set(log) != {"checkpoint", "entries"} or not isinstance(log["entries"], list):
            raise EvidenceInvalid(f"the log of {gateway} is malformed")
        try:
            checkpoint = Checkpoint.from_dict(log["checkpoint"])
        except (CheckpointInvalid, AttributeError, TypeError) as exc:
            raise EvidenceInvalid(f"the checkpoint of {gateway} is malformed") from exc
        if checkpoint.to_dict() != log["checkpoint"] or checkpoint.gateway != gateway:
            raise EvidenceInvalid(f"the checkpoint of {gateway} is not in canonical form or not of that gateway")
        try:
            verify_checkpoint(checkpoint, trusted, quorum=quorum)
        except CheckpointInvalid as exc:
            raise EvidenceInvalid(exc.message) from exc
        checkpoints[gateway] = checkpoint
        if not log["entries"]:
            raise EvidenceInvalid(f"the log of {gateway} holds no entry")
        for n, entry in enumerate(log["entries"]):
            try:
                if set(entry) != {"leaf_index", "record", "proof"}:
                    raise EvidenceInvalid(f"entry {n} of {gateway} has unexpected or missing fields")
                body = str(entry["record"]).encode()
                index = entry["leaf_index"]
                if not isinstance(index, int) or isinstance(index, bool):
                    raise EvidenceInvalid(f"entry {n} of {gateway}: leaf_index is not a number")
                proof = [bytes.fromhex(h) for h in entry["proof"]]
                if [p.hex() for p in proof] != entry["proof"]:
                    raise EvidenceInvalid(f"entry {n} of {gateway}: the proof is not lower-case hex")
                record = AuditRecord.from_json(body)
            except (AuditRecordInvalid, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise EvidenceInvalid(f"entry {n} of {gateway} is malformed ({type(exc).__name__})") from exc
            if record.side != "delivery" or record.gateway != gateway or record.message_id != message:
                raise EvidenceInvalid(f"entry {n} of {gateway} is not a delivery record of {message} in that log")
            if not verify_inclusion(index, checkpoint.size, leaf_hash(body), proof, checkpoint.root):
                raise EvidenceInvalid(f"entry {n} of {gateway}: the record is not at leaf {index} of the signed log")
            if not record.evidence:
                raise EvidenceInvalid(f"entry {n} of {gateway} carries no evidence event")
            signed = SignedEvent.from_json(record.evidence)
            carried.setdefault(signed.event.evidence_id, []).append((gateway, signed))
    # 4. the events: one copy each, issued and signed by a gateway whose log is here, held by it
    events: list[SignedEvent] = []
    holders: dict[str, tuple[str, ...]] = {}
    for evidence_id, copies in carried.items():
        first = copies[0][1]
        if any(c.data != first.data or c.signature != first.signature for _, c in copies):
            raise EvidenceInvalid(f"event {evidence_id} differs between the logs that hold it")
        issuer = first.event.issuer
        issuer_log = checkpoints.get(issuer)
        if issuer_log is None:
            raise EvidenceInvalid(f"event {evidence_id}: its issuer's log ({issuer}) is not in the bundle")
        if issuer not in {g for g, _ in copies}:
            raise EvidenceInvalid(f"event {evidence_id} is not in its issuer's own log")
        if first.key_id != issuer_log.key_id:
            raise EvidenceInvalid(f"event {evidence_id} is not signed with the key {issuer} signs its log with")
        first.verify(load_certificate(issuer_log.certificate_pem.encode()).public_key())  # type: ignore[arg-type]
        events.append(first)
        holders[evidence_id] = tuple(sorted(g for g, _ in copies))
    # 5. one chain of this message
    ordered = order_chain(events)
    if ordered[0].event.delivery_key != message:
        raise EvidenceInvalid(f"the events are not of message {message}")
    return DeliveryEvidenceReport(message, tuple(ordered), holders, witnesses is None)
