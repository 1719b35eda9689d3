"""The gRPC adapter: bytes in, bytes out — the backend's messages are never re-encoded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from adapters.base import AdapterHealth, BackendCall
from adapters.health import HealthTracker
from crossway.core.errors import CrosswayError, Hop, UpstreamFailed, UpstreamTimeout, UpstreamUnavailable

__all__ = ["GrpcAdapter"]

_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]
# gRPC's cap on one message to or from the backend when the gateway names none (its [limits]).
_MAX_MESSAGE = 64 * 1024 * 1024


def _identity(data: bytes) -> bytes:
    return data


def _translate(exc: grpc.aio.AioRpcError, address: str) -> CrosswayError:
    code = exc.code()
    details = exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return UpstreamUnavailable(f"backend at {address} is unavailable: {details[:200]}", hop=Hop.BACKEND)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return UpstreamTimeout(f"backend at {address} did not answer within the deadline", hop=Hop.BACKEND)
    # The backend's own status and message travel on unchanged: they are its answer.
    return UpstreamFailed(details, hop=Hop.BACKEND, status=code)


class GrpcAdapter:
    def __init__(
        self,
        address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_bytes: int = _MAX_MESSAGE,
    ) -> None:
        """``max_message_bytes``: gRPC's cap on one message each way — a backend answer larger
        than the gateway may pass on is refused by gRPC before it is held in memory."""
        self._address = address
        options = [
            *_OPTIONS,
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._unary: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._streams: dict[str, grpc.aio.StreamStreamMultiCallable[bytes, bytes]] = {}
        self._health = HealthTracker(address)

    def health(self) -> AdapterHealth:
        return self._health.snapshot()

    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        stub = self._unary.get(call.grpc_path)
        if stub is None:
            stub = self._channel.unary_unary(
                call.grpc_path, request_serializer=_identity, response_deserializer=_identity
            )
            self._unary[call.grpc_path] = stub
        try:
            result = await stub(body, timeout=call.timeout_s, metadata=tuple(call.metadata))
        except grpc.aio.AioRpcError as exc:
            error = _translate(exc, self._address)
            self._health.failed(error)
            raise error from None
        self._health.ok()
        return result

    async def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        # Any streaming kind is a stream-stream call on the wire; the backend sees its own kind.
        stub = self._streams.get(call.grpc_path)
        if stub is None:
            stub = self._channel.stream_stream(
                call.grpc_path, request_serializer=_identity, response_deserializer=_identity
            )
            self._streams[call.grpc_path] = stub
        backend_call = stub(None, timeout=call.timeout_s, metadata=tuple(call.metadata))

        # We feed the backend ourselves rather than hand grpc the iterator: grpc swallows an
        # exception raised by a request iterator and the backend would wait for its deadline.
        # Here a failing request side (e.g. a broken chain) cancels the backend call at once.
        async def feed() -> None:
            try:
                async for message in requests:
                    await backend_call.write(message)
                await backend_call.done_writing()
            except BaseException:
                backend_call.cancel()
                raise

        feeder = asyncio.create_task(feed(), name=f"feed {call.grpc_path}")
        try:
            while True:
                try:
                    message = await backend_call.read()
                except asyncio.CancelledError:
                    if feeder.done() and not feeder.cancelled() and feeder.exception() is not None:
                        raise feeder.exception() from None  # type: ignore[misc]
                    raise
                if message is grpc.aio.EOF:  # type: ignore[attr-defined]
                    break
                self._health.ok()
                yield message  # type: ignore[misc]
            if feeder.done() and not feeder.cancelled() and feeder.exception() is not None:
                raise feeder.exception()  # type: ignore[misc]
        except grpc.aio.AioRpcError as exc:
            if feeder.done() and not feeder.cancelled() and feeder.exception() is not None:
                raise feeder.exception() from None  # type: ignore[misc]
            error = _translate(exc, self._address)
            self._health.failed(error)
            raise error from None
        finally:
            backend_call.cancel()
            if not feeder.done():
                feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder

    async def aclose(self) -> None:
        await self._channel.close(grace=1)
