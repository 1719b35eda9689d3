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
    __slots__ = ("files", "summary", "validate_only", "expected_current")
    FILES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CURRENT_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    summary: str
    validate_only: bool
    expected_current: int
    def __init__(self, files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ..., summary: _Optional[str] = ..., validate_only: _Optional[bool] = ..., expected_current: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("number", "summary", "expected_current")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CURRENT_FIELD_NUMBER: _ClassVar[int]
    number: int
    summary: str
    expected_current: int
    def __init__(self, number: _Optional[int] = ..., summary: _Optional[str] = ..., expected_current: _Optional[int] = ...) -> None: ...

class TestAccessRequest(_message.Message):
    __slots__ = ("client", "method", "purpose", "user_id", "claims", "groups", "time_ms", "files")
    class ClaimsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    client: str
    method: str
    purpose: str
    user_id: str
    claims: _containers.ScalarMap[str, str]
    groups: _containers.RepeatedScalarFieldContainer[str]
    time_ms: int
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    def __init__(self, client: _Optional[str] = ..., method: _Optional[str] = ..., purpose: _Optional[str] = ..., user_id: _Optional[str] = ..., claims: _Optional[_Mapping[str, str]] = ..., groups: _Optional[_Iterable[str]] = ..., time_ms: _Optional[int] = ..., files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ...) -> None: ...

class TestAccessResponse(_message.Message):
    __slots__ = ("allowed", "policy_ids", "reason", "errors", "policy_version", "summary", "fields", "all_fields", "quotas", "groups")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    summary: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    all_fields: bool
    quotas: _containers.RepeatedScalarFieldContainer[str]
    groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed: _Optional[bool] = ..., policy_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ..., summary: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., all_fields: _Optional[bool] = ..., quotas: _Optional[_Iterable[str]] = ..., groups: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthEntry(_message.Message):
    __slots__ = ("name", "status", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CertificateStatus(_message.Message):
    __slots__ = ("kind", "subject", "not_after_ms", "fingerprint")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    subject: str
    not_after_ms: int
    fingerprint: str
    def __init__(self, kind: _Optional[str] = ..., subject: _Optional[str] = ..., not_after_ms: _Optional[int] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class NatsConnection(_message.Message):
    __slots__ = ("name", "state", "server")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    server: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., server: _Optional[str] = ...) -> None: ...

class GatewayStatus(_message.Message):
    __slots__ = ("gateway", "now_ms", "health", "registry_serial", "registry_issued_at_ms", "registry_expires_at_ms", "policy_version", "audit_spooled", "audit_pending", "log_size", "checkpoint_size", "checkpoint_at_ms", "certificates", "nats")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUDIT_SPOOLED_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PENDING_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    NATS_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    now_ms: int
    health: _containers.RepeatedCompositeFieldContainer[HealthEntry]
    registry_serial: int
    registry_issued_at_ms: int
    registry_expires_at_ms: int
    policy_version: int
    audit_spooled: int
    audit_pending: int
    log_size: int
    checkpoint_size: int
    checkpoint_at_ms: int
    certificates: _containers.RepeatedCompositeFieldContainer[CertificateStatus]
    nats: _containers.RepeatedCompositeFieldContainer[NatsConnection]
    def __init__(self, gateway: _Optional[str] = ..., now_ms: _Optional[int] = ..., health: _Optional[_Iterable[_Union[HealthEntry, _Mapping]]] = ..., registry_serial: _Optional[int] = ..., registry_issued_at_ms: _Optional[int] = ..., registry_expires_at_ms: _Optional[int] = ..., policy_version: _Optional[int] = ..., audit_spooled: _Optional[int] = ..., audit_pending: _Optional[int] = ..., log_size: _Optional[int] = ..., checkpoint_size: _Optional[int] = ..., checkpoint_at_ms: _Optional[int] = ..., certificates: _Optional[_Iterable[_Union[CertificateStatus, _Mapping]]] = ..., nats: _Optional[_Iterable[_Union[NatsConnection, _Mapping]]] = ...) -> None: ...

class RecordAuditReadRequest(_message.Message):
    __slots__ = ("action", "detail", "response_sha256", "source")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    action: str
    detail: str
    response_sha256: str
    source: str
    def __init__(self, action: _Optional[str] = ..., detail: _Optional[str] = ..., response_sha256: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class RecordAuditReadResponse(_message.Message):
    __slots__ = ("message_id", "record_id")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    record_id: str
    def __init__(self, message_id: _Optional[str] = ..., record_id: _Optional[str] = ...) -> None: ...
