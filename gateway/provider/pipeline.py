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

Failures up to and including the signature check are answered with a plain gRPC error (we do
not sign anything for a peer we could not authenticate). Every later failure is answered with a
*signed* response carrying the status, so the client can prove the provider refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

from opentelemetry import trace

from adapters.base import Adapter, BackendCall
from crossway.core.errors import (
    AuditUnavailable,
    CrosswayError,
    DeadlineExceeded,
    DecryptionFailed,
    Hop,
    MessageMalformed,
    MessageTooLarge,
    PeerError,
    PolicyDenied,
    RegistryError,
    ServiceUnknown,
    SignatureInvalid,
)
from crossway.core.ids import ServiceId, SubsystemId
from crossway.security.encryption import ProviderSession
from crossway.security.replay import ReplayGuard
from crossway.telemetry import traceparent_of
from gateway.provider.authorization import PolicyManager
from gateway.provider.endusers import EndUserVerifier
from gateway.provider.inbound import verified_request_bodies
from gateway.provider.minimization import ResponseMinimizer
from gateway.provider.peers import PeerIdentity, PeerVerifier
from gateway.provider.quotas import QuotaLimiter, Quotas
from gateway.provider.steps import _Authenticated, _note_failure, _start_span, _Verified, check_window, response_header
from gateway.shared.context import GatewayContext, status_from_error
from gateway.shared.metaservice import ALLOWED_METHODS, encode_allowed_methods
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.chain import ChainReader, ChainWriter
from gateway.wire.codec import open_envelope, seal_frame
from gateway.wire.frames import OK_STATUS, Encryption, Envelope, FrameKind, Header, SignedFrame, frame_aad
from gateway.wire.link import AuthContext
from policies import AccessRequest
from registry.configuration import VerifiedConfiguration

__all__ = ["ProviderPipeline"]

_tracer = trace.get_tracer("crossway.gateway.provider")
log = logging.getLogger(__name__)

