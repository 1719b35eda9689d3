"""The gRPC edge of the topics room: ``crossway.v1.Topics`` on the client port (callers
authenticated as for delivery) and ``crossway.v1.PeerTopics`` on the peer port (the room
identifies the peer from its mTLS certificate). Errors leave as delivery's do: one status, the
stable code in ``crossway-error``, the hint in ``crossway-hint``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from crossway.core.errors import Hop
from crossway.core.ids import SubsystemId
from gateway.delivery.convert import event_to_pb, events_from_pb
from gateway.delivery.edge import CallerCheck, ClientHandler, abort, translate
from gateway.topics.inbox import SubscriberDesk
from gateway.topics.peerlink import signed_event_pb
from gateway.topics.publisher import PublishDesk
from gateway.topics.push import TopicPushers
from gateway.topics.store import Mine, Subscription
from gateway.topics.subscriptions import SubscriptionDesk
from gateway.wire.codec import envelope_from_pb
from protos.crossway.v1 import topics_pb2 as tpb

if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    _GenericHandler = grpc.GenericRpcHandler

__all__ = ["TopicsClientHandler", "TopicsPeerHandler", "subscription_pb"]

PEER_PREFIX = "/crossway.v1.PeerTopics/"


class TopicService(Protocol):
    """What the handlers use of :class:`gateway.topics.service.TopicService`."""

    publisher: PublishDesk
    subscriber: SubscriberDesk
    subscriptions: SubscriptionDesk
    pushers: TopicPushers

    async def wait_ready(self) -> None: ...


def subscription_pb(sub: Subscription | Mine) -> tpb.SubscriptionInfo:
    return tpb.SubscriptionInfo(
        subscription_id=sub.id,
        topic=sub.topic,
        subscriber=sub.subscriber,
        purpose=sub.purpose,
        start_sequence=sub.start,
        state=sub.state,
        refused_at=sub.stopped_at,
        refusal=sub.reason,
    )


class TopicsClientHandler(ClientHandler):
    """``/crossway.v1.Topics/*`` on the client port."""

    prefix = "/crossway.v1.Topics/"

    def __init__(self, service: TopicService, callers: CallerCheck) -> None:
        super().__init__(service, callers)
        self._s = service
        u = grpc.unary_unary_rpc_method_handler
        self._methods = {
            "Publish": u(
                self._guard(self._publish), tpb.PublishRequest.FromString, tpb.PublishResponse.SerializeToString
            ),
            "Subscribe": u(
                self._guard(self._subscribe), tpb.SubscribeRequest.FromString, tpb.SubscriptionInfo.SerializeToString
            ),
            "Receive": grpc.unary_stream_rpc_method_handler(
                self._guard_stream(self._receive),
                tpb.TopicReceiveRequest.FromString,
                tpb.TopicDelivery.SerializeToString,
            ),
            "Ack": u(self._guard(self._ack), tpb.TopicAck.FromString, tpb.TopicAckReply.SerializeToString),
            "Status": u(
                self._guard(self._status), tpb.TopicStatusRequest.FromString, tpb.TopicStatus.SerializeToString
            ),
            "Replay": u(self._guard(self._replay), tpb.ReplayRequest.FromString, tpb.ReplayProof.SerializeToString),
        }

    async def _publish(self, caller: SubsystemId, r: tpb.PublishRequest, _: Any) -> tpb.PublishResponse:
        p = await self._s.publisher.publish(caller, r.topic, r.payload, r.idempotency_key)
        return tpb.PublishResponse(
            sequence=p.sequence, key=p.key, key_sequence=p.key_sequence, event_hash=p.event_hash, duplicate=p.duplicate
        )

    async def _subscribe(self, caller: SubsystemId, r: tpb.SubscribeRequest, _: Any) -> tpb.SubscriptionInfo:
        mine = await self._s.subscriber.subscribe(caller, r.topic, r.purpose, r.start_sequence, r.push)
        self._s.pushers.run(mine)
        info = subscription_pb(mine)
        info.push = mine.push
        return info

    async def _receive(
        self, caller: SubsystemId, r: tpb.TopicReceiveRequest, _: Any
    ) -> AsyncIterator[tpb.TopicDelivery]:
        mine = await self._s.subscriber.mine(caller, r.subscription_id)
        for event in await self._s.subscriber.receive(caller, r.subscription_id, r.max_events or 100, r.wait_ms):
            h = event.event.header
            yield tpb.TopicDelivery(
                subscription_id=r.subscription_id,
                topic=mine.topic,
                sequence=h.sequence,
                key=h.event_key,
                key_sequence=h.key_sequence,
                event_type=h.method,
                payload=event.payload,
                withheld_fields=list(event.withheld),
                published_at_ms=h.issued_at_ms,
            )

    async def _ack(self, caller: SubsystemId, r: tpb.TopicAck, _: Any) -> tpb.TopicAckReply:
        return tpb.TopicAckReply(handed_over=await self._s.subscriber.ack(caller, r.subscription_id, r.sequence))

    async def _status(self, caller: SubsystemId, r: tpb.TopicStatusRequest, _: Any) -> tpb.TopicStatus:
        published, rows = await self._s.subscriptions.status(caller, r.topic)
        return tpb.TopicStatus(
            topic=r.topic,
            published=published,
            subscribers=[
                tpb.SubscriberStatus(
                    subscription_id=row.subscription.id,
                    subscriber=row.subscription.subscriber,
                    state=row.subscription.state,
                    relayed=row.subscription.relayed,
                    handed_over=row.handed_over,
                    lag=row.lag,
                    failures=row.subscription.failures,
                    refusals=row.subscription.refusals,
                    refusal=row.subscription.reason,
                )
                for row in rows
            ],
        )

    async def _replay(self, caller: SubsystemId, r: tpb.ReplayRequest, _: Any) -> tpb.ReplayProof:
        mine, stored = await self._s.subscriber.replay(caller, r.subscription_id, r.from_sequence, r.to_sequence)
        return tpb.ReplayProof(
            topic=mine.topic, publisher=mine.publisher, events=[signed_event_pb(e, c) for e, c in stored]
        )


class TopicsPeerHandler(_GenericHandler):
    """``/crossway.v1.PeerTopics/*`` on the peer port."""

    def __init__(self, service: TopicService) -> None:
        self._s = service
        u = grpc.unary_unary_rpc_method_handler
        self._methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Subscribe": u(self._subscribe, tpb.PeerSubscribe.FromString, tpb.SubscriptionInfo.SerializeToString),
            "Deliver": u(self._deliver, tpb.PeerDeliver.FromString, tpb.PeerDeliverReply.SerializeToString),
            "Refused": u(self._refused, tpb.PeerRefused.FromString, tpb.PeerDeliverReply.SerializeToString),
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        path: str = handler_call_details.method
        if not path.startswith(PEER_PREFIX):
            return None
        return self._methods.get(path[len(PEER_PREFIX) :])

    async def _subscribe(
        self, r: tpb.PeerSubscribe, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tpb.SubscriptionInfo:
        try:
            await self._s.wait_ready()
            sub = await self._s.subscriptions.offer(
                context.auth_context(), r.topic, r.subscriber, r.purpose, r.start_sequence
            )
            return subscription_pb(sub)
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)

    async def _deliver(self, r: tpb.PeerDeliver, context: grpc.aio.ServicerContext[Any, Any]) -> tpb.PeerDeliverReply:
        try:
            await self._s.wait_ready()
            copy = envelope_from_pb(r.event.copy) if r.event.HasField("copy") else None
            events, handed = await self._s.subscriber.deliver(
                context.auth_context(),
                r.subscription_id,
                envelope_from_pb(r.event.event),
                copy,
                events_from_pb(r.events),
            )
            return tpb.PeerDeliverReply(events=[event_to_pb(e) for e in events], handed_over=handed)
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)

    async def _refused(self, r: tpb.PeerRefused, context: grpc.aio.ServicerContext[Any, Any]) -> tpb.PeerDeliverReply:
        try:
            await self._s.wait_ready()
            await self._s.subscriber.refused(
                context.auth_context(), r.subscription_id, r.sequence, events_from_pb(r.events)
            )
            return tpb.PeerDeliverReply()
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)
