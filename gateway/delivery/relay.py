"""The sender's gateway relays each stored message until the recipient's gateway answers or it expires.

A durable pull consumer on this gateway's OUTBOX subject; per message, in order:
1. the state says what is left to do: nothing (answered, failed, or a stale copy of a message
   signed again after a taken-over claim) → done; not yet accepted → wait for the submitter;
2. at or after ``expires_at`` → RelayFailure (``delivery.expired``), done;
3. attachments are streamed to the recipient's gateway (chunk by chunk), then one relay attempt
   — a fresh signed RELAY envelope with the message and our events — goes to the recipient
   member's gateways in the registry's order, with a deadline of ``relay_timeout_s`` or what is
   left until expiry;
4. an answer (the recipient's timeline: RelayAcceptance or RelayRejection) is verified event by
   event and merged into the state, logged here too → done;
5. a refusal that retrying cannot change (the message does not verify there, the mailbox is
   gone, …) → RelayFailure with that code, done; anything else (the peer is down, times out,
   is busy) → retried after exponential backoff with jitter, never past expiry.
Kill the process at any point: the message comes back after the ack wait and the recipient
recognises a second relay of the same message by its delivery key (original evidence).
"""

from __future__ import annotations

import logging

import grpc
from nats.aio.msg import Msg

from audit.trail import EvidenceEvent, EvidenceInvalid, SignedEvent
from crossway.bus import Names
from crossway.core.errors import CrosswayError, RegistryError
from crossway.core.ids import SubsystemId
from gateway.delivery.attachments import AttachmentStore
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.errors import AttachmentUnknown, MailboxUnknown
from gateway.delivery.evidence import EvidenceBook, unsigned_event
from gateway.delivery.message import delivery_key, seal_relay_attempt
from gateway.delivery.peerlink import DeliveryLink
from gateway.delivery.sender import CLAIM_STALE_MS
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.delivery.worker import PullWorker, backoff_delay
from gateway.shared.context import GatewayContext
from gateway.wire.codec import decode_envelope, open_envelope
from gateway.wire.frames import Envelope, SignedFrame
from registry.configuration import VerifiedConfiguration

__all__ = ["PERMANENT", "RelayWorker"]

log = logging.getLogger(__name__)

# A peer's refusal with one of these statuses will not change by retrying the same message.
PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_ANSWERS = frozenset({"RelayAcceptance", "RelayRejection"})


