"""The audit pipeline: one record per side per exchange, to JetStream with acks, never lost.

Public API (other packages import only these names):

- ``AuditRecord`` / ``new_record_id`` — the record and its deterministic JSON form;
- ``AuditSink`` (Protocol), ``AuditStats``, ``MemoryAuditSink`` (the in-memory twin);
- ``JetStreamAuditSink`` — acknowledged, de-duplicated publishing with a disk spool;
- ``audit_subject`` — the subject a gateway's records go to;
- ``count_stream_records`` / ``fetch_records`` — read the stream back (demo, tests, index).
"""

from gateway.audit.count import count_stream_records, fetch_records
from gateway.audit.jetstream import DEFAULT_STREAM, JetStreamAuditSink
from gateway.audit.record import AuditRecord, AuditRecordInvalid, new_record_id
from gateway.audit.sink import AuditSink, AuditStats, MemoryAuditSink
from gateway.audit.subjects import AUDIT_SUBJECTS, audit_subject, gateway_from_subject

__all__ = [
    "AUDIT_SUBJECTS",
    "AuditRecord",
    "AuditRecordInvalid",
    "AuditSink",
    "AuditStats",
    "DEFAULT_STREAM",
    "JetStreamAuditSink",
    "MemoryAuditSink",
    "audit_subject",
    "count_stream_records",
    "fetch_records",
    "gateway_from_subject",
    "new_record_id",
]
