"""The REST/JSON adapter: each gRPC method becomes one HTTP request to a JSON backend.

Mapping (per method, from ``[services.rest.methods.NAME]``): ``http = "GET /companies/{id}"``.
Request fields named in the path template fill it; for GET and DELETE the other fields become
query parameters, for the other verbs they form the JSON body (``body = "field"`` sends just
that field, the rest going to the query). The answer is parsed into the response message with
the service's registered descriptor (unknown JSON keys are ignored: backends grow fields).

Why httpx: it is asyncio-native (the call stays on the event loop, no thread per request), pools
keep-alive connections with explicit limits, takes an ``ssl.SSLContext`` for a private CA and a
client certificate, and has one small exception tree to translate. aiohttp would do as well but
brings its own server framework; requests would need a thread per call.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import grpc
import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from adapters.base import AdapterHealth, BackendCall, method_mapping
from adapters.headers import exchange_headers
from adapters.health import HealthTracker
from adapters.http_status import grpc_status_for_http
from adapters.schema import DescriptorSource, MethodTypes, SchemaCache
from adapters.settings import RestMethod, RestSettings
from adapters.tls import TLS_HINT, tls_failure
from crossway.core.errors import Hop, UpstreamFailed, UpstreamTimeout, UpstreamUnavailable

__all__ = ["RestAdapter", "backend_message"]

_TEMPLATE_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_MESSAGE = 500


def backend_message(status: int, content: bytes) -> str:
    """The backend's own error message from a JSON error body (common shapes), else its text."""
    try:
        data = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace").strip()
        return text[:_MAX_MESSAGE] or f"HTTP {status}"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, dict):  # OData: {"error": {"message": {"value": "…"}}}
                message = message.get("value")
            if isinstance(message, str) and message:
                return message[:_MAX_MESSAGE]
        for key in ("message", "detail", "title", "error"):  # plain, RFC 9457 problem details
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_MESSAGE]
    return f"HTTP {status}"


def _ssl_context(settings: RestSettings) -> ssl.SSLContext | bool:
    tls = settings.tls
    if not settings.base_url.startswith("https://"):
        return True
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.client_certificate is not None and tls.client_key is not None:
        context.load_cert_chain(str(tls.client_certificate), str(tls.client_key))
    return context


class RestAdapter:
    def __init__(self, settings: RestSettings, descriptors: DescriptorSource, grpc_service: str) -> None:
        self._settings = settings
        self._schema = SchemaCache(descriptors, grpc_service)
        self._health = HealthTracker(settings.base_url)
        limits = httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections
        )
        self._client = httpx.AsyncClient(
            base_url=settings.base_url, verify=_ssl_context(settings), limits=limits, follow_redirects=False
        )

    def health(self) -> AdapterHealth:
        return self._health.snapshot()

    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        return await self._health.observe(self._unary(call, body))

    async def _unary(self, call: BackendCall, body: bytes) -> bytes:
        mapping = method_mapping(self._settings.methods, call, "REST", "rest")
        types = self._schema.current().method(call.method_name)
        path, params, payload = self._request_parts(mapping, types.parse_request(body))
        headers = exchange_headers(call)
        try:
            # One overall bound (httpx's own timeouts are per phase: connect, read, …).
            async with asyncio.timeout(call.timeout_s):
                response = await self._client.request(
                    mapping.http_method,
                    path.lstrip("/"),
                    params=tuple(params),
                    json=payload,
                    headers=headers,
                    timeout=call.timeout_s,
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(
                f"REST backend did not answer {mapping.http_method} {mapping.path} within {call.timeout_s:.1f} s",
                hop=Hop.BACKEND,
            ) from exc
        except (httpx.TransportError, ssl.SSLError) as exc:
            # anyio's TLS stream lets some ssl.SSLError through httpcore unmapped (a TLS alert that
            # arrives while the response is read, e.g. "certificate required"): the same failure.
            if (reason := tls_failure(exc)) is not None:
                raise UpstreamUnavailable(
                    f"TLS with REST backend {self._settings.base_url} failed: {reason}", hint=TLS_HINT, hop=Hop.BACKEND
                ) from exc
            raise UpstreamUnavailable(
                f"REST backend {self._settings.base_url} is unreachable: {type(exc).__name__}", hop=Hop.BACKEND
            ) from exc
        if response.status_code >= 400:
            raise UpstreamFailed(
                backend_message(response.status_code, response.content),
                hop=Hop.BACKEND,
                status=grpc_status_for_http(response.status_code),
            )
        return self._response(mapping, types, response)

    def _request_parts(self, mapping: RestMethod, request: Message) -> tuple[str, list[tuple[str, str]], Any | None]:
        proto_names = self._settings.proto_field_names
        data: dict[str, Any] = json_format.MessageToDict(request, preserving_proto_field_name=proto_names)
        fields = request.DESCRIPTOR.fields_by_name

        def key(name: str) -> str:
            field = fields.get(name)
            if field is None:
                raise UpstreamFailed(
                    f"{mapping.name}: the path names {{{name}}}, which {request.DESCRIPTOR.full_name} lacks",
                    hint="fix the method's http path in the gateway configuration",
                    hop=Hop.BACKEND,
                    status=grpc.StatusCode.FAILED_PRECONDITION,
                )
            return field.name if proto_names else field.json_name

        def fill(match: re.Match[str]) -> str:
            k = key(match.group(1))
            value = data.pop(k, None)
            if value is None or value == "":
                raise UpstreamFailed(
                    f"{mapping.name}: field {match.group(1)} is required (it is part of the backend's path)",
                    hop=Hop.BACKEND,
                    status=grpc.StatusCode.INVALID_ARGUMENT,
                )
            return quote(str(value), safe="")

        path = _TEMPLATE_VAR.sub(fill, mapping.path)
        payload: Any | None = None
        if mapping.body == "*":
            payload, data = data, {}
        elif mapping.body:
            payload = data.pop(key(mapping.body), {})
        params: list[tuple[str, str]] = []
        for name, value in data.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    continue  # a message cannot travel in a query string; map it into a body instead
                params.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
        return path, params, payload

    def _response(self, mapping: RestMethod, types: MethodTypes, response: httpx.Response) -> bytes:
        try:
            data = response.json() if response.content.strip() else {}
        except ValueError as exc:
            raise UpstreamFailed(
                f"REST backend answered {mapping.name} with a body that is not JSON",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.INTERNAL,
            ) from exc
        if mapping.response_field:
            data = {mapping.response_field: data}
        message = types.output()
        try:
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise UpstreamFailed(
                f"REST backend's answer to {mapping.name} does not fit {types.output.DESCRIPTOR.full_name}: {exc}"[
                    :_MAX_MESSAGE
                ],
                hop=Hop.BACKEND,
                status=grpc.StatusCode.INTERNAL,
            ) from exc
        return message.SerializeToString()

    async def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        raise UpstreamFailed(
            f"{call.method_name} is a streaming method; the REST adapter serves unary methods only",
            hop=Hop.BACKEND,
            status=grpc.StatusCode.UNIMPLEMENTED,
        )
        yield b""  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        await self._client.aclose()
