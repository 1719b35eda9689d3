"""The publisher's gateway: an event is checked, numbered, signed and stored before Publish answers.

Steps of ``Topics.Publish``, each failing closed with its own code:
1. the topic is in the registry and the caller is its owner                → topic.unknown, topic.not_owner
2. the payload parses as the topic's event type and has its key field     → topic.event_invalid
3. under the topic's lock: the next topic sequence and the key's next sequence, the previous
   event's header hash — read from the stored events themselves the first time (the stream is
   the source of truth: a sequence is taken only when its event is stored)
4. the event is signed (``gateway.topics.event.seal_event``)
5. stored in the EVENTS stream with ``Nats-Expected-Last-Subject-Sequence`` (a second writer of
   the same topic loses and retries rather than reusing a sequence), then SubmissionAcceptance
   is issued per subscriber by the fan-out, not here (see ``fanout``); the key head is written last
   and repaired from the stream after a crash.

An idempotency key (optional) becomes the stored event's ``Nats-Msg-Id``: JetStream refuses a
second message with that id within the stream's duplicate window (an hour) and names the first
one, which is read back and answered as it was — a publisher that lost the answer retries
without publishing twice (same key, other payload → topic.idempotency_conflict).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import nats.js.errors
from google.protobuf.message import DecodeError

from crossway.core.ids import SubsystemId
from gateway.delivery.errors import DeliveryBusy
from gateway.shared.context import GatewayContext
from gateway.topics.errors import EventInvalid, IdempotencyConflict, TopicNotOwner, TopicUnknown
from gateway.topics.event import seal_event
from gateway.topics.store import TopicStore
from gateway.topics.subjects import TopicNames
from gateway.wire.codec import decode_envelope, encode_envelope, open_envelope
from registry import TopicView

__all__ = ["Head", "PublishDesk", "Published"]

log = logging.getLogger(__name__)

_MAX_EVENT_BYTES = 512 * 1024
_MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True, slots=True)
class Published:
    sequence: int
    key: str
    key_sequence: int
    event_hash: str
    duplicate: bool = False


@dataclass(slots=True)
class Head:
    sequence: int  # last topic sequence
    stream_seq: int  # its stream sequence (0: none yet)
    header_hash: bytes


class PublishDesk:
    def __init__(self, ctx: GatewayContext, store: TopicStore, names: TopicNames, event_ttl_s: float) -> None:
        self._ctx = ctx
        self._store = store
        self._names = names
        self._ttl_ms = int(event_ttl_s * 1000)
        self._locks: dict[str, asyncio.Lock] = {}
        self._heads: dict[str, Head] = {}
        self._classes: dict[tuple[str, int], object] = {}

    def lock(self, topic: str) -> asyncio.Lock:
        return self._locks.setdefault(topic, asyncio.Lock())

    def view(self, caller: SubsystemId, topic: str) -> TopicView:
        """Step 1: the topic, owned by the caller."""
        view = self._ctx.config().topic(topic)
        if view is None:
            raise TopicUnknown(f"no topic {topic[:200]!r} in the registry")
        if view.id.publisher != caller:
            raise TopicNotOwner(f"{caller} does not own topic {topic}")
        return view

    async def publish(self, caller: SubsystemId, topic: str, payload: bytes, idempotency_key: str = "") -> Published:
        ctx = self._ctx
        view = self.view(caller, topic)
        if len(idempotency_key) > _MAX_IDEMPOTENCY_KEY or not idempotency_key.isprintable():
            raise EventInvalid(f"the idempotency key is not at most {_MAX_IDEMPOTENCY_KEY} printable characters")
        # 2. the payload, as the topic's event type
        if len(payload) > _MAX_EVENT_BYTES:
            raise EventInvalid(f"the event is {len(payload)} bytes; at most {_MAX_EVENT_BYTES}")
        cls = self._classes.get((topic, hash(view.file_descriptor_set)))
        if cls is None:
            cls = self._classes[(topic, hash(view.file_descriptor_set))] = view.message_class()
        try:
            message = view.parse_event(payload, cls)
        except DecodeError as exc:
            raise EventInvalid(f"the payload is not a {view.event_type}") from exc
        key = view.key_of(message)
        if view.key_field and key in ("", "0"):
            raise EventInvalid(f"the event's key field {view.key_field} is not set")
        ctx.check_audit_writable()
        async with self.lock(topic):
            # 3. the next sequences
            head = await self.head(topic)
            key_head = self._names.key_head(topic, key)
            key_sequence = await self._store.counter(key_head) + 1 if key else 0
            now = ctx.clock.now_ms()
            # 4. sign
            envelope, frame = seal_event(
                ctx.signer,
                ctx.member,
                publisher=str(caller),
                topic=topic,
                event_type=view.event_type,
                sequence=head.sequence + 1,
                previous_hash=head.header_hash,
                key=key,
                key_sequence=key_sequence,
                published_at_ms=now,
                expires_at_ms=now + self._ttl_ms,
                payload=payload,
            )
            # 5. store (a competing writer makes this fail: forget the head and let the caller retry)
            if idempotency_key:
                digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
                headers = {"Nats-Msg-Id": f"{topic}#key:{digest}"}
            else:
                headers = {"Nats-Msg-Id": f"{topic}#{head.sequence + 1}"}
            if head.stream_seq:
                headers["Nats-Expected-Last-Subject-Sequence"] = str(head.stream_seq)
            try:
                ack = await self._store.js.publish(
                    self._names.events(topic),
                    encode_envelope(envelope),
                    stream=self._names.events_stream,
                    headers=headers,
                )
            except BaseException:
                # Stored or not, we cannot tell (an ack lost with a failing node): read the head
                # from the stream again next time rather than trust what we hold.
                self._heads.pop(topic, None)
                raise
            if ack.duplicate and idempotency_key:
                return await self._stored_before(topic, int(ack.seq), payload)
            if ack.duplicate:
                # This sequence's id was stored before, by an attempt whose ack was lost: that
                # event holds the number, not this one.
                self._heads.pop(topic, None)
                raise DeliveryBusy(f"event {head.sequence + 1} of {topic} was stored by an earlier attempt; retry")
            self._heads[topic] = Head(head.sequence + 1, int(ack.seq), frame.header_hash)
            if key:
                await self._store.set_counter(key_head, key_sequence)
        log.info("topic %s: event %d published (key sequence %d)", topic, head.sequence + 1, key_sequence)
        return Published(head.sequence + 1, key, key_sequence, frame.header_hash.hex())

    async def _stored_before(self, topic: str, stream_seq: int, payload: bytes) -> Published:
        """The event an earlier Publish with the same idempotency key stored, as it was answered."""
        ctx = self._ctx
        raw = await self._store.js.get_msg(self._names.events_stream, stream_seq)
        frame = open_envelope(decode_envelope(raw.data or b""), ctx.member, ctx.key_lookup(ctx.config()))
        h = frame.header
        if h.service != topic or h.body_sha256 != hashlib.sha256(payload).digest():
            raise IdempotencyConflict(
                f"the idempotency key was used for event {h.sequence} of {h.service}, another event"
            )
        log.info("topic %s: event %d was published before under this idempotency key", topic, h.sequence)
        header_hash = hashlib.sha256(frame.header_bytes).hexdigest()
        return Published(h.sequence, h.event_key, h.key_sequence, header_hash, duplicate=True)

    async def head(self, topic: str) -> Head:
        """The topic's last event, from memory or (first time, after a restart) from the stream."""
        head = self._heads.get(topic)
        if head is not None:
            return head
        try:
            raw = await self._store.js.get_last_msg(self._names.events_stream, self._names.events(topic))
        except nats.js.errors.NotFoundError:
            head = Head(0, 0, b"")
        else:
            ctx = self._ctx
            frame = open_envelope(decode_envelope(raw.data or b""), ctx.member, ctx.key_lookup(ctx.config()))
            head = Head(frame.header.sequence, int(raw.seq or 0), hashlib.sha256(frame.header_bytes).digest())
            key = frame.header.event_key
            if key:  # the key head may have missed its last write (a crash right after storing)
                key_head = self._names.key_head(topic, key)
                if await self._store.counter(key_head) < frame.header.key_sequence:
                    await self._store.set_counter(key_head, frame.header.key_sequence)
        self._heads[topic] = head
        return head
