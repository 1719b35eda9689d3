"""Client-side step 6 over gRPC: pooled mTLS channels to provider gateways, and the
:class:`GrpcPeerLink` built on them (the production :class:`~gateway.wire.link.PeerLink`).

One channel per peer address, reused by every call (HTTP/2 multiplexes them). Channels trust
only the registry CA(s) from the verified configuration; when the CA set changes (a new
configuration with a rotated CA), the pool is rebuilt. Unary exchanges go over the address's
``Multiplex`` stream (see ``gateway.wire.multiplex``) unless ``multiplex`` is off, the provider does
not offer it, or the envelope is large enough to hold up the others (then ``Call``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from crossway.core.errors import (
    CrosswayError,
    DeadlineExceeded,
    Hop,
    MessageMalformed,
    MessageTooLarge,
    PeerUntrusted,
    ProviderUnreachable,
    StreamBroken,
    error_class_for_code,
)
from gateway.wire.codec import decode_envelope, encode_envelope, envelope_from_pb, envelope_to_pb
from gateway.wire.flow import FLOW_CONTROL
from gateway.wire.frames import Envelope
from gateway.wire.link import PeerTarget
from gateway.wire.metadata import metadata_text
from gateway.wire.multiplex import MULTIPLEX_METHOD, PeerMux, refusal_error
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb

__all__ = ["GrpcPeerLink", "PeerChannels", "PeerStubs", "peer_error"]

# Envelopes above this go over Call: on the shared stream they would hold up the small ones.
_MUX_MAX_BYTES = 256 * 1024

# gRPC's message cap when none is given: gRPC's 4 MiB default plus the margin of [limits].
_MAX_MESSAGE = 5 * 1024 * 1024
_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Fail fast when a peer is down instead of waiting for the whole deadline.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


@dataclass(frozen=True, slots=True)
class PeerStubs:
    call: grpc.aio.UnaryUnaryMultiCallable[pb.Envelope, pb.Envelope]
    stream: grpc.aio.StreamStreamMultiCallable[Envelope, Envelope]
    mux: PeerMux | None = None

    async def exchange(self, envelope: pb.Envelope, timeout: float) -> pb.Envelope:
        """One unary exchange: the provider's response envelope.

        Raises the gRPC error of the hop (``AioRpcError``, as ``Call`` does) or, for a refusal
        sent over the stream, the provider's error itself.
        """
        mux = self.mux
        if mux is not None and not mux.unsupported and len(envelope.body) + len(envelope.header) <= _MUX_MAX_BYTES:
            try:
                reply = await mux.exchange(envelope, timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                mux.unsupported = True  # an older provider: nothing was processed, use Call
            else:
                if reply.HasField("refusal"):
                    raise refusal_error(reply.refusal)
                return reply.response
        return await self.call(envelope, timeout=timeout, wait_for_ready=False)


class PeerChannels:
    """Channels to provider gateways: ``connections`` per address, taken in turn.

    One connection per address is the default. A provider gateway with ``workers = N`` shares
    its peer port between N processes and the kernel hands each *connection* to one of them,
    so a client gateway that sends much to one provider may open several to spread its
    exchanges over the provider's processes (``[gateway] peer_connections``).
    """

    def __init__(
        self,
        tls_key_pem: bytes,
        tls_cert_pem: bytes,
        *,
        multiplex: bool = True,
        connections: int = 1,
        max_message_bytes: int = _MAX_MESSAGE,
    ) -> None:
        """``max_message_bytes``: gRPC's cap on one message each way ([limits], plus its margin)."""
        self._options = [
            *_OPTIONS,
            *FLOW_CONTROL,
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._multiplex = multiplex
        self._connections = max(1, connections)
        self._key = tls_key_pem
        self._cert = tls_cert_pem
        self._ca_pem = b""
        self._credentials: grpc.ChannelCredentials | None = None
        self._pool: dict[str, list[tuple[grpc.aio.Channel, PeerStubs]]] = {}
        self._turn = 0

    def get(self, address: str, ca_pem: bytes) -> PeerStubs:
        if ca_pem != self._ca_pem:
            self._rebuild(ca_pem)
        entries = self._pool.get(address)
        if entries is None:
            entries = self._pool[address] = [self._open(address) for _ in range(self._connections)]
        self._turn += 1
        return entries[self._turn % len(entries)][1]

    def _open(self, address: str) -> tuple[grpc.aio.Channel, PeerStubs]:
        assert self._credentials is not None
        # A local subchannel pool: otherwise grpc shares one connection between equal channels.
        options = [*self._options, ("grpc.use_local_subchannel_pool", 1)] if self._connections > 1 else self._options
        channel = grpc.aio.secure_channel(address, self._credentials, options=options)
        stubs = PeerStubs(
            call=channel.unary_unary(
                "/crossway.v1.PeerExchange/Call",
                request_serializer=pb.Envelope.SerializeToString,
                response_deserializer=pb.Envelope.FromString,
            ),
            stream=channel.stream_stream(
                "/crossway.v1.PeerExchange/Stream",
                request_serializer=encode_envelope,
                response_deserializer=decode_envelope,
            ),
            mux=PeerMux(
                channel.stream_stream(
                    MULTIPLEX_METHOD,
                    request_serializer=mux_pb.MuxRequests.SerializeToString,
                    response_deserializer=mux_pb.MuxReplies.FromString,
                )
            )
            if self._multiplex
            else None,
        )
        return channel, stubs

    def _rebuild(self, ca_pem: bytes) -> None:
        old = [entry for entries in self._pool.values() for entry in entries]
        self._pool = {}
        self._ca_pem = ca_pem
        self._credentials = grpc.ssl_channel_credentials(ca_pem, self._key, self._cert)
        for channel, _ in old:
            # Let calls in flight finish on the old channels (their streams too); close them in
            # the background.
            asyncio.get_running_loop().create_task(channel.close(grace=30))

    async def aclose(self) -> None:
        entries = [entry for group in self._pool.values() for entry in group]
        self._pool = {}
        await asyncio.gather(*(stubs.mux.aclose() for _, stubs in entries if stubs.mux), return_exceptions=True)
        await asyncio.gather(*(channel.close(grace=1) for channel, _ in entries), return_exceptions=True)


def peer_error(exc: grpc.aio.AioRpcError, target: PeerTarget) -> CrosswayError:
    """The hop's gRPC failure as the error tree: the provider's own refusal when it sent one."""
    trailing = metadata_text(exc.trailing_metadata())
    code = trailing.get("crossway-error")
    details = exc.details() or ""
    where = f"{target.provider}'s gateway at {target.address}"
    if code:
        # details are "provider gateway: code: message"; keep only the message part.
        message = details.split(": ", 2)[-1]
        return error_class_for_code(code)(message, hint=trailing.get("crossway-hint"), hop=Hop.PROVIDER)
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"no answer from {where} within the deadline")
    lowered = details.lower()
    if exc.code() == grpc.StatusCode.UNAVAILABLE and "hostname verification" in lowered:
        # The certificate chains to the registry CA but names another host: say so, rather than
        # "unreachable, retry later" — retrying never helps, re-issuing the certificate does.
        host = target.address.rpartition(":")[0] or target.address
        return PeerUntrusted(
            f"the TLS certificate of {where} does not name {host}, the address the registry lists for it",
            hint=(
                f"the provider's operator re-issues its TLS certificate with `crossway gateway init --host {host}` "
                "(or registers the gateway under a name its certificate carries)"
            ),
            hop=Hop.CLIENT,
        )
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in lowered:
        # gRPC itself refused a message over its cap (one side's [limits] max_message_bytes).
        return MessageTooLarge(f"{where}: {details[:200]}")
    if exc.code() == grpc.StatusCode.UNAVAILABLE and ("handshake" in lowered or "certificate" in lowered):
        return PeerUntrusted(
            f"TLS handshake with {where} failed: one side's certificate is not trusted by the other",
            hint="both gateways need TLS certificates issued by the registry CA; check `crossway registry list`",
            hop=Hop.CLIENT,
        )
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        return ProviderUnreachable(f"{where} is unreachable: {details[:200]}")
    return MessageMalformed(f"{where} failed the exchange: {exc.code().name}: {details[:200]}")


