"""The recipient's gateway hands messages over: pull (Receive + Ack) or push, and keeps their deadlines.

Pull: ``Receive`` reads the caller's own mailbox — a durable pull consumer on its INBOX subject —
in stream order, skipping what is already handed over or ended; a message sent to the caller
stays unacknowledged in JetStream until the caller's explicit ``Ack``, which issues
ContentHandover (compare-and-set: exactly once, whoever asks twice gets the same evidence) and
only then acknowledges it in JetStream. Not acknowledged within ``handover_ack_wait_s``, it is
offered again; a gateway restarted in between recognises it by its delivery key.

Accept/reject mailboxes: after ContentHandover the recipient has the mailbox's window to
``Accept`` (ConsignmentAcceptance) or ``Reject`` (ConsignmentRejection, with its reason).

Deadlines (the expiry worker, a second durable consumer on all of this gateway's inbox subjects,
its timers kept by JetStream as delayed redeliveries): not handed over by ``expires_at`` →
ContentHandoverFailure; handed over but not decided within the window →
AcceptanceRejectionExpiry. Every event here is also queued for the sender's gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg

from audit.trail import EvidenceEvent, SignedEvent
from crossway.bus import Names
from crossway.core.errors import CrosswayError
from crossway.core.ids import SubsystemId
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.errors import DeliveryConflict, DeliveryExpired, DeliveryUnknown, MailboxUnknown
from gateway.delivery.evidence import EvidenceBook, unsigned_event
from gateway.delivery.message import AttachmentInfo, StoredHeaders, delivery_key, open_content
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.delivery.worker import PullWorker, fetch_some
from gateway.shared.context import GatewayContext
from gateway.wire.codec import decode_envelope, open_envelope
from gateway.wire.frames import SignedFrame

__all__ = ["Delivered", "ExpiryWorker", "Mailboxes"]

log = logging.getLogger(__name__)

_WAIT_FOR_STATE_S = 0.5


@dataclass(frozen=True, slots=True)
class Delivered:
    sender: str
    message_id: str
    recipient: str
    message_type: str
    payload: bytes
    content_type: str
    correlation_id: str
    purpose: str
    submitted_at_ms: int
    expires_at_ms: int
    attachments: tuple[AttachmentInfo, ...]
    decide_by_ms: int = 0


def _frame(ctx: GatewayContext, msg: Msg) -> SignedFrame:
    """A stored message, verified again (with the sender member's key from the configuration)."""
    signer = StoredHeaders.of(msg.headers).signer
    return open_envelope(decode_envelope(msg.data), signer, ctx.key_lookup(ctx.config()))


class Mailboxes:
    def __init__(
        self,
        ctx: GatewayContext,
        store: DeliveryStore,
        names: Names,
        book: EvidenceBook,
        config: DeliveryConfig,
        encryption_key: object | None,
        *,
        pushed: frozenset[SubsystemId] = frozenset(),
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self._config = config
        self._encryption_key = encryption_key
        self._pushed = pushed
        self._subs: dict[SubsystemId, tuple[int, object]] = {}
        self._pending: dict[str, Msg] = {}
        self._lock = asyncio.Lock()

    def _check_mailbox(self, mailbox: SubsystemId) -> None:
        if mailbox.member != self._ctx.gateway_id.member or self._ctx.config().mailbox(mailbox) is None:
            raise MailboxUnknown(f"{mailbox} has no mailbox at this gateway")

    async def _sub(self, mailbox: SubsystemId) -> object:
        async with self._lock:
            generation = self._store.generation
            known = self._subs.get(mailbox)
            if known is not None and known[0] == generation:
                return known[1]
            sub = await self._store.consumer(
                self._names.inbox_stream,
                self._names.mailbox_consumer(mailbox),
                self._names.inbox(mailbox),
                ack_wait_s=self._config.handover_ack_wait_s,
            )
            self._subs[mailbox] = (generation, sub)
            return sub

    async def receive(self, mailbox: SubsystemId, max_messages: int, wait_ms: int) -> AsyncIterator[Delivered]:
        self._check_mailbox(mailbox)
        if mailbox in self._pushed:
            raise DeliveryConflict(
                f"the messages of {mailbox} are pushed to its backend", hint="see [[delivery.push]] of this gateway"
            )
        sub = await self._sub(mailbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait_ms, 0) / 1000
        count = 0
        limit = max(1, min(max_messages or 100, 1000))
        while count < limit:
            # Wait (up to wait_ms) only for the first message; then take what is there and end.
            remaining = deadline - loop.time() if count == 0 else 0.0
            msgs = await fetch_some(sub, min(limit - count, 64), remaining)
            if not msgs:
                if count or loop.time() >= deadline:
                    return
                continue
            for msg in msgs:
                delivered = await self._offer(msg, mailbox)
                if delivered is not None:
                    count += 1
                    yield delivered

    async def _offer(self, msg: Msg, mailbox: SubsystemId) -> Delivered | None:
        ctx = self._ctx
        try:
            frame = _frame(ctx, msg)
        except CrosswayError as exc:
            log.error("delivery: a stored message of %s does not verify (%s); held back", mailbox, exc.code)
            await msg.nak(delay=30.0)
            return None
        h = frame.header
        key = delivery_key(h.client, h.message_id)
        skey = self._names.state_key("in", mailbox, key)
        states = self._store.states
        assert states is not None
        found = await states.settled(skey, lambda s: "RelayAcceptance" in s.names or s.terminal)
        now = ctx.clock.now_ms()
        if found is None or "RelayAcceptance" not in found.names:
            if found is not None and found.terminal:
                await msg.ack()
            else:
                await msg.nak(delay=_WAIT_FOR_STATE_S)  # its RelayAcceptance is being written
            return None
        state = found
        if "ContentHandover" in state.names or state.terminal or now >= state.expires_at_ms:
            await msg.ack()  # done, or the expiry worker's to end
            return None
        content = open_content(frame, self._encryption_key)
        self._pending[skey] = msg
        return Delivered(
            sender=h.client,
            message_id=h.message_id,
            recipient=h.service,
            message_type=h.method,
            payload=content.payload,
            content_type=content.content_type,
            correlation_id=content.correlation_id,
            purpose=h.purpose,
            submitted_at_ms=h.issued_at_ms,
            expires_at_ms=h.deadline_ms,
            attachments=content.attachments,
        )

    async def ack(self, mailbox: SubsystemId, sender: str, message_id: str) -> SignedEvent:
        """ContentHandover, once; asked again, the same evidence."""
        self._check_mailbox(mailbox)
        key = delivery_key(sender, message_id)
        skey = self._names.state_key("in", mailbox, key)
        now = self._ctx.clock.now_ms()

        def decide(state: MessageState) -> EvidenceEvent | None:
            if "RelayAcceptance" not in state.names or "ContentHandover" in state.names or state.terminal:
                return None
            if now >= state.expires_at_ms:
                return None
            return unsigned_event("ContentHandover", state, self._book.issuer, self._ctx.clock.now_ms())

        state, signed = await self._append(skey, key, decide)
        msg = self._pending.pop(skey, None)
        if msg is not None:
            try:
                await msg.ack()
            except Exception:
                log.debug("delivery %s: inbox ack lost; the redelivery will be skipped", key)
        if signed is not None:
            log.info("delivery %s: ContentHandover to %s", key, mailbox)
            return signed
        existing = state.event("ContentHandover")
        if existing is not None:
            return existing
        if now >= state.expires_at_ms:
            raise DeliveryExpired(f"message {key} expired before it was acknowledged")
        raise DeliveryConflict(f"message {key} cannot be handed over now: it is {state.status}")

    async def decide(
        self, mailbox: SubsystemId, sender: str, message_id: str, accept: bool, reason: str
    ) -> SignedEvent:
        """Accept/reject mode: ConsignmentAcceptance or ConsignmentRejection, within the window."""
        self._check_mailbox(mailbox)
        key = delivery_key(sender, message_id)
        skey = self._names.state_key("in", mailbox, key)
        now = self._ctx.clock.now_ms()
        name = "ConsignmentAcceptance" if accept else "ConsignmentRejection"

        def choose(state: MessageState) -> EvidenceEvent | None:
            handover = state.event("ContentHandover")
            if state.acceptance != "accept_reject" or handover is None or state.terminal:
                return None
            if now >= handover.event.time_ms + state.acceptance_window_ms:
                return None
            code = "" if accept else "consignment.rejected"
            return unsigned_event(name, state, self._book.issuer, self._ctx.clock.now_ms(), code, reason)

        state, signed = await self._append(skey, key, choose)
        if signed is not None:
            log.info("delivery %s: %s by %s", key, name, mailbox)
            return signed
        existing = state.event(name)
        if existing is not None:
            return existing
        if state.acceptance != "accept_reject":
            raise DeliveryConflict(f"the mailbox of {mailbox} is in handover mode: there is nothing to accept")
        raise DeliveryConflict(
            f"message {key} cannot be {'accepted' if accept else 'rejected'} now: it is {state.status}"
        )

    async def _append(
        self, skey: str, key: str, decide: Callable[[MessageState], EvidenceEvent | None]
    ) -> tuple[MessageState, SignedEvent | None]:
        states = self._store.states
        assert states is not None
        if await states.get(skey) is None:
            raise DeliveryUnknown(f"no message {key} in this mailbox")
        return await self._book.append(skey, decide, forward=True)


class ExpiryWorker:
    """Deadlines of messages in this gateway's mailboxes, kept as delayed JetStream redeliveries."""

    def __init__(
        self, ctx: GatewayContext, store: DeliveryStore, names: Names, book: EvidenceBook, config: DeliveryConfig
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self.worker = PullWorker(
            "expiry",
            store,
            self._names.inbox_stream,
            names.expiry_consumer,
            names.inbox_all,
            self.handle,
            ack_wait_s=config.ack_wait_s,
            max_in_flight=config.max_in_flight,
        )

    async def handle(self, msg: Msg) -> float | None:
        ctx = self._ctx
        stored = StoredHeaders.of(msg.headers)
        mailbox = SubsystemId.parse(stored.recipient)
        key = delivery_key(stored.sender, stored.message_id)
        skey = self._names.state_key("in", mailbox, key)
        states = self._store.states
        assert states is not None
        now = ctx.clock.now_ms()
        current = await states.get(skey)
        if current is None or "RelayAcceptance" not in current[0].names:
            if current is not None and current[0].terminal:
                return None
            return None if now >= stored.expires_at_ms else min(5.0, max(0.05, (stored.expires_at_ms - now) / 1000))
        state = current[0]
        if state.terminal:
            return None
        handover = state.event("ContentHandover")
        if handover is None:
            if now < state.expires_at_ms:
                left_s = (state.expires_at_ms - now) / 1000
                if state.acceptance == "accept_reject":
                    # Its decision deadline starts at the handover, which may come any time: look
                    # again every tenth of the window (1 s to 60 s) until then.
                    return min(left_s, max(1.0, min(60.0, state.acceptance_window_ms / 10_000)))
                return left_s
            await self._end(skey, "ContentHandoverFailure", "not handed over before it expired")
            return None
        if state.acceptance != "accept_reject":
            return None
        decide_by = handover.event.time_ms + state.acceptance_window_ms
        if now < decide_by:
            return (decide_by - now) / 1000
        await self._end(skey, "AcceptanceRejectionExpiry", "neither accepted nor rejected within the window")
        return None

    async def _end(self, skey: str, name: str, reason: str) -> None:
        def decide(state: MessageState) -> EvidenceEvent | None:
            if state.terminal:
                return None
            if name == "ContentHandoverFailure" and "ContentHandover" in state.names:
                return None
            return unsigned_event(name, state, self._book.issuer, self._ctx.clock.now_ms(), "delivery.expired", reason)

        state, signed = await self._book.append(skey, decide, forward=True)
        if signed is not None:
            log.info("delivery %s/%s: %s", state.sender, state.message_id, name)
