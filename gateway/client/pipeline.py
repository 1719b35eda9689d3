"""The client side of an exchange (gateway A): an agency system's call goes out to a provider.

Steps, in order, each failing closed with its own error code:
1. authenticate the caller (pinned client certificate or bearer JWT)      → client.*
   and refuse metadata out of bounds, and a request over the size limit → client.metadata_invalid,
                                                                            message.too_large
2. resolve the service and the provider's gateways from the configuration → service.*, registry.*
3. build the header: message id, client, service, method, user, purpose,
   issued-at, deadline (the caller's, at most [limits] max_deadline_s), trace context,
   SHA-256 of the body
4. encrypt the body when the service requires it
5. sign header + body digest with this member's signing key
6. send over a pooled mTLS channel, deadline = the caller's remaining time  → peer.*, deadline.*
7. verify the provider's signed response, bound to the hash of our request  → message.*
8. return the body (the transport adds ``crossway-message-id``)
9. this side's audit record is durable (JetStream ack or fsync'd spool) *before* the answer is
   returned — a stream's final status before the caller's stream ends (issue 12)

The record's status is the status the caller gets: a provider's refusal, this side's error,
a cancellation, and an unexpected exception (INTERNAL at the transport) are each recorded as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from opentelemetry import trace
from opentelemetry.context import Context

from crossway.core.errors import (
    AuditUnavailable,
    CrosswayError,
    Hop,
    MessageMalformed,
    MessageTooLarge,
    ProviderUnreachable,
    StreamBroken,
)
from crossway.security.encryption import ClientSession
from crossway.telemetry import traceparent_of
from gateway.client.callers import CallerAuthenticator
from gateway.client.routing import Route, Router
from gateway.shared.context import GatewayContext, error_from_status
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.chain import ChainReader, ChainWriter
from gateway.wire.codec import open_envelope, seal_frame
from gateway.wire.frames import Encryption, Envelope, FrameKind, Header, SignedFrame, frame_aad
from gateway.wire.link import PeerLink, PeerStream
from registry.configuration import VerifiedConfiguration

__all__ = ["ClientPipeline", "OutgoingCall"]

_tracer = trace.get_tracer("crossway.gateway.client")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingCall:
    """What the transport read from the caller's gRPC call; plain values only."""

    message_id: str
    grpc_path: str
    provider_hint: str
    user_id: str
    purpose: str
    peer_cert_pem: bytes | None
    authorization: str | None
    time_remaining_s: float | None
    parent: Context  # extracted from the caller's metadata (W3C trace context)
    # The end user's JWT (crossway-user-token); the provider verifies it. Never in a repr.
    user_token: str = field(default="", repr=False)
    # Why the caller's metadata is refused (gateway.client.metadata), raised once the caller is
    # authenticated so that the refusal is recorded against it; None when it is fine.
    metadata_problem: CrosswayError | None = None


