"""How one exchange's records are proven: each against its gateway's latest cosigned checkpoint.

What an auditor reads as "verified against checkpoint N, cosigned by …". Per record, in order,
failing closed (a step that fails leaves ``verified`` False and says why in ``problem``):
1. its gateway has a cosigned checkpoint, and the record's leaf is inside it (else: pending);
2. the checkpoint verifies — the gateway's certificate and signature, and a cosignature from a
   trusted key (the registry anchor); only cosignatures that verify with a trusted key are named;
3. the index's leaves rebuild the checkpoint's root (else the log in the index was rewritten);
4. the inclusion proof from the record's own bytes links its leaf to that root (RFC 9162).

The same checks ``build_evidence`` / ``verify_evidence`` make for a bundle, without making one:
showing an exchange is not taking evidence away (that is ``Evidence``, recorded as such).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import IndexStore, Row
from audit.trail import (
    AuditRecordInvalid,
    CheckpointInvalid,
    MerkleTree,
    leaf_hash,
    verify_checkpoint,
    verify_inclusion,
)

__all__ = ["Inclusion", "prove_rows"]


@dataclass(frozen=True, slots=True)
class Inclusion:
    side: str
    gateway: str
    leaf_index: int
    checkpoint_size: int = 0  # 0: no cosigned checkpoint covers the record yet
    checkpoint_time_ms: int = 0
    cosigners: tuple[str, ...] = ()  # "name (key id prefix)" of each trusted, verified cosignature
    verified: bool = False
    problem: str = ""


def prove_rows(
    store: IndexStore, rows: Sequence[Row], cosigners: Mapping[str, ed25519.Ed25519PublicKey], quorum: int = 1
) -> list[Inclusion]:
    checkpoints = store.latest_checkpoints(cosigned=True)
    trees: dict[str, MerkleTree] = {}  # one rebuild per gateway, whatever the number of rows
    out: list[Inclusion] = []
    for row in rows:
        try:
            side = row.record().side
        except AuditRecordInvalid:
            side = "?"
        base = Inclusion(side, row.gateway, row.leaf_index)
        # 1. a cosigned checkpoint that covers the leaf
        checkpoint = checkpoints.get(row.gateway)
        if checkpoint is None:
            out.append(replace(base, problem="no cosigned checkpoint of this gateway's log yet: not provable yet"))
            continue
        at = replace(base, checkpoint_size=checkpoint.size, checkpoint_time_ms=checkpoint.time_ms)
        if row.leaf_index >= checkpoint.size:
            problem = f"newer than the latest cosigned checkpoint (size {checkpoint.size}): pending the next one"
            out.append(replace(at, checkpoint_size=0, problem=problem))
            continue
        # 2. the checkpoint, and who cosigned it with a trusted key
        try:
            verify_checkpoint(checkpoint, cosigners, quorum=quorum)
        except CheckpointInvalid as exc:
            out.append(replace(at, problem=exc.message))
            continue
        # Trusted witnesses are known by key name (C2SP); verify_checkpoint checked the key IDs.
        names = tuple(f"{c.name} (key {c.key_id[:12]})" for c in checkpoint.cosignatures if c.name in cosigners)
        at = replace(at, cosigners=names)
        # 3. the index's leaves rebuild the signed root
        tree = trees.get(row.gateway)
        if tree is None:
            tree = MerkleTree(
                bytes.fromhex(r.leaf_hash) for r in store.leaves(row.gateway) if r.leaf_index < checkpoint.size
            )
            trees[row.gateway] = tree
        if tree.size != checkpoint.size or tree.root() != checkpoint.root:
            out.append(replace(at, problem="the index's log does not rebuild the checkpoint's root: run audit verify"))
            continue
        # 4. the record's own bytes are at its leaf of the signed log
        proof = tree.inclusion_proof(row.leaf_index, checkpoint.size)
        if not verify_inclusion(row.leaf_index, checkpoint.size, leaf_hash(row.body.encode()), proof, checkpoint.root):
            out.append(replace(at, problem="the record's bytes differ from those logged at its leaf (altered)"))
            continue
        out.append(replace(at, verified=True))
    return out
