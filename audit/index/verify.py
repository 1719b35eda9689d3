"""``audit verify``: is the index exactly the logs the gateways signed and the registry cosigned?

Per gateway, in order, failing closed (every problem becomes a named finding; nothing stops early):
1. take the gateway's latest cosigned checkpoint and check it (certificate, gateway signature,
   a cosignature from a trusted key — the registry anchor); when it carries an RFC 3161 token,
   check that too against the trusted TSA CAs (``verify_timestamp``: parses, signature and chain,
   imprint of the checkpoint's signed bytes) and report its time; with ``require_timestamp`` a
   checkpoint without a token is a finding;
2. walk its rows in leaf order: a gap in the leaf indexes is a *missing* record; a row whose
   bytes no longer hash to the leaf hash stored at ingestion, or no longer decode, is *altered*;
   a row beyond the checkpoint's size is *extra* (not in the signed log) — or, with
   ``signed_only`` (auditing a live system, whose newest records await the next checkpoint),
   *pending*: counted and reported, not a finding, and not compared across sides;
3. rebuild the Merkle root over the leaf hashes (RFC 9162) and compare it with the checkpoint's:
   a mismatch no row explains means the leaf hashes themselves were rewritten;
then, across gateways:
4. both sides of one exchange agree on what they share (ids, digests, signatures); a provider
   record whose client gateway is indexed but has no client record is *missing* its other side;
5. every stream the indexer found recreated or rewound under it is a *gap* (what the old stream
   held beyond the index's cursor was never read; records after it are in no signed log).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import IndexStore
from audit.index.timestamp import verify_timestamp
from audit.trail import (
    AuditRecord,
    AuditRecordInvalid,
    Checkpoint,
    CheckpointInvalid,
    TimestampInvalid,
    leaf_hash,
    root_of,
    verify_checkpoint,
)

__all__ = ["SHARED_FIELDS", "Finding", "VerifyReport", "check_checkpoint_timestamp", "compare_sides", "verify_index"]

# What the client and provider records of one exchange must agree on.
SHARED_FIELDS = (
    "message_id",
    "client",
    "service",
    "method",
    "user_id",
    "purpose",
    "request_sha256",
    "request_signature",
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # altered | missing | extra | checkpoint | disagreement | gap
    gateway: str
    detail: str
    record_id: str = ""
    leaf_index: int = -1
    message_id: str = ""

    def line(self) -> str:
        where = f" leaf {self.leaf_index}" if self.leaf_index >= 0 else ""
        rid = f" record {self.record_id}" if self.record_id else ""
        return f"{self.kind.upper()}: {self.gateway}{where}{rid}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    records: int
    covered: Mapping[str, int] = field(default_factory=dict)  # gateway → cosigned size checked
    timestamped: Mapping[str, datetime] = field(default_factory=dict)  # gateway → TSA time of that checkpoint
    pending: Mapping[str, int] = field(default_factory=dict)  # gateway → rows beyond it (signed_only)

    @property
    def ok(self) -> bool:
        return not self.findings


def compare_sides(client: AuditRecord, provider: AuditRecord) -> list[str]:
    """Names of the shared fields on which the two sides disagree.

    A provider that refused before opening the body (a denial: encrypted bodies are decrypted
    only once authorized) has no request digest to compare; every other field still must agree.
    """
    skip = {"request_sha256"} if provider.request_size == 0 else set()
    return [f for f in SHARED_FIELDS if f not in skip and getattr(client, f) != getattr(provider, f)]


def verify_index(
    store: IndexStore,
    cosigners: Mapping[str, ed25519.Ed25519PublicKey],
    progress: Progress | None = None,
    *,
    tsa_roots: Sequence[x509.Certificate] = (),
    require_timestamp: bool = False,
    signed_only: bool = False,
) -> VerifyReport:
    findings: list[Finding] = []
    pending: dict[str, int] = {}
    checkpoints = store.latest_checkpoints(cosigned=True)
    total = store.count()
    done = 0
    covered: dict[str, int] = {}
    timestamped: dict[str, datetime] = {}
    # message id → side → (gateway, record id, peer gateway, digest of the shared fields): compact,
    # so a million records fit; the disagreeing fields are named by re-reading the two rows.
    sides: dict[str, dict[str, tuple[str, str, str, int]]] = {}
    gateways = sorted(set(store.gateways()) | set(checkpoints))
    for gateway in gateways:
        # 1. The checkpoint itself.
        checkpoint = checkpoints.get(gateway)
        size = 0
        if checkpoint is None:
            findings.append(Finding("checkpoint", gateway, "no cosigned checkpoint: nothing of this log is proven"))
        else:
            try:
                verify_checkpoint(checkpoint, cosigners)
                size = checkpoint.size
                covered[gateway] = size
            except CheckpointInvalid as exc:
                findings.append(Finding("checkpoint", gateway, exc.message))
            try:
                stamped = check_checkpoint_timestamp(checkpoint, tsa_roots, require_timestamp)
                if stamped is not None:
                    timestamped[gateway] = stamped
            except TimestampInvalid as exc:
                findings.append(Finding("checkpoint", gateway, f"size {checkpoint.size}: {exc.message}"))
        # 2. The rows, in leaf order.
        hashes: list[bytes] = []
        expected = 0
        for row in store.leaves(gateway):
            done += 1
            if progress is not None and done % 10_000 == 0:
                progress(done, total)
            for missing in range(expected, min(row.leaf_index, size)):
                findings.append(Finding("missing", gateway, "in the signed log, not in the index", leaf_index=missing))
            expected = row.leaf_index + 1
            record: AuditRecord | None = None
            with contextlib.suppress(AuditRecordInvalid):
                record = row.record()
            record_id = record.record_id if record is not None else ""
            if row.leaf_index >= size and signed_only and checkpoint is not None:
                pending[gateway] = pending.get(gateway, 0) + 1
                continue
            if row.leaf_index >= size:
                findings.append(
                    Finding(
                        "extra", gateway, f"not in the signed log (cosigned size {size})", record_id, row.leaf_index
                    )
                )
                continue
            actual = leaf_hash(row.body.encode())
            if record is None or actual.hex() != row.leaf_hash:
                findings.append(
                    Finding("altered", gateway, "its bytes differ from those logged", record_id, row.leaf_index)
                )
            hashes.append(bytes.fromhex(row.leaf_hash) if len(row.leaf_hash) == 64 else actual)
            if record is not None:
                # The request digest is left out of the compact form: compare_sides decides about it.
                shared = hash(tuple(getattr(record, f) for f in SHARED_FIELDS if f != "request_sha256"))
                shared ^= hash(record.request_sha256) if record.side == "client" or record.request_size else 0
                sides.setdefault(record.message_id, {})[record.side] = (gateway, record_id, record.peer_gateway, shared)
        for missing in range(expected, size):
            findings.append(Finding("missing", gateway, "in the signed log, not in the index", leaf_index=missing))
        # 3. The root over what the index holds.
        if checkpoint is not None and size and len(hashes) == size and root_of(hashes) != checkpoint.root:
            findings.append(
                Finding("checkpoint", gateway, f"leaf hashes do not rebuild the cosigned root (size {size})")
            )
    # 4. Both sides agree.
    for message_id, pair in sides.items():
        client, provider = pair.get("client"), pair.get("provider")
        if client is not None and provider is not None:
            if client[3] != provider[3]:
                findings.extend(_disagreements(store, message_id, provider[0], provider[1]))
        elif provider is not None and provider[2] in covered:
            detail = f"client record of message {message_id} (the provider logged it)"
            findings.append(Finding("missing", provider[2], detail, message_id=message_id))
    # 5. Streams that went back under the indexer.
    for _at_ms, stream, detail in store.gaps():
        findings.append(Finding("gap", stream, detail))
    if progress is not None:
        progress(done, total)
    return VerifyReport(tuple(findings), done, covered, timestamped, pending)


def check_checkpoint_timestamp(
    checkpoint: Checkpoint, tsa_roots: Sequence[x509.Certificate], require: bool
) -> datetime | None:
    """The TSA time of a checkpoint's token; None when it has none and none is required."""
    if not checkpoint.timestamp:
        if require:
            raise TimestampInvalid(
                "no RFC 3161 timestamp token, and --require-timestamp is set",
                hint="configure timestamp.toml for the registry's cosigner, or drop --require-timestamp",
            )
        return None
    return verify_timestamp(checkpoint.timestamp, checkpoint.body(), tsa_roots).time


def _disagreements(store: IndexStore, message_id: str, gateway: str, record_id: str) -> list[Finding]:
    from audit.index.store import Filters

    records = {r.side: r for r in (row.record() for row in store.query(Filters(message_id=message_id)))}
    names = compare_sides(records["client"], records["provider"])
    return [
        Finding("disagreement", gateway, f"field {n} differs from the client side", record_id, message_id=message_id)
        for n in names
    ]