class ClientPipeline:
    def __init__(self, ctx: GatewayContext, link: PeerLink, callers: CallerAuthenticator) -> None:
        """``link``: how this gateway reaches provider gateways (gRPC, or the in-process twin)."""
        self._ctx = ctx
        self._link = link
        self._callers = callers
        self._router = Router()

    # -- steps 1–5, shared by unary and streaming calls --------------------------------------

    def _begin(
        self, call: OutgoingCall, rec: ExchangeRecorder, span: trace.Span
    ) -> tuple[VerifiedConfiguration, Route, Header]:
        """Steps 1–3. The configuration read here is the exchange's one snapshot: every later
        step (keys, trust, routing) uses it, so a push mid-exchange cannot mix two versions."""
        ctx = self._ctx
        now = ctx.clock.now_ms()
        # 1. authenticate
        caller = self._callers.authenticate(call.peer_cert_pem, call.authorization)
        rec.caller(caller.subsystem)
        if call.metadata_problem is not None:
            raise call.metadata_problem
        # The caller's user id and purpose go into the signed header and both records: bounded.
        rec.check_bounds()
        # 2. resolve
        config = ctx.config()
        config.check_client_enabled(caller.subsystem)  # client.disabled (issue 17)
        route = self._router.resolve(config, call.grpc_path, call.provider_hint)
        rec.routed(route.service, route.method)
        ctx.check_audit_writable()
        # 3. header (the deadline is the caller's, or the gateway's default; never longer than
        # [limits] max_deadline_s — gRPC lets a server end a call sooner than its caller's deadline)
        remaining = call.time_remaining_s if call.time_remaining_s is not None else ctx.default_timeout_s
        remaining = min(remaining, ctx.limits.max_deadline_s)
        header = Header(
            message_id=call.message_id,
            kind=FrameKind.REQUEST,
            client=str(caller.subsystem),
            service=str(route.service),
            method=route.method,
            user_id=call.user_id,
            user_token=call.user_token,
            purpose=call.purpose,
            issued_at_ms=now,
            deadline_ms=now + int(remaining * 1000),
            traceparent=traceparent_of(span),
            signer=ctx.member,
            client_streaming=route.shape.client_streaming,
            server_streaming=route.shape.server_streaming,
        )
        return config, route, header

    def _verify_response_frame(
        self, config: VerifiedConfiguration, env: Envelope, route: Route, request: SignedFrame
    ) -> SignedFrame:
        # 7. the response must be signed by the provider member and bound to our request
        frame = open_envelope(env, str(route.provider), self._ctx.key_lookup(config))
        h = frame.header
        if h.message_id != request.header.message_id or h.request_hash != request.header_hash:
            raise StreamBroken(f"response does not belong to request {request.header.message_id}")
        return frame

    # -- unary -------------------------------------------------------------------------------

    async def unary(self, call: OutgoingCall, body: bytes) -> bytes:
        rec = self._ctx.recorder("client")
        rec.received(call.message_id, call.user_id, call.purpose)
        # Not made the current span: nothing below logs through it, and the traceparent is
        # built from it directly — a context switch per call costs more than it gives.
        span = _tracer.start_span(f"crossway.client {call.grpc_path}", context=call.parent, kind=trace.SpanKind.SERVER)
        rec.traced(span.get_span_context().trace_id)
        answered = False
        try:
            result = await self._unary(call, body, rec, span)
            answered = True
            return result
        except CrosswayError as exc:
            exc.at(Hop.CLIENT)
            rec.failed(exc)
            span.set_status(trace.StatusCode.ERROR, exc.code)
            raise
        except asyncio.CancelledError:
            rec.cancelled()
            raise
        except Exception:
            rec.crashed()  # the transport answers INTERNAL; so does the record
            raise
        finally:
            span.end()
            # 9. durable before the answer is returned (an error leaves as it is).
            await self._audit(rec, answering=answered)

    async def _audit(self, rec: ExchangeRecorder, *, answering: bool) -> None:
        """Make this side's record durable; with no answer to hold back, a late record is logged
        and the exchange's own error goes to the caller."""
        try:
            await self._ctx.audit_exchange(rec)
        except AuditUnavailable as exc:
            if answering:
                raise
            log.error("exchange %s: %s", rec.message_id, exc.message)

    async def _unary(self, call: OutgoingCall, body: bytes, rec: ExchangeRecorder, span: trace.Span) -> bytes:
        ctx = self._ctx
        config, route, header = self._begin(call, rec, span)
        _check_size(body, ctx.limits.max_message_bytes)
        rec.add_request(body)
        # 4. encrypt
        session = None
        wire_body = body
        if route.encryption_key is not None:
            session = ClientSession.start(route.encryption_key)
            nonce, wire_body = session.seal_request(body, frame_aad(call.message_id, 0, "request"))
            header = _replace_encryption(header, Encryption(session.ephemeral_public, session.recipient_key_id, nonce))
        # 5. sign
        env, request = seal_frame(header, wire_body, ctx.signer)
        rec.request_signed(request)
        # 6. send (fail over to the next gateway of the provider only when one is unreachable)
        response_env = None
        for index, target in enumerate(route.targets):
            rec.peer(target.gateway)
            rec.forwarded()
            timeout = max(0.001, (header.deadline_ms - ctx.clock.now_ms()) / 1000)
            try:
                response_env = await self._link.exchange(target, env, timeout)
                break
            except ProviderUnreachable:
                # Unreachable, or refused before it started (a gateway shutting down): the
                # provider's next gateway may answer. Any other failure is final.
                if index == len(route.targets) - 1:
                    raise
        assert response_env is not None
        rec.answered()
        # 7. verify
        response = self._verify_response_frame(config, response_env, route, request)
        rec.response_signed(response)
        rec.check_bounds()  # the provider's list of withheld fields, before it reaches the record
        if response.header.kind != FrameKind.RESPONSE:
            raise StreamBroken(f"provider answered message {call.message_id} with a {response.header.kind.name} frame")
        status = response.header.status
        if status is not None and not status.ok:
            raise error_from_status(status)
        result = response.body
        if session is not None:
            enc = response.header.encryption
            if enc is None:
                raise MessageMalformed(f"encrypted request {call.message_id} got an unencrypted response")
            result = session.open_response(enc.nonce, result, frame_aad(call.message_id, 0, "response"))
        rec.add_response(result)
        # 8. return
        return result

    # -- streaming (server-, client- and bidirectional streaming calls) ----------------------

    async def stream(self, call: OutgoingCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        rec = self._ctx.recorder("client")
        rec.received(call.message_id, call.user_id, call.purpose)
        span = _tracer.start_span(
            f"crossway.client {call.grpc_path}",
            context=call.parent,
            kind=trace.SpanKind.SERVER,
        )
        rec.traced(span.get_span_context().trace_id)
        peer: PeerStream | None = None
        pump: asyncio.Task[None] | None = None
        ended = False
        try:
            config, route, header = self._begin(call, rec, span)
            session = ClientSession.start(route.encryption_key) if route.encryption_key is not None else None
            if session is not None:
                header = _replace_encryption(
                    header, Encryption(session.ephemeral_public, session.recipient_key_id, b"")
                )
            env, request = seal_frame(header, b"", self._ctx.signer)
            rec.request_signed(request)
            target = route.targets[0]
            rec.peer(target.gateway)
            timeout = max(0.001, (header.deadline_ms - self._ctx.clock.now_ms()) / 1000)
            peer = self._link.open_stream(target, timeout)
            rec.forwarded()
            await peer.write(env)
            writer = ChainWriter(self._ctx.signer, _template(header), request.header_hash, 1)
            pump = asyncio.create_task(self._pump(peer, writer, requests, session, rec))
            pump.add_done_callback(functools.partial(_stop_if_caller_failed, peer=peer))
            reader = ChainReader(
                str(route.provider), self._ctx.key_lookup(config), call.message_id, request.header_hash, 1
            )
            async for env_in in peer.responses():
                rec.answered()
                frame = reader.accept(env_in)
                h = frame.header
                if h.kind == FrameKind.STREAM_DATA:
                    body = frame.body
                    if session is not None:
                        body = session.open_response(
                            h.encryption.nonce if h.encryption else b"",
                            body,
                            frame_aad(call.message_id, h.sequence, "response"),
                        )
                    rec.add_response(body)
                    yield body
                    continue
                if h.kind != FrameKind.RESPONSE or h.request_hash != request.header_hash:
                    raise StreamBroken(f"stream {call.message_id}: unexpected {h.kind.name} frame from the provider")
                rec.response_signed(frame)
                rec.check_bounds()
                if h.status is not None and not h.status.ok:
                    raise error_from_status(h.status)
                break
            else:
                raise StreamBroken(f"stream {call.message_id} ended without the provider's signed final status")
            # The provider's signed final status decides the exchange. A request frame it no
            # longer read (its backend answered before the caller finished sending) is moot,
            # unless the caller's own side failed first.
            caller_failure = _caller_failure(pump)
            if caller_failure is not None:
                raise caller_failure
            ended = True
        except CrosswayError as exc:
            # When the caller's side failed first (its stream broke, a message over the limit),
            # that is the exchange's error, not the provider's refusal of the half stream.
            failure = _caller_failure(pump) or exc
            failure.at(Hop.CLIENT)
            rec.failed(failure)
            span.set_status(trace.StatusCode.ERROR, failure.code)
            if failure is exc:
                raise
            raise failure from None
        except (asyncio.CancelledError, GeneratorExit):
            rec.cancelled()
            raise
        except Exception:
            rec.crashed()
            raise
        finally:
            if pump is not None:
                # Stopped if still running; its outcome (if any) was weighed above: collect it.
                pump.cancel()
                with contextlib.suppress(BaseException):
                    await pump
            if peer is not None:
                peer.cancel()
            span.end()
            # 9. durable before the caller's stream ends with its status.
            await self._audit(rec, answering=ended)

    async def _pump(
        self,
        peer: PeerStream,
        writer: ChainWriter,
        requests: AsyncIterator[bytes],
        session: ClientSession | None,
        rec: ExchangeRecorder,
    ) -> None:
        """Forward the caller's messages one by one, each signed and chained, then STREAM_END."""
        sequence = 1
        limit = self._ctx.limits.max_message_bytes
        try:
            async for body in _caller_messages(requests):
                _check_size(body, limit)
                await self._forward(peer, writer, body, sequence, session, rec)
                sequence += 1
        except _CALLER_SIDE:
            # No STREAM_END: the provider refuses the half stream (its backend never sees a
            # clean end of the caller's messages), and the exchange fails with the caller's error.
            await peer.done_writing()
            raise
        end, _ = writer.seal(Header(message_id=rec.message_id, kind=FrameKind.STREAM_END, signer=self._ctx.member), b"")
        await peer.write(end)
        await peer.done_writing()

    @staticmethod
    async def _forward(
        peer: PeerStream,
        writer: ChainWriter,
        body: bytes,
        sequence: int,
        session: ClientSession | None,
        rec: ExchangeRecorder,
    ) -> None:
        """One caller message: signed, chained (and encrypted) as the next request frame."""
        rec.add_request(body)
        wire = body
        encryption = None
        if session is not None:
            nonce, wire = session.seal_request(body, frame_aad(rec.message_id, sequence, "request"))
            encryption = Encryption(b"", b"", nonce)
        env, _ = writer.data(wire, encryption=encryption)
        await peer.write(env)


class _CallerFailed(StreamBroken):
    """The caller's request stream failed (not the provider's side): the exchange fails too."""


def _stop_if_caller_failed(pump: asyncio.Task[None], *, peer: PeerStream) -> None:
    # The caller's side broke mid-stream: the provider would wait for frames that never come.
    if not pump.cancelled() and isinstance(pump.exception(), _CallerFailed):
        peer.cancel()


# What the pump raises when the caller's side failed (see _caller_failure).
_CALLER_SIDE = (_CallerFailed, MessageTooLarge)


def _caller_failure(pump: asyncio.Task[None] | None) -> CrosswayError | None:
    """The caller-side error the pump stopped with, if it did."""
    if pump is None or not pump.done() or pump.cancelled():
        return None
    failure = pump.exception()
    return failure if isinstance(failure, _CALLER_SIDE) else None


def _check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise MessageTooLarge(
            f"a request message of {len(body)} bytes is over this gateway's limit of {limit} bytes per message"
        )


async def _caller_messages(requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for body in requests:
            yield body
    except (CrosswayError, grpc.aio.AioRpcError, grpc.RpcError) as exc:
        raise _CallerFailed(f"the caller's request stream failed: {type(exc).__name__}") from exc


def _template(header: Header) -> Header:
    return Header(message_id=header.message_id, kind=FrameKind.STREAM_DATA, signer=header.signer)


def _replace_encryption(header: Header, encryption: Encryption) -> Header:
    from dataclasses import replace

    return replace(header, encryption=encryption)
