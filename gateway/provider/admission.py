"""Steps 1–3 of the provider side: which peer, which signed request, and whether it may pass.

``Admission`` identifies the peer gateway from its TLS identity (1), opens and checks the
signed request (2: size, signature, time window, deadline, replay, the end user's token) and
decides it (3: policy, quotas), leaving the backend call ready for the pipeline. The reserved
AllowedMethods exchange takes steps 2b–3 here for every method of a service.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace

from adapters.base import Adapter, BackendCall
from crossway.core.errors import (
    DeadlineExceeded,
    DecryptionFailed,
    MessageMalformed,
    MessageTooLarge,
    PolicyDenied,
    ServiceUnknown,
    SignatureInvalid,
)
from crossway.core.ids import ServiceId, SubsystemId
from crossway.security.encryption import ProviderSession
from crossway.security.replay import ReplayGuard
from crossway.telemetry import traceparent_of
from gateway.provider.authorization import PolicyManager
from gateway.provider.endusers import EndUserVerifier
from gateway.provider.peers import PeerIdentity, PeerVerifier
from gateway.provider.quotas import Quotas
from gateway.provider.steps import _Authenticated, _Verified, check_window
from gateway.shared.context import GatewayContext
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.codec import open_envelope
from gateway.wire.frames import Envelope, FrameKind, Header
from gateway.wire.link import AuthContext
from policies import AccessRequest
from registry.configuration import MethodShape, VerifiedConfiguration

__all__ = ["Admission"]

# An encrypted body is its plaintext plus AES-GCM's 16-byte tag: a request at the limit stays
# acceptable once sealed.
_SEALING_ALLOWANCE = 1024


class Admission:
    """Steps 1–3 for one provider gateway: its peers, replay memory, policies, quotas and backends."""

    def __init__(
        self,
        ctx: GatewayContext,
        replay: ReplayGuard,
        policies: PolicyManager,
        adapters: Mapping[ServiceId, Adapter],
        encryption_key: object | None,
        quotas: Quotas,
    ) -> None:
        self._ctx = ctx
        self._replay = replay
        self._policies = policies
        self._adapters = dict(adapters)
        self._encryption_key = encryption_key
        self._peers = PeerVerifier()
        self._quotas = quotas
        self._endusers = EndUserVerifier(ctx.clock)

    def identify(self, auth_context: AuthContext, rec: ExchangeRecorder) -> tuple[VerifiedConfiguration, PeerIdentity]:
        """1. the peer gateway, from its TLS identity alone (before anything it sent is read)."""
        config = self._ctx.config()
        peer = self._peers.identify(auth_context, config, self._ctx.clock.now_ms())
        rec.peer(peer.gateway)
        return config, peer

    def authenticate(
        self,
        env: Envelope,
        auth_context: AuthContext,
        rec: ExchangeRecorder,
        identified: tuple[VerifiedConfiguration, PeerIdentity] | None = None,
    ) -> _Authenticated:
        """Steps 1–2a: the peer (unless ``identified`` already), then the request's size and signature."""
        ctx = self._ctx
        # 1. the peer gateway
        config, peer = identified if identified is not None else self.identify(auth_context, rec)
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

    def admit(self, auth: _Authenticated, rec: ExchangeRecorder) -> _Verified:
        """Steps 2b–3: window and replay, the service, encryption, the end user, the decision and
        its quotas; what passes carries the backend call, ready to make."""
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

    def allowed_methods(self, auth: _Authenticated, rec: ExchangeRecorder) -> tuple[list[MethodShape], str]:
        """The reserved AllowedMethods exchange: steps 2b–3 for every method of one of our services,
        giving the methods the client may call and the policy version that decided.

        No backend is called and no quota is taken.
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
        allowed: list[MethodShape] = []
        version = ""
        for name in sorted(view.methods):
            decision = self._policies.decide(
                AccessRequest(client, groups, service.method(name), h.purpose, user.user_id, user.claims, now)
            )
            version = decision.policy_version
            if decision.allowed:
                allowed.append(view.methods[name])
        rec.decided(True, (), version)
        return allowed, version
