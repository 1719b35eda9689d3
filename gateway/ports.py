"""The gRPC edge: the client port (a transparent proxy for any service) and the peer port.

The client port accepts calls to *any* gRPC method: agency systems use the provider's own
generated stubs pointed at this gateway. Requests stay opaque bytes (no re-encoding). The
method's kind comes from the service descriptor in the registry configuration; every streaming
kind is served as a stream-stream handler, which is the same thing on the wire.

Errors leave as one gRPC status (from the error tree), details prefixed with the hop that
failed, and trailing metadata ``crossway-error`` (stable code), ``crossway-hint`` and
``crossway-message-id``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from crossway.core.errors import CrosswayError, Hop, InternalError
from crossway.telemetry import extract_context
from gateway.client.metadata import MD_PURPOSE, MD_SERVICE, MD_USER, MD_USER_TOKEN, metadata_problem
from gateway.client.metaservices import MetaServices
from gateway.client.pipeline import ClientPipeline, OutgoingCall
from gateway.client.reflection import REFLECTION_PREFIXES, Reflection
from gateway.provider.pipeline import ProviderPipeline
from gateway.shared.config import Limits
from gateway.shared.metaservice import META_PREFIX
from gateway.wire.codec import decode_envelope, encode_envelope
from gateway.wire.frames import Envelope
from gateway.wire.metadata import metadata_text
from gateway.wire.multiplex import MULTIPLEX_METHOD, decode_mux_requests, serve_multiplex
from protos.crossway.v1 import peer_pb2 as mux_pb

__all__ = ["ClientPortHandler", "PeerPortHandler", "abort_with", "outgoing_call"]

log = logging.getLogger(__name__)

# grpc's stubs make the handler generic; the runtime class is not subscriptable.
if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    _GenericHandler = grpc.GenericRpcHandler

MD_MESSAGE_ID = "crossway-message-id"
MD_ERROR = "crossway-error"
MD_HINT = "crossway-hint"


def _ascii(text: str) -> str:
    # gRPC metadata values must be printable ASCII.
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: CrosswayError, message_id: str) -> NoReturn:
    trailing: list[tuple[str, str]] = [(MD_ERROR, error.code), (MD_HINT, _ascii(error.hint))]
    if message_id:
        trailing.append((MD_MESSAGE_ID, message_id))
    await context.abort(error.status, error.details(), trailing_metadata=tuple(trailing))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _internal(exc: BaseException, message_id: str, hop: Hop) -> CrosswayError:
    # A bug, not a user error: log it with the id (never the payload), answer INTERNAL.
    log.exception("internal error in exchange %s", message_id or "-", exc_info=exc)
    return InternalError(f"unexpected {type(exc).__name__} while handling message {message_id}", hop=hop)


async def _caller_requests(requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The caller's messages, with one guard at their end.

    grpc.aio ends a request iterator the same way when the caller half-closes and when gRPC
    itself failed the call (a message over ``grpc.max_receive_message_length``); only a moment
    later is the handler cancelled. That moment is waited out here, so a failed call is cancelled
    before its STREAM_END frame is signed: the provider's backend never sees a truncated stream
    end cleanly. (Messages between the limit and gRPC's cap are refused with a code before this.)
    """
    async for message in requests:
        yield message
    await asyncio.sleep(_EOF_SETTLE_S)


# See _caller_requests: long enough for gRPC's cancellation to reach the handler, short beside a stream.
_EOF_SETTLE_S = 0.002


def outgoing_call(
    path: str,
    metadata: Iterable[tuple[str, Any]] | None,
    peer_cert_pem: bytes | None,
    time_remaining_s: float | None,
    limits: Limits,
) -> OutgoingCall:
    """What the client pipeline is told of a caller's call: plain values read from gRPC's, and
    the reason its metadata is refused, if it is (raised once the caller is authenticated)."""
    md = metadata_text(metadata)
    return OutgoingCall(
        message_id=os.urandom(16).hex(),
        grpc_path=path,
        provider_hint=md.get(MD_SERVICE, ""),
        user_id=md.get(MD_USER, ""),
        user_token=md.get(MD_USER_TOKEN, ""),
        purpose=md.get(MD_PURPOSE, ""),
        peer_cert_pem=peer_cert_pem,
        authorization=md.get("authorization"),
        time_remaining_s=time_remaining_s,
        parent=extract_context(md.items()),
        metadata_problem=metadata_problem(
            metadata, max_entries=limits.max_metadata_entries, max_bytes=limits.max_metadata_bytes
        ),
    )


