"""Topics' errors, as leaves of Crossway's one error tree (``crossway.core.errors``).

    CrosswayError
    └── DeliveryError (gateway.delivery.errors)
        └── TopicError
            ├── TopicUnknown            topic.unknown            NOT_FOUND
            ├── TopicNotOwner           topic.not_owner          PERMISSION_DENIED
            ├── EventInvalid            topic.event_invalid      INVALID_ARGUMENT
            ├── IdempotencyConflict     topic.idempotency_conflict ALREADY_EXISTS
            ├── SubscriptionUnknown     subscription.unknown     NOT_FOUND
            ├── SubscriptionStopped     subscription.stopped     FAILED_PRECONDITION
            ├── SubscriptionPushed      subscription.pushed      FAILED_PRECONDITION
            ├── PushUnavailable         subscription.no_push_target FAILED_PRECONDITION
            ├── TopicGap                topic.gap                OUT_OF_RANGE
            └── RangeIncomplete         topic.range_incomplete   DATA_LOSS

A subscription the publisher's policy refuses is ``policy.denied`` (the tree's own). Codes are
part of the public contract: never rename one; add new ones.
"""

from __future__ import annotations

import grpc

from gateway.delivery.errors import DeliveryError

__all__ = [
    "EventInvalid",
    "IdempotencyConflict",
    "PushUnavailable",
    "RangeIncomplete",
    "SubscriptionPushed",
    "SubscriptionStopped",
    "SubscriptionUnknown",
    "TopicError",
    "TopicGap",
    "TopicNotOwner",
    "TopicUnknown",
]


class TopicError(DeliveryError):
    code = "topic.error"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class TopicUnknown(TopicError):
    code = "topic.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = (
        "name a topic the registry lists (`crossway registry topic list`): INSTANCE/CLASS/CODE/SUBSYSTEM/name"
    )


class TopicNotOwner(TopicError):
    code = "topic.not_owner"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "only the subsystem that owns a topic (its id's subsystem part) may publish to it or see its status"


class EventInvalid(TopicError):
    code = "topic.event_invalid"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "publish a serialized message of the topic's event type (its key field set when it has one)"


class IdempotencyConflict(TopicError):
    code = "topic.idempotency_conflict"
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    default_hint = (
        "an idempotency key names one event: reuse it only to retry the same payload, choose a new one for a new event"
    )


class SubscriptionUnknown(TopicError):
    code = "subscription.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = "subscribe first (`crossway topic subscribe`); only the subscriber sees its subscription"


class SubscriptionStopped(TopicError):
    code = "subscription.stopped"
    default_hint = "the publisher's gateway stopped it (permit withdrawn or an event expired); subscribe again"


class SubscriptionPushed(TopicError):
    code = "subscription.pushed"
    default_hint = "its events are pushed to your backend; subscribe without push to receive them yourself"


class PushUnavailable(TopicError):
    code = "subscription.no_push_target"
    default_hint = "ask your gateway's operator for a [[delivery.push]] entry naming your subsystem, or pull"


class TopicGap(TopicError):
    code = "topic.gap"
    grpc_status = grpc.StatusCode.OUT_OF_RANGE
    default_hint = "the events of a subscription arrive in sequence; one is missing before this one"


class RangeIncomplete(TopicError):
    code = "topic.range_incomplete"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "the range's signed sequences or hash chain have a hole: an event was left out or altered"
