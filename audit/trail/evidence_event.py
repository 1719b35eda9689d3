"""Registered-delivery evidence events: their canonical bytes, signatures and per-message chain.

Every step of a registered delivery (issue 14) — and later of a topic delivery (issue 15) — is an
*evidence event* named after ETSI EN 319 522-3 (Table 2, URIs ``http://uri.etsi.org/19522/Event/
<name>``), signed by the gateway that observed it with its member signing key (ES256 or EdDSA,
the key that signs exchanges), and chained to the previous event of the same message by the
SHA-256 of that event's canonical bytes. The format lives here, in the writer side of the audit
area, so gateways produce it and auditors (``audit.index``) verify it without importing the
gateway.

Canonical bytes: compact JSON with sorted keys, ASCII only, of every field below plus
``"format": "crossway.delivery.event/v1"``. Decoding is strict and refuses any input that is not
exactly the canonical form of what it decoded, so no byte of a signed event is free.

Chain rule: the first event of a message (its SubmissionAcceptance) has ``previous = ""``; every
other event names the hash of an earlier event of the same message. Events are issued one at a
time per gateway and message (compare-and-set on the message's state), so each gateway's events
form a line; the only fork the protocol allows is the sender's RelayFailure beside a recipient's
event when the recipient answered but the answer never came back, so :func:`order_chain`
accepts a tree with one root and orders it by time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from audit.trail.errors import EvidenceInvalid
from audit.trail.record import AuditRecord
from crossway.core.errors import SignatureInvalid
from crossway.security.signing import PublicSigningKey, Signer, verify_signature

__all__ = [
    "ERDS_EVENT_URI",
    "EVENT_FORMAT",
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
]

EVENT_FORMAT = "crossway.delivery.event/v1"
ERDS_EVENT_URI = "http://uri.etsi.org/19522/Event/"

# The events Crossway issues, named as in ETSI EN 319 522-3 Table 2.
SUBMISSION_ACCEPTANCE = "SubmissionAcceptance"
SUBMISSION_REJECTION = "SubmissionRejection"
RELAY_ACCEPTANCE = "RelayAcceptance"
RELAY_REJECTION = "RelayRejection"
RELAY_FAILURE = "RelayFailure"
CONTENT_HANDOVER = "ContentHandover"
CONTENT_HANDOVER_FAILURE = "ContentHandoverFailure"
CONSIGNMENT_ACCEPTANCE = "ConsignmentAcceptance"
CONSIGNMENT_REJECTION = "ConsignmentRejection"
ACCEPTANCE_REJECTION_EXPIRY = "AcceptanceRejectionExpiry"
EVENTS = frozenset(
    {
        SUBMISSION_ACCEPTANCE,
        SUBMISSION_REJECTION,
        RELAY_ACCEPTANCE,
        RELAY_REJECTION,
        RELAY_FAILURE,
        CONTENT_HANDOVER,
        CONTENT_HANDOVER_FAILURE,
        CONSIGNMENT_ACCEPTANCE,
        CONSIGNMENT_REJECTION,
        ACCEPTANCE_REJECTION_EXPIRY,
    }
)
# A negative event must say why (EN 319 522-2: a reason on every negative event).
NEGATIVE_EVENTS = frozenset(
    {
        SUBMISSION_REJECTION,
        RELAY_REJECTION,
        RELAY_FAILURE,
        CONTENT_HANDOVER_FAILURE,
        CONSIGNMENT_REJECTION,
        ACCEPTANCE_REJECTION_EXPIRY,
    }
)
# After one of these nothing more happens to the message.
TERMINAL_EVENTS = frozenset(
    {
        SUBMISSION_REJECTION,
        RELAY_REJECTION,
        RELAY_FAILURE,
        CONTENT_HANDOVER_FAILURE,
        CONSIGNMENT_REJECTION,
        ACCEPTANCE_REJECTION_EXPIRY,
    }
)

_HEX64 = frozenset("0123456789abcdef")


def new_evidence_id() -> str:
    return os.urandom(16).hex()


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and set(text) <= _HEX64


@dataclass(frozen=True, slots=True)
class EvidenceEvent:
    """One observed step of one message, before or after signing."""

    evidence_id: str
    event: str  # an ETSI EN 319 522-3 event name, see EVENTS
    time_ms: int
    issuer: str  # the gateway that observed the step and signs the event
    sender: str  # sender subsystem
    recipient: str  # recipient subsystem (its mailbox)
    message_id: str  # the id the sender chose (its idempotency key)
    message_type: str
    submitted_at_ms: int
    expires_at_ms: int
    message_hash: str  # hex SHA-256 of the message's signed header bytes ("" if never signed)
    body_sha256: str  # hex SHA-256 of the message body as transmitted
    previous: str  # hex SHA-256 of the previous event's canonical bytes; "" for the first
    reason_code: str = ""  # negative events: a stable Crossway error code
    reason: str = ""  # negative events: what happened (e.g. the deciding policies)

    @property
    def delivery_key(self) -> str:
        """Sender subsystem and message id: what names a message across the federation."""
        return f"{self.sender}/{self.message_id}"

    @property
    def uri(self) -> str:
        return ERDS_EVENT_URI + self.event

    def canonical(self) -> bytes:
        doc: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["format"] = EVENT_FORMAT
        return _canonical(doc)

    @classmethod
    def decode(cls, data: bytes) -> EvidenceEvent:
        """Strict: the known fields with their types, a known event, and exactly canonical bytes."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EvidenceInvalid("an evidence event is not valid JSON") from exc
        names = {f.name for f in fields(cls)}
        if not isinstance(doc, dict) or doc.get("format") != EVENT_FORMAT or set(doc) != names | {"format"}:
            raise EvidenceInvalid(f"an evidence event is not of format {EVENT_FORMAT} with exactly its fields")
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = doc[f.name]
            want = int if f.type == "int" else str
            if not isinstance(value, want) or isinstance(value, bool):
                raise EvidenceInvalid(f"evidence event field {f.name!r} must be {want.__name__}")
            values[f.name] = value
        event = cls(**values)
        event.check()
        if event.canonical() != data:
            raise EvidenceInvalid(f"evidence event {event.evidence_id} is not in canonical form")
        return event

    def check(self) -> None:
        """The rules every event obeys, whoever made it."""
        if self.event not in EVENTS:
            raise EvidenceInvalid(f"evidence event {self.evidence_id}: unknown event {self.event!r}")
        if not _is_hex(self.evidence_id, 32):
            raise EvidenceInvalid("an evidence id is not 32 lower-case hex digits")
        for name in ("message_hash", "body_sha256", "previous"):
            value = getattr(self, name)
            if value and not _is_hex(value, 64):
                raise EvidenceInvalid(f"evidence event {self.evidence_id}: {name} is not a SHA-256 in hex")
        if self.event in NEGATIVE_EVENTS and not self.reason_code:
            raise EvidenceInvalid(f"evidence event {self.evidence_id}: a {self.event} must carry a reason code")
        if self.event != SUBMISSION_REJECTION and not self.message_hash:
            raise EvidenceInvalid(f"evidence event {self.evidence_id}: {self.event} without the message's hash")


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """An event with its canonical bytes and the issuer's detached signature over them."""

    event: EvidenceEvent
    data: bytes  # exactly the signed bytes
    algorithm: str
    key_id: str  # SHA-256 hex of the issuer's signing certificate
    signature: bytes

    @property
    def hash(self) -> str:
        """What the next event of the same message names as ``previous``."""
        return hashlib.sha256(self.data).hexdigest()

    def verify(self, public_key: PublicSigningKey) -> None:
        try:
            verify_signature(public_key, self.algorithm, self.data, self.signature, key_id=self.key_id)
        except SignatureInvalid as exc:
            raise EvidenceInvalid(f"evidence event {self.event.evidence_id}: {exc.message}") from exc

    def to_json(self) -> str:
        """The transport form (audit records, NATS state): canonical JSON text."""
        doc = {
            "algorithm": self.algorithm,
            "event": self.data.decode(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return _canonical(doc).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> SignedEvent:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or set(doc) != {"algorithm", "event", "key_id", "signature"}:
                raise EvidenceInvalid("a signed evidence event has unexpected or missing fields")
            signature = base64.b64decode(str(doc["signature"]), validate=True)
            signed = cls.of(str(doc["event"]).encode(), str(doc["algorithm"]), str(doc["key_id"]), signature)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise EvidenceInvalid(f"a signed evidence event is malformed ({type(exc).__name__})") from exc
        raw = text.encode() if isinstance(text, str) else text
        if _canonical(doc) != raw:
            raise EvidenceInvalid(f"signed evidence event {signed.event.evidence_id} is not in canonical form")
        return signed

    @classmethod
    def of(cls, data: bytes, algorithm: str, key_id: str, signature: bytes) -> SignedEvent:
        """Rebuild from the wire (signature not yet verified: call :meth:`verify`)."""
        return cls(EvidenceEvent.decode(data), data, algorithm, key_id, signature)


def sign_event(event: EvidenceEvent, signer: Signer) -> SignedEvent:
    event.check()
    data = event.canonical()
    return SignedEvent(event, data, signer.algorithm, signer.key_id, signer.sign(data))


def order_chain(events: Iterable[SignedEvent]) -> list[SignedEvent]:
    """The events of one message in chain order; raises ``EvidenceInvalid`` when they are not one chain.

    1. every event is of the same message (sender, message id) and, once signed, the same message hash;
    2. no evidence id appears twice;
    3. exactly one event has no predecessor, and every other names an event of the set;
    4. following predecessors from any event reaches that root (no cycle).
    The result lists each event after the one it names, earlier event times first.
    """
    items = list(events)
    if not items:
        return []
    key = items[0].event.delivery_key
    hashes = {e.event.message_hash for e in items if e.event.message_hash}
    if any(e.event.delivery_key != key for e in items) or len(hashes) > 1:
        raise EvidenceInvalid(f"the events are not all of message {key}")
    ids = [e.event.evidence_id for e in items]
    if len(set(ids)) != len(ids):
        raise EvidenceInvalid(f"an evidence id of message {key} appears twice")
    by_hash = {e.hash: e for e in items}
    roots = [e for e in items if not e.event.previous]
    if len(roots) != 1:
        raise EvidenceInvalid(f"message {key} has {len(roots)} first events; a chain has exactly one")
    children: dict[str, list[SignedEvent]] = {}
    for e in items:
        if e.event.previous:
            if e.event.previous not in by_hash:
                raise EvidenceInvalid(f"event {e.event.evidence_id} of {key} follows an event not in the chain")
            children.setdefault(e.event.previous, []).append(e)
    ordered: list[SignedEvent] = []
    frontier = [roots[0]]
    while frontier:
        frontier.sort(key=lambda e: (e.event.time_ms, e.event.evidence_id))
        current = frontier.pop(0)
        ordered.append(current)
        frontier.extend(children.get(current.hash, ()))
    if len(ordered) != len(items):
        raise EvidenceInvalid(f"the events of {key} do not all descend from its first event")
    return ordered


def delivery_record(signed: SignedEvent, gateway: str, record_id: str, *, peer_gateway: str = "") -> AuditRecord:
    """The audit record that puts one evidence event into ``gateway``'s Merkle log.

    The issuer records the event when it observes it; the other gateway records it again when
    it receives it (``peer_gateway`` = who sent it), so both logs hold the whole timeline.
    """
    e = signed.event
    decision = {RELAY_ACCEPTANCE: "allow", RELAY_REJECTION: "deny"}.get(e.event, "")
    return AuditRecord(
        record_id=record_id,
        gateway=gateway,
        side="delivery",
        message_id=e.delivery_key,
        client=e.sender,
        service=e.recipient,
        method=e.event,
        user_id="",
        purpose="",
        request_in_ms=e.time_ms,
        request_out_ms=e.time_ms,
        response_in_ms=e.time_ms,
        response_out_ms=e.time_ms,
        request_size=0,
        response_size=0,
        request_sha256=e.body_sha256,
        response_sha256=e.message_hash,
        status="OK",
        error_code=e.reason_code,
        decision=decision,
        policy_ids=(),
        withheld_fields=(),
        peer_gateway=peer_gateway,
        trace_id="",
        request_signature=base64.b64encode(signed.signature).decode(),
        response_signature="",
        evidence=signed.to_json(),
    )


def events_of_records(records: Sequence[AuditRecord]) -> list[SignedEvent]:
    """The signed events carried by delivery records (each once, as the first record had it)."""
    seen: dict[str, SignedEvent] = {}
    for record in records:
        if record.side == "delivery" and record.evidence:
            signed = SignedEvent.from_json(record.evidence)
            seen.setdefault(signed.event.evidence_id, signed)
    return list(seen.values())
