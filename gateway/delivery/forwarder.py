"""Events the recipient's gateway observed go back to the sender's gateway, until they arrive.

A durable pull consumer on this gateway's FORWARD subject. A job names a message and the event
that was being added when it was queued; once the state holds that event, the state's whole
timeline is sent with ``PeerDelivery.Evidence`` (idempotent: the sender merges what it lacks, in
chain order), retried with backoff while the sender's gateway is away. A job whose event never
made it into the state (its compare-and-set lost, or the process died first) is dropped.
"""

from __future__ import annotations

import json
import logging

from nats.aio.msg import Msg

from crossway.bus import Names
from crossway.core.errors import CrosswayError
from crossway.core.ids import SubsystemId
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.peerlink import DeliveryLink
from gateway.delivery.relay import PERMANENT
from gateway.delivery.store import DeliveryStore
from gateway.delivery.worker import PullWorker, backoff_delay
from gateway.shared.context import GatewayContext

__all__ = ["EvidenceForwarder"]

log = logging.getLogger(__name__)

_ORPHAN_MS = 60_000


class EvidenceForwarder:
    def __init__(
        self, ctx: GatewayContext, store: DeliveryStore, names: Names, config: DeliveryConfig, link: DeliveryLink
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._config = config
        self._link = link
        self.worker = PullWorker(
            "forward",
            store,
            self._names.forward_stream,
            names.forward_consumer,
            names.forward,
            self.handle,
            ack_wait_s=config.ack_wait_s,
            max_in_flight=config.max_in_flight,
        )

    async def handle(self, msg: Msg) -> float | None:
        job = json.loads(msg.data)
        key, evidence_id, at_ms = str(job["key"]), str(job["evidence_id"]), int(job["at_ms"])
        states = self._store.states
        assert states is not None
        now = self._ctx.clock.now_ms()
        state = await states.settled(key, lambda s: s.has(evidence_id))
        if state is None:
            return None
        if not state.has(evidence_id):
            return None if now - at_ms > _ORPHAN_MS else 0.5
        config = self._ctx.config()
        sender = SubsystemId.parse(state.sender)
        member = config.member(sender.member)
        if member is None or not member.gateways:
            log.warning(
                "delivery %s/%s: the sender's member has no gateway; evidence kept here", state.sender, state.message_id
            )
            return None
        attempts = msg.metadata.num_delivered or 1
        error: CrosswayError | None = None
        for gateway in member.gateways:
            try:
                await self._link.send_evidence(
                    gateway.peer_address,
                    state.sender,
                    state.message_id,
                    list(state.events),
                    self._config.relay_timeout_s,
                )
                return None
            except CrosswayError as exc:
                error = exc
                if exc.status in PERMANENT:
                    break
        assert error is not None
        if error.status in PERMANENT:
            log.warning(
                "delivery %s/%s: the sender's gateway refused the evidence (%s)",
                state.sender,
                state.message_id,
                error.code,
            )
            return None
        return backoff_delay(attempts, self._config.backoff_s, self._config.backoff_max_s)
