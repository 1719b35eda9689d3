"""Adapter settings: the adapter-specific tables of a gateway's ``[[services]]`` entries.

Parsed and validated here, at load time, by ``gateway.shared.config`` (which names the file); every
error names the file and the key. The adapter modules only receive these frozen values.

    [[services]]
    id = "EE/GOV/70000003/business/business.v1.BusinessRegister"
    adapter = "sap_odata"                    # or "rest" or "grpc"
    address = "https://sap.example/sap/opu/odata/sap/ZBUSINESS_SRV/"

    [services.sap]                           # [services.rest] for adapter = "rest"
    …
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError
from crossway.core.tomlkeys import check_keys

__all__ = [
    "ADAPTER_KINDS",
    "RestMethod",
    "RestSettings",
    "SapMethod",
    "SapSettings",
    "TlsSettings",
    "load_adapter_settings",
]

ADAPTER_KINDS = ("grpc", "rest", "sap_odata")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAP_OPERATIONS = ("read", "query", "create", "update", "delete", "function", "batch_create")
_SAP_KEYS = (
    *("sap_client", "auth", "username", "password_env", "ca", "client_certificate", "client_key"),
    *("max_connections", "properties", "csrf", "methods"),
)
_SAP_METHOD_KEYS = (
    *("operation", "entity_set", "function", "request_field", "response_field", "filter"),
    *("page_size", "max_page_size"),
)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS towards the backend: a private CA to trust, and a client certificate to present."""

    ca: Path | None = None
    client_certificate: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True, slots=True)
class RestMethod:
    name: str  # the gRPC method name, e.g. "GetCompany"
    http_method: str  # "GET"
    path: str  # "/companies/{id}": {field} is filled from the request
    body: str = "*"  # "*" = the fields not in the path; a field name = that field; "" = no body
    response_field: str = ""  # wrap a JSON array answer into this repeated field


@dataclass(frozen=True, slots=True)
class RestSettings:
    base_url: str
    methods: Mapping[str, RestMethod]
    tls: TlsSettings = TlsSettings()
    max_connections: int = 20
    proto_field_names: bool = False  # JSON keys as in the .proto instead of lowerCamelCase


@dataclass(frozen=True, slots=True)
class SapMethod:
    name: str
    operation: str  # one of SAP_OPERATIONS
    entity_set: str = ""
    function: str = ""  # the function import, for operation = "function"
    request_field: str = ""  # the request field holding the entity (create/update); "" = the request
    response_field: str = ""  # the response field receiving the entity/entities/result
    filter_fields: tuple[str, ...] | None = None  # query: request fields → $filter (None: all but paging)
    page_size: int = 50  # query: when the request sets none
    max_page_size: int = 500


@dataclass(frozen=True, slots=True)
class SapSettings:
    service_url: str  # the OData service root, ending in "/"
    methods: Mapping[str, SapMethod]
    sap_client: str = ""
    auth: str = "none"  # "none" | "basic" | "certificate"
    username: str = ""
    password: str = field(default="", repr=False)  # from the environment variable the file names
    tls: TlsSettings = TlsSettings()
    max_connections: int = 8
    # proto field name → OData property name, where the default (PascalCase) does not fit.
    properties: Mapping[str, str] = field(default_factory=dict)
    csrf: bool = True


class _Table:
    """Typed access to one TOML table; errors name the file and the dotted key."""

    def __init__(self, source: Path, where: str, table: Mapping[str, Any]) -> None:
        self.source, self.where, self.table = source, where, table

    def fail(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.where}] {key}: {problem}", hint=hint)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "is required", f'add `{key} = "…"`')
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {type(value).__name__}", "quote the value")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}", f'e.g. {key} = "{options[0]}"')
        return value

    def count(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive integer, got {value!r}", f"e.g. {key} = {default}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}", "write true or false")
        return value

    def names(self, key: str) -> tuple[str, ...] | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of field names", f'{key} = ["city"]')
        return tuple(value)

    def file(self, key: str) -> Path | None:
        value = self.text(key, "")
        if not value:
            return None
        path = (self.source.parent / value).resolve()
        if not path.is_file():
            raise self.fail(key, f"file {path} does not exist", "give a path relative to the configuration file")
        return path

    def sub(self, key: str) -> _Table:
        value = self.table.get(key)
        if not isinstance(value, dict):
            problem = "section is missing" if value is None else "must be a table"
            raise self.fail(key, problem, f"add a [{self.where}.{key}] table")
        return _Table(self.source, f"{self.where}.{key}", value)

    def subtables(self, key: str) -> dict[str, _Table]:
        section = self.sub(key)
        out = {}
        for name, value in section.table.items():
            if not isinstance(value, dict):
                raise section.fail(name, "must be a table", f"write [{section.where}.{name}]")
            out[name] = _Table(self.source, f"{section.where}.{name}", value)
        if not out:
            raise self.fail(key, "maps no method", f"add a [{self.where}.{key}.MethodName] table")
        return out

    def unknown_keys(self, allowed: tuple[str, ...]) -> None:
        # A typo ("entityset") must not silently fall back to a default.
        check_keys(self.table, allowed, source=self.source, where=self.where)


