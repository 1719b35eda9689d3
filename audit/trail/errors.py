"""The audit area's errors (they join the one tree of ``crossway.core.errors``).

    CrosswayError
    └── AuditError
        ├── AuditRecordInvalid      audit.record_invalid       DATA_LOSS
        ├── CheckpointInvalid       audit.checkpoint_invalid   DATA_LOSS
        ├── EvidenceInvalid         audit.evidence_invalid     DATA_LOSS
        ├── PayloadArchiveInvalid   audit.archive_invalid      DATA_LOSS
        ├── TimestampInvalid        audit.timestamp_invalid    DATA_LOSS
        ├── TimestampUnavailable    audit.timestamp_unavailable UNAVAILABLE
        ├── AuditIndexUnavailable   audit.index_unavailable    UNAVAILABLE
        ├── AuditForbidden          audit.forbidden            PERMISSION_DENIED
        ├── AuditUnauthenticated    audit.unauthenticated      UNAUTHENTICATED
        ├── AuditNotFound           audit.not_found            NOT_FOUND
        └── AuditBadRequest         audit.bad_request          INVALID_ARGUMENT

(``audit.unavailable`` — strict mode refusing exchanges — stays in the core module.)
"""

from __future__ import annotations

import grpc

from crossway.core.errors import CrosswayError

__all__ = [
    "AuditBadRequest",
    "AuditError",
    "AuditForbidden",
    "AuditIndexUnavailable",
    "AuditNotFound",
    "AuditRecordInvalid",
    "AuditUnauthenticated",
    "CheckpointInvalid",
    "EvidenceInvalid",
    "PayloadArchiveInvalid",
    "TimestampInvalid",
    "TimestampUnavailable",
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


class PayloadArchiveInvalid(AuditError):
    """An archived payload cannot be opened: another key, altered, or not the record's bodies."""

    code = "audit.archive_invalid"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "open it with an auditor key the gateway archived to; an altered archive cannot be repaired"


class TimestampInvalid(AuditError):
    """An RFC 3161 timestamp token of a checkpoint does not check out (or is required and missing)."""

    code = "audit.timestamp_invalid"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "pass the time-stamping authority's CA with --tsa-ca; an altered token cannot be repaired"


class TimestampUnavailable(AuditError):
    """The time-stamping authority did not answer with a usable token (the checkpoint goes unstamped)."""

    code = "audit.timestamp_unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "check the TSA URL and that the TSA is up; checkpoints stay valid without a token"


class AuditIndexUnavailable(AuditError):
    code = "audit.index_unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "check the index database URL (sqlite path or postgresql://…) and that the server runs"


class AuditForbidden(AuditError):
    code = "audit.forbidden"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "use a token with the auditor role, or ask only about exchanges your agency took part in"


class AuditUnauthenticated(AuditError):
    code = "audit.unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = "send `authorization: Bearer <token>` from the auditors' identity provider"


class AuditNotFound(AuditError):
    """Nothing the caller may see matches (the same answer whether it exists or is out of scope)."""

    code = "audit.not_found"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = "check the message id; an agency token sees only exchanges its agency took part in"


class AuditBadRequest(AuditError):
    """A request the audit API cannot act on as sent (e.g. a page token of another query)."""

    code = "audit.bad_request"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "check the request's fields; a page token works only with the filters that produced it"
