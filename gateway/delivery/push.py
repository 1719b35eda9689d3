"""Push handover: a mailbox's messages handed to a method of the recipient's backend.

For each ``[[delivery.push]]`` mailbox, a durable pull consumer on its INBOX subject calls the
configured method through the adapters (today the gRPC one: the payload's bytes go through as the
request), with the sender, message id, purpose and type in the metadata, and a deadline of
``timeout_s``. A successful answer is the handover (ContentHandover, exactly once by
compare-and-set, also sent to the sender's gateway); a failure is retried with exponential backoff
and jitter up to the message's expiry, when the expiry worker ends it (ContentHandoverFailure).
A message the backend got but whose handover could not be recorded (the gateway died in between)
is pushed again: backends should treat the message id in the metadata as an idempotency key.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from adapters import Adapter, build_adapter
from adapters.base import BackendCall
from audit.trail import EvidenceEvent
from crossway.bus import Names
from crossway.core.errors import CrosswayError
from crossway.core.ids import SubsystemId
from gateway.delivery.config import DeliveryConfig, PushTarget
from gateway.delivery.evidence import EvidenceBook, unsigned_event
from gateway.delivery.message import StoredHeaders, delivery_key, open_content
from gateway.delivery.state import MessageState
from gateway.delivery.store import DeliveryStore
from gateway.delivery.worker import PullWorker, backoff_delay
from gateway.shared.context import GatewayContext
from gateway.wire.codec import decode_envelope, open_envelope

__all__ = ["PushWorker"]

log = logging.getLogger(__name__)


def _no_descriptors() -> bytes:
    return b""


class PushWorker:
    def __init__(
        self,
        ctx: GatewayContext,
        store: DeliveryStore,
        names: Names,
        book: EvidenceBook,
        config: DeliveryConfig,
        target: PushTarget,
        encryption_key: object | None,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._book = book
        self._config = config
        self._target = target
        self._encryption_key = encryption_key
        grpc_service = target.method.split("/")[1]
        self.adapter: Adapter = build_adapter(target.adapter, target.address, None, _no_descriptors, grpc_service)
        self.worker = PullWorker(
            f"push {target.mailbox}",
            store,
            self._names.inbox_stream,
            names.push_consumer(target.mailbox),
            names.inbox(target.mailbox),
            self.handle,
            ack_wait_s=max(config.ack_wait_s, target.timeout_s * 2),
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
        state = await states.settled(skey, lambda s: "RelayAcceptance" in s.names or s.terminal)
        now = ctx.clock.now_ms()
        if state is None or "RelayAcceptance" not in state.names:
            if state is not None and state.terminal:
                return None
            return None if now >= stored.expires_at_ms else 0.5
        if "ContentHandover" in state.names or state.terminal or now >= state.expires_at_ms:
            return None  # done, or the expiry worker's to end
        frame = open_envelope(decode_envelope(msg.data), stored.signer, ctx.key_lookup(ctx.config()))
        content = open_content(frame, self._encryption_key)
        h = frame.header
        call = BackendCall(
            self._target.method,
            min(self._target.timeout_s, (state.expires_at_ms - now) / 1000),
            (
                ("crossway-client", h.client),
                ("crossway-message-id", h.message_id),
                ("crossway-purpose", h.purpose),
                ("crossway-message-type", h.method),
                ("crossway-content-type", content.content_type),
            ),
        )
        try:
            await self.adapter.unary(call, content.payload)
        except CrosswayError as exc:
            left_s = (state.expires_at_ms - now) / 1000
            delay = backoff_delay(
                msg.metadata.num_delivered or 1, self._config.backoff_s, self._config.backoff_max_s, left_s
            )
            log.info("delivery %s: push to %s failed (%s); retry in %.1f s", key, self._target.method, exc.code, delay)
            return delay

        def decide(current: MessageState) -> EvidenceEvent | None:
            if "ContentHandover" in current.names or current.terminal or ctx.clock.now_ms() >= current.expires_at_ms:
                return None
            return unsigned_event("ContentHandover", current, self._book.issuer, ctx.clock.now_ms())

        _, signed = await self._book.append(skey, decide, forward=True)
        if signed is not None:
            log.info("delivery %s: ContentHandover by push to %s", key, self._target.method)
        return None

    async def aclose(self) -> None:
        await self.adapter.aclose()
