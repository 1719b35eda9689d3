from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditFilters(_message.Message):
    __slots__ = ("since_ms", "until_ms", "client", "service", "method", "user_id", "status", "decision", "message_id")
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    since_ms: int
    until_ms: int
    client: str
    service: str
    method: str
    user_id: str
    status: str
    decision: str
    message_id: str
    def __init__(self, since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., client: _Optional[str] = ..., service: _Optional[str] = ..., method: _Optional[str] = ..., user_id: _Optional[str] = ..., status: _Optional[str] = ..., decision: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class AuditQueryRequest(_message.Message):
    __slots__ = ("filters", "limit", "page_token")
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filters: AuditFilters
    limit: int
    page_token: str
    def __init__(self, filters: _Optional[_Union[AuditFilters, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("gateway", "leaf_index", "record_json", "next_page_token")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    leaf_index: int
    record_json: str
    next_page_token: str
    def __init__(self, gateway: _Optional[str] = ..., leaf_index: _Optional[int] = ..., record_json: _Optional[str] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetExchangeRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class AuditExchange(_message.Message):
    __slots__ = ("message_id", "client", "provider", "disagreements", "admin", "inclusions", "auditor")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    INCLUSIONS_FIELD_NUMBER: _ClassVar[int]
    AUDITOR_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    client: AuditEntry
    provider: AuditEntry
    disagreements: _containers.RepeatedScalarFieldContainer[str]
    admin: AuditEntry
    inclusions: _containers.RepeatedCompositeFieldContainer[AuditInclusion]
    auditor: AuditEntry
    def __init__(self, message_id: _Optional[str] = ..., client: _Optional[_Union[AuditEntry, _Mapping]] = ..., provider: _Optional[_Union[AuditEntry, _Mapping]] = ..., disagreements: _Optional[_Iterable[str]] = ..., admin: _Optional[_Union[AuditEntry, _Mapping]] = ..., inclusions: _Optional[_Iterable[_Union[AuditInclusion, _Mapping]]] = ..., auditor: _Optional[_Union[AuditEntry, _Mapping]] = ...) -> None: ...

class AuditInclusion(_message.Message):
    __slots__ = ("side", "gateway", "leaf_index", "checkpoint_size", "checkpoint_time_ms", "cosigners", "verified", "problem")
    SIDE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    COSIGNERS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    side: str
    gateway: str
    leaf_index: int
    checkpoint_size: int
    checkpoint_time_ms: int
    cosigners: _containers.RepeatedScalarFieldContainer[str]
    verified: bool
    problem: str
    def __init__(self, side: _Optional[str] = ..., gateway: _Optional[str] = ..., leaf_index: _Optional[int] = ..., checkpoint_size: _Optional[int] = ..., checkpoint_time_ms: _Optional[int] = ..., cosigners: _Optional[_Iterable[str]] = ..., verified: _Optional[bool] = ..., problem: _Optional[str] = ...) -> None: ...

class AuditVerifyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditFinding(_message.Message):
    __slots__ = ("kind", "gateway", "detail", "record_id", "leaf_index", "message_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    kind: str
    gateway: str
    detail: str
    record_id: str
    leaf_index: int
    message_id: str
    def __init__(self, kind: _Optional[str] = ..., gateway: _Optional[str] = ..., detail: _Optional[str] = ..., record_id: _Optional[str] = ..., leaf_index: _Optional[int] = ..., message_id: _Optional[str] = ...) -> None: ...

class AuditVerifySummary(_message.Message):
    __slots__ = ("intact", "records", "findings", "covered")
    class CoveredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INTACT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    records: int
    findings: int
    covered: _containers.ScalarMap[str, int]
    def __init__(self, intact: _Optional[bool] = ..., records: _Optional[int] = ..., findings: _Optional[int] = ..., covered: _Optional[_Mapping[str, int]] = ...) -> None: ...

class AuditVerifyEvent(_message.Message):
    __slots__ = ("finding", "summary")
    FINDING_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    finding: AuditFinding
    summary: AuditVerifySummary
    def __init__(self, finding: _Optional[_Union[AuditFinding, _Mapping]] = ..., summary: _Optional[_Union[AuditVerifySummary, _Mapping]] = ...) -> None: ...

class AuditEvidenceRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class AuditEvidence(_message.Message):
    __slots__ = ("message_id", "bundle")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    bundle: bytes
    def __init__(self, message_id: _Optional[str] = ..., bundle: _Optional[bytes] = ...) -> None: ...