class ClientPortHandler(_GenericHandler):
    def __init__(
        self,
        pipeline: ClientPipeline,
        is_streaming: Callable[[str, str], bool],
        meta: MetaServices | None = None,
        limits: Limits | None = None,
        reflection: Reflection | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._is_streaming = is_streaming
        self._meta = meta
        self._reflection = reflection  # grpc.reflection.v1 and v1alpha (issue 17)
        self._limits = limits if limits is not None else Limits()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        path: str = handler_call_details.method
        if self._meta is not None and path.startswith(META_PREFIX):
            return grpc.unary_unary_rpc_method_handler(self._unary_handler(path, self._meta.unary))
        if self._reflection is not None and path.startswith(REFLECTION_PREFIXES):
            return grpc.stream_stream_rpc_method_handler(self._stream_handler(path, self._reflection.stream))
        hint = metadata_text(handler_call_details.invocation_metadata).get(MD_SERVICE, "")
        if self._is_streaming(path, hint):
            return grpc.stream_stream_rpc_method_handler(self._stream_handler(path))
        return grpc.unary_unary_rpc_method_handler(self._unary_handler(path))

    def _outgoing(self, path: str, context: grpc.aio.ServicerContext[Any, Any]) -> OutgoingCall:
        pems = list(context.auth_context().get("x509_pem_cert", ()))
        return outgoing_call(
            path, context.invocation_metadata(), pems[0] if pems else None, context.time_remaining(), self._limits
        )

    def _unary_handler(
        self, path: str, unary: Callable[[OutgoingCall, bytes], Awaitable[bytes]] | None = None
    ) -> Callable[..., Any]:
        run = unary if unary is not None else self._pipeline.unary

        async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            call = self._outgoing(path, context)
            try:
                result = await run(call, request)
            except CrosswayError as exc:
                await abort_with(context, exc, call.message_id)
            except Exception as exc:
                await abort_with(context, _internal(exc, call.message_id, Hop.CLIENT), call.message_id)
            context.set_trailing_metadata(((MD_MESSAGE_ID, call.message_id),))
            return result

        return handle

    def _stream_handler(
        self, path: str, stream: Callable[[OutgoingCall, AsyncIterator[bytes]], AsyncIterator[bytes]] | None = None
    ) -> Callable[..., Any]:
        run = stream if stream is not None else self._pipeline.stream

        async def handle(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            call = self._outgoing(path, context)
            try:
                async for message in run(call, _caller_requests(requests)):
                    yield message
            except CrosswayError as exc:
                await abort_with(context, exc, call.message_id)
            except Exception as exc:
                await abort_with(context, _internal(exc, call.message_id, Hop.CLIENT), call.message_id)
            context.set_trailing_metadata(((MD_MESSAGE_ID, call.message_id),))

        return handle


class PeerPortHandler(_GenericHandler):
    """``crossway.v1.PeerExchange`` on the peer port (mTLS only): Call, Stream and Multiplex.

    Requests arrive as raw bytes and are decoded here, not by a gRPC deserializer: grpc.aio
    answers a deserializer's exception with ``UNKNOWN`` (or ends a Multiplex stream as if it were
    done), while here bytes that do not decode are refused with ``message.malformed`` like any
    other refusal — and recorded once the peer is identified (``ProviderPipeline.refuse``).
    """

    def __init__(self, pipeline: ProviderPipeline) -> None:
        self._pipeline = pipeline
        self._draining = asyncio.Event()
        self._call = grpc.unary_unary_rpc_method_handler(self._handle_call, response_serializer=encode_envelope)
        self._stream = grpc.stream_stream_rpc_method_handler(self._handle_stream, response_serializer=encode_envelope)
        self._multiplex = grpc.stream_stream_rpc_method_handler(
            self._handle_multiplex, response_serializer=mux_pb.MuxReplies.SerializeToString
        )

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if method == "/crossway.v1.PeerExchange/Call":
            return self._call
        if method == "/crossway.v1.PeerExchange/Stream":
            return self._stream
        if method == MULTIPLEX_METHOD:
            return self._multiplex
        return None

    async def _handle_call(self, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Envelope:
        try:
            env = decode_envelope(raw)
        except CrosswayError as exc:
            await abort_with(context, await self._pipeline.refuse(exc, context.auth_context()), "")
        try:
            return await self._pipeline.call(env, context.auth_context())
        except CrosswayError as exc:
            await abort_with(context, exc, "")
        except Exception as exc:
            await abort_with(context, _internal(exc, "", Hop.PROVIDER), "")

    async def _handle_multiplex(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[mux_pb.MuxReplies]:
        # An async generator function, so grpc.aio streams what it yields. The peer's TLS
        # identity is the connection's; the pipeline checks it per exchange, as for Call.
        batches = (decode_mux_requests(raw) async for raw in requests)
        replies = serve_multiplex(batches, context.auth_context(), self._pipeline.call, draining=self._draining)
        try:
            async for reply in replies:
                yield reply
        except CrosswayError as exc:
            # A batch that does not decode: the stream ends with the code (tags cannot be read).
            await abort_with(context, await self._pipeline.refuse(exc, context.auth_context()), "")

    def drain(self) -> None:
        """Shutting down: answer what runs on the Multiplex streams, refuse the rest, end them."""
        self._draining.set()

    async def _handle_stream(
        self, frames: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Envelope]:
        # A frame that does not decode fails the exchange inside the pipeline (message.malformed,
        # recorded with the peer and, past the first frame, the message id).
        envelopes = (decode_envelope(raw) async for raw in frames)
        try:
            async for env in self._pipeline.stream(envelopes, context.auth_context()):
                yield env
        except CrosswayError as exc:
            await abort_with(context, exc, "")
        except Exception as exc:
            await abort_with(context, _internal(exc, "", Hop.PROVIDER), "")
