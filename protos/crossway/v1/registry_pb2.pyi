from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcceptanceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCEPTANCE_MODE_UNSPECIFIED: _ClassVar[AcceptanceMode]
    ACCEPTANCE_MODE_HANDOVER: _ClassVar[AcceptanceMode]
    ACCEPTANCE_MODE_ACCEPT_REJECT: _ClassVar[AcceptanceMode]
ACCEPTANCE_MODE_UNSPECIFIED: AcceptanceMode
ACCEPTANCE_MODE_HANDOVER: AcceptanceMode
ACCEPTANCE_MODE_ACCEPT_REJECT: AcceptanceMode

class GatewayInfo(_message.Message):
    __slots__ = ("id", "peer_address", "tls_certificate_sha256")
    ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    id: str
    peer_address: str
    tls_certificate_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., peer_address: _Optional[str] = ..., tls_certificate_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class SubsystemInfo(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class MemberInfo(_message.Message):
    __slots__ = ("id", "name", "subsystems", "gateways", "signing_certificates", "encryption_public_key", "user_token_public_keys", "user_token_issuer")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBSYSTEMS_FIELD_NUMBER: _ClassVar[int]
    GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_TOKEN_PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    USER_TOKEN_ISSUER_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    subsystems: _containers.RepeatedCompositeFieldContainer[SubsystemInfo]
    gateways: _containers.RepeatedCompositeFieldContainer[GatewayInfo]
    signing_certificates: _containers.RepeatedScalarFieldContainer[bytes]
    encryption_public_key: bytes
    user_token_public_keys: _containers.RepeatedScalarFieldContainer[bytes]
    user_token_issuer: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., subsystems: _Optional[_Iterable[_Union[SubsystemInfo, _Mapping]]] = ..., gateways: _Optional[_Iterable[_Union[GatewayInfo, _Mapping]]] = ..., signing_certificates: _Optional[_Iterable[bytes]] = ..., encryption_public_key: _Optional[bytes] = ..., user_token_public_keys: _Optional[_Iterable[bytes]] = ..., user_token_issuer: _Optional[str] = ...) -> None: ...

class ServiceInfo(_message.Message):
    __slots__ = ("id", "file_descriptor_set", "require_encryption")
    ID_FIELD_NUMBER: _ClassVar[int]
    FILE_DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    file_descriptor_set: bytes
    require_encryption: bool
    def __init__(self, id: _Optional[str] = ..., file_descriptor_set: _Optional[bytes] = ..., require_encryption: _Optional[bool] = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("id", "members")
    ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ...) -> None: ...

class TopicInfo(_message.Message):
    __slots__ = ("id", "event_type", "file_descriptor_set", "key_field")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_type: str
    file_descriptor_set: bytes
    key_field: str
    def __init__(self, id: _Optional[str] = ..., event_type: _Optional[str] = ..., file_descriptor_set: _Optional[bytes] = ..., key_field: _Optional[str] = ...) -> None: ...

class MailboxInfo(_message.Message):
    __slots__ = ("subsystem", "message_types", "file_descriptor_set", "document_content_types", "require_encryption", "acceptance", "acceptance_window_ms")
    SUBSYSTEM_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPES_FIELD_NUMBER: _ClassVar[int]
    FILE_DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_CONTENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    subsystem: str
    message_types: _containers.RepeatedScalarFieldContainer[str]
    file_descriptor_set: bytes
    document_content_types: _containers.RepeatedScalarFieldContainer[str]
    require_encryption: bool
    acceptance: AcceptanceMode
    acceptance_window_ms: int
    def __init__(self, subsystem: _Optional[str] = ..., message_types: _Optional[_Iterable[str]] = ..., file_descriptor_set: _Optional[bytes] = ..., document_content_types: _Optional[_Iterable[str]] = ..., require_encryption: _Optional[bool] = ..., acceptance: _Optional[_Union[AcceptanceMode, str]] = ..., acceptance_window_ms: _Optional[int] = ...) -> None: ...

class WitnessInfo(_message.Message):
    __slots__ = ("name", "public_key", "member")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    member: str
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., member: _Optional[str] = ...) -> None: ...

class ConfigurationDocument(_message.Message):
    __slots__ = ("format_version", "instance", "serial", "issued_at_ms", "expires_at_ms", "ca_certificates", "members", "services", "groups", "revoked_serials", "witnesses", "witness_quorum", "mailboxes", "topics", "disabled")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CA_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_SERIALS_FIELD_NUMBER: _ClassVar[int]
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    WITNESS_QUORUM_FIELD_NUMBER: _ClassVar[int]
    MAILBOXES_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    instance: str
    serial: int
    issued_at_ms: int
    expires_at_ms: int
    ca_certificates: _containers.RepeatedScalarFieldContainer[bytes]
    members: _containers.RepeatedCompositeFieldContainer[MemberInfo]
    services: _containers.RepeatedCompositeFieldContainer[ServiceInfo]
    groups: _containers.RepeatedCompositeFieldContainer[GroupInfo]
    revoked_serials: _containers.RepeatedScalarFieldContainer[str]
    witnesses: _containers.RepeatedCompositeFieldContainer[WitnessInfo]
    witness_quorum: int
    mailboxes: _containers.RepeatedCompositeFieldContainer[MailboxInfo]
    topics: _containers.RepeatedCompositeFieldContainer[TopicInfo]
    disabled: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, format_version: _Optional[int] = ..., instance: _Optional[str] = ..., serial: _Optional[int] = ..., issued_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., ca_certificates: _Optional[_Iterable[bytes]] = ..., members: _Optional[_Iterable[_Union[MemberInfo, _Mapping]]] = ..., services: _Optional[_Iterable[_Union[ServiceInfo, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[GroupInfo, _Mapping]]] = ..., revoked_serials: _Optional[_Iterable[str]] = ..., witnesses: _Optional[_Iterable[_Union[WitnessInfo, _Mapping]]] = ..., witness_quorum: _Optional[int] = ..., mailboxes: _Optional[_Iterable[_Union[MailboxInfo, _Mapping]]] = ..., topics: _Optional[_Iterable[_Union[TopicInfo, _Mapping]]] = ..., disabled: _Optional[_Iterable[str]] = ...) -> None: ...

class SignedConfiguration(_message.Message):
    __slots__ = ("document", "signature", "key_id", "key_endorsements")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ENDORSEMENTS_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    signature: bytes
    key_id: str
    key_endorsements: _containers.RepeatedCompositeFieldContainer[KeyEndorsement]
    def __init__(self, document: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ..., key_endorsements: _Optional[_Iterable[_Union[KeyEndorsement, _Mapping]]] = ...) -> None: ...

class KeyEndorsement(_message.Message):
    __slots__ = ("public_key", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetConfigurationRequest(_message.Message):
    __slots__ = ("known_serial",)
    KNOWN_SERIAL_FIELD_NUMBER: _ClassVar[int]
    known_serial: int
    def __init__(self, known_serial: _Optional[int] = ...) -> None: ...
