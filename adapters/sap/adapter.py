"""The SAP OData V2 adapter: gRPC methods → OData operations through pyodata, SAP's own client.

pyodata is synchronous (on a ``requests`` session), so every call runs on this adapter's own
bounded thread pool — never on the event loop, and never starving other adapters of the loop's
default executor. The deadline is honoured twice: the caller is answered DEADLINE_EXCEEDED when
it passes (``asyncio.wait_for``), and each HTTP request on the worker gets the time left as its
timeout, so a slow SAP system cannot pile up workers long after their callers gave up.

$metadata is fetched once, lazily, on the first call (a gateway must start while SAP is down);
a failed fetch is retried by the next call.

Every request of an exchange carries its context (client, message id, user, purpose,
traceparent) as the same HTTP headers the REST adapter sends (``adapters.headers``), so SAP can
log who called and why and join the trace. The $metadata fetch and the CSRF token fetch do not:
each serves every exchange after it, so naming one caller there would mislead.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import grpc
import pyodata
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from adapters.base import AdapterHealth, BackendCall, method_mapping
from adapters.headers import exchange_headers
from adapters.health import HealthTracker
from adapters.sap.errors import translate
from adapters.sap.operations import Operations
from adapters.sap.session import DEADLINE, GatewaySession
from adapters.schema import DescriptorSource, MethodTypes, SchemaCache
from adapters.settings import SapMethod, SapSettings
from crossway.core.errors import Hop, UpstreamFailed, UpstreamTimeout

__all__ = ["SapODataAdapter"]

log = logging.getLogger(__name__)


class SapODataAdapter:
    def __init__(self, settings: SapSettings, descriptors: DescriptorSource, grpc_service: str) -> None:
        self._settings = settings
        self._schema = SchemaCache(descriptors, grpc_service)
        self._health = HealthTracker(settings.service_url)
        self._session = GatewaySession(settings)
        self._executor = ThreadPoolExecutor(settings.max_connections, thread_name_prefix="sap-odata")
        self._client: Any = None  # pyodata.Client (untyped), once $metadata has loaded
        self._metadata_lock = threading.Lock()

    def health(self) -> AdapterHealth:
        return self._health.snapshot()

    @property
    def csrf_fetches(self) -> int:
        return self._session.csrf_fetches

    def _ops(self, headers: Mapping[str, str]) -> Operations:
        """Operations for one exchange, on the client all exchanges share (its $metadata is costly)."""
        with self._metadata_lock:
            if self._client is None:
                self._client = pyodata.Client(self._settings.service_url, self._session)
                log.info("SAP $metadata of %s loaded", self._settings.service_url)
        return Operations(self._client, self._settings.properties, headers)

    def _run(self, mapping: SapMethod, types: MethodTypes, body: bytes, headers: Mapping[str, str]) -> bytes:
        """On a worker thread: decode, call SAP with the exchange's headers, encode."""
        request = json_format.MessageToDict(types.parse_request(body), preserving_proto_field_name=True)
        try:
            data = self._ops(headers).run(
                mapping, request, cast(Descriptor, types.input.DESCRIPTOR), cast(Descriptor, types.output.DESCRIPTOR)
            )
        except Exception as exc:  # pyodata, requests and lxml raise many kinds: translate all
            raise translate(exc, self._settings.service_url) from exc
        message = types.output()
        try:
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise UpstreamFailed(
                f"SAP's answer to {mapping.name} does not fit {types.output.DESCRIPTOR.full_name}: {exc}"[:500],
                hop=Hop.BACKEND,
                status=grpc.StatusCode.INTERNAL,
            ) from exc
        return message.SerializeToString()

    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        return await self._health.observe(self._unary(call, body))

    async def _unary(self, call: BackendCall, body: bytes) -> bytes:
        mapping = method_mapping(self._settings.methods, call, "SAP", "sap")
        types = self._schema.current().method(call.method_name)
        context = contextvars.copy_context()
        context.run(DEADLINE.set, time.monotonic() + call.timeout_s)
        loop = asyncio.get_running_loop()
        headers = exchange_headers(call)
        work = loop.run_in_executor(self._executor, context.run, self._run, mapping, types, body, headers)
        try:
            return await asyncio.wait_for(work, call.timeout_s)
        except TimeoutError:
            raise UpstreamTimeout(
                f"SAP did not answer {call.method_name} within {call.timeout_s:.1f} s", hop=Hop.BACKEND
            ) from None

    async def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        raise UpstreamFailed(
            f"{call.method_name} is a streaming method; the SAP OData adapter serves unary methods only",
            hop=Hop.BACKEND,
            status=grpc.StatusCode.UNIMPLEMENTED,
        )
        yield b""  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        # Workers still running finish within their own request timeouts; do not wait for them.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._session.close()
