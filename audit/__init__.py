"""The audit trail, as an area of its own beside ``registry`` and ``policies``.

- :mod:`audit.trail` — the writer side, used by every gateway: records, the durable JetStream
  sink and its disk spool, the Merkle log and signed checkpoints, payload archives;
- :mod:`audit.index` — the auditor side, its own process: the index (SQLite / PostgreSQL), the
  cosigner, verify, evidence bundles and the ``crossway.v1.Audit`` API.

The auditor side depends on the writer side's public API, never the other way round, and
neither depends on ``gateway`` (import-linter holds both rules in ``make lint``).
"""

__all__: list[str] = []
