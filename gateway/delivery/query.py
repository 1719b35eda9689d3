"""What the sender and the recipient may ask about their messages: timeline, evidence, report.

A message is visible to its sender subsystem (the sender gateway's "out" state) and to its
recipient subsystem (the recipient gateway's "in" state), nobody else. Both states hold the whole
timeline once the evidence has travelled; each side reads its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cryptography import x509

from audit.trail import SignedEvent, build_timeline_bundle
from crossway.bus import Names
from crossway.core.ids import SubsystemId
from crossway.security.pki import cert_to_pem
from gateway.delivery.errors import DeliveryUnknown
from gateway.delivery.message import delivery_key
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.shared.context import GatewayContext

__all__ = ["Queries", "ReportRow"]

_OVERDUE_DEFAULT_MS = 3_600_000


@dataclass(slots=True)
class ReportRow:
    role: str
    subsystem: str
    total: int = 0
    pending: int = 0
    handed_over: int = 0
    refused: int = 0
    expired: int = 0
    overdue: list[tuple[str, str]] = field(default_factory=list)
    expired_messages: list[tuple[str, str]] = field(default_factory=list)


class Queries:
    def __init__(self, ctx: GatewayContext, store: DeliveryStore, names: Names) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names

    def _key(self, caller: SubsystemId, sender: str, message_id: str) -> str:
        key = delivery_key(sender, message_id)
        if sender == str(caller):
            return self._names.state_key("out", caller, key)
        return self._names.state_key("in", caller, key)

    async def state(self, caller: SubsystemId, sender: str, message_id: str) -> tuple[str, MessageState]:
        states = self._store.states
        assert states is not None
        skey = self._key(caller, sender, message_id)
        current = await states.get(skey)
        if current is None:
            raise DeliveryUnknown(f"{caller} sent or received no message {sender}/{message_id} through this gateway")
        return skey, current[0]

    async def timeline(
        self, caller: SubsystemId, sender: str, message_id: str, follow: bool
    ) -> AsyncIterator[SignedEvent]:
        skey, state = await self.state(caller, sender, message_id)
        sent: set[str] = set()
        for signed in state.events:
            sent.add(signed.event.evidence_id)
            yield signed
        if not follow or state.terminal:
            return
        states = self._store.states
        assert states is not None
        async for later in states.watch(skey):
            for signed in later.events:
                if signed.event.evidence_id not in sent:
                    sent.add(signed.event.evidence_id)
                    yield signed
            if later.terminal:
                return
            await asyncio.sleep(0)

    async def bundle(self, caller: SubsystemId, sender: str, message_id: str) -> bytes:
        """The timeline with the issuers' signing certificates (from the verified configuration)."""
        _, state = await self.state(caller, sender, message_id)
        config = self._ctx.config()
        pems: dict[str, str] = {}
        for member in config.members():
            for key_id, info in member.signing_certificates.items():
                pems[key_id] = cert_to_pem(x509.load_der_x509_certificate(info.der)).decode()
        return build_timeline_bundle(list(state.events), pems, config.ca_certificates)

    async def report(self, caller: SubsystemId, overdue_before_ms: int) -> list[ReportRow]:
        """Counts per role; overdue = not ended and submitted before ``overdue_before_ms``."""
        states = self._store.states
        assert states is not None
        now = self._ctx.clock.now_ms()
        threshold = overdue_before_ms or now - _OVERDUE_DEFAULT_MS
        rows = []
        for role, label in (("out", "sender"), ("in", "mailbox")):
            row = ReportRow(label, str(caller))
            for skey in await states.keys(self._names.state_filter(role, caller)):
                current = await states.get(skey)
                if current is None:
                    continue
                state = current[0]
                row.total += 1
                status = state.status
                ref = (state.sender, state.message_id)
                if status in ("handed_over", "accepted"):
                    row.handed_over += 1
                elif status in ("refused", "rejected") or "SubmissionRejection" in state.names:
                    row.refused += 1
                elif status in ("expired", "failed"):
                    row.expired += 1
                    row.expired_messages.append(ref)
                else:
                    row.pending += 1
                    if state.submitted_at_ms < threshold or now >= state.expires_at_ms:
                        row.overdue.append(ref)
            rows.append(row)
        return rows
