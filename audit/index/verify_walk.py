"""How `audit verify` walks the index: one gateway's rows against its cosigned checkpoints, both sides of each exchange, vanished gateways, stream extents and forks (the findings it reports)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.store import SEARCH_COLUMNS, IndexStore, Row
from audit.index.timestamp import verify_timestamp
from audit.trail import (
    AuditRecord,
    AuditRecordInvalid,
    Checkpoint,
    CheckpointInvalid,
    MerkleTree,
    TimestampInvalid,
    leaf_hash,
    verify_checkpoint,
)

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


# The outcome each side recorded: may legitimately differ (the client side can fail after the
# provider answered), so ``audit show`` marks a difference and ``audit verify`` counts it.
STATUS_FIELDS = ("status", "error_code")


# How old a record may be before verify insists on it being cosigned and on its other side
# (cosigning normally follows within seconds; after a NATS outage, within a minute of recovery).
DEFAULT_GRACE_MS = 60_000


Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # altered | missing | extra | uncovered | checkpoint | disagreement | fork | gap
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
class Suspect:
    """A row among which one was rewritten together with its leaf hash (step 3)."""

    gateway: str
    leaf_index: int
    stream_seq: int
    record_id: str
    body: str


def compare_sides(client: AuditRecord, provider: AuditRecord) -> list[str]:
    """Names of the shared fields on which the two sides disagree.

    A provider that refused before opening the body (a denial: encrypted bodies are decrypted
    only once authorized) has no request digest to compare; every other field still must agree.
    """
    skip = {"request_sha256"} if provider.request_size == 0 else set()
    return [f for f in SHARED_FIELDS if f not in skip and getattr(client, f) != getattr(provider, f)]


@dataclass(slots=True)
class _Side:
    """What step 4 keeps of one side of one exchange (compact: a million records fit)."""

    gateway: str
    record_id: str
    peer: str
    shared: int  # hash of the shared fields
    time_ms: int  # when this side answered
    status: str
    reached: bool  # client side: it holds the provider's signed answer


class _Walk:
    """Steps 1–3 over one gateway's rows; shared state for steps 4–6."""

    def __init__(
        self,
        store: IndexStore,
        cosigners: Mapping[str, ed25519.Ed25519PublicKey],
        progress: Progress | None,
        *,
        tsa_roots: Sequence[x509.Certificate],
        require_timestamp: bool,
        signed_only: bool,
        grace_ms: int,
        now_ms: int,
        quorum: int,
    ) -> None:
        self.store = store
        self.quorum = quorum
        self.cosigners = cosigners
        self.progress = progress
        self.tsa_roots = tsa_roots
        self.require_timestamp = require_timestamp
        self.signed_only = signed_only
        self.grace_ms = grace_ms
        self.now_ms = now_ms
        self.findings: list[Finding] = []
        self.pending: dict[str, int] = {}
        self.covered: dict[str, int] = {}
        self.timestamped: dict[str, datetime] = {}
        self.rows: dict[str, int] = {}  # gateway → rows held
        self.sides: dict[str, dict[str, _Side]] = {}
        self.suspects: list[Suspect] = []
        self.seqs: list[int] = []
        self.total = store.count()
        self.done = 0

    # -- 1. the checkpoint -------------------------------------------------------------------

    def checkpoint(self, gateway: str, checkpoint: Checkpoint | None) -> int:
        """The cosigned size this gateway's rows are checked against (0 when none is valid)."""
        if checkpoint is None:
            return 0
        size = 0
        try:
            verify_checkpoint(checkpoint, self.cosigners, quorum=self.quorum)
            size = checkpoint.size
            self.covered[gateway] = size
        except CheckpointInvalid as exc:
            self.findings.append(Finding("checkpoint", gateway, exc.message))
        try:
            stamped = check_checkpoint_timestamp(checkpoint, self.tsa_roots, self.require_timestamp)
            if stamped is not None:
                self.timestamped[gateway] = stamped
        except TimestampInvalid as exc:
            self.findings.append(Finding("checkpoint", gateway, f"size {checkpoint.size}: {exc.message}"))
        return size

    # -- 2. the rows ---------------------------------------------------------------------------

    def rows_of(self, gateway: str, size: int) -> MerkleTree:
        tree = MerkleTree()
        expected = 0
        uncovered, oldest = 0, 0
        for row in self.store.leaves(gateway, columns=True):
            self.done += 1
            self.rows[gateway] = self.rows.get(gateway, 0) + 1
            self.seqs.append(row.stream_seq)
            if self.progress is not None and self.done % 10_000 == 0:
                self.progress(self.done, self.total)
            if row.leaf_index > expected:
                self._missing(gateway, expected, min(row.leaf_index, size))
            expected = row.leaf_index + 1
            record: AuditRecord | None = None
            with contextlib.suppress(AuditRecordInvalid):
                record = row.record()
            record_id = record.record_id if record is not None else ""
            if row.leaf_index >= size:
                if self.signed_only:
                    when = record.response_out_ms if record is not None else 0
                    if when and self.now_ms - when > self.grace_ms:
                        uncovered, oldest = uncovered + 1, min(oldest or when, when)
                    else:
                        self.pending[gateway] = self.pending.get(gateway, 0) + 1
                    continue
                detail = f"not in the signed log (cosigned size {size})"
                self.findings.append(Finding("extra", gateway, detail, record_id, row.leaf_index))
                continue
            actual = leaf_hash(row.body.encode())
            if record is None or actual.hex() != row.leaf_hash:
                detail = "its bytes differ from those logged"
                self.findings.append(Finding("altered", gateway, detail, record_id, row.leaf_index))
            elif (columns := _columns_differ(row, record)) or record.gateway != gateway:
                named = ", ".join(columns or ["gateway"])
                detail = (
                    f"the index's column(s) {named} differ from the logged bytes (queries would not find it as logged)"
                )
                self.findings.append(Finding("altered", gateway, detail, record_id, row.leaf_index))
            tree.append_hash(bytes.fromhex(row.leaf_hash) if len(row.leaf_hash) == 64 else actual)
            if record is not None:
                self._side(gateway, record)
        if expected < size:
            self._missing(gateway, expected, size)
        if uncovered:
            oldest_utc = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(oldest / 1000))
            detail = (
                f"{uncovered} record(s) older than the {self.grace_ms // 1000} s grace period are covered by no "
                f"cosigned checkpoint (the oldest answered at {oldest_utc} UTC): cosigning has stopped or was refused"
            )
            self.findings.append(Finding("uncovered", gateway, detail))
        return tree

    def _missing(self, gateway: str, start: int, end: int) -> None:
        if end <= start:
            return
        if end - start == 1:
            self.findings.append(Finding("missing", gateway, "in the signed log, not in the index", leaf_index=start))
            return
        detail = f"leaves {start}..{end - 1} ({end - start} records) are in the signed log, not in the index"
        self.findings.append(Finding("missing", gateway, detail, leaf_index=start))

    def _side(self, gateway: str, record: AuditRecord) -> None:
        # The request digest is left out of the compact form: compare_sides decides about it.
        shared = hash(tuple(getattr(record, f) for f in SHARED_FIELDS if f != "request_sha256"))
        shared ^= hash(record.request_sha256) if record.side == "client" or record.request_size else 0
        side = _Side(
            gateway,
            record.record_id,
            record.peer_gateway,
            shared,
            record.response_out_ms,
            record.status,
            bool(record.response_signature),
        )
        self.sides.setdefault(record.message_id, {})[record.side] = side

    # -- 3. every cosigned root ------------------------------------------------------------------

    def roots(self, gateway: str, tree: MerkleTree, size: int) -> None:
        """Every cosigned checkpoint up to ``size`` must rebuild from the index's leaf hashes."""
        if tree.size < size:
            return  # rows are missing: step 2 named them, and no root can rebuild
        good, bad = 0, None
        for checkpoint in self.store.checkpoints(gateway):
            if checkpoint.size > size or checkpoint.size == 0:
                continue
            if tree.root(checkpoint.size) == checkpoint.root:
                good = max(good, checkpoint.size) if bad is None else good
                continue
            with contextlib.suppress(CheckpointInvalid):
                verify_checkpoint(checkpoint, self.cosigners)  # only a valid one may accuse a row
                bad = checkpoint if bad is None or checkpoint.size < bad.size else bad
        if bad is None:
            return
        rows = [r for r in self.store.leaves(gateway) if good <= r.leaf_index < bad.size]
        named = {f.leaf_index for f in self.findings if f.gateway == gateway and f.kind == "altered"}
        if any(r.leaf_index in named for r in rows):
            return  # the row that differs is already named by its bytes or columns
        if len(rows) == 1:
            row = rows[0]
            detail = (
                f"its bytes and its leaf hash were both rewritten: the cosigned root at size {bad.size} "
                f"does not rebuild, at size {good} it does"
            )
            self.findings.append(Finding("altered", gateway, detail, _record_id(row), row.leaf_index))
            return
        ids = ", ".join(f"{r.leaf_index}:{_record_id(r)}" for r in rows[:8]) + (" …" if len(rows) > 8 else "")
        detail = (
            f"a record among leaves {good}..{bad.size - 1} was rewritten together with its leaf hash: the cosigned "
            f"root at size {bad.size} does not rebuild, at size {good} it does (leaf:record {ids}); "
            "run with --nats to name it from the audit stream"
        )
        self.findings.append(Finding("altered", gateway, detail, leaf_index=good))
        self.suspects.extend(Suspect(gateway, r.leaf_index, r.stream_seq, _record_id(r), r.body) for r in rows)

    # -- 4. both sides ---------------------------------------------------------------------------

    def both_sides(self) -> tuple[int, int]:
        """Findings of step 4; returns (exchanges whose sides' statuses differ, unanswered client records)."""
        status_differs = unanswered = 0
        known = set(self.rows) | set(self.covered)
        for message_id, pair in self.sides.items():
            client, provider = pair.get("client"), pair.get("provider")
            if client is not None and provider is not None:
                if client.shared != provider.shared:
                    self.findings.extend(_disagreements(self.store, message_id, provider.gateway, provider.record_id))
                status_differs += client.status != provider.status
            elif provider is not None:
                if provider.peer in known and self.now_ms - provider.time_ms > self.grace_ms:
                    detail = f"client record of message {message_id} (the provider logged it)"
                    self.findings.append(Finding("missing", provider.peer, detail, message_id=message_id))
            elif client is not None:
                if not client.reached:
                    unanswered += 1  # no signed answer: the provider may never have seen it
                elif client.peer in known and self.now_ms - client.time_ms > self.grace_ms:
                    detail = (
                        f"provider record of message {message_id} (the client gateway holds the provider's "
                        f"signed answer, so the exchange reached it)"
                    )
                    self.findings.append(Finding("missing", client.peer, detail, message_id=message_id))
        return status_differs, unanswered

    # -- 5. gateways that vanished ---------------------------------------------------------------

    def vanished(self) -> None:
        known = set(self.rows) | set(self.covered)
        named: dict[str, int] = {}
        for pair in self.sides.values():
            for name, side in pair.items():
                # A provider record proves its client gateway logged the exchange; a client record
                # with the provider's signed answer proves the provider did.
                proves = name == "provider" or (name == "client" and side.reached)
                if proves and side.peer and side.peer not in known:
                    named[side.peer] = named.get(side.peer, 0) + 1
        for gateway, count in sorted(named.items()):
            detail = (
                f"named as the other side of {count} exchange(s), but the index holds no record and no "
                "checkpoint of it: its rows are gone"
            )
            self.findings.append(Finding("missing", gateway, detail))

    # -- 7. two histories ---------------------------------------------------------------------------

    def forks(self) -> tuple[tuple[Checkpoint, Checkpoint], ...]:
        """Checkpoints of one gateway and size with two roots, each signed by the gateway: it
        showed two histories (to two witnesses, or to one and then another). Both are the proof."""
        proven: list[tuple[Checkpoint, Checkpoint]] = []
        for first, second in self.store.equivocations():
            try:
                count = [verify_checkpoint(c, self.cosigners, require_cosignature=False) for c in (first, second)]
            except CheckpointInvalid as exc:
                self.findings.append(
                    Finding("checkpoint", first.gateway, f"a stored fork does not verify: {exc.message}")
                )
                continue
            by = " and ".join(
                ", ".join(sorted(c.name for c in cp.cosignatures if c.name in self.cosigners)) or "no trusted witness"
                for cp in (first, second)
            )
            detail = (
                f"two checkpoints of size {first.size}, both signed by the gateway, with roots {first.root.hex()} and "
                f"{second.root.hex()} (cosigned by {by}; {count[0]} and {count[1]} trusted cosignatures): "
                "it showed two histories"
            )
            self.findings.append(Finding("fork", first.gateway, detail))
            proven.append((first, second))
        return tuple(proven)

    # -- 6. the stream's extent ------------------------------------------------------------------

    def stream_extent(self, backbone: Mapping[str, Checkpoint] | None) -> None:
        cursor = self.store.cursor("records")
        if self.seqs:
            seen = bytearray(cursor - min(self.seqs) + 1) if cursor >= min(self.seqs) else bytearray()
            low = min(self.seqs)
            for seq in self.seqs:
                if low <= seq <= cursor:
                    seen[seq - low] = 1
            gaps = [low + i for i, flag in enumerate(seen) if not flag]
            if gaps:
                detail = (
                    f"{len(gaps)} record(s) of the audit stream (sequences {gaps[0]}..{gaps[-1]}) are not in the "
                    f"index, which has read the stream up to {cursor}"
                )
                self.findings.append(Finding("missing", "(index)", detail))
        for gateway, checkpoint in sorted((backbone or {}).items()):
            with contextlib.suppress(CheckpointInvalid):
                verify_checkpoint(checkpoint, self.cosigners)
                held = self.rows.get(gateway, 0)
                if checkpoint.size > max(held, self.covered.get(gateway, 0)):
                    detail = (
                        f"NATS holds its cosigned checkpoint at size {checkpoint.size}; the index shows "
                        f"{held} record(s) and a cosigned size of {self.covered.get(gateway, 0)}: truncated"
                    )
                    self.findings.append(Finding("missing", gateway, detail, leaf_index=held))


def _columns_differ(row: Row, record: AuditRecord) -> list[str]:
    if not row.columns:
        return []
    return [
        name
        for name, value in zip(SEARCH_COLUMNS, row.columns, strict=True)
        if (int(value) if name == "request_in_ms" else str(value)) != getattr(record, name)
    ]


def _record_id(row: Row) -> str:
    with contextlib.suppress(AuditRecordInvalid):
        return row.record().record_id
    return ""


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
