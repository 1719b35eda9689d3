"""The provider pipeline's values between steps (what passed steps 1–2a, what passed 1–3) and its span and failure helpers."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace

from adapters.base import Adapter, BackendCall
from crossway.core.errors import (
    CrosswayError,
    DeadlineTooFar,
    Hop,
    MessageExpired,
    MessageReplayed,
    SignatureInvalid,
)
from crossway.core.ids import MethodId, ServiceId, SubsystemId
from crossway.security.encryption import ProviderSession
from crossway.security.replay import ReplayGuard
from crossway.telemetry import extract_context
from gateway.provider.peers import PeerIdentity
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.frames import FrameKind, Header, SignedFrame
from registry.configuration import VerifiedConfiguration

_tracer = trace.get_tracer("crossway.gateway.provider")


def _note_failure(
    exc: CrosswayError, rec: ExchangeRecorder, span: trace.Span | None, request: SignedFrame | None
) -> bool:
    """Record a refusal on the exchange and its span; True when it can be answered with a signed
    response (the request was authenticated), False when only a plain gRPC error may go back."""
    exc.at(Hop.PROVIDER)
    rec.failed(exc)
    if span is not None:
        span.set_status(trace.StatusCode.ERROR, exc.code)
    return request is not None and not isinstance(exc, SignatureInvalid)


def _start_span(request: SignedFrame, rec: ExchangeRecorder) -> trace.Span:
    """The provider span, child of the client gateway's span named in the signed header."""
    h = request.header
    span = _tracer.start_span(
        f"crossway.provider /{h.service.rsplit('/', 1)[-1]}/{h.method}",
        context=extract_context([("traceparent", h.traceparent)]),
        kind=trace.SpanKind.SERVER,
    )
    rec.traced(span.get_span_context().trace_id)
    return span


@dataclass(frozen=True, slots=True)
class _Authenticated:
    """A request that passed steps 1–2a: its peer and signature, its ids parsed once, and the
    configuration snapshot every later step of this exchange uses."""

    config: VerifiedConfiguration
    request: SignedFrame
    peer: PeerIdentity
    client: SubsystemId
    service: ServiceId


@dataclass(slots=True)
class _Verified:
    """A request that passed steps 1–3."""

    config: VerifiedConfiguration
    request: SignedFrame
    peer: PeerIdentity
    service: ServiceId
    method: MethodId
    adapter: Adapter
    session: ProviderSession | None
    call: BackendCall
    fields: frozenset[str] | None = None  # data minimization: None = every field


def check_window(
    h: Header, member: str, now: int, max_skew_ms: int, max_deadline_s: float, replay: ReplayGuard
) -> None:
    """Steps 2b–2c: the time window, the deadline and its bound, and replay."""
    # 2b. time window and deadline
    if abs(now - h.issued_at_ms) > max_skew_ms:
        raise MessageExpired(
            f"message {h.message_id} was issued {(now - h.issued_at_ms) / 1000:.0f} s from now; "
            f"the window is ±{max_skew_ms // 1000} s"
        )
    if h.deadline_ms and h.deadline_ms <= now:
        raise MessageExpired(f"the deadline of message {h.message_id} has passed")
    # 2b'. a deadline far ahead would hold this gateway's and the backend's resources for as
    # long: the time asked for (deadline - issued-at, both in the client's clock) is bounded.
    max_deadline_ms = int(max_deadline_s * 1000)
    if h.deadline_ms and h.deadline_ms - h.issued_at_ms > max_deadline_ms:
        raise DeadlineTooFar(
            f"message {h.message_id} asks for {(h.deadline_ms - h.issued_at_ms) / 1000:.0f} s; "
            f"this provider gateway allows at most {max_deadline_ms // 1000} s"
        )
    # 2c. replay: ids are namespaced by the signing member, remembered for the whole window
    if replay.seen_before(f"{member}|{h.message_id}", h.issued_at_ms + max_skew_ms, now):
        raise MessageReplayed(f"message id {h.message_id} from {member} was already seen")


def response_header(request: SignedFrame, kind: FrameKind, now_ms: int, member: str) -> Header:
    """The header of a response (or final status) bound to ``request`` by its hash."""
    h = request.header
    return Header(
        message_id=h.message_id,
        kind=kind,
        client=h.client,
        service=h.service,
        method=h.method,
        issued_at_ms=now_ms,
        request_hash=request.header_hash,
        signer=member,
    )
