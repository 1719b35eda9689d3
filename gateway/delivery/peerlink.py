"""How one gateway's delivery room reaches another's: ``PeerDelivery`` over pooled mTLS channels.

The :class:`DeliveryLink` Protocol is the seam (an in-process twin can call the other room's
handlers directly). Failures come back as the error tree: the peer's own refusal (its
``crossway-error`` code and its gRPC status), or ``peer.unavailable`` when it did not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from audit.trail import SignedEvent
from crossway.core.errors import CrosswayError, DeadlineExceeded, Hop, ProviderUnreachable, error_class_for_code
from gateway.delivery.convert import event_to_pb, events_from_pb
from gateway.wire.codec import envelope_to_pb
from gateway.wire.flow import FLOW_CONTROL
from gateway.wire.frames import Envelope
from gateway.wire.metadata import metadata_text
from protos.crossway.v1 import delivery_pb2 as dpb

__all__ = ["DeliveryLink", "GrpcDeliveryLink", "link_error"]

_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    *FLOW_CONTROL,
]


class DeliveryLink(Protocol):
    async def relay(
        self, address: str, attempt: Envelope, message: Envelope, events: list[SignedEvent], timeout: float
    ) -> list[SignedEvent]: ...

    async def send_evidence(
        self, address: str, sender: str, message_id: str, events: list[SignedEvent], timeout: float
    ) -> None: ...

    async def upload(
        self, address: str, message: Envelope, attachment_id: str, chunks: AsyncIterator[bytes], timeout: float
    ) -> int: ...


def link_error(exc: grpc.aio.AioRpcError, address: str) -> CrosswayError:
    """A failed call as the error tree (the peer's own code when it sent one)."""
    trailing = metadata_text(exc.trailing_metadata())
    code = trailing.get("crossway-error", "")
    details = exc.details() or ""
    if code:
        cls = error_class_for_code(code)
        error = cls(details.split(": ", 2)[-1], hint=trailing.get("crossway-hint") or None, status=exc.code())
        return error.at(Hop.PROVIDER)
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the gateway at {address} did not answer in time")
    return ProviderUnreachable(f"the gateway at {address} did not answer: {exc.code().name}", status=exc.code())


class GrpcDeliveryLink:
    def __init__(self, tls_key_pem: bytes, tls_cert_pem: bytes, ca_pem: Any) -> None:
        """``ca_pem``: a callable giving the current registry CA bundle (it may rotate)."""
        self._key, self._cert, self._ca = tls_key_pem, tls_cert_pem, ca_pem
        self._trusted = b""
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        ca = self._ca()
        if ca != self._trusted:
            old, self._channels, self._trusted = list(self._channels.values()), {}, ca
            for channel in old:
                asyncio.get_running_loop().create_task(channel.close(grace=10))
        existing = self._channels.get(address)
        if existing is not None:
            return existing
        credentials = grpc.ssl_channel_credentials(ca, self._key, self._cert)
        channel = self._channels[address] = grpc.aio.secure_channel(address, credentials, options=_OPTIONS)
        return channel

    async def relay(
        self, address: str, attempt: Envelope, message: Envelope, events: list[SignedEvent], timeout: float
    ) -> list[SignedEvent]:
        call = self.channel(address).unary_unary(
            "/crossway.v1.PeerDelivery/Relay",
            request_serializer=dpb.RelayRequest.SerializeToString,
            response_deserializer=dpb.RelayReply.FromString,
        )
        request = dpb.RelayRequest(
            attempt=envelope_to_pb(attempt), message=envelope_to_pb(message), events=[event_to_pb(e) for e in events]
        )
        try:
            reply = await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise link_error(exc, address) from exc
        return events_from_pb(reply.events)

    async def send_evidence(
        self, address: str, sender: str, message_id: str, events: list[SignedEvent], timeout: float
    ) -> None:
        call = self.channel(address).unary_unary(
            "/crossway.v1.PeerDelivery/Evidence",
            request_serializer=dpb.EvidenceTransfer.SerializeToString,
            response_deserializer=dpb.EvidenceTransferReply.FromString,
        )
        request = dpb.EvidenceTransfer(
            message=dpb.MessageRef(sender=sender, message_id=message_id), events=[event_to_pb(e) for e in events]
        )
        try:
            await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise link_error(exc, address) from exc

    async def upload(
        self, address: str, message: Envelope, attachment_id: str, chunks: AsyncIterator[bytes], timeout: float
    ) -> int:
        call = self.channel(address).stream_unary(
            "/crossway.v1.PeerDelivery/RelayAttachment",
            request_serializer=dpb.AttachmentUpload.SerializeToString,
            response_deserializer=dpb.AttachmentUploadReply.FromString,
        )

        async def frames() -> AsyncIterator[dpb.AttachmentUpload]:
            yield dpb.AttachmentUpload(message=envelope_to_pb(message), attachment_id=attachment_id)
            async for data in chunks:
                yield dpb.AttachmentUpload(data=data)

        try:
            reply = await call(frames(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise link_error(exc, address) from exc
        return int(reply.size)

    async def aclose(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close(grace=1) for c in channels), return_exceptions=True)
