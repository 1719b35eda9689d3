"""One gRPC method = one OData V2 operation, run with pyodata (synchronously, on a worker thread).

Each operation takes the request as the JSON form of the protobuf message (proto field names)
and returns the JSON form of the response, for ``json_format.ParseDict``. Field names map to
OData properties by PascalCase (``share_capital`` → ``ShareCapital``) unless the configuration
names the property (``[services.sap.properties] id = "ID"``). Values are converted per Edm type
(``values``); filter literals are formatted by pyodata from the property's type, never by
pasting text together.

An ``Operations`` serves one exchange: it carries that exchange's context headers
(``adapters.headers``) and attaches them to every request it sends — reads, queries, writes,
function imports and the ``$batch`` — with pyodata's per-request ``add_headers``. They cannot go
on the ``requests`` session: that is shared by all exchanges running on the worker threads.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from adapters.sap.values import from_odata, to_odata
from adapters.settings import SapMethod
from crossway.core.errors import Hop, UpstreamFailed

__all__ = ["Operations"]

_PAGING = ("page_size", "page_token")


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _invalid(message: str) -> UpstreamFailed:
    return UpstreamFailed(message, hop=Hop.BACKEND, status=grpc.StatusCode.INVALID_ARGUMENT)


def _page_token(skip: int) -> str:
    return base64.urlsafe_b64encode(f"skip:{skip}".encode()).decode().rstrip("=")


def _skip_from(token: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
        skip = int(value)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("page_token is not a token this service issued") from None
    if kind != "skip" or skip < 0:
        raise _invalid("page_token is not a token this service issued")
    return skip


class Operations:
    def __init__(self, client: Any, properties: Mapping[str, str], headers: Mapping[str, str]) -> None:
        self._client = client  # pyodata.Client (untyped), shared by all exchanges
        self._properties = properties
        self._headers = dict(headers)  # this exchange's context, for the backend's logs and trace

    def _execute(self, request: Any) -> Any:
        """Send a pyodata request (any ``ODataHttpRequest``) with this exchange's headers."""
        request.add_headers(dict(self._headers))
        return request.execute()

    def prop(self, field: str) -> str:
        return self._properties.get(field) or _pascal(field)

    # -- entities ⇄ JSON ---------------------------------------------------------------------

    def _entity_type(self, entity_set: str) -> Any:
        return self._client.schema.entity_set(entity_set).entity_type

    def _odata_values(self, entity_type: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """Request fields that name a property of the entity → pyodata values, by property."""
        known = {p.name: p for p in entity_type.proprties()}
        out = {}
        for field, value in data.items():
            prop = known.get(self.prop(field))
            if prop is not None and not isinstance(value, dict | list):
                out[prop.name] = to_odata(prop.typ.name, value, field)
        return out

    def _columns(self, entity_type: Any, message: Descriptor) -> dict[str, FieldDescriptor]:
        """OData property → response field, for the fields of ``message`` the entity has."""
        known = {p.name for p in entity_type.proprties()}
        return {self.prop(f.name): f for f in message.fields if self.prop(f.name) in known}

    def _json(self, entity: Any, entity_type: Any, message: Descriptor) -> dict[str, Any]:
        # Read what the answer carried (pyodata's cache): a missing property must not trigger a
        # hidden extra request from inside this worker.
        values = getattr(entity, "_cache", None) or {}
        out = {}
        for prop, field in self._columns(entity_type, message).items():
            if prop in values and values[prop] is not None:
                out[field.name] = from_odata(entity_type.proprty(prop).typ.name, values[prop])
        return out

    def _keys(self, entity_type: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._odata_values(entity_type, data)
        keys = {}
        for prop in entity_type.key_proprties:
            if values.get(prop.name) in (None, ""):
                raise _invalid(f"the key property {prop.name} is missing from the request")
            keys[prop.name] = values[prop.name]
        return keys

    @staticmethod
    def _field(message: Descriptor, name: str) -> FieldDescriptor:
        field = message.fields_by_name.get(name)
        if field is None:
            raise UpstreamFailed(
                f"{message.full_name} has no field {name} (named in the SAP mapping)",
                hint="fix request_field/response_field in [services.sap.methods]",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.FAILED_PRECONDITION,
            )
        return field

    def _entity_message(self, message: Descriptor, field_name: str) -> Descriptor:
        if not field_name:
            return message
        field = self._field(message, field_name)
        if field.message_type is None:
            raise UpstreamFailed(
                f"{message.full_name}.{field_name} is not a message field",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.FAILED_PRECONDITION,
            )
        return field.message_type

    def _wrap(self, method: SapMethod, value: Any) -> dict[str, Any]:
        return {method.response_field: value} if method.response_field else value

    # -- operations --------------------------------------------------------------------------

    def run(
        self, method: SapMethod, request: dict[str, Any], request_type: Descriptor, response_type: Descriptor
    ) -> Any:
        op = getattr(self, "_" + method.operation)
        return op(method, request, request_type, response_type)

    def _read(self, m: SapMethod, request: dict[str, Any], _rq: Descriptor, response: Descriptor) -> Any:
        entity_type = self._entity_type(m.entity_set)
        item = self._entity_message(response, m.response_field)
        query = getattr(self._client.entity_sets, m.entity_set).get_entity(**self._keys(entity_type, request))
        query = query.select(",".join(self._columns(entity_type, item)))
        return self._wrap(m, self._json(self._execute(query), entity_type, item))

    def _query(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        entity_type = self._entity_type(m.entity_set)
        items_field = m.response_field or next((f.name for f in response.fields if f.is_repeated), "")
        item = self._entity_message(response, items_field)
        size = int(request.get("page_size") or m.page_size)
        if size <= 0 or size > m.max_page_size:
            raise _invalid(f"page_size must be between 1 and {m.max_page_size}, got {size}")
        skip = _skip_from(request["page_token"]) if request.get("page_token") else 0
        names = m.filter_fields if m.filter_fields is not None else [f.name for f in rq.fields if f.name not in _PAGING]
        terms = self._odata_values(entity_type, {n: request[n] for n in names if request.get(n) not in (None, "")})
        query = getattr(self._client.entity_sets, m.entity_set).get_entities()
        if terms:
            query = query.filter(**terms)
        # One row more than the page tells whether another page exists, without $inlinecount.
        query = query.select(",".join(self._columns(entity_type, item))).skip(skip).top(size + 1)
        rows = list(self._execute(query))
        out: dict[str, Any] = {items_field: [self._json(r, entity_type, item) for r in rows[:size]]}
        if len(rows) > size and "next_page_token" in response.fields_by_name:
            out["next_page_token"] = _page_token(skip + size)
        return out

    def _create(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        entity_type = self._entity_type(m.entity_set)
        data = request.get(m.request_field, {}) if m.request_field else request
        created = self._execute(self._create_request(m.entity_set, entity_type, data))
        return self._wrap(m, self._json(created, entity_type, self._entity_message(response, m.response_field)))

    def _create_request(self, entity_set: str, entity_type: Any, data: Mapping[str, Any]) -> Any:
        proxy = getattr(self._client.entity_sets, entity_set)
        return proxy.create_entity().set(**self._odata_values(entity_type, data))

    def _update(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        entity_type = self._entity_type(m.entity_set)
        data = request.get(m.request_field, {}) if m.request_field else request
        keys = self._keys(entity_type, data)
        changes = {k: v for k, v in self._odata_values(entity_type, data).items() if k not in keys}
        update = getattr(self._client.entity_sets, m.entity_set).update_entity(**keys).set(**changes)
        # pyodata expects 204; SAP Gateway gives it, CAP only when asked (notes/sap-cap-test-server).
        update.add_headers({"Prefer": "return=minimal"})
        self._execute(update)
        item = self._entity_message(response, m.response_field)
        if not item.fields:
            return {}
        # The stored entity (with values SAP computed), not an echo of the request.
        read = getattr(self._client.entity_sets, m.entity_set).get_entity(**keys)
        return self._wrap(m, self._json(self._execute(read), entity_type, item))

    def _delete(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        entity_type = self._entity_type(m.entity_set)
        data = request.get(m.request_field, {}) if m.request_field else request
        self._execute(getattr(self._client.entity_sets, m.entity_set).delete_entity(**self._keys(entity_type, data)))
        return {}

    def _batch_create(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        # All creates in one changeset of one $batch: SAP applies all of them or none.
        entity_type = self._entity_type(m.entity_set)
        items = request.get(m.request_field, [])
        if not items:
            return {m.response_field: []}
        batch, changeset = self._client.create_batch(), self._client.create_changeset()
        for data in items:
            changeset.add_request(self._create_request(m.entity_set, entity_type, data))
        batch.add_request(changeset)
        # On the $batch request itself, where SAP logs and traces the HTTP request.
        results = self._execute(batch)
        item = self._entity_message(response, m.response_field)
        created = [e for part in results for e in (part if isinstance(part, list) else [part])]
        return {m.response_field: [self._json(e, entity_type, item) for e in created]}

    def _function(self, m: SapMethod, request: dict[str, Any], rq: Descriptor, response: Descriptor) -> Any:
        fimport = self._client.schema.function_import(m.function)
        call = getattr(self._client.functions, m.function)
        params = {p.name: p for p in fimport.parameters}
        for field, value in request.items():
            param = params.get(self.prop(field))
            if param is not None and value not in (None, ""):
                call = call.parameter(param.name, to_odata(param.typ.name, value, field))
        result = self._execute(call)
        rtype = fimport.return_type
        if rtype is None:
            return {}
        if isinstance(result, dict) and set(result) <= {m.function, "__metadata"} and m.function in result:
            result = result[m.function]  # a primitive comes back as {"d": {"Name": value}}
        if not isinstance(result, dict) and not hasattr(result, "_cache"):
            if not m.response_field:
                raise UpstreamFailed(
                    f"{m.function} returns a value; name the response field that receives it",
                    hint='add response_field = "…" to the method mapping',
                    hop=Hop.BACKEND,
                    status=grpc.StatusCode.FAILED_PRECONDITION,
                )
            return {m.response_field: from_odata(rtype.name, result)}
        if hasattr(result, "_cache"):  # an entity
            item = self._entity_message(response, m.response_field)
            return self._wrap(m, self._json(result, result._entity_type, item))
        item = self._entity_message(response, m.response_field)
        fields = {self.prop(f.name): f.name for f in item.fields}
        return self._wrap(m, {fields[k]: from_odata("", v) for k, v in result.items() if k in fields})
