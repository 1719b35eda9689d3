"""The subscriber's gateway: subscriptions its systems ask for, and the events that arrive for them.

``PeerTopics.Deliver``, in order, each failing closed with its own code (nothing is accepted and
no evidence is signed for an event that cannot be trusted):
1. the peer's TLS certificate: the registry CA, not revoked, a registered gateway   → peer.*
2. the subscription is ours, active, and the peer is a gateway of its publisher   → subscription.*
3. the event: signed by the publisher's member, of this topic; a minimized copy bound to it
                                                        → message.signature_invalid, message.tampered
4. order: the sequence is the one expected next (an earlier one is a duplicate: the original
   evidence is returned), and the event names the previous one's hash    → topic.gap, message.tampered
5. the publisher's SubmissionAcceptance is about exactly this delivery and verifies
6. stored in the INBOX stream (acknowledged) — before the RelayAcceptance says so; the
   subscription's expected sequence moves on.
Receive reads a subscription's accepted events in order; Ack hands them over (ContentHandover,
sent back to the publisher's gateway by delivery's forwarder); Replay returns a range with what
``gateway.topics.event.verify_range`` needs to show nothing is missing from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

import nats.js.errors

from audit.trail import EvidenceEvent, EvidenceInvalid, SignedEvent
from crossway.core.errors import CrosswayError, MessageTampered, PeerUntrusted, SignatureInvalid
from crossway.core.ids import SubsystemId
from gateway.delivery import DeliveryService
from gateway.delivery.evidence import unsigned_event
from gateway.delivery.message import delivery_key
from gateway.delivery.recipient import PeerCheck
from gateway.delivery.state import MessageState
from gateway.shared.context import GatewayContext
from gateway.topics.errors import (
    PushUnavailable,
    SubscriptionPushed,
    SubscriptionStopped,
    SubscriptionUnknown,
    TopicGap,
    TopicUnknown,
)
from gateway.topics.event import ReceivedEvent, copy_message_id, open_received
from gateway.topics.peerlink import TopicLink, signed_event_pb
from gateway.topics.store import Mine, TopicStore, stopped
from gateway.topics.subjects import TopicNames
from gateway.wire.codec import envelope_from_pb
from gateway.wire.frames import Envelope
from gateway.wire.link import AuthContext
from protos.crossway.v1 import topics_pb2 as tpb

__all__ = ["SubscriberDesk"]

log = logging.getLogger(__name__)

Stored = tuple[Envelope, Envelope | None]


class SubscriberDesk:
    def __init__(
        self,
        ctx: GatewayContext,
        delivery: DeliveryService,
        store: TopicStore,
        names: TopicNames,
        link: TopicLink,
        peers: PeerCheck,
    ) -> None:
        self._ctx = ctx
        self._delivery = delivery
        self._store = store
        self._names = names
        self._link = link
        self._peers = peers
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the subscriber's system, at its own gateway ---------------------------------------------

    async def subscribe(self, caller: SubsystemId, topic: str, purpose: str, start: int, push: bool = False) -> Mine:
        if push and not any(str(t.mailbox) == str(caller) for t in self._delivery.config.push):
            raise PushUnavailable(f"this gateway has no [[delivery.push]] method for {caller}")
        config = self._ctx.config()
        view = config.topic(topic)
        if view is None:
            raise TopicUnknown(f"no topic {topic[:200]!r} in the registry")
        member = config.member(view.id.publisher.member)
        if member is None or not member.gateways:
            raise TopicUnknown(f"the publisher of {topic} has no gateway in the registry")
        last: CrosswayError | None = None
        for gateway in member.gateways:
            try:
                info = await self._link.subscribe(
                    gateway.peer_address, topic, str(caller), purpose, start, self._delivery.config.relay_timeout_s
                )
                break
            except CrosswayError as exc:
                last = exc
                if exc.code.startswith("policy.") or exc.code.startswith("topic."):
                    raise
        else:
            assert last is not None
            raise last
        mine = Mine(
            info.subscription_id,
            topic,
            str(view.id.publisher),
            str(caller),
            purpose,
            int(info.start_sequence),
            int(info.start_sequence),
            handed_over=int(info.start_sequence) - 1,  # nothing before the start is ever offered
            push=push,
        )
        if await self._store.create(self._names.mine_key(mine.id), mine):
            await self._store.add_to_index(self._names.mine_index, mine.id)
            log.info("topic %s: %s subscribed (%s), from %d", topic, caller, mine.id, mine.start)
        return await self.mine(caller, mine.id)

    async def mine(self, caller: SubsystemId | None, sub_id: str) -> Mine:
        found = await self._store.get(self._names.mine_key(sub_id), Mine)
        if found is None or (caller is not None and found[0].subscriber != str(caller)):
            raise SubscriptionUnknown(f"no subscription {sub_id[:40]!r} of {caller} at this gateway")
        return found[0]

    async def subscriptions(self) -> list[Mine]:
        out = []
        for sub_id in await self._store.index(self._names.mine_index):
            found = await self._store.get(self._names.mine_key(sub_id), Mine)
            if found is not None:
                out.append(found[0])
        return out

    async def receive(self, caller: SubsystemId, sub_id: str, limit: int, wait_ms: int) -> list[ReceivedEvent]:
        """The next accepted events not yet handed over, in order (offered again until acknowledged)."""
        deadline = self._ctx.clock.now_ms() + min(max(wait_ms, 0), 60_000)
        while True:
            mine = await self.mine(caller, sub_id)
            if mine.push:
                raise SubscriptionPushed(f"subscription {sub_id} is pushed to the subsystem's backend")
            upto = min(mine.next - 1, mine.handed_over + max(1, min(limit, 1000)))
            if upto > mine.handed_over or self._ctx.clock.now_ms() >= deadline:
                return [await self._read(mine, n) for n in range(mine.handed_over + 1, upto + 1)]
            await asyncio.sleep(0.1)

    async def receive_one(self, mine: Mine, n: int) -> ReceivedEvent:
        return await self._read(mine, n)

    async def ack(self, caller: SubsystemId | None, sub_id: str, sequence: int) -> int:
        """Hand events over up to ``sequence`` (ContentHandover each, sent back to the publisher)."""
        mine = await self.mine(caller, sub_id)
        book = self._delivery.book
        for n in range(mine.handed_over + 1, min(sequence, mine.next - 1) + 1):

            def decide(s: MessageState) -> EvidenceEvent | None:
                if "ContentHandover" in s.names or "RelayAcceptance" not in s.names:
                    return None
                return unsigned_event("ContentHandover", s, book.issuer, self._ctx.clock.now_ms())

            await book.append(self._skey(mine, n), decide, forward=True)
            mine = await self._store.update(self._names.mine_key(sub_id), Mine, _handed(n)) or mine
        return mine.handed_over

    async def replay(self, caller: SubsystemId, sub_id: str, first: int, last: int) -> tuple[Mine, list[Stored]]:
        mine = await self.mine(caller, sub_id)
        first, last = max(first, mine.start), min(last or mine.next - 1, mine.next - 1)
        return mine, [await self._stored(mine, n) for n in range(first, last + 1)]

    # -- the publisher's gateway, over the peer port ----------------------------------------------

    async def deliver(
        self, auth_context: AuthContext, sub_id: str, event: Envelope, copy: Envelope | None, events: list[SignedEvent]
    ) -> tuple[list[SignedEvent], int]:
        ctx = self._ctx
        config = ctx.config()
        # 1.-2. the peer, for one of our subscriptions
        peer = self._peers.identify(auth_context, config, ctx.clock.now_ms())
        mine = await self.mine(None, sub_id)
        if str(SubsystemId.parse(mine.publisher).member) != peer.member:
            raise PeerUntrusted(f"{peer.gateway} is not a gateway of {mine.publisher}")
        # 3. the event
        received = open_received(event, copy, peer.member, ctx.key_lookup(config))
        h = received.event.header
        if h.service != mine.topic or h.client != mine.publisher:
            raise MessageTampered(f"event {h.sequence} of {h.service} is not an event of {mine.topic}")
        async with self._locks.setdefault(sub_id, asyncio.Lock()):
            mine = await self.mine(None, sub_id)
            n = h.sequence
            skey = self._skey(mine, n)
            states = self._delivery.store.states
            assert states is not None
            # 4. order
            if n < mine.next:
                current = await states.get(skey)
                if current is None:
                    raise TopicGap(f"event {n} of {mine.topic} is before this subscription's position {mine.next}")
                return list(current[0].events), mine.handed_over
            if mine.state != "active":
                raise SubscriptionStopped(f"subscription {sub_id} was stopped at {mine.stopped_at}")
            if n > mine.next:
                raise TopicGap(f"subscription {sub_id} expects event {mine.next} of {mine.topic}, got {n}")
            if mine.last_hash and h.previous_hash.hex() != mine.last_hash:
                raise MessageTampered(f"event {n} of {mine.topic} does not follow the event accepted before it")
            # 5. the publisher's evidence about exactly this delivery
            self._check_events(config, events, skey, received, mine, peer.member)
            fresh = self._in_state(mine, received, peer.gateway)
            claimed = await states.claim(skey, fresh.with_events(events))
            if claimed is not None:
                for signed in events:
                    self._delivery.book.log(signed, peer_gateway=peer.gateway)
            current = await states.get(skey)
            assert current is not None
            state = current[0]
            # 6. stored, then the evidence
            if "RelayAcceptance" not in state.names:
                data = signed_event_pb(event, copy).SerializeToString()
                await self._delivery.store.publish(
                    self._names.inbox(sub_id, n), data, f"{sub_id}:{n}", self._names.inbox_stream
                )
                book = self._delivery.book

                def decide(s: MessageState) -> EvidenceEvent | None:
                    if "RelayAcceptance" in s.names:
                        return None
                    return unsigned_event("RelayAcceptance", s, book.issuer, ctx.clock.now_ms())

                state, _ = await book.append(skey, decide)
            digest = received.event.header_hash.hex()
            after = await self._store.update(
                self._names.mine_key(sub_id),
                Mine,
                lambda m: replace(m, next=n + 1, last_hash=digest) if m.next == n else m,
            )
        return list(state.events), (after or mine).handed_over

    async def refused(self, auth_context: AuthContext, sub_id: str, sequence: int, events: list[SignedEvent]) -> None:
        """The publisher's gateway stopped the subscription: its evidence, held and logged here too."""
        ctx = self._ctx
        config = ctx.config()
        peer = self._peers.identify(auth_context, config, ctx.clock.now_ms())
        mine = await self.mine(None, sub_id)
        if str(SubsystemId.parse(mine.publisher).member) != peer.member:
            raise PeerUntrusted(f"{peer.gateway} is not a gateway of {mine.publisher}")
        skey = self._skey(mine, sequence)
        refusal = [e for e in events if e.event.event in ("RelayRejection", "RelayFailure")]
        if not refusal:
            raise MessageTampered(f"the refusal of subscription {sub_id} carries no RelayRejection nor RelayFailure")
        for signed in events:
            if signed.event.delivery_key != self._key(mine, sequence) or signed.event.recipient != mine.subscriber:
                raise MessageTampered(f"evidence event {signed.event.evidence_id} is not about this subscription")
            self._verify(config, signed, peer.member)
        states = self._delivery.store.states
        assert states is not None
        first = events[0].event
        facts = MessageState(
            role="in",
            sender=mine.publisher,
            message_id=first.message_id,
            recipient=mine.subscriber,
            message_type=first.message_type,
            submitted_at_ms=first.submitted_at_ms,
            expires_at_ms=first.expires_at_ms,
            claimed_at_ms=ctx.clock.now_ms(),
            message_hash=first.message_hash,
            body_sha256=first.body_sha256,
            peer_gateway=peer.gateway,
        )
        await states.claim(skey, facts)  # held already when the refused event was delivered before
        _, fresh = await states.merge(skey, events, peer_gateway=peer.gateway)
        for signed in fresh:
            self._delivery.book.log(signed, peer_gateway=peer.gateway)
        reason = f"{refusal[0].event.reason_code}: {refusal[0].event.reason}"
        await self._store.update(
            self._names.mine_key(sub_id), Mine, lambda m: m if m.state != "active" else stopped(m, sequence, reason)
        )
        log.warning("topic %s: subscription %s stopped by the publisher at %d", mine.topic, sub_id, sequence)

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, mine: Mine, n: int) -> str:
        return delivery_key(mine.publisher, copy_message_id(mine.topic.rpartition("/")[2], n, mine.id))

    def _skey(self, mine: Mine, n: int) -> str:
        return self._delivery.names.state_key("in", SubsystemId.parse(mine.subscriber), self._key(mine, n))

    def _in_state(self, mine: Mine, received: ReceivedEvent, peer_gateway: str) -> MessageState:
        h = received.event.header
        return MessageState(
            role="in",
            sender=mine.publisher,
            message_id=copy_message_id(mine.topic.rpartition("/")[2], h.sequence, mine.id),
            recipient=mine.subscriber,
            message_type=h.method,
            submitted_at_ms=h.issued_at_ms,
            expires_at_ms=h.deadline_ms,
            claimed_at_ms=self._ctx.clock.now_ms(),
            message_hash=received.event.header_hash.hex(),
            body_sha256=received.event.header.body_sha256.hex(),
            peer_gateway=peer_gateway,
        )

    def _verify(self, config: object, signed: SignedEvent, publisher_member: str) -> None:
        if not signed.event.issuer.startswith(f"{publisher_member}/"):
            raise SignatureInvalid(
                f"evidence event {signed.event.evidence_id} is not issued by the publisher's gateway"
            )
        try:
            self._delivery.book.verify_foreign(config, signed)  # type: ignore[arg-type]
        except EvidenceInvalid as exc:
            raise SignatureInvalid(exc.message) from exc

    def _check_events(
        self,
        config: object,
        events: Iterable[SignedEvent],
        skey: str,
        received: ReceivedEvent,
        mine: Mine,
        publisher_member: str,
    ) -> None:
        events = list(events)
        key = self._key(mine, received.sequence)
        if not events or events[0].event.event != "SubmissionAcceptance":
            raise MessageTampered(f"delivery {key} without the publisher's SubmissionAcceptance")
        for signed in events:
            e = signed.event
            if (
                e.delivery_key != key
                or e.message_hash != received.event.header_hash.hex()
                or e.recipient != mine.subscriber
            ):
                raise MessageTampered(f"evidence event {e.evidence_id} is not about delivery {key}")
            self._verify(config, signed, publisher_member)

    async def _stored(self, mine: Mine, n: int) -> Stored:
        try:
            raw = await self._store.js.get_last_msg(self._names.inbox_stream, self._names.inbox(mine.id, n))
        except nats.js.errors.NotFoundError as exc:
            raise TopicGap(f"event {n} of subscription {mine.id} is not in this gateway's inbox") from exc
        item = tpb.SignedTopicEvent.FromString(raw.data or b"")
        copy = envelope_from_pb(item.copy) if item.HasField("copy") else None
        return envelope_from_pb(item.event), copy

    async def _read(self, mine: Mine, n: int) -> ReceivedEvent:
        event, copy = await self._stored(mine, n)
        member = str(SubsystemId.parse(mine.publisher).member)
        return open_received(event, copy, member, self._ctx.key_lookup(self._ctx.config()))


def _handed(n: int) -> Callable[[Mine], Mine]:
    return lambda m: replace(m, handed_over=max(m.handed_over, n))
