from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PolicyFile(_message.Message):
    __slots__ = ("name", "text")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PolicyVersion(_message.Message):
    __slots__ = ("number", "files", "author", "created_at_ms", "summary", "digest", "diff_digest", "rollback_of", "gateway")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIFF_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_OF_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    number: int
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    author: str
    created_at_ms: int
    summary: str
    digest: str
    diff_digest: str
    rollback_of: int
    gateway: str
    def __init__(self, number: _Optional[int] = ..., files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ..., author: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., summary: _Optional[str] = ..., digest: _Optional[str] = ..., diff_digest: _Optional[str] = ..., rollback_of: _Optional[int] = ..., gateway: _Optional[str] = ...) -> None: ...

class SignedPolicyVersion(_message.Message):
    __slots__ = ("version", "algorithm", "key_id", "signature")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    version: bytes
    algorithm: str
    key_id: str
    signature: bytes
    def __init__(self, version: _Optional[bytes] = ..., algorithm: _Optional[str] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetPoliciesRequest(_message.Message):
    __slots__ = ("number", "current")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    number: int
    current: bool
    def __init__(self, number: _Optional[int] = ..., current: _Optional[bool] = ...) -> None: ...

class DiffPoliciesRequest(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    def __init__(self, files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ...) -> None: ...

class DiffPoliciesResponse(_message.Message):
    __slots__ = ("current", "changed", "diff")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    current: int
    changed: bool
    diff: str
    def __init__(self, current: _Optional[int] = ..., changed: _Optional[bool] = ..., diff: _Optional[str] = ...) -> None: ...

class ApplyPoliciesRequest(_message.Message):
    __slots__ = ("files", "summary")
    FILES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    summary: str
    def __init__(self, files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ..., summary: _Optional[str] = ...) -> None: ...

class ListPolicyVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPolicyVersionsResponse(_message.Message):
    __slots__ = ("versions", "current")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PolicyVersion]
    current: int
    def __init__(self, versions: _Optional[_Iterable[_Union[PolicyVersion, _Mapping]]] = ..., current: _Optional[int] = ...) -> None: ...

class RollbackPoliciesRequest(_message.Message):
    __slots__ = ("number", "summary")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    number: int
    summary: str
    def __init__(self, number: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...
