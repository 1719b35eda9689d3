"""The provider side of an exchange (gateway B): a peer gateway's request reaches a backend.

Steps, in order, each failing closed with its own error code:
1. the peer's TLS certificate chains to the registry CA, is not revoked, and belongs to a
   gateway of a member                                                     → peer.*
2. the signature verifies with that member's signing certificate; the client is of that
   member; issued-at within the allowed skew; deadline not passed; message id not seen
   before                                                                  → message.*
   and an end-user token verifies with the client member's registered keys → policy.user_token_invalid
3. authorize: the policy decision for (client, method, service, context)   → policy.*
   and the deciding permits' quotas                                      → policy.rate_limited
4. call the backend through the service's adapter, with the remaining deadline → upstream.*
5. remove the fields the permit does not grant (data minimization), then sign the response,
   bound to the request hash; encrypt when required
6. audit record for this side, with the decision and the deciding policy ids — durable
   *before* the signed response (a stream's signed final status) leaves (issue 12)

Steps 1–3 are ``gateway.provider.admission``'s; this module drives the exchange through them,
calls the backend and answers. Failures up to and including the signature check are answered
with a plain gRPC error (we do not sign anything for a peer we could not authenticate). Every
later failure is answered with a *signed* response carrying the status, so the client can prove
the provider refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

from opentelemetry import trace

from adapters.base import Adapter
from crossway.core.errors import (
    AuditUnavailable,
    CrosswayError,
    Hop,
    MessageMalformed,
    MessageTooLarge,
    PeerError,
    RegistryError,
    ServiceUnknown,
)
from crossway.core.ids import ServiceId
from crossway.security.replay import ReplayGuard
from gateway.provider.admission import Admission
from gateway.provider.authorization import PolicyManager
from gateway.provider.inbound import verified_request_bodies
from gateway.provider.minimization import ResponseMinimizer
from gateway.provider.quotas import QuotaLimiter, Quotas
from gateway.provider.steps import _Authenticated, _note_failure, _start_span, _Verified, response_header
from gateway.shared.context import GatewayContext, status_from_error
from gateway.shared.metaservice import ALLOWED_METHODS, encode_allowed_methods
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.chain import ChainReader, ChainWriter
from gateway.wire.codec import seal_frame
from gateway.wire.frames import OK_STATUS, Encryption, Envelope, FrameKind, Header, SignedFrame, frame_aad
from gateway.wire.link import AuthContext

__all__ = ["ProviderPipeline"]

_tracer = trace.get_tracer("crossway.gateway.provider")
log = logging.getLogger(__name__)


class ProviderPipeline:
    def __init__(
        self,
        ctx: GatewayContext,
        replay: ReplayGuard,
        policies: PolicyManager,
        adapters: Mapping[ServiceId, Adapter],
        encryption_key: object | None,
        *,
        quotas: Quotas | None = None,
    ) -> None:
        """``quotas``: where the permits' buckets live; in this process's memory unless given
        (a gateway with several worker processes passes a :class:`~gateway.provider.quotas.SharedQuotaLimiter`)."""
        self._ctx = ctx
        self._admission = Admission(
            ctx, replay, policies, adapters, encryption_key, quotas if quotas is not None else QuotaLimiter()
        )
        self._minimizer = ResponseMinimizer()

    # -- the answer: AllowedMethods, step 5a, step 6 ---------------------------------------------

    def _allowed_methods(self, auth: _Authenticated, rec: ExchangeRecorder) -> Envelope:
        """The reserved AllowedMethods exchange, decided by the admission: the answer is signed like
        any response and audited with the policy version that decided."""
        allowed, version = self._admission.allowed_methods(auth, rec)
        body = encode_allowed_methods(auth.service, allowed, version)
        rec.add_response(body)
        header = replace(self._response_header(auth.request, FrameKind.RESPONSE), status=OK_STATUS)
        out, frame = seal_frame(header, body, self._ctx.signer)
        rec.response_signed(frame)
        return out

    def _minimize(self, verified: _Verified, body: bytes, rec: ExchangeRecorder) -> bytes:
        """5a. remove the fields the permit does not grant, before signing (data minimization)."""
        if verified.fields is None:
            return body
        view = verified.config.service(verified.service)
        if view is None:
            raise ServiceUnknown(f"{verified.service} left the configuration during the call")
        body, withheld = self._minimizer.minimize(view, verified.method.name, body, verified.fields)
        rec.withheld(tuple(withheld))
        return body

    async def _finish(self, rec: ExchangeRecorder, span: trace.Span | None, *, answering: bool) -> None:
        """Step 6, whatever happened: close the span, and make this side's record durable.

        ``answering``: a response is about to leave, and must not when the record is not
        durable (``audit.unavailable`` instead). Otherwise an error is already on its way
        out; a record that is late then is logged, and the error goes out as it is.
        """
        if span is not None:
            span.end()
        try:
            await self._ctx.audit_exchange(rec)
        except AuditUnavailable as exc:
            if answering:
                raise
            log.error("exchange %s: %s", rec.message_id or "-", exc.message)

    def _response_header(self, request: SignedFrame, kind: FrameKind) -> Header:
        return response_header(request, kind, self._ctx.clock.now_ms(), self._ctx.member)

    # -- what never became an exchange ---------------------------------------------------------

    async def refuse(self, error: CrosswayError, auth_context: AuthContext) -> CrosswayError:
        """Bytes that are not an envelope (or a Multiplex batch) reached the peer port: the error
        to answer with, audited once the peer is identified.

        Step 1 still comes first: a peer that is not a registered gateway is answered with its
        ``peer.*`` error and leaves no record (anyone holding a CA-issued certificate could
        otherwise fill the audit log); an identified peer's garbage is recorded as refused.
        """
        rec = self._ctx.recorder("provider")
        rec.received()
        try:
            self._admission.identify(auth_context, rec)
        except (PeerError, RegistryError) as exc:
            return exc.at(Hop.PROVIDER)
        error.at(Hop.PROVIDER)
        rec.failed(error)
        await self._finish(rec, None, answering=False)  # durable before the refusal leaves
        return error

    # -- unary -------------------------------------------------------------------------------

    async def call(self, env: Envelope, auth_context: AuthContext) -> Envelope:
        rec = self._ctx.recorder("provider")
        rec.received()
        request: SignedFrame | None = None
        span: trace.Span | None = None
        answer: Envelope | None = None
        try:
            auth = self._admission.authenticate(env, auth_context, rec)
            request = auth.request
            span = _start_span(request, rec)
            with trace.use_span(span, end_on_exit=False):
                if request.header.method == ALLOWED_METHODS:
                    answer = self._allowed_methods(auth, rec)
                    return answer
                verified = self._admission.admit(auth, rec)
                body = request.body
                if verified.session is not None:
                    enc = request.header.encryption
                    assert enc is not None
                    body = verified.session.open_request(enc.nonce, body, frame_aad(rec.message_id, 0, "request"))
                rec.add_request(body)
                rec.forwarded()
                # 4. the backend
                result = await verified.adapter.unary(verified.call, body)
                rec.answered()
                if len(result) > self._ctx.limits.max_message_bytes:
                    raise MessageTooLarge(
                        f"the backend answered message {rec.message_id} with {len(result)} bytes; this provider "
                        f"gateway sends at most {self._ctx.limits.max_message_bytes} in one message",
                        hint="serve large answers through a streaming method",
                    )
                result = self._minimize(verified, result, rec)
                rec.add_response(result)
                # 5. sign (and encrypt) the response, bound to the request
                header = replace(
                    self._response_header(request, FrameKind.RESPONSE),
                    status=OK_STATUS,
                    withheld_fields=rec.withheld_fields,
                )
                if verified.session is not None:
                    nonce, result = verified.session.seal_response(result, frame_aad(rec.message_id, 0, "response"))
                    header = replace(header, encryption=Encryption(b"", b"", nonce))
                answer, frame = seal_frame(header, result, self._ctx.signer)
                rec.response_signed(frame)
                return answer
        except CrosswayError as exc:
            if not _note_failure(exc, rec, span, request) or request is None:
                raise  # unauthenticated peer: plain gRPC error from the transport
            answer, frame = seal_frame(
                replace(self._response_header(request, FrameKind.RESPONSE), status=status_from_error(exc)),
                b"",
                self._ctx.signer,
            )
            rec.response_signed(frame)
            return answer
        except asyncio.CancelledError:
            rec.cancelled()
            raise
        except Exception:
            rec.crashed()  # the transport answers INTERNAL; so does the record
            raise
        finally:
            # 6. durable before the signed answer is returned (an exception leaves as it is).
            await self._finish(rec, span, answering=answer is not None)

    # -- streaming ---------------------------------------------------------------------------

    async def stream(self, frames: AsyncIterator[Envelope], auth_context: AuthContext) -> AsyncIterator[Envelope]:
        rec = self._ctx.recorder("provider")
        rec.received()
        request: SignedFrame | None = None
        writer: ChainWriter | None = None
        span: trace.Span | None = None
        broken: list[CrosswayError] = []
        final: Envelope | None = None
        try:
            # The peer is identified from its TLS identity before its first frame is read, so
            # even a first frame that does not decode is recorded against the peer that sent it.
            identified = self._admission.identify(auth_context, rec)
            first = await anext(frames, None)
            if first is None:
                raise MessageMalformed("stream closed before its REQUEST frame")
            auth = self._admission.authenticate(first, auth_context, rec, identified)
            request = auth.request
            span = _start_span(request, rec)
            with trace.use_span(span, end_on_exit=False):
                verified = self._admission.admit(auth, rec)
            writer = ChainWriter(
                self._ctx.signer,
                Header(message_id=rec.message_id, kind=FrameKind.STREAM_DATA, signer=self._ctx.member),
                request.header_hash,
                1,
            )
            reader = ChainReader(
                auth.peer.member, self._ctx.key_lookup(auth.config), rec.message_id, request.header_hash, 1
            )
            rec.forwarded()
            requests = verified_request_bodies(frames, reader, verified.session, rec, broken)
            try:
                async for message in verified.adapter.stream(verified.call, requests):
                    rec.answered()
                    message = self._minimize(verified, message, rec)
                    rec.add_response(message)
                    encryption = None
                    if verified.session is not None:
                        seq = writer._next  # the frame's own sequence number binds its ciphertext
                        nonce, message = verified.session.seal_response(
                            message, frame_aad(rec.message_id, seq, "response")
                        )
                        encryption = Encryption(b"", b"", nonce)
                    env, _ = writer.data(message, encryption=encryption)
                    yield env
            except CrosswayError:
                if broken:
                    raise broken[0] from None
                raise
            if broken:
                raise broken[0]
            final, frame = writer.seal(
                replace(
                    self._response_header(request, FrameKind.RESPONSE),
                    status=OK_STATUS,
                    withheld_fields=rec.withheld_fields,
                ),
                b"",
            )
            rec.response_signed(frame)
        except CrosswayError as exc:
            if not _note_failure(exc, rec, span, request) or request is None:
                raise
            header = replace(self._response_header(request, FrameKind.RESPONSE), status=status_from_error(exc))
            if writer is None:
                writer = ChainWriter(self._ctx.signer, header, request.header_hash, 1)
            final, frame = writer.seal(header, b"")
            rec.response_signed(frame)
        except (asyncio.CancelledError, GeneratorExit):
            rec.cancelled()  # before its final status: after it, nothing here runs any more
            raise
        except Exception:
            rec.crashed()
            raise
        finally:
            if final is None:  # leaving by an exception: audit it on the way out
                await self._finish(rec, span, answering=False)
        # 6. The record is decided and durable before the signed final status leaves: what the
        # client is told is what this side recorded, whatever happens to the stream afterwards
        # (a client that cancels once it has its answer no longer turns the record CANCELLED).
        await self._finish(rec, span, answering=True)
        yield final
