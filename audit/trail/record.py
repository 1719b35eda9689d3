"""The audit record: one per side per exchange, denied and failed ones included.

A record carries ids, the four timestamps, sizes and SHA-256 digests of both bodies, the outcome,
the policy decision and both signatures (non-repudiation) — never payload bytes. Its JSON form is
compact with sorted keys, so the same record always has the same bytes (Merkle leaves and
de-duplication both depend on that). Decoding is strict: an unknown or missing field is an error,
because a silently dropped field in an audit trail is evidence lost.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import uuid
from dataclasses import dataclass
from typing import Any

from audit.trail.errors import AuditRecordInvalid

__all__ = ["FIELD_LIMITS", "MAX_WITHHELD", "MAX_WITHHELD_CHARS", "AuditRecord", "AuditRecordInvalid", "new_record_id"]

# "admin": a gateway's own administrative event (a policy change), not a side of an exchange.
# "auditor": an auditor's read of the audit trail, recorded at the audit API's request
# (audit.index.reads): who searched for what, who took which evidence.
SIDES = frozenset({"client", "provider", "admin", "auditor"})
DECISIONS = frozenset({"allow", "deny", ""})

# What a text field of a record may hold, in characters (issue 12). Values that come from outside
# (the caller's metadata, a peer's signed header, a provider's signed response) are bounded by
# the gateway before they reach a record, so no record can outgrow NATS' message limit and stop
# the trail behind it ("poison records"). Generous for real ids: member codes are <= 64 characters.
FIELD_LIMITS: dict[str, int] = {
    "message_id": 128,
    "client": 512,
    "service": 512,
    "method": 512,
    "user_id": 512,
    "purpose": 1024,
}
MAX_WITHHELD = 256  # entries of withheld_fields (field paths of one response message)
MAX_WITHHELD_CHARS = 256  # characters of one withheld field path


def new_record_id() -> str:
    """A fresh record id (random, so two records of the same exchange never collide)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AuditRecord:
    record_id: str
    gateway: str
    side: str
    message_id: str
    client: str
    service: str
    method: str
    user_id: str
    purpose: str
    request_in_ms: int
    request_out_ms: int
    response_in_ms: int
    response_out_ms: int
    request_size: int
    response_size: int
    request_sha256: str
    response_sha256: str
    status: str
    error_code: str
    decision: str
    policy_ids: tuple[str, ...]
    withheld_fields: tuple[str, ...]
    peer_gateway: str
    trace_id: str
    request_signature: str
    response_signature: str
    policy_version: str = ""

    def __post_init__(self) -> None:
        # Field types are checked where values come from outside (from_json); a gateway builds
        # records from its typed Exchange once per side per call, where 27 checks cost ~35 µs.
        if not self.record_id:
            raise AuditRecordInvalid("audit record has an empty record_id")
        if self.side not in SIDES:
            raise AuditRecordInvalid(
                f"audit record {self.record_id}: side {self.side!r} is not client, provider, admin or auditor"
            )
        if self.decision not in DECISIONS:
            raise AuditRecordInvalid(f"audit record {self.record_id}: decision {self.decision!r} is not allow/deny/''")

    def to_json(self) -> bytes:
        """Compact JSON with sorted keys: deterministic bytes for one record."""
        # Names are pre-sorted, so json.dumps needs no sort_keys (halves the cost; this runs per record).
        doc: dict[str, Any] = dict(zip(_SORTED_NAMES, _GET_SORTED(self), strict=True))
        return _ENCODER.encode(doc).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> AuditRecord:
        """Decode a record; unknown, missing or mistyped fields raise ``AuditRecordInvalid``."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuditRecordInvalid(f"audit record is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise AuditRecordInvalid("audit record JSON is not an object")
        unknown = sorted(set(doc) - _NAMES)
        if unknown:
            raise AuditRecordInvalid(f"audit record has unknown field(s): {', '.join(unknown)}")
        missing = sorted(_REQUIRED - set(doc))
        if missing:
            raise AuditRecordInvalid(f"audit record lacks field(s): {', '.join(missing)}")
        values: dict[str, Any] = {}
        for name, value in doc.items():
            kind = _KINDS[name]
            if kind is tuple and isinstance(value, list):
                value = tuple(value)
            _check_type(name, value, kind)
            values[name] = value
        return cls(**values)


def _check_type(name: str, value: object, kind: type) -> None:
    # bool is an int subclass; a boolean timestamp is a bug, not a number.
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if ok and kind is tuple:
        ok = all(isinstance(item, str) for item in value)  # type: ignore[attr-defined]
    if not ok:
        want = "a list of strings" if kind is tuple else kind.__name__
        raise AuditRecordInvalid(f"audit record field {name!r} must be {want}, not {type(value).__name__}")


_FIELDS = dataclasses.fields(AuditRecord)
_NAMES = frozenset(f.name for f in _FIELDS)
_REQUIRED = frozenset(f.name for f in _FIELDS if f.default is dataclasses.MISSING)
# Field annotations are strings (postponed evaluation); map them to the runtime types we check.
_KINDS: dict[str, type] = {f.name: {"str": str, "int": int, "tuple[str, ...]": tuple}[str(f.type)] for f in _FIELDS}
_SORTED_NAMES = tuple(sorted(_NAMES))
_GET_SORTED = operator.attrgetter(*_SORTED_NAMES)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
