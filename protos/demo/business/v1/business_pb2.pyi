import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Company(_message.Message):
    __slots__ = ("id", "registry_code", "name", "city", "share_capital", "registered_at", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    SHARE_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    registry_code: str
    name: str
    city: str
    share_capital: str
    registered_at: _timestamp_pb2.Timestamp
    status: str
    def __init__(self, id: _Optional[str] = ..., registry_code: _Optional[str] = ..., name: _Optional[str] = ..., city: _Optional[str] = ..., share_capital: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class GetCompanyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListCompaniesRequest(_message.Message):
    __slots__ = ("city", "status", "page_size", "page_token")
    CITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    city: str
    status: str
    page_size: int
    page_token: str
    def __init__(self, city: _Optional[str] = ..., status: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCompaniesResponse(_message.Message):
    __slots__ = ("companies", "next_page_token")
    COMPANIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    companies: _containers.RepeatedCompositeFieldContainer[Company]
    next_page_token: str
    def __init__(self, companies: _Optional[_Iterable[_Union[Company, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateCompanyRequest(_message.Message):
    __slots__ = ("company",)
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    company: Company
    def __init__(self, company: _Optional[_Union[Company, _Mapping]] = ...) -> None: ...

class UpdateCompanyRequest(_message.Message):
    __slots__ = ("company",)
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    company: Company
    def __init__(self, company: _Optional[_Union[Company, _Mapping]] = ...) -> None: ...

class DeleteCompanyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCompanyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterCompaniesRequest(_message.Message):
    __slots__ = ("companies",)
    COMPANIES_FIELD_NUMBER: _ClassVar[int]
    companies: _containers.RepeatedCompositeFieldContainer[Company]
    def __init__(self, companies: _Optional[_Iterable[_Union[Company, _Mapping]]] = ...) -> None: ...

class RegisterCompaniesResponse(_message.Message):
    __slots__ = ("companies",)
    COMPANIES_FIELD_NUMBER: _ClassVar[int]
    companies: _containers.RepeatedCompositeFieldContainer[Company]
    def __init__(self, companies: _Optional[_Iterable[_Union[Company, _Mapping]]] = ...) -> None: ...

class GetTotalShareCapitalRequest(_message.Message):
    __slots__ = ("city",)
    CITY_FIELD_NUMBER: _ClassVar[int]
    city: str
    def __init__(self, city: _Optional[str] = ...) -> None: ...

class GetTotalShareCapitalResponse(_message.Message):
    __slots__ = ("total",)
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    total: str
    def __init__(self, total: _Optional[str] = ...) -> None: ...
