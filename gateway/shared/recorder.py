"""One side of one exchange, turned into its audit record in one place.

The pipelines' steps return values — the authenticated caller, the route, the verified request,
the policy decision, the signed frames, the error — and hand each to the recorder as it comes;
the recorder alone decides which record field each value fills and when the four timestamps are
taken. Bodies are counted and hashed as they pass (streams are never buffered for the record).

Every text that comes from outside this gateway — the caller's metadata, a peer's signed header,
the provider's signed list of withheld fields, an end user's token subject — is bounded here
(``audit.trail.record.FIELD_LIMITS``): an over-long value is kept as a short prefix plus its
length and SHA-256, and named in :attr:`ExchangeRecorder.oversized`; the pipelines then refuse
the exchange with ``message.malformed`` (:meth:`ExchangeRecorder.check_bounds`). So a record
never grows past what the audit stream accepts (issue 12: one 2 MiB purpose used to stop a
gateway's whole trail).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import grpc

from audit.trail.record import FIELD_LIMITS, MAX_WITHHELD, MAX_WITHHELD_CHARS, AuditRecord
from crossway.core.clock import Clock
from crossway.core.errors import CrosswayError, InternalError, MessageMalformed
from crossway.logs import bind_exchange
from gateway.wire.frames import SignedFrame

__all__ = ["ExchangeRecorder"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if data else ""


def _digest_note(text: str, count: int) -> str:
    return f"[{count} chars, sha256 {hashlib.sha256(text.encode(errors='replace')).hexdigest()}]"


def _clip(text: str, limit: int) -> str:
    """An over-long value as its first 64 characters, its length and its digest (the signed
    original can still be matched to the record)."""
    return text[:64] + "…" + _digest_note(text, len(text)) if len(text) > limit else text


@dataclass(slots=True)
class ExchangeRecorder:
    """What this side of the exchange did so far; :meth:`record` freezes it."""

    side: str  # "client" | "provider"
    clock: Clock
    message_id: str = ""
    client: str = ""
    service: str = ""
    method: str = ""
    user_id: str = ""
    purpose: str = ""
    request_in_ms: int = 0
    request_out_ms: int = 0
    response_in_ms: int = 0
    response_out_ms: int = 0
    request_size: int = 0
    response_size: int = 0
    request_digest: Any = field(default_factory=hashlib.sha256)
    response_digest: Any = field(default_factory=hashlib.sha256)
    status: str = "OK"
    error_code: str = ""
    decision: str = ""
    policy_ids: tuple[str, ...] = ()
    policy_version: str = ""
    withheld_fields: tuple[str, ...] = ()
    peer_gateway: str = ""
    trace_id: str = ""
    request_signature: bytes = b""
    response_signature: bytes = b""
    # (request parts, response parts) when payload archiving is on, else None: archiving off
    # costs one attribute test per body. The parts are references, sealed at audit time.
    bodies: tuple[list[bytes], list[bytes]] | None = None
    # Names of the fields whose value from outside exceeded its limit (kept clipped).
    oversized: list[str] = field(default_factory=list)

    def _bounded(self, name: str, value: str) -> str:
        if len(value) <= FIELD_LIMITS[name]:
            return value
        self.oversized.append(name)
        return _clip(value, FIELD_LIMITS[name])

    def check_bounds(self) -> None:
        """Refuse the exchange when a value from outside was over its limit (``message.malformed``)."""
        if self.oversized:
            names = ", ".join(sorted(set(self.oversized)))
            limits = ", ".join(f"{n} {FIELD_LIMITS.get(n, MAX_WITHHELD)}" for n in sorted(set(self.oversized)))
            raise MessageMalformed(
                f"message {self.message_id or '-'}: {names} exceed(s) the limit ({limits})",
                hint="purpose, user and ids are short texts; withheld fields at most "
                f"{MAX_WITHHELD} paths of {MAX_WITHHELD_CHARS} characters",
            )

    # -- both sides --------------------------------------------------------------------------

    def received(self, message_id: str = "", user_id: str = "", purpose: str = "") -> None:
        """The request arrived (the caller's call, or the peer's first frame)."""
        self.request_in_ms = self.clock.now_ms()
        self.message_id = self._bounded("message_id", message_id)
        self.user_id = self._bounded("user_id", user_id)
        self.purpose = self._bounded("purpose", purpose)
        bind_exchange(message_id=self.message_id)  # the task's log lines carry it from here on

    def traced(self, trace_id: int) -> None:
        self.trace_id = format(trace_id, "032x")
        bind_exchange(trace_id=self.trace_id)

    def add_request(self, body: bytes) -> None:
        self.request_size += len(body)
        self.request_digest.update(body)
        if self.bodies is not None:
            self.bodies[0].append(body)

    def add_response(self, body: bytes) -> None:
        self.response_size += len(body)
        self.response_digest.update(body)
        if self.bodies is not None:
            self.bodies[1].append(body)

    def forwarded(self) -> None:
        """The request left this gateway (to the provider gateway, or to the backend)."""
        self.request_out_ms = self.clock.now_ms()

    def answered(self) -> None:
        """The first answer came back (from the provider gateway, or from the backend)."""
        if not self.response_in_ms:
            self.response_in_ms = self.clock.now_ms()

    def failed(self, error: CrosswayError) -> None:
        self.status, self.error_code = error.status.name, error.code

    def crashed(self) -> None:
        """An unexpected exception: the transport answers INTERNAL, and so does the record."""
        self.failed(InternalError("unexpected error"))

    def cancelled(self) -> None:
        self.status, self.error_code = grpc.StatusCode.CANCELLED.name, "client.cancelled"

    def request_signed(self, frame: SignedFrame) -> None:
        """The request as signed: by this gateway (client side) or verified from the peer."""
        self.request_signature = frame.signature.value

    def response_signed(self, frame: SignedFrame) -> None:
        """The final response as signed: by the provider (verified) or by this gateway."""
        self.response_signature = frame.signature.value
        if frame.header.withheld_fields:
            self.withheld(frame.header.withheld_fields)

    def withheld(self, fields: tuple[str, ...]) -> None:
        merged = set(self.withheld_fields) | set(fields)
        if len(merged) > MAX_WITHHELD or any(len(f) > MAX_WITHHELD_CHARS for f in merged):
            # Bounded like any text from outside: a few paths, then a note of how many and their digest.
            self.oversized.append("withheld_fields")
            listed = sorted(merged)
            note = _digest_note("\n".join(listed), sum(map(len, listed)))
            merged = {_clip(f, MAX_WITHHELD_CHARS) for f in listed[:16]} | {f"…{len(listed)} paths {note}"}
        self.withheld_fields = tuple(sorted(merged))

    # -- client side -------------------------------------------------------------------------

    def caller(self, subsystem: object) -> None:
        self.client = str(subsystem)

    def routed(self, service: object, method: str) -> None:
        self.service, self.method = str(service), method

    def peer(self, gateway: str) -> None:
        """The provider's gateway this exchange goes to (or came from, on the provider side)."""
        self.peer_gateway = gateway

    # -- provider side -----------------------------------------------------------------------

    def verified_request(self, frame: SignedFrame) -> None:
        """The peer's request passed its signature check: its signed ids are what is recorded."""
        h = frame.header
        self.message_id = self._bounded("message_id", h.message_id)
        self.client = self._bounded("client", h.client)
        self.service = self._bounded("service", h.service)
        self.method = self._bounded("method", h.method)
        self.user_id = self._bounded("user_id", h.user_id)
        self.purpose = self._bounded("purpose", h.purpose)
        self.request_signature = frame.signature.value
        bind_exchange(message_id=h.message_id)

    def end_user(self, user_id: str) -> None:
        self.user_id = self._bounded("user_id", user_id)

    def decided(self, allowed: bool, policy_ids: tuple[str, ...], policy_version: str) -> None:
        self.decision = "allow" if allowed else "deny"
        self.policy_ids, self.policy_version = policy_ids, policy_version

    # -- the record --------------------------------------------------------------------------

    def record(self, gateway: str) -> AuditRecord:
        """The audit record of this side; the response left now."""
        self.response_out_ms = self.clock.now_ms()
        return AuditRecord(
            record_id=os.urandom(16).hex(),
            gateway=gateway,
            side=self.side,
            message_id=self.message_id,
            client=self.client,
            service=self.service,
            method=self.method,
            user_id=self.user_id,
            purpose=self.purpose,
            request_in_ms=self.request_in_ms,
            request_out_ms=self.request_out_ms,
            response_in_ms=self.response_in_ms,
            response_out_ms=self.response_out_ms,
            request_size=self.request_size,
            response_size=self.response_size,
            request_sha256=self.request_digest.hexdigest(),
            response_sha256=self.response_digest.hexdigest(),
            status=self.status,
            error_code=self.error_code,
            decision=self.decision,
            policy_ids=self.policy_ids,
            withheld_fields=self.withheld_fields,
            peer_gateway=self.peer_gateway,
            trace_id=self.trace_id,
            request_signature=_b64(self.request_signature),
            response_signature=_b64(self.response_signature),
            policy_version=self.policy_version,
        )
