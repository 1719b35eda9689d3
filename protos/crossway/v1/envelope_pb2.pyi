from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_KIND_UNSPECIFIED: _ClassVar[MessageKind]
    MESSAGE_KIND_REQUEST: _ClassVar[MessageKind]
    MESSAGE_KIND_RESPONSE: _ClassVar[MessageKind]
    MESSAGE_KIND_STREAM_DATA: _ClassVar[MessageKind]
    MESSAGE_KIND_STREAM_END: _ClassVar[MessageKind]
    MESSAGE_KIND_DELIVERY: _ClassVar[MessageKind]
    MESSAGE_KIND_RELAY: _ClassVar[MessageKind]
    MESSAGE_KIND_TOPIC_EVENT: _ClassVar[MessageKind]

class SignatureAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_ALGORITHM_UNSPECIFIED: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_ES256: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_EDDSA: _ClassVar[SignatureAlgorithm]
MESSAGE_KIND_UNSPECIFIED: MessageKind
MESSAGE_KIND_REQUEST: MessageKind
MESSAGE_KIND_RESPONSE: MessageKind
MESSAGE_KIND_STREAM_DATA: MessageKind
MESSAGE_KIND_STREAM_END: MessageKind
MESSAGE_KIND_DELIVERY: MessageKind
MESSAGE_KIND_RELAY: MessageKind
MESSAGE_KIND_TOPIC_EVENT: MessageKind
SIGNATURE_ALGORITHM_UNSPECIFIED: SignatureAlgorithm
SIGNATURE_ALGORITHM_ES256: SignatureAlgorithm
SIGNATURE_ALGORITHM_EDDSA: SignatureAlgorithm

class EncryptionInfo(_message.Message):
    __slots__ = ("ephemeral_public_key", "recipient_key_id", "nonce")
    EPHEMERAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ephemeral_public_key: bytes
    recipient_key_id: bytes
    nonce: bytes
    def __init__(self, ephemeral_public_key: _Optional[bytes] = ..., recipient_key_id: _Optional[bytes] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class Status(_message.Message):
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

class Header(_message.Message):
    __slots__ = ("message_id", "kind", "client", "service", "method", "user_id", "purpose", "issued_at_ms", "deadline_ms", "traceparent", "body_sha256", "request_hash", "sequence", "previous_hash", "encryption", "status", "signer", "client_streaming", "server_streaming", "withheld_fields", "user_token", "event_key", "key_sequence")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    BODY_SHA256_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HASH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STREAMING_FIELD_NUMBER: _ClassVar[int]
    SERVER_STREAMING_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELDS_FIELD_NUMBER: _ClassVar[int]
    USER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENT_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    kind: MessageKind
    client: str
    service: str
    method: str
    user_id: str
    purpose: str
    issued_at_ms: int
    deadline_ms: int
    traceparent: str
    body_sha256: bytes
    request_hash: bytes
    sequence: int
    previous_hash: bytes
    encryption: EncryptionInfo
    status: Status
    signer: str
    client_streaming: bool
    server_streaming: bool
    withheld_fields: _containers.RepeatedScalarFieldContainer[str]
    user_token: str
    event_key: str
    key_sequence: int
    def __init__(self, message_id: _Optional[str] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., client: _Optional[str] = ..., service: _Optional[str] = ..., method: _Optional[str] = ..., user_id: _Optional[str] = ..., purpose: _Optional[str] = ..., issued_at_ms: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., traceparent: _Optional[str] = ..., body_sha256: _Optional[bytes] = ..., request_hash: _Optional[bytes] = ..., sequence: _Optional[int] = ..., previous_hash: _Optional[bytes] = ..., encryption: _Optional[_Union[EncryptionInfo, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., signer: _Optional[str] = ..., client_streaming: _Optional[bool] = ..., server_streaming: _Optional[bool] = ..., withheld_fields: _Optional[_Iterable[str]] = ..., user_token: _Optional[str] = ..., event_key: _Optional[str] = ..., key_sequence: _Optional[int] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("algorithm", "key_id", "value")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    algorithm: SignatureAlgorithm
    key_id: str
    value: bytes
    def __init__(self, algorithm: _Optional[_Union[SignatureAlgorithm, str]] = ..., key_id: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("header", "body", "signature")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    body: bytes
    signature: Signature
    def __init__(self, header: _Optional[bytes] = ..., body: _Optional[bytes] = ..., signature: _Optional[_Union[Signature, _Mapping]] = ...) -> None: ...
