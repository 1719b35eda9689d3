"""The audit index: the auditors' side of the audit trail (issue 4).

A separate top-level package rather than ``audit/trail/index``: it runs as its own process (or
inside the registry operator's tooling), owns database drivers the gateway never needs, and
depends on ``audit.trail``'s public API (records, Merkle tree, checkpoints) — never the other
way round, so the gateway's request path cannot pull it in.

Public API:
- ``open_store`` / ``IndexStore`` / ``Filters`` — SQLite by default, PostgreSQL for ``postgresql://``;
- ``AuditIndexer`` — durable JetStream consumers into the store, idempotent, catches up;
- ``Cosigner`` — the registry's (or a peer's) checkpoint cosigner;
- ``verify_index`` / ``VerifyReport`` / ``Finding`` — ``audit verify``; ``read_backbone`` /
  ``read_stream_messages`` / ``refine_with_stream`` — ``audit verify --nats`` (what NATS holds);
- ``open_exchange_payloads`` — archived payloads opened with an auditor key (``audit payload``);
- ``build_evidence`` / ``verify_evidence`` — offline evidence bundles;
- ``TimestampAuthority`` / ``Timestamper`` / ``verify_timestamp`` — RFC 3161 tokens on checkpoints
  (stamped by the cosigner, checked by verify and verify-evidence);
- ``AuditAuthenticator`` / ``AuditorIdentity`` and ``AuditApi`` / ``AuditServer`` — the
  ``crossway.v1.Audit`` gRPC API (``crossway audit serve``) for auditor JWTs, agency-scoped.
"""

from audit.index.auth import AuditAuthenticator, AuditorIdentity
from audit.index.backbone import read_backbone, read_stream_messages
from audit.index.cosigner import Cosigner, RegistryCosigner
from audit.index.evidence import EvidenceReport, build_evidence, verify_evidence
from audit.index.indexer import AuditIndexer
from audit.index.payloads import open_exchange_payloads
from audit.index.registry_log import RegistryChangePublisher
from audit.index.server import AuditApi, AuditServer
from audit.index.store import Filters, IndexStore, Row, open_store
from audit.index.timestamp import (
    TimestampAuthority,
    TimestampCheck,
    Timestamper,
    load_timestamp_authority,
    load_tsa_roots,
    verify_timestamp,
)
from audit.index.verify import Finding, VerifyReport, refine_with_stream, verify_index

__all__ = [
    "AuditApi",
    "AuditAuthenticator",
    "AuditIndexer",
    "AuditServer",
    "AuditorIdentity",
    "Cosigner",
    "EvidenceReport",
    "Filters",
    "Finding",
    "IndexStore",
    "RegistryChangePublisher",
    "RegistryCosigner",
    "Row",
    "TimestampAuthority",
    "TimestampCheck",
    "Timestamper",
    "VerifyReport",
    "build_evidence",
    "load_timestamp_authority",
    "load_tsa_roots",
    "open_exchange_payloads",
    "open_store",
    "read_backbone",
    "read_stream_messages",
    "refine_with_stream",
    "verify_evidence",
    "verify_index",
    "verify_timestamp",
]
