"""How the publisher's gateway reaches a subscriber's (and the reverse): ``PeerTopics`` over the
delivery room's pooled mTLS channels (``GrpcDeliveryLink.channel``), failures as the error tree.
"""

from __future__ import annotations

from typing import Any, Protocol

import grpc

from audit.trail import SignedEvent
from gateway.delivery.convert import event_to_pb, events_from_pb
from gateway.delivery.peerlink import GrpcDeliveryLink, link_error
from gateway.wire.codec import envelope_to_pb
from gateway.wire.frames import Envelope
from protos.crossway.v1 import topics_pb2 as tpb

__all__ = ["GrpcTopicLink", "Offer", "TopicLink", "signed_event_pb"]


class Offer(Protocol):
    """A subscription as the subscriber's gateway asks for it."""

    topic: str
    subscriber: str
    purpose: str
    start: int


def signed_event_pb(event: Envelope, copy: Envelope | None) -> tpb.SignedTopicEvent:
    out = tpb.SignedTopicEvent(event=envelope_to_pb(event))
    if copy is not None:
        out.copy.CopyFrom(envelope_to_pb(copy))
    return out


class TopicLink(Protocol):
    async def subscribe(
        self, address: str, topic: str, subscriber: str, purpose: str, start: int, timeout: float
    ) -> tpb.SubscriptionInfo: ...

    async def deliver(
        self,
        address: str,
        subscription: str,
        event: Envelope,
        copy: Envelope | None,
        events: list[SignedEvent],
        timeout: float,
    ) -> tuple[list[SignedEvent], int]: ...

    async def refused(
        self, address: str, subscription: str, sequence: int, events: list[SignedEvent], timeout: float
    ) -> None: ...


class GrpcTopicLink:
    def __init__(self, link: GrpcDeliveryLink) -> None:
        self._link = link

    async def _call(self, address: str, method: str, request: Any, reply: Any, timeout: float) -> Any:
        call = self._link.channel(address).unary_unary(
            f"/crossway.v1.PeerTopics/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=reply.FromString,
        )
        try:
            return await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise link_error(exc, address) from exc

    async def subscribe(
        self, address: str, topic: str, subscriber: str, purpose: str, start: int, timeout: float
    ) -> tpb.SubscriptionInfo:
        request = tpb.PeerSubscribe(topic=topic, subscriber=subscriber, purpose=purpose, start_sequence=start)
        info: tpb.SubscriptionInfo = await self._call(address, "Subscribe", request, tpb.SubscriptionInfo, timeout)
        return info

    async def deliver(
        self,
        address: str,
        subscription: str,
        event: Envelope,
        copy: Envelope | None,
        events: list[SignedEvent],
        timeout: float,
    ) -> tuple[list[SignedEvent], int]:
        request = tpb.PeerDeliver(
            subscription_id=subscription,
            event=signed_event_pb(event, copy),
            events=[event_to_pb(e) for e in events],
        )
        reply = await self._call(address, "Deliver", request, tpb.PeerDeliverReply, timeout)
        return events_from_pb(reply.events), int(reply.handed_over)

    async def refused(
        self, address: str, subscription: str, sequence: int, events: list[SignedEvent], timeout: float
    ) -> None:
        request = tpb.PeerRefused(
            subscription_id=subscription, sequence=sequence, events=[event_to_pb(e) for e in events]
        )
        await self._call(address, "Refused", request, tpb.PeerDeliverReply, timeout)
