from protos.crossway.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MuxRequests(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[MuxRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[MuxRequest, _Mapping]]] = ...) -> None: ...

class MuxRequest(_message.Message):
    __slots__ = ("tag", "envelope")
    TAG_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    tag: int
    envelope: _envelope_pb2.Envelope
    def __init__(self, tag: _Optional[int] = ..., envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class MuxReplies(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[MuxReply]
    def __init__(self, replies: _Optional[_Iterable[_Union[MuxReply, _Mapping]]] = ...) -> None: ...

class MuxReply(_message.Message):
    __slots__ = ("tag", "response", "refusal")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    tag: int
    response: _envelope_pb2.Envelope
    refusal: PeerRefusal
    def __init__(self, tag: _Optional[int] = ..., response: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., refusal: _Optional[_Union[PeerRefusal, _Mapping]] = ...) -> None: ...

class PeerRefusal(_message.Message):
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
