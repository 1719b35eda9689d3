"""One gateway's topics: its parts built and owned in one place, on top of its delivery room.

The runtime builds a :class:`TopicService` beside the :class:`~gateway.delivery.DeliveryService`
(topics share its NATS connection, evidence book, state bucket, forwarder and peer channels),
adds its two gRPC handlers to the client and peer servers, and owns ``start()``/``aclose()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.delivery import DeliveryService
from gateway.delivery.edge import CallerCheck
from gateway.delivery.errors import DeliveryUnavailable
from gateway.delivery.peerlink import GrpcDeliveryLink
from gateway.delivery.recipient import PeerCheck
from gateway.topics.edge import TopicsClientHandler, TopicsPeerHandler
from gateway.topics.fanout import FanOut
from gateway.topics.inbox import SubscriberDesk
from gateway.topics.peerlink import GrpcTopicLink, TopicLink
from gateway.topics.policies import TopicPolicyHolder
from gateway.topics.publisher import PublishDesk
from gateway.topics.push import TopicPushers
from gateway.topics.store import TopicStore
from gateway.topics.subjects import TopicNames
from gateway.topics.subscriptions import SubscriptionDesk

__all__ = ["TopicService"]

log = logging.getLogger(__name__)

_READY_WAIT_S = 5.0


class TopicService:
    def __init__(
        self,
        delivery: DeliveryService,
        *,
        callers: CallerCheck,
        peers: PeerCheck,
        link: TopicLink | None = None,
    ) -> None:
        ctx = delivery.ctx
        config = delivery.config
        self.delivery = delivery
        self.names = names = TopicNames(ctx.gateway_id)
        self.store = store = TopicStore(delivery.store, config.retention_s, names.bus.state_bucket)
        if link is None:
            if not isinstance(delivery.link, GrpcDeliveryLink):
                raise TypeError("topics need a TopicLink when delivery has no gRPC link")
            link = GrpcTopicLink(delivery.link)
        self.policies = TopicPolicyHolder(config.topic_policy_dir, ctx.gateway_id.member)
        self.publisher = PublishDesk(ctx, store, names, config.topic_ttl_days * 86_400)
        self.fanout = FanOut(ctx, delivery, store, names, self.policies, link)
        self.subscriptions = SubscriptionDesk(
            ctx, delivery, store, names, self.policies, self.publisher, self.fanout, peers
        )
        self.subscriber = SubscriberDesk(ctx, delivery, store, names, link, peers)
        self.pushers = TopicPushers(delivery, names, self.subscriber)
        self.client_handler = TopicsClientHandler(self, callers)
        self.peer_handler = TopicsPeerHandler(self)
        self.ready = asyncio.Event()
        self._boot: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._boot = asyncio.create_task(self._start(), name=f"topics {self.delivery.ctx.gateway_id}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._boot), _READY_WAIT_S)

    async def _start(self) -> None:
        await self.delivery.store.ready.wait()
        while True:
            try:
                await self.store.ensure()
                await self.subscriptions.resume()
                for mine in await self.subscriber.subscriptions():
                    self.pushers.run(mine)
                break
            except Exception as exc:  # NATS not ready yet, or a stream being created by a peer
                log.warning("topics: not ready yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
        self.ready.set()

    async def wait_ready(self) -> None:
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), _READY_WAIT_S)
        except TimeoutError:
            raise DeliveryUnavailable("topics are still starting (no NATS connection yet)") from None

    async def aclose(self, grace_s: float = 2.0) -> None:
        await self.fanout.aclose(grace_s)
        await self.pushers.aclose(grace_s)
        if self._boot is not None and not self._boot.done():
            self._boot.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._boot
