"""One message's state at one gateway, in a JetStream KV bucket, changed only by compare-and-set.

The value is the message's facts and every evidence event this gateway holds for it, in chain
order — so the bucket is at once the duplicate table (create-if-absent on the delivery key, kept
for the retention period, not JetStream's two-minute window), the serializer of a message's
events (each new event names the previous one; two workers racing to add one lose to the CAS
and re-decide on what won), and what Timeline and Evidence read (a KV watch makes Timeline live).

The role is "out" at the sender's gateway and "in" at the recipient's; a gateway sending to its
own member's mailbox holds both. Events are appended with a stable evidence id: when a write
landed but its acknowledgement was lost (NATS restarting), the re-read finds the id and the
append counts as done — an event is never issued twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from audit.trail import TERMINAL_EVENTS, EvidenceEvent, SignedEvent, order_chain
from gateway.delivery.errors import DeliveryBusy

__all__ = ["MessageState", "StateStore", "status_of"]

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 50
_CACHE_MAX = 8192


def status_of(events: tuple[SignedEvent, ...]) -> str:
    """A word for where the message stands, from the events alone."""
    names = {e.event.event for e in events}
    for name, word in (
        ("ConsignmentRejection", "rejected"),
        ("ConsignmentAcceptance", "accepted"),
        ("AcceptanceRejectionExpiry", "expired"),
        ("ContentHandoverFailure", "expired"),
        ("ContentHandover", "handed_over"),
        ("RelayRejection", "refused"),
        ("RelayFailure", "failed"),
        ("RelayAcceptance", "relayed"),
        ("SubmissionAcceptance", "submitted"),
    ):
        if name in names:
            return word
    return "accepting"


@dataclass(frozen=True, slots=True)
class MessageState:
    role: str  # "out" | "in"
    sender: str
    message_id: str
    recipient: str
    message_type: str
    submitted_at_ms: int
    expires_at_ms: int
    claimed_at_ms: int
    message_hash: str = ""
    body_sha256: str = ""
    acceptance: str = "handover"  # | "accept_reject"
    acceptance_window_ms: int = 0
    peer_gateway: str = ""  # the other side's gateway, once known
    attachment_ids: tuple[str, ...] = ()
    # Topics (issue 15): the fields the publisher's policy granted this delivery when it was
    # decided, kept with its SubmissionAcceptance so a retry delivers under the same decision
    # (None: every field).
    granted_fields: tuple[str, ...] | None = None
    events: tuple[SignedEvent, ...] = field(default=())

    @property
    def status(self) -> str:
        return status_of(self.events)

    @property
    def terminal(self) -> bool:
        if any(e.event.event in TERMINAL_EVENTS for e in self.events):
            return True
        names = self.names
        if "ContentHandover" in names and self.acceptance == "handover":
            return True
        return bool(names & {"ConsignmentAcceptance", "ConsignmentRejection"})

    @property
    def names(self) -> frozenset[str]:
        return frozenset(e.event.event for e in self.events)

    def event(self, name: str) -> SignedEvent | None:
        return next((e for e in self.events if e.event.event == name), None)

    def has(self, evidence_id: str) -> bool:
        return any(e.event.evidence_id == evidence_id for e in self.events)

    @property
    def last_hash(self) -> str:
        return self.events[-1].hash if self.events else ""

    def with_events(self, added: list[SignedEvent]) -> MessageState:
        """Merged and put in chain order (``EvidenceInvalid`` when they do not form one chain)."""
        known = {e.event.evidence_id for e in self.events}
        fresh = [e for e in added if e.event.evidence_id not in known]
        return replace(self, events=tuple(order_chain([*self.events, *fresh])))

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "events"}
        doc["events"] = [e.to_json() for e in self.events]
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> MessageState:
        doc = json.loads(data)
        events = tuple(SignedEvent.from_json(e) for e in doc.pop("events"))
        doc["attachment_ids"] = tuple(doc.get("attachment_ids", ()))
        if doc.get("granted_fields") is not None:
            doc["granted_fields"] = tuple(doc["granted_fields"])
        return cls(**doc, events=events)


Decide = Callable[[MessageState], EvidenceEvent | None]


class StateStore:
    """The gateway's message states (one KV bucket; keys from ``subjects.Names.state_key``)."""

    def __init__(self, kv: KeyValue, retention_s: float) -> None:
        self._kv = kv
        self._retention_s = retention_s
        # Decoded states by (key, revision): a value never changes under its revision, and every
        # worker reads a message's state several times (decoding its events strictly each time).
        self._decoded: dict[tuple[str, int], MessageState] = {}

    @property
    def kv(self) -> KeyValue:
        return self._kv

    async def get(self, key: str) -> tuple[MessageState, int] | None:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        revision = int(entry.revision or 0)
        state = self._decoded.get((key, revision))
        if state is None:
            state = MessageState.from_json(entry.value)
            if len(self._decoded) >= _CACHE_MAX:
                self._decoded.clear()
            self._decoded[(key, revision)] = state
        return state, revision

    async def claim(self, key: str, state: MessageState) -> tuple[MessageState, int] | None:
        """Create the state if absent: the new (state, revision), or None when it exists."""
        try:
            revision = await self._kv.create(key, state.to_json())
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        return state, int(revision)

    async def replace_claim(self, key: str, state: MessageState, revision: int) -> int | None:
        """Take over a stale claim (its owner died before it finished); None when someone else did."""
        try:
            return int(await self._kv.update(key, state.to_json(), last=revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def append(
        self,
        key: str,
        evidence_id: str,
        decide: Decide,
        sign: Callable[[EvidenceEvent], SignedEvent],
        **facts: Any,
    ) -> tuple[MessageState, SignedEvent | None]:
        """Add one event by compare-and-set. ``decide`` sees the current state and returns the
        unsigned event (its ``previous`` is filled in here) or None when it no longer applies;
        ``facts`` are state fields written in the same step. Returns the state after, and the
        event as stored (None when ``decide`` declined)."""
        for _ in range(_CAS_ATTEMPTS):
            current = await self.get(key)
            if current is None:
                raise DeliveryBusy(f"no state for {key}: the message is unknown here")
            state, revision = current
            existing = next((e for e in state.events if e.event.evidence_id == evidence_id), None)
            if existing is not None:
                return state, existing  # our earlier write landed; its ack was lost
            unsigned = decide(state)
            if unsigned is None:
                return state, None
            signed = sign(replace(unsigned, evidence_id=evidence_id, previous=state.last_hash))
            after = replace(state, events=(*state.events, signed), **facts)
            try:
                await self._kv.update(key, after.to_json(), last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # someone else changed it: decide again on what they wrote
            return after, signed
        raise DeliveryBusy(f"message state {key} keeps changing; retry")

    async def merge(self, key: str, events: list[SignedEvent], **facts: Any) -> tuple[MessageState, list[SignedEvent]]:
        """Add events another gateway issued (already verified); returns the state and the new ones."""
        for _ in range(_CAS_ATTEMPTS):
            current = await self.get(key)
            if current is None:
                raise DeliveryBusy(f"no state for {key}")
            state, revision = current
            fresh = [e for e in events if not state.has(e.event.evidence_id)]
            changed = {k: v for k, v in facts.items() if getattr(state, k) != v}
            if not fresh and not changed:
                return state, []
            after = replace(state.with_events(fresh), **changed)
            try:
                await self._kv.update(key, after.to_json(), last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            return after, fresh
        raise DeliveryBusy(f"message state {key} keeps changing; retry")

    async def settled(
        self, key: str, ready: Callable[[MessageState], bool], *, wait_s: float = 0.25
    ) -> MessageState | None:
        """The state once ``ready`` holds, looking again for up to ``wait_s``: a message is stored
        (and its job delivered) a moment *before* the evidence that says so is written, by design,
        so a worker that sees it first waits that moment instead of coming back seconds later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        pause = 0.005
        while True:
            current = await self.get(key)
            state = None if current is None else current[0]
            if state is not None and ready(state):
                return state
            if loop.time() >= deadline:
                return state
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def keys(self, pattern: str) -> list[str]:
        try:
            return list(await self._kv.keys(filters=[pattern]))
        except nats.js.errors.NoKeysError:
            return []

    async def watch(self, key: str) -> AsyncIterator[MessageState]:
        """Each new value of ``key`` (the current one first), until the caller stops."""
        watcher = await self._kv.watch(key)
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                if entry is None or entry.value is None:
                    continue
                yield MessageState.from_json(entry.value)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
