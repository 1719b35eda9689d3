"""The audit pipeline: one record per side per exchange, to JetStream with acks, never lost.

Public API (other packages import only these names):

- ``AuditRecord`` / ``new_record_id`` — the record and its deterministic JSON form;
- ``AuditSink`` (Protocol), ``AuditStats``, ``MemoryAuditSink`` (the in-memory twin);
- ``JetStreamAuditSink`` — acknowledged, de-duplicated publishing with a disk spool;
- ``audit_subject`` — the subject a gateway's records go to;
- ``count_stream_records`` / ``fetch_records`` — read the stream back (demo, tests, index);
- ``PayloadArchiver`` and ``seal_payload`` / ``open_payload`` — bodies encrypted to the auditors
  only, in their own stream (``ARCHIVE_STREAM``), when payload archiving is on;
- ``EvidenceEvent`` / ``SignedEvent`` — registered-delivery evidence events (ETSI EN 319 522 names),
  signed by the observing gateway and chained per message; ``delivery_record`` logs one;
- ``MerkleTree`` and proof verifiers (RFC 9162), ``Checkpoint`` (signed, cosigned; C2SP signed
  notes, ``Witness`` verifier keys) and the gateway's ``AuditCheckpointer``; the audit area's errors.
"""

from audit.trail.archive import (
    ARCHIVE_STREAM,
    ARCHIVE_SUBJECTS,
    ArchivedPayload,
    OpenedPayload,
    archive_subject,
    open_payload,
    seal_payload,
)
from audit.trail.archiver import MemoryArchiveDelivery, PayloadArchiver
from audit.trail.checkpoint import (
    Checkpoint,
    Cosignature,
    cosign,
    merge_cosignatures,
    sign_checkpoint,
    verify_checkpoint,
)
from audit.trail.checkpointer import CHECKPOINT_STREAM, AuditCheckpointer
from audit.trail.count import count_stream_records, fetch_records
from audit.trail.delivery_bundle import (
    TIMELINE_FORMAT,
    TimelineReport,
    build_timeline_bundle,
    check_certificates,
    verify_timeline_bundle,
)
from audit.trail.errors import (
    AuditBadRequest,
    AuditError,
    AuditForbidden,
    AuditIndexUnavailable,
    AuditNotFound,
    AuditRecordInvalid,
    AuditUnauthenticated,
    CheckpointInvalid,
    EvidenceInvalid,
    PayloadArchiveInvalid,
    TimestampInvalid,
    TimestampUnavailable,
)
from audit.trail.evidence_event import (
    EVENTS,
    NEGATIVE_EVENTS,
    TERMINAL_EVENTS,
    EvidenceEvent,
    SignedEvent,
    delivery_record,
    events_of_records,
    new_evidence_id,
    order_chain,
    sign_event,
)
from audit.trail.jetstream import DEFAULT_STREAM, JetStreamAuditSink
from audit.trail.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, root_of, verify_consistency, verify_inclusion
from audit.trail.note import (
    COSIGNATURE_TYPE,
    Witness,
    checkpoint_origin,
    note_key_id,
    parse_note,
    registry_witness_name,
)
from audit.trail.record import AuditRecord, new_record_id
from audit.trail.sink import AuditSink, AuditStats, MemoryAuditSink
from audit.trail.subjects import (
    AUDIT_SUBJECTS,
    CHECKPOINT_SUBJECTS,
    audit_subject,
    checkpoint_subject,
    cosignature_subject,
    gateway_from_subject,
)

__all__ = [
    "TIMELINE_FORMAT",
    "TimelineReport",
    "build_timeline_bundle",
    "check_certificates",
    "verify_timeline_bundle",
    "EVENTS",
    "NEGATIVE_EVENTS",
    "TERMINAL_EVENTS",
    "EvidenceEvent",
    "SignedEvent",
    "delivery_record",
    "events_of_records",
    "new_evidence_id",
    "order_chain",
    "sign_event",
    "ARCHIVE_STREAM",
    "ARCHIVE_SUBJECTS",
    "ArchivedPayload",
    "MemoryArchiveDelivery",
    "OpenedPayload",
    "PayloadArchiveInvalid",
    "PayloadArchiver",
    "archive_subject",
    "open_payload",
    "seal_payload",
    "AUDIT_SUBJECTS",
    "COSIGNATURE_TYPE",
    "Witness",
    "checkpoint_origin",
    "merge_cosignatures",
    "note_key_id",
    "parse_note",
    "registry_witness_name",
    "CHECKPOINT_STREAM",
    "CHECKPOINT_SUBJECTS",
    "EMPTY_ROOT",
    "AuditBadRequest",
    "AuditCheckpointer",
    "AuditError",
    "AuditForbidden",
    "AuditIndexUnavailable",
    "AuditNotFound",
    "AuditRecord",
    "AuditRecordInvalid",
    "AuditUnauthenticated",
    "Checkpoint",
    "CheckpointInvalid",
    "Cosignature",
    "EvidenceInvalid",
    "TimestampInvalid",
    "TimestampUnavailable",
    "MerkleTree",
    "AuditSink",
    "AuditStats",
    "DEFAULT_STREAM",
    "JetStreamAuditSink",
    "MemoryAuditSink",
    "audit_subject",
    "checkpoint_subject",
    "cosign",
    "cosignature_subject",
    "count_stream_records",
    "fetch_records",
    "gateway_from_subject",
    "leaf_hash",
    "new_record_id",
    "root_of",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
