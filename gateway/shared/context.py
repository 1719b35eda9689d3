"""What both pipelines share: identity, signer, configuration, clock, audit sink, limits.

:meth:`GatewayContext.audit_exchange` is the pipelines' last step on every path, and by default
it waits until the record is durable (JetStream ack or fsync'd spool) — the pipelines call it
*before* the answer leaves: the client side before returning the response (or ending the
caller's stream), the provider side before its signed response (or final frame) goes out
(issue 12: no answer without its record). ``[audit] unsafe_release_before_durable = true`` only
enqueues it, for operators who accept losing the records of a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from audit.trail.archiver import PayloadArchiver
from audit.trail.sink import AuditSink
from crossway.core.clock import Clock
from crossway.core.errors import AuditUnavailable, CrosswayError, Hop, error_class_for_code
from crossway.core.ids import GatewayId, MemberId
from crossway.security.signing import Signer
from gateway.shared.config import Limits
from gateway.shared.metrics import NO_METRICS, ExchangeMetrics
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.frames import ExchangeStatus
from registry.configuration import VerifiedConfiguration
from registry.source import ConfigurationSource

__all__ = ["GatewayContext", "error_from_status", "status_from_error"]

_STATUS_BY_VALUE = {s.value[0]: s for s in grpc.StatusCode}


def status_from_error(error: CrosswayError) -> ExchangeStatus:
    return ExchangeStatus(error.status.value[0], error.code, error.message, error.hint)


def error_from_status(status: ExchangeStatus) -> CrosswayError:
    """Rebuild the provider's (or its backend's) error from a signed response status."""
    hop = Hop.BACKEND if status.error_code.startswith("upstream.") else Hop.PROVIDER
    cls = error_class_for_code(status.error_code)
    grpc_status = _STATUS_BY_VALUE.get(status.grpc_code, grpc.StatusCode.UNKNOWN)
    return cls(status.message, hint=status.hint or None, hop=hop, status=grpc_status)


@dataclass(slots=True)
class GatewayContext:
    gateway_id: GatewayId
    signer: Signer
    configuration: ConfigurationSource
    clock: Clock
    audit: AuditSink
    strict_audit: bool = False
    max_skew_ms: int = 60_000
    default_timeout_s: float = 30.0
    # Set when [audit] archive_payloads is on: bodies sealed to the auditors' keys (issue 4).
    archive: PayloadArchiver | None = None
    # [audit] unsafe_release_before_durable: answers leave before their record is durable.
    unsafe_release_before_durable: bool = False
    # How long an answer waits for its record at most; then the caller gets audit.unavailable.
    durable_timeout_s: float = 30.0
    # [limits]: message size, deadline and metadata bounds (issue 13).
    limits: Limits = field(default_factory=Limits)
    _key_cache: dict[tuple[int, str, str], Any] = field(default_factory=dict)

    # Exchanges counted for /metrics and OTLP, from each side's record (issue 17); off by default.
    metrics: ExchangeMetrics = NO_METRICS

    @property
    def member(self) -> str:
        return str(self.gateway_id.member)

    def config(self) -> VerifiedConfiguration:
        """The current verified configuration; raises ``registry.stale`` when there is none."""
        config = self.configuration.current()
        config.check_fresh(self.clock.now_ms())
        return config

    def key_lookup(self, config: VerifiedConfiguration) -> Any:
        """A (member, key id) → public key function bound to one configuration."""

        def lookup(member: str, key_id: str) -> Any:
            cache_key = (config.serial, member, key_id)
            key = self._key_cache.get(cache_key)
            if key is None:
                key = config.signing_key(MemberId.parse(member), key_id)
                if key is not None:
                    if len(self._key_cache) > 4096:
                        self._key_cache.clear()
                    self._key_cache[cache_key] = key
            return key

        return lookup

    def check_audit_writable(self) -> None:
        if self.strict_audit and not self.audit.writable:
            raise AuditUnavailable("the audit trail cannot be written, and this gateway runs in strict mode")

    def recorder(self, side: str) -> ExchangeRecorder:
        """A fresh recorder for one side of one exchange; it keeps the bodies only when payload
        archiving is on."""
        bodies: tuple[list[bytes], list[bytes]] | None = None if self.archive is None else ([], [])
        return ExchangeRecorder(side, self.clock, bodies=bodies)

    async def audit_exchange(self, exchange: ExchangeRecorder) -> None:
        """This side's record, durable before return unless the operator opted out.

        Raises ``AuditUnavailable`` when the record could not be made durable in time; the
        record stays queued (it is delivered when NATS or the disk come back).
        """
        record = exchange.record(str(self.gateway_id))
        self.metrics.exchange(record)  # every side of every exchange passes here: counted once
        if self.archive is not None and exchange.bodies is not None:
            self.archive.submit(record, *exchange.bodies)
        if self.unsafe_release_before_durable:
            self.audit.submit(record)
        else:
            await self.audit.commit(record, self.durable_timeout_s)
