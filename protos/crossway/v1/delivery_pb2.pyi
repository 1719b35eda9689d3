from protos.crossway.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedEvent(_message.Message):
    __slots__ = ("event", "algorithm", "key_id", "signature")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    event: bytes
    algorithm: _envelope_pb2.SignatureAlgorithm
    key_id: str
    signature: bytes
    def __init__(self, event: _Optional[bytes] = ..., algorithm: _Optional[_Union[_envelope_pb2.SignatureAlgorithm, str]] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class MessageRef(_message.Message):
    __slots__ = ("sender", "message_id")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    sender: str
    message_id: str
    def __init__(self, sender: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("attachment_id", "name", "content_type", "size", "chunk_sha256")
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SHA256_FIELD_NUMBER: _ClassVar[int]
    attachment_id: str
    name: str
    content_type: str
    size: int
    chunk_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, attachment_id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[str] = ..., size: _Optional[int] = ..., chunk_sha256: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeliveryBody(_message.Message):
    __slots__ = ("payload", "content_type", "correlation_id", "attachments")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    content_type: str
    correlation_id: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    def __init__(self, payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., correlation_id: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("grpc_code", "error_code", "message", "hint")
    GRPC_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    grpc_code: int
    error_code: str
    message: str
    hint: str
    def __init__(self, grpc_code: _Optional[int] = ..., error_code: _Optional[str] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...

class SendRequest(_message.Message):
    __slots__ = ("recipient", "message_id", "type", "payload", "content_type", "attachment_ids", "expires_at_ms", "purpose", "correlation_id")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    message_id: str
    type: str
    payload: bytes
    content_type: str
    attachment_ids: _containers.RepeatedScalarFieldContainer[str]
    expires_at_ms: int
    purpose: str
    correlation_id: str
    def __init__(self, recipient: _Optional[str] = ..., message_id: _Optional[str] = ..., type: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., attachment_ids: _Optional[_Iterable[str]] = ..., expires_at_ms: _Optional[int] = ..., purpose: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ("evidence", "refusal", "duplicate")
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    evidence: SignedEvent
    refusal: Refusal
    duplicate: bool
    def __init__(self, evidence: _Optional[_Union[SignedEvent, _Mapping]] = ..., refusal: _Optional[_Union[Refusal, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class AttachmentChunk(_message.Message):
    __slots__ = ("name", "content_type", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class AttachmentRequest(_message.Message):
    __slots__ = ("message", "attachment_id")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    message: MessageRef
    attachment_id: str
    def __init__(self, message: _Optional[_Union[MessageRef, _Mapping]] = ..., attachment_id: _Optional[str] = ...) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("max_messages", "wait_ms")
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    max_messages: int
    wait_ms: int
    def __init__(self, max_messages: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class DeliveredMessage(_message.Message):
    __slots__ = ("ref", "recipient", "type", "payload", "content_type", "correlation_id", "purpose", "submitted_at_ms", "expires_at_ms", "attachments", "decide_by_ms")
    REF_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    DECIDE_BY_MS_FIELD_NUMBER: _ClassVar[int]
    ref: MessageRef
    recipient: str
    type: str
    payload: bytes
    content_type: str
    correlation_id: str
    purpose: str
    submitted_at_ms: int
    expires_at_ms: int
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    decide_by_ms: int
    def __init__(self, ref: _Optional[_Union[MessageRef, _Mapping]] = ..., recipient: _Optional[str] = ..., type: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., correlation_id: _Optional[str] = ..., purpose: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., decide_by_ms: _Optional[int] = ...) -> None: ...

class EvidenceReply(_message.Message):
    __slots__ = ("evidence",)
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    evidence: SignedEvent
    def __init__(self, evidence: _Optional[_Union[SignedEvent, _Mapping]] = ...) -> None: ...

class ConsentRequest(_message.Message):
    __slots__ = ("message", "reason")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    message: MessageRef
    reason: str
    def __init__(self, message: _Optional[_Union[MessageRef, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class TimelineRequest(_message.Message):
    __slots__ = ("message", "follow")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    message: MessageRef
    follow: bool
    def __init__(self, message: _Optional[_Union[MessageRef, _Mapping]] = ..., follow: _Optional[bool] = ...) -> None: ...

class TimelineEvent(_message.Message):
    __slots__ = ("evidence", "event", "issuer", "time_ms", "reason_code", "reason")
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    evidence: SignedEvent
    event: str
    issuer: str
    time_ms: int
    reason_code: str
    reason: str
    def __init__(self, evidence: _Optional[_Union[SignedEvent, _Mapping]] = ..., event: _Optional[str] = ..., issuer: _Optional[str] = ..., time_ms: _Optional[int] = ..., reason_code: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EvidenceBundle(_message.Message):
    __slots__ = ("bundle",)
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    def __init__(self, bundle: _Optional[bytes] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("overdue_before_ms",)
    OVERDUE_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    overdue_before_ms: int
    def __init__(self, overdue_before_ms: _Optional[int] = ...) -> None: ...

class ReportRow(_message.Message):
    __slots__ = ("role", "subsystem", "total", "pending", "handed_over", "refused", "expired", "overdue", "overdue_messages", "expired_messages")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBSYSTEM_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    HANDED_OVER_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    role: str
    subsystem: str
    total: int
    pending: int
    handed_over: int
    refused: int
    expired: int
    overdue: int
    overdue_messages: _containers.RepeatedCompositeFieldContainer[MessageRef]
    expired_messages: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, role: _Optional[str] = ..., subsystem: _Optional[str] = ..., total: _Optional[int] = ..., pending: _Optional[int] = ..., handed_over: _Optional[int] = ..., refused: _Optional[int] = ..., expired: _Optional[int] = ..., overdue: _Optional[int] = ..., overdue_messages: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ..., expired_messages: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class DeliveryReport(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[ReportRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[ReportRow, _Mapping]]] = ...) -> None: ...

class RelayRequest(_message.Message):
    __slots__ = ("attempt", "message", "events")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    attempt: _envelope_pb2.Envelope
    message: _envelope_pb2.Envelope
    events: _containers.RepeatedCompositeFieldContainer[SignedEvent]
    def __init__(self, attempt: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., message: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., events: _Optional[_Iterable[_Union[SignedEvent, _Mapping]]] = ...) -> None: ...

class RelayReply(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SignedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[SignedEvent, _Mapping]]] = ...) -> None: ...

class AttachmentUpload(_message.Message):
    __slots__ = ("message", "attachment_id", "data")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    message: _envelope_pb2.Envelope
    attachment_id: str
    data: bytes
    def __init__(self, message: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., attachment_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class AttachmentUploadReply(_message.Message):
    __slots__ = ("size",)
    SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    def __init__(self, size: _Optional[int] = ...) -> None: ...

class EvidenceTransfer(_message.Message):
    __slots__ = ("message", "events")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    message: MessageRef
    events: _containers.RepeatedCompositeFieldContainer[SignedEvent]
    def __init__(self, message: _Optional[_Union[MessageRef, _Mapping]] = ..., events: _Optional[_Iterable[_Union[SignedEvent, _Mapping]]] = ...) -> None: ...

class EvidenceTransferReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