# An encrypted body is its plaintext plus AES-GCM's 16-byte tag: a request at the limit stays
# acceptable once sealed.
_SEALING_ALLOWANCE = 1024


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
        self._replay = replay
        self._policies = policies
        self._adapters = dict(adapters)
        self._encryption_key = encryption_key
        self._peers = PeerVerifier()
        self._quotas: Quotas = quotas if quotas is not None else QuotaLimiter()
        self._minimizer = ResponseMinimizer()
        self._endusers = EndUserVerifier(ctx.clock)

    # -- steps 1–3 ---------------------------------------------------------------------------

    def _identify(self, auth_context: AuthContext, rec: ExchangeRecorder) -> tuple[VerifiedConfiguration, PeerIdentity]:
        """1. the peer gateway, from its TLS identity alone (before anything it sent is read)."""
        config = self._ctx.config()
        peer = self._peers.identify(auth_context, config, self._ctx.clock.now_ms())
        rec.peer(peer.gateway)
        return config, peer

    def _authenticate(
        self,
        env: Envelope,
        auth_context: AuthContext,
        rec: ExchangeRecorder,
        identified: tuple[VerifiedConfiguration, PeerIdentity] | None = None,
    ) -> _Authenticated:
        ctx = self._ctx
        # 1. the peer gateway
        config, peer = identified if identified is not None else self._identify(auth_context, rec)
        # 2a. the size, then the signature by the peer's member. gRPC bounds the whole envelope
        # (max_message_bytes plus a margin) before this code runs; a body over the bound itself
        # is refused here, before its digest is computed.
        limit = ctx.limits.max_message_bytes
        if len(env.body) > limit + _SEALING_ALLOWANCE:
            raise MessageTooLarge(
                f"the request body is {len(env.body)} bytes; this provider gateway accepts at most {limit} "
                "in one message"
            )
        request = open_envelope(env, peer.member, ctx.key_lookup(config))
        h = request.header
        rec.verified_request(request)
        # Every field the record takes from the peer is bounded (issue 12: no poison records).
        rec.check_bounds()
        if h.kind != FrameKind.REQUEST or not h.message_id:
            raise MessageMalformed(f"expected a REQUEST frame, got {h.kind.name}")
        client = SubsystemId.parse(h.client)
        if str(client.member) != peer.member:
            raise SignatureInvalid(f"client {h.client} is not a subsystem of the signing member {peer.member}")
        return _Authenticated(config, request, peer, client, ServiceId.parse(h.service))

    def _check_window(self, h: Header, peer: PeerIdentity, now: int) -> None:
        # 2b–2c, with this gateway's window, deadline bound and replay memory
        check_window(h, peer.member, now, self._ctx.max_skew_ms, self._ctx.limits.max_deadline_s, self._replay)

    def _admit(self, auth: _Authenticated, rec: ExchangeRecorder) -> _Verified:
        ctx = self._ctx
        config, request, peer, service = auth.config, auth.request, auth.peer, auth.service
        h = request.header
        now = ctx.clock.now_ms()
        self._check_window(h, peer, now)
        # Is this a service of ours?
        adapter = self._adapters.get(service)
        view = config.service(service)
        if adapter is None or view is None or h.method not in view.methods:
            raise ServiceUnknown(f"this gateway does not provide {h.service}/{h.method}")
        method = service.method(h.method)
        # Encryption is required by the service, never optional for the client.
        session = None
        if h.encryption is not None:
            if self._encryption_key is None:
                raise DecryptionFailed("this gateway has no encryption key configured")
            session = ProviderSession.accept(
                self._encryption_key,  # type: ignore[arg-type]
                h.encryption.ephemeral_public_key,
                h.encryption.recipient_key_id,
            )
        elif view.require_encryption:
            raise MessageMalformed(f"service {service} requires end-to-end encryption; the request was not encrypted")
        ctx.check_audit_writable()
        # 2d. the end user: a token is verified against the client member's keys before policy
        client = auth.client
        config.check_client_enabled(client)  # client.disabled / service.disabled (issue 17)
        config.check_service_enabled(service)
        user = self._endusers.end_user(config, client, service, h.user_id, h.user_token)
        rec.end_user(user.user_id)
        # 3. authorize, deny by default
        self._policies.refresh(config)
        decision = self._policies.decide(
            AccessRequest(
                client=client,
                client_groups=config.groups_of(client),
                method=method,
                purpose=h.purpose,
                user_id=user.user_id,
                user_claims=user.claims,
                now_ms=now,
            )
        )
        rec.decided(decision.allowed, decision.policy_ids, decision.policy_version)
        if not decision.allowed:
            raise PolicyDenied(f"{client} may not call {h.method} of {service}: {decision.reason}")
        # 3b. the permits' quotas (policy.rate_limited)
        self._quotas.take(h.client, f"{service}/{h.method}", decision.quotas, now)
        metadata = [
            ("crossway-client", h.client),
            ("crossway-message-id", h.message_id),
            ("crossway-user-id", user.user_id),
            ("crossway-purpose", h.purpose),
            # The provider span (current here) becomes the backend call's parent.
            ("traceparent", traceparent_of(trace.get_current_span())),
        ]
        timeout = (h.deadline_ms - ctx.clock.now_ms()) / 1000 if h.deadline_ms else ctx.default_timeout_s
        if timeout <= 0:
            raise DeadlineExceeded(f"no time left for message {h.message_id}")
        return _Verified(
            config,
            request,
            peer,
            service,
            method,
            adapter,
            session,
            BackendCall(method.grpc_path, timeout, metadata),
            decision.fields,
        )

    def _allowed_methods(self, auth: _Authenticated, rec: ExchangeRecorder) -> Envelope:
        """The reserved AllowedMethods exchange: steps 2b–3 for every method of one of our services.

        No backend is called and no quota is taken; the answer is signed like any response and
        audited with the policy version that decided.
        """
        ctx = self._ctx
        config, request, service, client = auth.config, auth.request, auth.service, auth.client
        h = request.header
        now = ctx.clock.now_ms()
        self._check_window(h, auth.peer, now)
        view = config.service(service)
        if service not in self._adapters or view is None:
            raise ServiceUnknown(f"this gateway does not provide {h.service}")
        ctx.check_audit_writable()
        user = self._endusers.end_user(config, client, service, h.user_id, h.user_token)
        rec.end_user(user.user_id)
        rec.add_request(request.body)
        self._policies.refresh(config)
        groups = config.groups_of(client)
        allowed, version = [], ""
        for name in sorted(view.methods):
            decision = self._policies.decide(
                AccessRequest(client, groups, service.method(name), h.purpose, user.user_id, user.claims, now)
            )
            version = decision.policy_version
            if decision.allowed:
                allowed.append(view.methods[name])
        rec.decided(True, (), version)
        body = encode_allowed_methods(service, allowed, version)
        rec.add_response(body)
        header = replace(self._response_header(request, FrameKind.RESPONSE), status=OK_STATUS)
        out, frame = seal_frame(header, body, ctx.signer)
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
            self._identify(auth_context, rec)
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
            auth = self._authenticate(env, auth_context, rec)
            request = auth.request
            span = _start_span(request, rec)
            with trace.use_span(span, end_on_exit=False):
                if request.header.method == ALLOWED_METHODS:
                    answer = self._allowed_methods(auth, rec)
                    return answer
                verified = self._admit(auth, rec)
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
            identified = self._identify(auth_context, rec)
            first = await anext(frames, None)
            if first is None:
                raise MessageMalformed("stream closed before its REQUEST frame")
            auth = self._authenticate(first, auth_context, rec, identified)
            request = auth.request
            span = _start_span(request, rec)
            with trace.use_span(span, end_on_exit=False):
                verified = self._admit(auth, rec)
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
