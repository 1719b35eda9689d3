"""The publisher's gateway: who may subscribe (Cedar, deny by default), and each subscriber's progress.

``PeerTopics.Subscribe``, in order:
1. the peer's TLS certificate (a registered gateway), the subscriber a subsystem of its member
2. the topic is one this gateway's member publishes                            → topic.unknown
3. Cedar: principal the subscriber, action the topic, context purpose (sequence 0); a deny is
   ``policy.denied`` and an audit record here — nothing is stored
4. the subscription (id from topic, subscriber and purpose: asking again returns it) is stored
   with its start (new events: the next sequence, fixed under the topic's publish lock so no
   event falls between), and its fan-out worker starts.
The status matrix (``Topics.Status``, the topic's owner only) reads the same records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crossway.core.errors import PeerUntrusted, PolicyDenied
from crossway.core.ids import SubsystemId
from gateway.delivery import DeliveryService
from gateway.delivery.message import delivery_key
from gateway.delivery.recipient import PeerCheck
from gateway.shared.context import GatewayContext
from gateway.topics.errors import TopicUnknown
from gateway.topics.event import copy_message_id
from gateway.topics.fanout import FanOut
from gateway.topics.policies import TopicPolicyHolder
from gateway.topics.publisher import PublishDesk
from gateway.topics.store import Subscription, TopicStore
from gateway.topics.subjects import TopicNames, short
from gateway.wire.link import AuthContext
from policies import TopicRequest

__all__ = ["StatusRow", "SubscriptionDesk"]

log = logging.getLogger(__name__)

# How far back the status looks for handovers the subscriber's gateway has not reported yet.
_HANDOVER_LOOKBACK = 64


@dataclass(frozen=True, slots=True)
class StatusRow:
    subscription: Subscription
    handed_over: int
    lag: int


class SubscriptionDesk:
    def __init__(
        self,
        ctx: GatewayContext,
        delivery: DeliveryService,
        store: TopicStore,
        names: TopicNames,
        policies: TopicPolicyHolder,
        publisher: PublishDesk,
        fanout: FanOut,
        peers: PeerCheck,
    ) -> None:
        self._ctx = ctx
        self._delivery = delivery
        self._store = store
        self._names = names
        self._policies = policies
        self._publisher = publisher
        self._fanout = fanout
        self._peers = peers

    async def resume(self) -> None:
        """After a start: every active subscription's fan-out runs again."""
        for sub in await self.all():
            if sub.state == "active" or not sub.notified:
                self._fanout.run(sub)

    async def all(self) -> list[Subscription]:
        out = []
        for sub_id in await self._store.index(self._names.sub_index):
            found = await self._store.get(self._names.sub_key(sub_id), Subscription)
            if found is not None:
                out.append(found[0])
        return out

    async def offer(
        self, auth_context: AuthContext, topic: str, subscriber_text: str, purpose: str, start: int
    ) -> Subscription:
        ctx = self._ctx
        config = ctx.config()
        now = ctx.clock.now_ms()
        # 1. the peer and the subscriber
        peer = self._peers.identify(auth_context, config, now)
        subscriber = SubsystemId.parse(subscriber_text)
        if str(subscriber.member) != peer.member:
            raise PeerUntrusted(f"{subscriber} is not a subsystem of the asking gateway's member {peer.member}")
        # 2. a topic of ours
        view = config.topic(topic)
        if view is None or view.id.publisher.member != ctx.gateway_id.member:
            raise TopicUnknown(f"this gateway publishes no topic {topic[:200]!r}")
        # 3. Cedar
        self._policies.refresh(config)
        decision = self._policies.decide(
            TopicRequest(subscriber, config.groups_of(subscriber), topic, purpose[:200], 0, now)
        )
        if not decision.allowed:
            error = PolicyDenied(f"{subscriber} may not subscribe to {topic}: {decision.reason}")
            self._delivery.book.log_refusal(
                topic, str(view.id.publisher), str(subscriber), "Subscribe", error, peer.gateway
            )
            log.info("topic %s: subscription of %s refused (%s)", topic, subscriber, decision.reason)
            raise error
        # 4. stored, its worker started
        sub_id = short(f"{topic}|{subscriber}|{purpose}", 20)
        key = self._names.sub_key(sub_id)
        found = await self._store.get(key, Subscription)
        if found is None:
            async with self._publisher.lock(topic):
                head = await self._publisher.head(topic)
                first = start if start > 0 else head.sequence + 1
                stream_start = 0 if start > 0 else head.stream_seq + 1
                sub = Subscription(sub_id, topic, str(subscriber), purpose[:200], first, now, stream_start=stream_start)
                if await self._store.create(key, sub):
                    await self._store.add_to_index(self._names.sub_index, sub_id)
                    log.info("topic %s: %s subscribed (%s) from %d", topic, subscriber, sub_id, first)
            found = await self._store.get(key, Subscription)
            assert found is not None
        sub = found[0]
        if sub.state == "active":
            self._fanout.run(sub)
        return sub

    async def status(self, caller: SubsystemId, topic: str) -> tuple[int, list[StatusRow]]:
        """Published events, and per subscription: handed over, lag, failures, refusals (owner only)."""
        self._publisher.view(caller, topic)
        head = await self._publisher.head(topic)
        rows = []
        for sub in await self.all():
            if sub.topic != topic:
                continue
            handed = await self._handed_over(sub)
            rows.append(StatusRow(sub, handed, max(0, head.sequence - max(handed, sub.start - 1))))
        return head.sequence, rows

    async def _handed_over(self, sub: Subscription) -> int:
        """The last sequence handed over: ContentHandover evidence arrives after the relay reports."""
        states = self._delivery.store.states
        assert states is not None
        name = sub.topic.rpartition("/")[2]
        publisher = sub.topic.rpartition("/")[0]
        low = max(sub.handed_over, sub.relayed - _HANDOVER_LOOKBACK)
        for n in range(sub.relayed, low, -1):
            key = delivery_key(publisher, copy_message_id(name, n, sub.id))
            current = await states.get(self._delivery.names.state_key("out", SubsystemId.parse(publisher), key))
            if current is not None and "ContentHandover" in current[0].names:
                return n
        return sub.handed_over