def _tls(t: _Table) -> TlsSettings:
    tls = TlsSettings(t.file("ca"), t.file("client_certificate"), t.file("client_key"))
    if (tls.client_certificate is None) != (tls.client_key is None):
        raise t.fail("client_key", "client_certificate and client_key go together", "set both or neither")
    return tls


def _http_url(t: _Table, address: str) -> str:
    if not address.startswith(("http://", "https://")):
        raise ConfigError(
            f"{t.source}: [{t.where.rsplit('.', 1)[0]}] address: must be an http:// or https:// URL, got {address!r}",
            hint='e.g. address = "https://backend.example/api/"',
        )
    return address if address.endswith("/") else address + "/"


def _rest(t: _Table, address: str) -> RestSettings:
    t.unknown_keys(("ca", "client_certificate", "client_key", "max_connections", "field_names", "methods"))
    methods = {}
    for name, m in t.subtables("methods").items():
        m.unknown_keys(("http", "body", "response_field"))
        verb, _, path = m.text("http").partition(" ")
        if verb not in HTTP_METHODS or not path.startswith("/"):
            raise m.fail(
                "http", f"must read like 'GET /companies/{{id}}', got {m.text('http')!r}", 'http = "GET /things/{id}"'
            )
        default_body = "" if verb in ("GET", "DELETE") else "*"
        methods[name] = RestMethod(name, verb, path, m.text("body", default_body), m.text("response_field", ""))
    return RestSettings(
        base_url=_http_url(t, address),
        methods=methods,
        tls=_tls(t),
        max_connections=t.count("max_connections", 20),
        proto_field_names=t.choice("field_names", ("json", "proto"), "json") == "proto",
    )


def _sap(t: _Table, address: str, environ: Mapping[str, str]) -> SapSettings:
    t.unknown_keys(_SAP_KEYS)
    auth = t.choice("auth", ("none", "basic", "certificate"), "none")
    username = password = ""
    if auth == "basic":
        username = t.text("username")
        variable = t.text("password_env")
        if variable not in environ:
            raise t.fail("password_env", f"names {variable}, which is not set", f"export {variable} before starting")
        password = environ[variable]
    tls = _tls(t)
    if auth == "certificate" and tls.client_certificate is None:
        raise t.fail("client_certificate", 'is required with auth = "certificate"', "give the PEM certificate and key")
    properties: dict[str, str] = {}
    if "properties" in t.table:
        p = t.sub("properties")
        for key in p.table:
            properties[key] = p.text(key)
    methods = {}
    for name, m in t.subtables("methods").items():
        m.unknown_keys(_SAP_METHOD_KEYS)
        operation = m.choice("operation", SAP_OPERATIONS)
        entity_set = m.text("entity_set", "" if operation == "function" else None)
        function = m.text("function") if operation == "function" else ""
        if operation == "batch_create" and not m.text("response_field", ""):
            raise m.fail("response_field", "is required for batch_create", 'response_field = "companies"')
        if operation == "batch_create" and not m.text("request_field", ""):
            raise m.fail(
                "request_field", "is required for batch_create (the repeated field)", 'request_field = "companies"'
            )
        methods[name] = SapMethod(
            name=name,
            operation=operation,
            entity_set=entity_set,
            function=function,
            request_field=m.text("request_field", ""),
            response_field=m.text("response_field", ""),
            filter_fields=m.names("filter"),
            page_size=m.count("page_size", 50),
            max_page_size=m.count("max_page_size", 500),
        )
    return SapSettings(
        service_url=_http_url(t, address),
        methods=methods,
        sap_client=t.text("sap_client", ""),
        auth=auth,
        username=username,
        password=password,
        tls=tls,
        max_connections=t.count("max_connections", 8),
        properties=properties,
        csrf=t.flag("csrf", True),
    )


def load_adapter_settings(
    source: Path, where: str, service: Mapping[str, Any], kind: str, address: str, environ: Mapping[str, str]
) -> RestSettings | SapSettings | None:
    """The settings of one ``[[services]]`` entry (``where`` is e.g. "services[0]")."""
    entry = _Table(source, where, service)
    if kind not in ADAPTER_KINDS:
        raise entry.fail(
            "adapter",
            f"service {service.get('id', '?')}: unknown adapter {kind!r}",
            'use adapter = "grpc", "rest" or "sap_odata"',
        )
    if kind == "rest":
        return _rest(entry.sub("rest"), address)
    if kind == "sap_odata":
        return _sap(entry.sub("sap"), address, environ)
    return None
