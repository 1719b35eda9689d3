"""What an operator watches a gateway with: Prometheus ``/metrics``, OTLP export, vital signs.

One object per gateway process, owned by the runtime (``start()``/``aclose()``):

1. **Prometheus** (``[metrics] listen``, off by default). Every process of the gateway writes its
   values into ``data_dir/metrics`` (prometheus_client's multiprocess mode, ``crossway.metrics``);
   the primary empties that directory at start — before any worker exists — and serves
   ``/metrics``, which sums every process. A worker only writes.
2. **OpenTelemetry** (the standard ``OTEL_*`` variables, ``crossway.telemetry``): spans to the
   JSON-lines file of ``[tracing] export`` and/or an OTLP collector; metrics to OTLP. Each
   process exports its own; the collector adds them up.
3. **Vital signs**, sampled every ``sample_interval_s`` by each process into the gauges: audit
   backlog (pending, spooled, quarantined), checkpoint lag (primary), configuration serial and
   seconds to expiry, certificate expiry, NATS, the policy version in force.

Exchanges themselves are counted by :meth:`GatewayContext.audit_exchange` through
:attr:`exchange_metrics` (``gateway.shared.metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossway.core.clock import Clock
from crossway.core.errors import CrosswayError
from crossway.metrics import MetricsServer, use_multiprocess_dir
from crossway.security.keys import load_certificate
from crossway.telemetry import (
    otlp_signals,
    setup_otlp_metrics,
    setup_tracing,
    shutdown_otlp_metrics,
    shutdown_tracing,
)
from gateway.shared.config import GatewayConfig
from gateway.shared.metrics import (
    NO_METRICS,
    ExchangeMetrics,
    MetricsFanout,
    OtelMetrics,
    PrometheusMetrics,
    Vitals,
)
from registry.configuration import VerifiedConfiguration
from registry.source import ConfigurationSource

__all__ = ["GatewayObservability", "VitalSources"]

log = logging.getLogger(__name__)


class VitalSources:
    """Where the vital signs are read from: the runtime's components, each optional."""

    def __init__(
        self,
        *,
        audit_stats: Callable[[], Any],
        nats_connected: Callable[[], bool],
        configuration: ConfigurationSource,
        checkpoint_lag: Callable[[], int] | None = None,
        policy_version: Callable[[], int] | None = None,
        certificates: dict[str, Path] | None = None,
    ) -> None:
        self.audit_stats = audit_stats
        self.nats_connected = nats_connected
        self.configuration = configuration
        self.checkpoint_lag = checkpoint_lag
        self.policy_version = policy_version
        self.certificates = dict(certificates or {})


class GatewayObservability:
    def __init__(self, config: GatewayConfig, clock: Clock, *, worker: int = 0, sample_interval_s: float = 2.0) -> None:
        self._config = config
        self._clock = clock
        self._worker = worker  # 0: the primary
        self._interval = sample_interval_s
        self._server: MetricsServer | None = None
        self._sinks: list[PrometheusMetrics | OtelMetrics] = []
        self._fanout: MetricsFanout | None = None
        self._tracing = False
        self._otlp_metrics = False
        self._task: asyncio.Task[None] | None = None
        self._sources: VitalSources | None = None
        self._cert_expiry_ms: dict[str, int] = {}
        self._last_config: VerifiedConfiguration | None = None

    @property
    def exchange_metrics(self) -> ExchangeMetrics:
        return self._fanout if self._fanout is not None else NO_METRICS

    @property
    def metrics_url(self) -> str:
        """``http://HOST:PORT/metrics`` on the primary when ``[metrics] listen`` is set, else ""."""
        return self._server.url if self._server is not None else ""

    def start_telemetry(self) -> None:
        """Tracing and metrics providers, and the Prometheus directory: before anything records."""
        cfg = self._config
        signals = otlp_signals()
        name = f"crossway-gateway {cfg.gateway_id}"
        attributes: dict[str, str | int] = {"crossway.gateway": str(cfg.gateway_id), "crossway.worker": self._worker}
        if cfg.tracing_export is not None or "traces" in signals:
            setup_tracing(name, export_path=cfg.tracing_export, otlp="traces" in signals, attributes=attributes)
            self._tracing = True
        if cfg.metrics_listen:
            # 1. the primary empties the directory before its workers exist; they only write
            use_multiprocess_dir(cfg.data_dir / "metrics", clean=self._worker == 0)
            self._sinks.append(PrometheusMetrics())
        if "metrics" in signals:
            self._sinks.append(OtelMetrics(setup_otlp_metrics(name, attributes=attributes)))
            self._otlp_metrics = True
        if self._sinks:
            self._fanout = MetricsFanout(self._sinks)

    async def start(self, sources: VitalSources) -> None:
        """Serve ``/metrics`` (primary) and sample the vital signs (every process)."""
        cfg = self._config
        self._sources = sources
        for name, path in sources.certificates.items():
            with contextlib.suppress(CrosswayError, OSError):
                self._cert_expiry_ms[name] = int(load_certificate(path).not_valid_after_utc.timestamp() * 1000)
        sources.configuration.subscribe(self._remember)
        if self._fanout is None:
            return
        if cfg.metrics_listen and self._worker == 0:
            self._server = MetricsServer(cfg.metrics_listen)
            await self._server.start()
        self._sample()
        self._task = asyncio.create_task(self._run(), name=f"vitals {cfg.gateway_id}")

    def _remember(self, config: VerifiedConfiguration) -> None:
        self._last_config = config

    def vitals(self) -> Vitals:
        """The vital signs now (also what the gauges were last set to)."""
        sources = self._sources
        if sources is None:
            return Vitals()
        now_ms = self._clock.now_ms()
        config = self._last_config
        if config is None:
            with contextlib.suppress(CrosswayError):
                config = self._last_config = sources.configuration.current()
        stats = sources.audit_stats()
        return Vitals(
            audit_pending=int(stats.pending),
            audit_spooled=int(stats.spooled),
            # Older sinks have no quarantine; a missing count is none quarantined.
            audit_quarantined=int(getattr(stats, "quarantined", 0)),
            checkpoint_lag=sources.checkpoint_lag() if sources.checkpoint_lag is not None else None,
            configuration_serial=config.serial if config is not None else 0,
            configuration_expiry_s=max(0.0, (config.expires_at_ms - now_ms) / 1000) if config is not None else 0.0,
            certificate_expiry_s={k: (v - now_ms) / 1000 for k, v in self._cert_expiry_ms.items()},
            nats_connected=sources.nats_connected(),
            policy_version=sources.policy_version() if sources.policy_version is not None else None,
        )

    def _sample(self) -> None:
        if self._fanout is not None:
            self._fanout.update(self.vitals())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._sample()
            except Exception:  # a broken reading must not end the sampling of the others
                log.exception("sampling the gateway's vital signs failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            self._sample()  # the last values, for a scrape during the drain
        if self._server is not None:
            await self._server.aclose()
            self._server = None
        if self._otlp_metrics:
            shutdown_otlp_metrics()
        if self._tracing:
            shutdown_tracing()
