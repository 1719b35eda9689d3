"""``audit verify``: is the index exactly the logs the gateways signed and the registry cosigned?

Nothing in the index is taken on trust: only the records' logged bytes, the gateways' signatures
and the cosignatures are. Per gateway, in order, failing closed (every problem becomes a named
finding; nothing stops early):

1. take the gateway's latest cosigned checkpoint and check it (certificate, gateway signature,
   a cosignature from a trusted key — the registry anchor); when it carries an RFC 3161 token,
   check that too against the trusted TSA CAs (``verify_timestamp``: parses, signature and chain,
   imprint of the checkpoint's signed bytes) and report its time; with ``require_timestamp`` a
   checkpoint without a token is a finding;
2. walk its rows in leaf order: a gap in the leaf indexes is a *missing* record (a run of them is
   one finding); a row whose bytes no longer hash to the leaf hash stored at ingestion, or no
   longer decode, is *altered*; so is a row whose searchable columns (what ``audit query``
   filters on) differ from its bytes; a row beyond the checkpoint's size is *extra* (not in the
   signed log) — or, with ``signed_only`` (auditing a live system, whose newest records await
   the next checkpoint), *pending*: counted, not compared across sides — unless it is older
   than ``grace_ms``: a record that old covered by no cosigned checkpoint is *uncovered*, a
   finding (cosigning has stopped, or the log was forked);
3. rebuild the Merkle root over the leaf hashes (RFC 9162) and compare it with *every* cosigned
   checkpoint of the gateway: the first one that does not rebuild bounds a record that was
   rewritten together with its leaf hash to the leaves after the last one that does; a range of
   one leaf names the record, a longer one lists the candidates (``refine_with_stream`` names
   the one among them that differs from the audit stream);
then, across gateways:
4. both sides of one exchange agree on what they share (ids, digests, signatures); a provider
   record without its client record, and a client record whose exchange reached the provider (it
   holds the provider's signed answer) without its provider record, are *missing* once older
   than ``grace_ms`` — a client record without a signed answer never reached the provider, and
   needs no other side;
5. every gateway another gateway's records prove took part (the peer of an answered exchange)
   has rows or checkpoints in the index: one whose rows all vanished is named;
6. the stream sequences of all rows run without a gap up to the index's cursor, and, with
   ``backbone`` (what NATS holds, ``crossway audit verify --nats``), no gateway's latest cosigned
   checkpoint there is larger than what the index can show — a truncated index is named even
   when its checkpoint rows were truncated with it;
7. no gateway signed two checkpoints of one size with different roots (kept by the index as
   they arrived, whichever witness cosigned them): such a pair is a *fork*, reported with both
   signed checkpoints as the proof;
8. every stream the indexer found recreated or rewound under it is a *gap* (what the old stream
   held beyond the index's cursor was never read; records after it are in no signed log).

Step 1 takes, per gateway, the largest checkpoint cosigned by ``quorum`` distinct trusted
witnesses (``cosigners``: key name → Ed25519 key — the registry and the witnesses its
configuration names); a newer one may still be gathering cosignatures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import IndexStore
from audit.index.verify_walk import (
    DEFAULT_GRACE_MS,
    SHARED_FIELDS,
    STATUS_FIELDS,
    Finding,
    Progress,
    Suspect,
    _Walk,
    check_checkpoint_timestamp,
    compare_sides,
)
from audit.trail import (
    AuditRecordInvalid,
    Checkpoint,
    CheckpointInvalid,
    verify_checkpoint,
)

__all__ = [
    "DEFAULT_GRACE_MS",
    "SHARED_FIELDS",
    "STATUS_FIELDS",
    "Finding",
    "Suspect",
    "VerifyReport",
    "check_checkpoint_timestamp",
    "compare_sides",
    "refine_with_stream",
    "verify_index",
]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    records: int
    covered: Mapping[str, int] = field(default_factory=dict)  # gateway → cosigned size checked
    timestamped: Mapping[str, datetime] = field(default_factory=dict)  # gateway → TSA time of that checkpoint
    pending: Mapping[str, int] = field(default_factory=dict)  # gateway → rows beyond it (signed_only)
    status_differs: int = 0  # exchanges whose two sides recorded different statuses (not a finding)
    unanswered: int = 0  # client records of exchanges that never reached the provider (no other side due)
    suspects: tuple[Suspect, ...] = ()  # candidates of step 3's ranges, for refine_with_stream
    grace_ms: int = DEFAULT_GRACE_MS
    forks: tuple[tuple[Checkpoint, Checkpoint], ...] = ()  # step 7's proofs: two signed histories

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_index(
    store: IndexStore,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    progress: Progress | None = None,
    *,
    tsa_roots: Sequence[x509.Certificate] = (),
    require_timestamp: bool = False,
    signed_only: bool = False,
    grace_ms: int = DEFAULT_GRACE_MS,
    now_ms: int | None = None,
    backbone: Mapping[str, Checkpoint] | None = None,
    quorum: int = 1,
) -> VerifyReport:
    """Steps 1–6 of the module docstring. ``backbone``: each gateway's latest cosigned checkpoint
    as NATS holds it (``read_backbone``), to catch an index truncated with its checkpoints."""
    walk = _Walk(
        store,
        cosigners,
        progress,
        tsa_roots=tsa_roots,
        require_timestamp=require_timestamp,
        signed_only=signed_only,
        grace_ms=grace_ms,
        now_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        quorum=quorum,
    )
    checkpoints = store.latest_checkpoints(cosigned=True)
    for gateway in sorted(set(store.gateways()) | set(checkpoints)):
        # The largest checkpoint with its quorum of witnesses (the newest may still be gathering
        # cosignatures); when none has it, the newest, whose check then says what is lacking.
        newest = checkpoints.get(gateway)
        checkpoint = _with_quorum(store, gateway, cosigners, quorum) or newest
        if newest is not None and checkpoint is not None and newest.size != checkpoint.size:
            try:  # a newer checkpoint may lack cosignatures still, but never be forged
                verify_checkpoint(newest, cosigners, require_cosignature=False)
            except CheckpointInvalid as exc:
                walk.findings.append(Finding("checkpoint", gateway, exc.message))
        if checkpoint is None and not (signed_only and _all_young(store, gateway, walk)):
            walk.findings.append(
                Finding("checkpoint", gateway, "no cosigned checkpoint: nothing of this log is proven")
            )
        size = walk.checkpoint(gateway, checkpoint)
        tree = walk.rows_of(gateway, size)
        walk.roots(gateway, tree, size)
    status_differs, unanswered = walk.both_sides()
    walk.vanished()
    walk.stream_extent(backbone)
    forks = walk.forks()
    # 8. Streams that went back under the indexer (recreated, rewound): named, never skipped.
    for _at_ms, stream, detail in store.gaps():
        walk.findings.append(Finding("gap", stream, detail))
    if progress is not None:
        progress(walk.done, walk.total)
    return VerifyReport(
        tuple(walk.findings),
        walk.done,
        walk.covered,
        walk.timestamped,
        walk.pending,
        status_differs,
        unanswered,
        tuple(walk.suspects),
        grace_ms,
        forks,
    )


def refine_with_stream(report: VerifyReport, stream_bytes: Mapping[int, bytes | None]) -> VerifyReport:
    """Name the rewritten record among step 3's suspects: the one whose bytes differ from the
    audit stream's message at its sequence (``stream_bytes``: sequence → bytes, None if gone)."""
    exact: list[Finding] = []
    for s in report.suspects:
        logged = stream_bytes.get(s.stream_seq)
        if logged is None or logged != s.body.encode():
            detail = (
                f"its bytes and its leaf hash were both rewritten: they differ from the audit stream's message "
                f"{s.stream_seq}"
                if logged is not None
                else f"the audit stream no longer holds its message {s.stream_seq}"
            )
            exact.append(Finding("altered", s.gateway, detail, s.record_id, s.leaf_index))
    if not exact:
        return report
    gateways = {f.gateway for f in exact}
    kept = [f for f in report.findings if not (f.kind == "altered" and f.gateway in gateways and not f.record_id)]
    return VerifyReport(
        (*kept, *exact),
        report.records,
        report.covered,
        report.timestamped,
        report.pending,
        report.status_differs,
        report.unanswered,
        (),
        report.grace_ms,
        report.forks,
    )


def _with_quorum(
    store: IndexStore, gateway: str, cosigners: Mapping[str, ed25519.Ed25519PublicKey], quorum: int
) -> Checkpoint | None:
    for checkpoint in reversed(store.checkpoints(gateway)):
        try:
            verify_checkpoint(checkpoint, cosigners, quorum=quorum)
        except CheckpointInvalid:
            continue
        return checkpoint
    return None


def _all_young(store: IndexStore, gateway: str, walk: _Walk) -> bool:
    """With --signed-only: may a gateway with no cosigned checkpoint yet still be waiting for one?"""
    for row in store.leaves(gateway):
        with contextlib.suppress(AuditRecordInvalid):
            if walk.now_ms - row.record().response_out_ms > walk.grace_ms:
                return False
    return True
