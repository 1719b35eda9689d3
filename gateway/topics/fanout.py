"""The publisher's gateway fans each event out to each subscription, in order, deciding every time.

One durable pull consumer per subscription (``fan-<h>-<s>``) on the topic's subject, at most one
event in flight (``max_ack_pending=1``): events reach a subscriber in topic order, so per key in
order. Per event, in order:
1. the subscription's record: stopped, or the event before its start or already accepted → done;
2. expired (the event's signed ``expires_at``) → RelayFailure, the subscription stops;
3. Cedar, again (principal the subscriber, action the topic, context purpose and sequence):
   a deny → RelayRejection (``policy.denied``, the policy version named), the subscription
   stops at this sequence and the subscriber's gateway is told (``PeerTopics.Refused``, retried);
   taken once per event — a retry keeps the decision (and granted fields) its
   SubmissionAcceptance was issued under, since the subscriber may already hold the event;
4. ``@fields``: the event minimized for this subscriber, as a signed copy bound to the event;
5. SubmissionAcceptance for this delivery (delivery's state and evidence book);
6. ``PeerTopics.Deliver`` to the subscriber member's gateways — its answer (RelayAcceptance)
   verified and merged, logged here too → done; a refusal retrying cannot change → RelayFailure
   and the subscription stops; anything else → retried with backoff and jitter, until expiry.
Kill the process at any point: the event comes back after the ack wait, and every step is
idempotent (the delivery's state by its id, the subscriber's order check by sequence).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg

from audit.trail import EvidenceEvent, EvidenceInvalid, SignedEvent
from crossway.core.errors import CrosswayError, PolicyDenied, RegistryError
from crossway.core.ids import SubsystemId
from gateway.delivery import DeliveryConfig, DeliveryService
from gateway.delivery.evidence import unsigned_event
from gateway.delivery.message import delivery_key
from gateway.delivery.relay import PERMANENT
from gateway.delivery.state import MessageState
from gateway.delivery.worker import PullWorker, backoff_delay
from gateway.provider import strip_fields
from gateway.shared.context import GatewayContext
from gateway.topics.errors import SubscriptionUnknown
from gateway.topics.event import copy_message_id, seal_copy
from gateway.topics.peerlink import TopicLink
from gateway.topics.policies import TopicPolicyHolder
from gateway.topics.store import Subscription, TopicStore, stopped
from gateway.topics.subjects import TopicNames
from gateway.wire.codec import decode_envelope, open_envelope
from gateway.wire.frames import Envelope, SignedFrame
from policies import TopicRequest

__all__ = ["FanOut"]

log = logging.getLogger(__name__)

_ANSWERS = frozenset({"RelayAcceptance", "RelayRejection", "RelayFailure"})


class FanOut:
    def __init__(
        self,
        ctx: GatewayContext,
        delivery: DeliveryService,
        store: TopicStore,
        names: TopicNames,
        policies: TopicPolicyHolder,
        link: TopicLink,
    ) -> None:
        self._ctx = ctx
        self._delivery = delivery
        self._store = store
        self._names = names
        self._policies = policies
        self._link = link
        self._workers: dict[str, PullWorker] = {}

    @property
    def config(self) -> DeliveryConfig:
        return self._delivery.config

    def run(self, sub: Subscription) -> None:
        """Start (once) the fan-out worker of a subscription."""
        if sub.id in self._workers:
            return
        worker = PullWorker(
            f"fan-out {sub.id}",
            self._delivery.store,
            self._names.events_stream,
            self._names.fan_consumer(sub.id),
            self._names.events(sub.topic),
            lambda msg: self.handle(sub.id, msg),
            ack_wait_s=self.config.ack_wait_s,
            max_in_flight=1,
            consumer_options={"max_ack_pending": 1, "start_seq": sub.stream_start},
        )
        self._workers[sub.id] = worker
        worker.start()

    async def handle(self, sub_id: str, msg: Msg) -> float | None:
        ctx = self._ctx
        config = ctx.config()
        env = decode_envelope(msg.data)
        frame = open_envelope(env, ctx.member, ctx.key_lookup(config))  # our own signature, checked again
        n = frame.header.sequence
        key = self._names.sub_key(sub_id)
        # 1. the subscription
        found = await self._store.get(key, Subscription)
        if found is None:
            raise SubscriptionUnknown(f"subscription {sub_id} has no record")
        sub = found[0]
        if sub.state != "active":
            return None if sub.notified else await self._notify(sub, [])
        if n < sub.start or n <= sub.relayed:
            return None
        now = ctx.clock.now_ms()
        skey, state = await self._state(sub, frame, now)
        if state.names & _ANSWERS:
            return await self._settled(sub, state)
        # 2. expired
        if now >= frame.header.deadline_ms:
            return await self._stop(sub, skey, n, "RelayFailure", "delivery.expired", "not delivered before it expired")
        # 3. decided again, for this event — once: a retry of a relay whose answer was lost keeps
        # the decision its SubmissionAcceptance was issued under (the subscriber may hold it already)
        if "SubmissionAcceptance" in state.names:
            fields = None if state.granted_fields is None else frozenset(state.granted_fields)
        else:
            subscriber = SubsystemId.parse(sub.subscriber)
            self._policies.refresh(config)
            decision = self._policies.decide(
                TopicRequest(subscriber, config.groups_of(subscriber), sub.topic, sub.purpose, n, now)
            )
            if not decision.allowed:
                reason = f"{sub.subscriber} may not receive {sub.topic}: {decision.reason}"
                version = decision.policy_version or "none"
                return await self._stop(
                    sub, skey, n, "RelayRejection", PolicyDenied.code, f"{reason} (policies {version})", version
                )
            fields = decision.fields
        # 4. minimized for this subscriber
        event_env, copy = env, None
        if fields is not None:
            view = config.topic(sub.topic)
            if view is None:
                return 5.0  # the topic left the registry: keep the event until it is back or expires
            try:
                message = view.parse_event(frame.body)
            except DecodeError:
                return await self._stop(sub, skey, n, "RelayFailure", "topic.event_invalid", "the event does not parse")
            withheld = strip_fields(message, fields)
            if withheld:
                copy = seal_copy(
                    ctx.signer, ctx.member, frame, sub.subscriber, message.SerializeToString(), withheld, now
                )
                event_env = Envelope(env.header, b"", env.algorithm, env.key_id, env.signature)
        # 5. SubmissionAcceptance of this delivery
        book = self._delivery.book

        def accept(s: MessageState) -> EvidenceEvent | None:
            if "SubmissionAcceptance" in s.names:
                return None
            return unsigned_event("SubmissionAcceptance", s, book.issuer, ctx.clock.now_ms())

        granted = None if fields is None else tuple(sorted(fields))
        state, _ = await book.append(skey, accept, granted_fields=granted)
        # 6. to the subscriber's gateway
        attempts = msg.metadata.num_delivered or 1
        left_s = (frame.header.deadline_ms - now) / 1000
        try:
            answer, handed, peer = await self._deliver(sub, event_env, copy, state, left_s)
        except CrosswayError as exc:
            if exc.status in PERMANENT and not isinstance(exc, RegistryError):
                return await self._stop(sub, skey, n, "RelayFailure", exc.code, exc.message, state="failed")
            await self._store.update(key, Subscription, lambda s: replace(s, failures=s.failures + 1))
            delay = backoff_delay(attempts, self.config.backoff_s, self.config.backoff_max_s, left_s)
            log.info(
                "topic %s: event %d to %s failed (%s); retry in %.1f s", sub.topic, n, sub.subscriber, exc.code, delay
            )
            return delay
        try:
            foreign = [e for e in answer if not state.has(e.event.evidence_id)]
            for signed in foreign:
                book.verify_foreign(config, signed)
            if not {e.event.event for e in answer} & _ANSWERS:
                raise EvidenceInvalid(f"the answer for event {n} holds no RelayAcceptance")
            states = self._delivery.store.states
            assert states is not None
            state, fresh = await states.merge(skey, foreign, peer_gateway=peer)
        except (EvidenceInvalid, CrosswayError) as exc:
            log.warning("topic %s: the answer of %s for event %d does not verify; retrying", sub.topic, peer, n)
            log.debug("topic %s: %s", sub.topic, getattr(exc, "code", "audit.evidence_invalid"))
            return backoff_delay(attempts, self.config.backoff_s, self.config.backoff_max_s, left_s)
        for signed in fresh:
            book.log(signed, peer_gateway=peer)
        await self._store.update(
            key, Subscription, lambda s: replace(s, relayed=max(s.relayed, n), handed_over=max(s.handed_over, handed))
        )
        return None

    async def _state(self, sub: Subscription, frame: SignedFrame, now: int) -> tuple[str, MessageState]:
        """The delivery's state (claimed when new): delivery's own, keyed by publisher and copy id."""
        h = frame.header
        message_id = copy_message_id(sub.topic.rpartition("/")[2], h.sequence, sub.id)
        skey = self._delivery.names.state_key("out", SubsystemId.parse(h.client), delivery_key(h.client, message_id))
        fresh = MessageState(
            role="out",
            sender=h.client,
            message_id=message_id,
            recipient=sub.subscriber,
            message_type=h.method,
            submitted_at_ms=h.issued_at_ms,
            expires_at_ms=h.deadline_ms,
            claimed_at_ms=now,
            message_hash=frame.header_hash.hex(),
            body_sha256=hashlib.sha256(frame.body).hexdigest(),
        )
        states = self._delivery.store.states
        assert states is not None
        if await states.claim(skey, fresh) is not None:
            return skey, fresh
        current = await states.get(skey)
        assert current is not None
        return skey, current[0]

    async def _settled(self, sub: Subscription, state: MessageState) -> float | None:
        """Answered before (a redelivery after a crash): bring the record up to date."""
        if "RelayAcceptance" in state.names:
            n = int(state.message_id.split(".")[-2])
            await self._store.update(
                self._names.sub_key(sub.id), Subscription, lambda s: replace(s, relayed=max(s.relayed, n))
            )
        return None

    async def _deliver(
        self, sub: Subscription, event: Envelope, copy: Envelope | None, state: MessageState, left_s: float
    ) -> tuple[list[SignedEvent], int, str]:
        config = self._ctx.config()
        member = config.member(SubsystemId.parse(sub.subscriber).member)
        if member is None or not member.gateways:
            raise SubscriptionUnknown(f"{sub.subscriber} has no gateway in the registry")
        timeout = max(0.1, min(self.config.relay_timeout_s, left_s))
        last: CrosswayError | None = None
        for gateway in member.gateways:
            try:
                answer, handed = await self._link.deliver(
                    gateway.peer_address, sub.id, event, copy, list(state.events), timeout
                )
                return answer, handed, str(gateway.id)
            except CrosswayError as exc:
                last = exc
                if exc.status in PERMANENT:
                    raise
        assert last is not None
        raise last

    async def _stop(
        self,
        sub: Subscription,
        skey: str,
        n: int,
        name: str,
        code: str,
        reason: str,
        version: str = "",
        state: str = "refused",
    ) -> float | None:
        """Refuse (or fail) this event with signed evidence; nothing from it on reaches the subscriber."""
        book = self._delivery.book

        def decide(s: MessageState) -> EvidenceEvent | None:
            if s.names & _ANSWERS:
                return None
            return unsigned_event(name, s, book.issuer, self._ctx.clock.now_ms(), code, reason)

        held, _ = await book.append(skey, decide)
        after = await self._store.update(
            self._names.sub_key(sub.id),
            Subscription,
            lambda s: (
                s
                if s.state != "active"
                else replace(stopped(s, n, f"{code}: {reason}", state), refusals=s.refusals + 1, policy_version=version)
            ),
        )
        log.warning("topic %s: subscription %s of %s stopped at %d (%s)", sub.topic, sub.id, sub.subscriber, n, code)
        return await self._notify(after or sub, list(held.events))

    async def _notify(self, sub: Subscription, events: list[SignedEvent]) -> float | None:
        """Tell the subscriber's gateway (its evidence of the refusal); retried until it has it."""
        if not events:
            state = await self._stopped_state(sub)
            events = list(state.events) if state is not None else []
        config = self._ctx.config()
        member = config.member(SubsystemId.parse(sub.subscriber).member)
        for gateway in member.gateways if member is not None else ():
            try:
                await self._link.refused(
                    gateway.peer_address, sub.id, sub.stopped_at, events, self.config.relay_timeout_s
                )
            except CrosswayError as exc:
                log.info("topic %s: the refusal of %s is not delivered yet (%s)", sub.topic, sub.id, exc.code)
                continue
            await self._store.update(self._names.sub_key(sub.id), Subscription, lambda s: replace(s, notified=True))
            return None
        return backoff_delay(2, self.config.backoff_s, self.config.backoff_max_s)

    async def _stopped_state(self, sub: Subscription) -> MessageState | None:
        publisher = sub.topic.rpartition("/")[0]
        message_id = copy_message_id(sub.topic.rpartition("/")[2], sub.stopped_at, sub.id)
        skey = self._delivery.names.state_key("out", SubsystemId.parse(publisher), delivery_key(publisher, message_id))
        states = self._delivery.store.states
        assert states is not None
        current = await states.get(skey)
        return current[0] if current is not None else None

    async def aclose(self, grace_s: float = 2.0) -> None:
        for worker in self._workers.values():
            await worker.aclose(grace_s)
        self._workers.clear()
