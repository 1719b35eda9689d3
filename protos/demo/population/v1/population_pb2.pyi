from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetPersonRequest(_message.Message):
    __slots__ = ("national_id",)
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    national_id: str
    def __init__(self, national_id: _Optional[str] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("national_id", "given_name", "family_name", "address", "date_of_birth", "health_notes")
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_NOTES_FIELD_NUMBER: _ClassVar[int]
    national_id: str
    given_name: str
    family_name: str
    address: str
    date_of_birth: str
    health_notes: str
    def __init__(self, national_id: _Optional[str] = ..., given_name: _Optional[str] = ..., family_name: _Optional[str] = ..., address: _Optional[str] = ..., date_of_birth: _Optional[str] = ..., health_notes: _Optional[str] = ...) -> None: ...

class ListPeopleRequest(_message.Message):
    __slots__ = ("family_name", "limit")
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    family_name: str
    limit: int
    def __init__(self, family_name: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ImportSummary(_message.Message):
    __slots__ = ("received", "national_ids")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    NATIONAL_IDS_FIELD_NUMBER: _ClassVar[int]
    received: int
    national_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, received: _Optional[int] = ..., national_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("total_bytes", "chunk_size")
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    chunk_size: int
    def __init__(self, total_bytes: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class AddressChanged(_message.Message):
    __slots__ = ("national_id", "address", "previous_address", "family_name", "effective_on")
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_ON_FIELD_NUMBER: _ClassVar[int]
    national_id: str
    address: str
    previous_address: str
    family_name: str
    effective_on: str
    def __init__(self, national_id: _Optional[str] = ..., address: _Optional[str] = ..., previous_address: _Optional[str] = ..., family_name: _Optional[str] = ..., effective_on: _Optional[str] = ...) -> None: ...

class EchoRequest(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class EchoResponse(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...
