"""Topics (issue 15): a publishing subsystem's signed, ordered events for the subscribers its
gateway permits — a room of the gateway on top of registered delivery (issue 14), whose
machinery it reuses: the NATS connection and pull workers, the evidence book and state bucket,
the evidence forwarder and the peer channels.

The publisher's gateway numbers, signs and stores each event (EVENTS stream), decides every
subscriber with Cedar when it subscribes and again for every event, minimizes per subscriber
(``@fields``) and fans the event out over the peer port, in order, with retries until the
event's expiry; the subscriber's gateway checks the order and the hash chain, stores (INBOX
stream) and answers with RelayAcceptance; its system receives and acknowledges
(ContentHandover). Every step is signed evidence in both gateways' audit logs. See docs/topics.md.

Public API: :class:`TopicService` (built by the runtime), :func:`verify_range` (the completeness
check of a replayed range), the record keys (:class:`TopicNames`; the NATS names are ``crossway.bus``'s).
"""

from gateway.topics.event import ReceivedEvent, verify_range
from gateway.topics.service import TopicService
from gateway.topics.subjects import TopicNames

__all__ = [
    "EVENTS_STREAM",
    "INBOX_STREAM",
    "STATE_BUCKET",
    "ReceivedEvent",
    "TopicNames",
    "TopicService",
    "verify_range",
]