class _GrpcStream:
    """A ``PeerExchange.Stream`` call as a :class:`~gateway.wire.link.PeerStream`."""

    def __init__(self, call: grpc.aio.StreamStreamCall[Envelope, Envelope], target: PeerTarget) -> None:
        self._call = call
        self._target = target

    async def write(self, envelope: Envelope) -> None:
        try:
            await self._call.write(envelope)
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, self._target) from None
        except asyncio.InvalidStateError:
            # The provider ended the exchange first (it answered, or refused): nothing more is read.
            raise StreamBroken(f"{self._target.provider}'s gateway ended the stream") from None

    async def done_writing(self) -> None:
        try:
            await self._call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return  # the call already ended: its status is what the responses say

    async def responses(self) -> AsyncIterator[Envelope]:
        try:
            async for envelope in self._call:
                yield envelope
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, self._target) from None

    def cancel(self) -> None:
        self._call.cancel()


class GrpcPeerLink:
    """The production link: unary exchanges over Multiplex (or Call), streams over Stream."""

    def __init__(self, channels: PeerChannels) -> None:
        self._channels = channels

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        stubs = self._channels.get(target.address, target.trust)
        try:
            return envelope_from_pb(await stubs.exchange(envelope_to_pb(envelope), timeout))
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, target) from None

    def open_stream(self, target: PeerTarget, timeout: float) -> _GrpcStream:
        stubs = self._channels.get(target.address, target.trust)
        return _GrpcStream(stubs.stream(None, timeout=timeout), target)

    async def aclose(self) -> None:
        await self._channels.aclose()
