"""The gateway's ``grpc.health.v1.Health`` service (Check, Watch and List) and the task that feeds it.

Check and Watch are the reference implementation from ``grpcio-health-checking`` (pinned to the
grpcio release): Watch pushes each change to every open stream, as the protocol asks
(https://github.com/grpc/grpc/blob/master/doc/health-checking.md). That servicer leaves List
unimplemented; List here is a snapshot of what this owner last published.

Nothing pushes health to us, and expiry is a matter of time, so a task re-assesses every
``interval_s`` (a new registry configuration wakes it at once) and publishes only the entries
that changed. Transitions are logged with their reason; probers only ever see the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # documented; not re-exported

from adapters import Adapter, HealthStatus
from audit.trail import AuditSink
from gateway.health.status import Verdict, assess
from gateway.provider.authorization import PolicyManager
from registry.source import ConfigurationSource

__all__ = ["GatewayHealth"]

log = logging.getLogger(__name__)

# Wire edge: our statuses are grpc.health.v1's by name (adapters.base.HealthStatus).
_WIRE: dict[HealthStatus, health_pb2.HealthCheckResponse.ServingStatus] = {
    HealthStatus.UNKNOWN: health_pb2.HealthCheckResponse.UNKNOWN,
    HealthStatus.SERVING: health_pb2.HealthCheckResponse.SERVING,
    HealthStatus.NOT_SERVING: health_pb2.HealthCheckResponse.NOT_SERVING,
}


class _Servicer(health_aio.HealthServicer):  # type: ignore[misc]
    """The reference servicer plus List, answered from the owner's snapshot."""

    def __init__(self, snapshot: Callable[[], Mapping[str, HealthStatus]]) -> None:
        super().__init__()
        self._snapshot = snapshot

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=_WIRE[s]) for name, s in self._snapshot().items()}
        )


class GatewayHealth:
    """Owns the health servicer and its assessment task; ``add_to()`` serves it on a port."""

    def __init__(
        self,
        gateway_id: str,
        configuration: ConfigurationSource,
        audit: AuditSink,
        policies: PolicyManager | None,
        adapters: Mapping[Any, Adapter],
        *,
        interval_s: float = 0.5,
        audit_alarm: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._gateway = gateway_id
        self._configuration = configuration
        self._audit = audit
        self._policies = policies  # None: this gateway provides no service, so needs no bundle
        self._adapters = adapters
        self._audit_alarm = audit_alarm
        self._interval_s = interval_s
        self._published: dict[str, Verdict] = {}
        self._servicer = _Servicer(lambda: {name: v.status for name, v in self._published.items()})
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing = False

    def add_to(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)  # type: ignore[no-untyped-call]

    def statuses(self) -> dict[str, HealthStatus]:
        """What a prober sees now (the last published snapshot)."""
        return {name: v.status for name, v in self._published.items()}

    def verdicts(self) -> dict[str, Verdict]:
        """The last published snapshot with its reasons (for the authenticated admin status)."""
        return dict(self._published)

    def _assess(self) -> dict[str, Verdict]:
        return assess(
            current_configuration=self._configuration.current,
            audit_writable=self._audit.writable,
            # The log's own alarm (a stream that went back, a record not ours) comes first.
            audit_alarm=self._audit_alarm() or self._audit.alarm,
            # PolicyManager.version is -1 until a bundle is in force.
            policy_loaded=None if self._policies is None else self._policies.version >= 0,
            adapters={str(service): adapter.health() for service, adapter in self._adapters.items()},
        )

    async def _publish(self) -> None:
        for name, verdict in self._assess().items():
            before = self._published.get(name)
            if before is not None and before.status is verdict.status:
                self._published[name] = verdict  # a new reason alone is not a change
                continue
            self._published[name] = verdict
            await self._servicer.set(name, _WIRE[verdict.status])
            if before is not None:  # transitions only: a flapping backend must not flood the log
                level = logging.INFO if verdict.serving else logging.WARNING
                log.log(
                    level,
                    "health of %s %s: %s%s",
                    self._gateway,
                    name or "(gateway)",
                    verdict.status.value,
                    f" ({verdict.reason})" if verdict.reason else "",
                )

    async def start(self) -> None:
        # The reference servicer starts with "" = SERVING; publish the truth before any port opens.
        await self._publish()
        overall = self._published[""]
        log.info("health of %s at start: %s %s", self._gateway, overall.status.value, overall.reason)
        self._unsubscribe = self._configuration.subscribe(lambda _config: self._wake.set())
        self._task = asyncio.create_task(self._run(), name=f"health-{self._gateway}")

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            try:
                await self._publish()
            except Exception:  # a bug here must not freeze the last (maybe SERVING) answer silently
                log.exception("health assessment of %s failed", self._gateway)

    async def aclose(self) -> None:
        """Shutdown begins: every entry NOT_SERVING (pushed to watchers) so balancers drain us first."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for name in self._published:
            self._published[name] = Verdict(HealthStatus.NOT_SERVING, "gateway shutting down")
        await self._servicer.enter_graceful_shutdown()
