"""The audit area's errors (they join the one tree of ``crossway.core.errors``).

    CrosswayError
    └── AuditError
        ├── AuditRecordInvalid      audit.record_invalid       DATA_LOSS
        ├── CheckpointInvalid       audit.checkpoint_invalid   DATA_LOSS
        ├── EvidenceInvalid         audit.evidence_invalid     DATA_LOSS
        ├── AuditIndexUnavailable   audit.index_unavailable    UNAVAILABLE
        └── AuditForbidden          audit.forbidden            PERMISSION_DENIED

(``audit.unavailable`` — strict mode refusing exchanges — stays in the core module.)
"""

from __future__ import annotations

import grpc

from crossway.core.errors import CrosswayError

__all__ = [
    "AuditError",
    "AuditForbidden",
    "AuditIndexUnavailable",
    "AuditRecordInvalid",
    "CheckpointInvalid",
    "EvidenceInvalid",
]


class AuditError(CrosswayError):
    code = "audit.error"
    grpc_status = grpc.StatusCode.INTERNAL
    default_hint = "see the audit index's log"


class AuditRecordInvalid(AuditError):
    """An audit record's JSON does not match the schema."""

    code = "audit.record_invalid"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "the record was written by an incompatible gateway version or was altered"


class CheckpointInvalid(AuditError):
    code = "audit.checkpoint_invalid"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "the checkpoint was altered or signed by a key the registry does not vouch for"


class EvidenceInvalid(AuditError):
    code = "audit.evidence_invalid"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "the evidence bundle was altered after export; export it again from the index"


class AuditIndexUnavailable(AuditError):
    code = "audit.index_unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "check the index database URL (sqlite path or postgresql://…) and that the server runs"


class AuditForbidden(AuditError):
    code = "audit.forbidden"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "use a token with the auditor role, or ask only about exchanges your agency took part in"
