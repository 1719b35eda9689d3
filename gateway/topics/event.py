"""A topic event as signed frames: the event as published, a subscriber's minimized copy, and
the completeness check of a range.

The event is signed once, at publication, by the publisher's gateway (kind ``TOPIC_EVENT``):

    message_id   the topic sequence, as text      client    publisher subsystem
    service      topic id                          method    event type
    sequence     topic sequence (1, 2, ...)        previous_hash  SHA-256 of the previous
    event_key    the key field's value                            event's header bytes
    key_sequence position among the key's events   deadline  expires-at (no delivery after it)
    body_sha256  binds the payload

A subscriber whose permit names ``@fields`` gets a second frame of the same kind, signed for it:
the minimized payload, ``withheld_fields``, and ``request_hash`` = the event's header hash, so
the copy is bound to exactly one published event and the subscriber never sees the withheld
values (it is shown the event's signed header without its body).

Completeness (``verify_range``): the headers of a range carry consecutive sequences and each
names the previous one's hash, all signed by the publisher's member — leave one out, reorder
or alter one, and the chain breaks at that place; given the range asked for, one cut short at
either end is refused too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from crossway.core.errors import CrosswayError, MessageMalformed, MessageTampered
from crossway.security.signing import Signer
from gateway.topics.errors import RangeIncomplete
from gateway.wire.codec import KeyLookup, open_envelope, open_header, seal_frame
from gateway.wire.frames import Envelope, FrameKind, Header, SignedFrame

__all__ = ["ReceivedEvent", "copy_message_id", "open_received", "seal_copy", "seal_event", "verify_range"]


def copy_message_id(topic_name: str, sequence: int, subscription: str) -> str:
    """The delivery id of one event to one subscription (evidence is kept per delivery)."""
    return f"{topic_name}.{sequence}.{subscription}"


def seal_event(
    signer: Signer,
    member: str,
    *,
    publisher: str,
    topic: str,
    event_type: str,
    sequence: int,
    previous_hash: bytes,
    key: str,
    key_sequence: int,
    published_at_ms: int,
    expires_at_ms: int,
    payload: bytes,
) -> tuple[Envelope, SignedFrame]:
    header = Header(
        message_id=str(sequence),
        kind=FrameKind.TOPIC_EVENT,
        client=publisher,
        service=topic,
        method=event_type,
        issued_at_ms=published_at_ms,
        deadline_ms=expires_at_ms,
        sequence=sequence,
        previous_hash=previous_hash,
        event_key=key,
        key_sequence=key_sequence,
        signer=member,
    )
    return seal_frame(header, payload, signer)


def seal_copy(
    signer: Signer,
    member: str,
    event: SignedFrame,
    subscriber: str,
    payload: bytes,
    withheld: tuple[str, ...],
    now_ms: int,
) -> Envelope:
    """The event minimized for one subscriber, bound to the event's header bytes."""
    h = event.header
    header = Header(
        message_id=f"{h.message_id}@{subscriber}",
        kind=FrameKind.TOPIC_EVENT,
        client=h.client,
        service=h.service,
        method=h.method,
        user_id=subscriber,
        issued_at_ms=now_ms,
        deadline_ms=h.deadline_ms,
        request_hash=event.header_hash,
        sequence=h.sequence,
        event_key=h.event_key,
        key_sequence=h.key_sequence,
        withheld_fields=withheld,
        signer=member,
    )
    envelope, _ = seal_frame(header, payload, signer)
    return envelope


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event as a subscriber holds it: the signed header, and the payload it may see."""

    event: SignedFrame
    payload: bytes
    withheld: tuple[str, ...]

    @property
    def sequence(self) -> int:
        return self.event.header.sequence


def open_received(event: Envelope, copy: Envelope | None, publisher_member: str, lookup: KeyLookup) -> ReceivedEvent:
    """Verify an event (and the copy shown instead of its body); fail closed on any mismatch."""
    withheld: tuple[str, ...] = ()
    if copy is None:
        frame = open_envelope(event, publisher_member, lookup)
        payload = frame.body
    else:
        frame = open_header(event, publisher_member, lookup)
        c = open_envelope(copy, publisher_member, lookup)
        ch = c.header
        if (
            ch.kind != FrameKind.TOPIC_EVENT
            or ch.request_hash != frame.header_hash
            or ch.sequence != frame.header.sequence
        ):
            raise MessageTampered(f"the copy of event {frame.header.sequence} is not bound to it")
        payload, withheld = c.body, ch.withheld_fields
    h = frame.header
    if h.kind != FrameKind.TOPIC_EVENT or h.sequence < 1:
        raise MessageMalformed(f"expected a TOPIC_EVENT frame, got {h.kind.name}")
    return ReceivedEvent(frame, payload, withheld)


def verify_range(
    events: list[tuple[Envelope, Envelope | None]],
    topic: str,
    publisher_member: str,
    lookup: KeyLookup,
    *,
    first: int | None = None,
    last: int | None = None,
) -> list[ReceivedEvent]:
    """Every event of a range verified, in order, with nothing missing between the first and the last.

    ``first`` and ``last``: the range that was asked for — a range cut short at either end is
    as incomplete as one with a hole (the chain alone cannot show that events after the last
    one shown exist). Raises ``RangeIncomplete`` naming the first place the range breaks (a
    sequence skipped, a hash that does not name the previous event, an end missing), or the
    signature error of a forged event.
    """
    out: list[ReceivedEvent] = []
    previous: ReceivedEvent | None = None
    for event, copy in events:
        try:
            received = open_received(event, copy, publisher_member, lookup)
        except CrosswayError as exc:
            raise RangeIncomplete(f"an event of the range does not verify: {exc.message}") from exc
        h = received.event.header
        if h.service != topic:
            raise RangeIncomplete(f"event {h.sequence} belongs to {h.service}, not {topic}")
        if previous is None:
            if first is not None and h.sequence != first:
                raise RangeIncomplete(f"the range asked for starts at event {first}, the one shown at {h.sequence}")
        else:
            if h.sequence != previous.sequence + 1:
                raise RangeIncomplete(f"events {previous.sequence + 1}..{h.sequence - 1} are missing from the range")
            if h.previous_hash != previous.event.header_hash:
                raise RangeIncomplete(f"event {h.sequence} does not follow event {previous.sequence} (hash chain)")
        out.append(received)
        previous = received
    if last is not None and (previous is None or previous.sequence != last):
        shown = "no event" if previous is None else f"event {previous.sequence}"
        raise RangeIncomplete(f"the range asked for ends at event {last}, the one shown at {shown}")
    return out


def header_hash_hex(frame: SignedFrame) -> str:
    return hashlib.sha256(frame.header_bytes).hexdigest()