class RelayWorker:
    def __init__(
        self,
        ctx: GatewayContext,
        store: DeliveryStore,
        names: Names,
        book: EvidenceBook,
        config: DeliveryConfig,
        link: DeliveryLink,
        attachments: AttachmentStore,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self._config = config
        self._link = link
        self._attachments = attachments
        self.worker = PullWorker(
            "relay",
            store,
            self._names.outbox_stream,
            names.relay_consumer,
            names.outbox,
            self.handle,
            ack_wait_s=config.ack_wait_s,
            max_in_flight=config.max_in_flight,
        )

    async def handle(self, msg: Msg) -> float | None:
        ctx = self._ctx
        env = decode_envelope(msg.data)
        config = ctx.config()
        frame = open_envelope(env, ctx.member, ctx.key_lookup(config))  # our own signature, checked again
        h = frame.header
        sender = SubsystemId.parse(h.client)
        key = delivery_key(h.client, h.message_id)
        skey = self._names.state_key("out", sender, key)
        states = self._store.states
        assert states is not None
        found = await states.settled(skey, lambda s: "SubmissionAcceptance" in s.names)
        now = ctx.clock.now_ms()
        # 1. what is left to do
        if found is None:
            return None
        state = found
        if "SubmissionAcceptance" not in state.names:
            return None if now - state.claimed_at_ms > CLAIM_STALE_MS else 0.5
        if state.message_hash != frame.header_hash.hex():
            return None  # a copy from before a taken-over claim
        if state.names & (_ANSWERS | {"RelayFailure"}) or state.terminal:
            return None
        # 2. expired
        if now >= h.deadline_ms:
            attempts = msg.metadata.num_delivered or 1
            await self._fail(skey, "delivery.expired", f"not relayed before it expired ({attempts} attempt(s))")
            return None
        # 3. the attempt, to each of the recipient member's gateways in turn
        left_s = (h.deadline_ms - now) / 1000
        try:
            answer, peer = await self._relay(config, env, frame, state, left_s)
        except CrosswayError as exc:
            if exc.status in PERMANENT and not isinstance(exc, RegistryError):
                await self._fail(skey, exc.code, exc.message)
                return None
            delay = backoff_delay(
                msg.metadata.num_delivered or 1, self._config.backoff_s, self._config.backoff_max_s, left_s
            )
            log.info("delivery %s: relay failed (%s); retry in %.1f s", key, exc.code, delay)
            return delay
        # 4. the answer, verified and merged
        try:
            foreign = [e for e in answer if not state.has(e.event.evidence_id)]
            for signed in foreign:
                self._book.verify_foreign(config, signed)
            if not {e.event.event for e in answer} & _ANSWERS:
                raise EvidenceInvalid(f"the answer for {key} holds no RelayAcceptance nor RelayRejection")
            _, fresh = await states.merge(skey, foreign, peer_gateway=peer)
        except (EvidenceInvalid, CrosswayError) as exc:
            code = getattr(exc, "code", "audit.evidence_invalid")
            log.warning("delivery %s: the recipient's answer does not verify (%s); retrying", key, code)
            return backoff_delay(
                msg.metadata.num_delivered or 1, self._config.backoff_s, self._config.backoff_max_s, left_s
            )
        for signed in fresh:
            self._book.log(signed, peer_gateway=peer)
        log.info("delivery %s: %s by %s", key, ", ".join(e.event.event for e in fresh) or "answered", peer)
        return None

    async def _relay(
        self, config: VerifiedConfiguration, env: Envelope, frame: SignedFrame, state: MessageState, left_s: float
    ) -> tuple[list[SignedEvent], str]:
        ctx = self._ctx
        recipient = SubsystemId.parse(state.recipient)
        member = config.member(recipient.member)
        if member is None or not member.gateways:
            raise MailboxUnknown(f"{recipient.member} has no gateway in the registry")
        timeout = max(0.1, min(self._config.relay_timeout_s, left_s))
        last: CrosswayError | None = None
        for gateway in member.gateways:
            try:
                if state.attachment_ids:
                    await self._upload(gateway.peer_address, env, state, timeout)
                now = ctx.clock.now_ms()
                attempt = seal_relay_attempt(ctx.signer, ctx.member, frame, now, now + int(timeout * 1000))
                events = await self._link.relay(gateway.peer_address, attempt, env, list(state.events), timeout)
                return events, str(gateway.id)
            except CrosswayError as exc:
                last = exc
                if exc.status in PERMANENT:
                    raise
        assert last is not None
        raise last

    async def _upload(self, address: str, env: Envelope, state: MessageState, timeout: float) -> None:
        """Each attachment, streamed chunk by chunk (the recipient checks each against the message)."""
        for attachment_id in state.attachment_ids:
            stored = await self._attachments.stored(state.sender, attachment_id)
            if stored is None:
                raise AttachmentUnknown(f"attachment {attachment_id} of {state.sender}/{state.message_id} is gone")
            chunks = self._attachments.read(stored)
            await self._link.upload(address, env, attachment_id, chunks, max(timeout, 300.0))

    async def _fail(self, skey: str, code: str, reason: str) -> None:
        def decide(state: MessageState) -> EvidenceEvent | None:
            if state.names & (_ANSWERS | {"RelayFailure"}):
                return None
            return unsigned_event("RelayFailure", state, self._book.issuer, self._ctx.clock.now_ms(), code, reason)

        state, signed = await self._book.append(skey, decide)
        if signed is not None:
            log.info("delivery %s/%s: RelayFailure (%s)", state.sender, state.message_id, code)
