"""Push subscriptions: the subscriber's gateway hands each accepted event, in order, to a backend.

The method is the subscriber subsystem's ``[[delivery.push]]`` target (the operator's choice, never
the subscribing system's: a system cannot point its gateway at an address of its own). One named
durable consumer per push subscription (``tpush-<h>-<s>``) on its accepted events, one event in
flight, so the backend sees them in topic order. The payload's bytes are the request; the metadata
names the publisher (``crossway-client``), the delivery (``crossway-message-id``, its idempotency
key: an event the backend got but whose handover was not recorded is pushed again), the topic,
sequence, key and key sequence, and the fields withheld. A successful answer is the handover
(ContentHandover, sent back to the publisher's gateway); a failure is retried with backoff.
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg

from adapters import Adapter, build_adapter
from adapters.base import BackendCall
from crossway.core.errors import CrosswayError
from gateway.delivery import DeliveryService, PushTarget
from gateway.delivery.worker import PullWorker, backoff_delay
from gateway.topics.event import copy_message_id
from gateway.topics.inbox import SubscriberDesk
from gateway.topics.store import Mine
from gateway.topics.subjects import TopicNames, short

__all__ = ["TopicPushers"]

log = logging.getLogger(__name__)


def _no_descriptors() -> bytes:
    return b""


class TopicPushers:
    def __init__(self, delivery: DeliveryService, names: TopicNames, desk: SubscriberDesk) -> None:
        self._delivery = delivery
        self._names = names
        self._desk = desk
        self._running: dict[str, tuple[PullWorker, Adapter]] = {}

    def target(self, subsystem: str) -> PushTarget | None:
        return next((t for t in self._delivery.config.push if str(t.mailbox) == subsystem), None)

    def run(self, mine: Mine) -> None:
        target = self.target(mine.subscriber)
        if not mine.push or target is None or mine.id in self._running:
            return
        adapter = build_adapter(target.adapter, target.address, None, _no_descriptors, target.method.split("/")[1])
        config = self._delivery.config
        worker = PullWorker(
            f"topic push {mine.id}",
            self._delivery.store,
            self._names.inbox_stream,
            f"tpush-{short(str(self._names.gateway))}-{mine.id}",
            self._names.inbox(mine.id, 0).rpartition(".")[0] + ".*",
            lambda msg: self.handle(mine.id, target, adapter, msg),
            ack_wait_s=max(config.ack_wait_s, target.timeout_s * 2),
            max_in_flight=1,
            consumer_options={"max_ack_pending": 1},
        )
        self._running[mine.id] = (worker, adapter)
        worker.start()

    async def handle(self, sub_id: str, target: PushTarget, adapter: Adapter, msg: Msg) -> float | None:
        n = int(msg.subject.rpartition(".")[2])
        mine = await self._desk.mine(None, sub_id)
        if n <= mine.handed_over:
            return None  # handed over before (a redelivery)
        if n >= mine.next:
            return 0.2  # stored a moment before its RelayAcceptance: hand it over once accepted
        received = await self._desk.receive_one(mine, n)
        event = received.event.header
        metadata = (
            ("crossway-client", mine.publisher),
            ("crossway-message-id", copy_message_id(mine.topic.rpartition("/")[2], n, mine.id)),
            ("crossway-purpose", mine.purpose),
            ("crossway-topic", mine.topic),
            ("crossway-sequence", str(n)),
            ("crossway-key", event.event_key),
            ("crossway-key-sequence", str(event.key_sequence)),
            ("crossway-withheld", ",".join(received.withheld)),
        )
        try:
            await adapter.unary(BackendCall(target.method, target.timeout_s, metadata), received.payload)
        except CrosswayError as exc:
            config = self._delivery.config
            delay = backoff_delay(msg.metadata.num_delivered or 1, config.backoff_s, config.backoff_max_s)
            log.info(
                "topic %s: push of %d to %s failed (%s); retry in %.1f s", mine.topic, n, target.method, exc.code, delay
            )
            return delay
        await self._desk.ack(None, sub_id, n)
        return None

    async def aclose(self, grace_s: float = 2.0) -> None:
        for worker, adapter in self._running.values():
            await worker.aclose(grace_s)
            await adapter.aclose()
        self._running.clear()
