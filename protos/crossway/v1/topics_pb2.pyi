from protos.crossway.v1 import delivery_pb2 as _delivery_pb2
from protos.crossway.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublishRequest(_message.Message):
    __slots__ = ("topic", "payload", "idempotency_key")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    topic: str
    payload: bytes
    idempotency_key: str
    def __init__(self, topic: _Optional[str] = ..., payload: _Optional[bytes] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("sequence", "key", "key_sequence", "event_hash", "duplicate")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_HASH_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    key: str
    key_sequence: int
    event_hash: str
    duplicate: bool
    def __init__(self, sequence: _Optional[int] = ..., key: _Optional[str] = ..., key_sequence: _Optional[int] = ..., event_hash: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("topic", "purpose", "start_sequence", "push")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    topic: str
    purpose: str
    start_sequence: int
    push: bool
    def __init__(self, topic: _Optional[str] = ..., purpose: _Optional[str] = ..., start_sequence: _Optional[int] = ..., push: _Optional[bool] = ...) -> None: ...

class SubscriptionInfo(_message.Message):
    __slots__ = ("subscription_id", "topic", "subscriber", "purpose", "start_sequence", "state", "refused_at", "refusal", "push")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_AT_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    topic: str
    subscriber: str
    purpose: str
    start_sequence: int
    state: str
    refused_at: int
    refusal: str
    push: bool
    def __init__(self, subscription_id: _Optional[str] = ..., topic: _Optional[str] = ..., subscriber: _Optional[str] = ..., purpose: _Optional[str] = ..., start_sequence: _Optional[int] = ..., state: _Optional[str] = ..., refused_at: _Optional[int] = ..., refusal: _Optional[str] = ..., push: _Optional[bool] = ...) -> None: ...

class TopicReceiveRequest(_message.Message):
    __slots__ = ("subscription_id", "max_events", "wait_ms")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    max_events: int
    wait_ms: int
    def __init__(self, subscription_id: _Optional[str] = ..., max_events: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class TopicDelivery(_message.Message):
    __slots__ = ("subscription_id", "topic", "sequence", "key", "key_sequence", "event_type", "payload", "withheld_fields", "published_at_ms")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELDS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    topic: str
    sequence: int
    key: str
    key_sequence: int
    event_type: str
    payload: bytes
    withheld_fields: _containers.RepeatedScalarFieldContainer[str]
    published_at_ms: int
    def __init__(self, subscription_id: _Optional[str] = ..., topic: _Optional[str] = ..., sequence: _Optional[int] = ..., key: _Optional[str] = ..., key_sequence: _Optional[int] = ..., event_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., withheld_fields: _Optional[_Iterable[str]] = ..., published_at_ms: _Optional[int] = ...) -> None: ...

class TopicAck(_message.Message):
    __slots__ = ("subscription_id", "sequence")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    sequence: int
    def __init__(self, subscription_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class TopicAckReply(_message.Message):
    __slots__ = ("handed_over",)
    HANDED_OVER_FIELD_NUMBER: _ClassVar[int]
    handed_over: int
    def __init__(self, handed_over: _Optional[int] = ...) -> None: ...

class TopicStatusRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    def __init__(self, topic: _Optional[str] = ...) -> None: ...

class SubscriberStatus(_message.Message):
    __slots__ = ("subscription_id", "subscriber", "state", "relayed", "handed_over", "lag", "failures", "refusals", "refusal")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RELAYED_FIELD_NUMBER: _ClassVar[int]
    HANDED_OVER_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    subscriber: str
    state: str
    relayed: int
    handed_over: int
    lag: int
    failures: int
    refusals: int
    refusal: str
    def __init__(self, subscription_id: _Optional[str] = ..., subscriber: _Optional[str] = ..., state: _Optional[str] = ..., relayed: _Optional[int] = ..., handed_over: _Optional[int] = ..., lag: _Optional[int] = ..., failures: _Optional[int] = ..., refusals: _Optional[int] = ..., refusal: _Optional[str] = ...) -> None: ...

class TopicStatus(_message.Message):
    __slots__ = ("topic", "published", "subscribers")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    published: int
    subscribers: _containers.RepeatedCompositeFieldContainer[SubscriberStatus]
    def __init__(self, topic: _Optional[str] = ..., published: _Optional[int] = ..., subscribers: _Optional[_Iterable[_Union[SubscriberStatus, _Mapping]]] = ...) -> None: ...

class ReplayRequest(_message.Message):
    __slots__ = ("subscription_id", "from_sequence", "to_sequence")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    from_sequence: int
    to_sequence: int
    def __init__(self, subscription_id: _Optional[str] = ..., from_sequence: _Optional[int] = ..., to_sequence: _Optional[int] = ...) -> None: ...

class ReplayProof(_message.Message):
    __slots__ = ("topic", "publisher", "events")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    publisher: str
    events: _containers.RepeatedCompositeFieldContainer[SignedTopicEvent]
    def __init__(self, topic: _Optional[str] = ..., publisher: _Optional[str] = ..., events: _Optional[_Iterable[_Union[SignedTopicEvent, _Mapping]]] = ...) -> None: ...

class SignedTopicEvent(_message.Message):
    __slots__ = ("event", "copy")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    COPY_FIELD_NUMBER: _ClassVar[int]
    event: _envelope_pb2.Envelope
    copy: _envelope_pb2.Envelope
    def __init__(self, event: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., copy: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class PeerSubscribe(_message.Message):
    __slots__ = ("topic", "subscriber", "purpose", "start_sequence")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    START_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    topic: str
    subscriber: str
    purpose: str
    start_sequence: int
    def __init__(self, topic: _Optional[str] = ..., subscriber: _Optional[str] = ..., purpose: _Optional[str] = ..., start_sequence: _Optional[int] = ...) -> None: ...

class PeerDeliver(_message.Message):
    __slots__ = ("subscription_id", "event", "events")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    event: SignedTopicEvent
    events: _containers.RepeatedCompositeFieldContainer[_delivery_pb2.SignedEvent]
    def __init__(self, subscription_id: _Optional[str] = ..., event: _Optional[_Union[SignedTopicEvent, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_delivery_pb2.SignedEvent, _Mapping]]] = ...) -> None: ...

class PeerDeliverReply(_message.Message):
    __slots__ = ("events", "handed_over")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HANDED_OVER_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_delivery_pb2.SignedEvent]
    handed_over: int
    def __init__(self, events: _Optional[_Iterable[_Union[_delivery_pb2.SignedEvent, _Mapping]]] = ..., handed_over: _Optional[int] = ...) -> None: ...

class PeerRefused(_message.Message):
    __slots__ = ("subscription_id", "sequence", "events")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    sequence: int
    events: _containers.RepeatedCompositeFieldContainer[_delivery_pb2.SignedEvent]
    def __init__(self, subscription_id: _Optional[str] = ..., sequence: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_delivery_pb2.SignedEvent, _Mapping]]] = ...) -> None: ...
