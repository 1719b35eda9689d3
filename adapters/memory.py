"""An in-memory adapter: a dict of handlers stands in for the backend (unit tests, demos)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from adapters.base import AdapterHealth, BackendCall
from adapters.health import HealthTracker
from crossway.core.errors import CrosswayError, Hop, UpstreamFailed

__all__ = ["MemoryAdapter"]

Handler = Callable[[bytes], Awaitable[bytes]]


class MemoryAdapter:
    def __init__(self, handlers: dict[str, Handler]) -> None:
        self._handlers = handlers  # keyed by method name, e.g. "GetCompany"
        self._health = HealthTracker()
        self.calls: list[BackendCall] = []

    def health(self) -> AdapterHealth:
        return self._health.snapshot()

    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        self.calls.append(call)
        handler = self._handlers.get(call.method_name)
        try:
            if handler is None:
                raise UpstreamFailed(
                    f"no handler for {call.method_name}", hop=Hop.BACKEND, status=grpc.StatusCode.UNIMPLEMENTED
                )
            result = await handler(body)
        except CrosswayError as exc:
            self._health.failed(exc)
            raise
        self._health.ok()
        return result

    async def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for body in requests:
            yield await self.unary(call, body)

    async def aclose(self) -> None:
        return None
