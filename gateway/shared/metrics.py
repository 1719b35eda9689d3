"""The gateway's metrics: exchanges counted in one place, and the gateway's vital signs.

Every side of every exchange ends in :meth:`GatewayContext.audit_exchange` with its audit record
(denied, failed and cancelled ones too), so that is where exchanges are counted — one call to
:meth:`ExchangeMetrics.exchange` with the record, never in the pipelines. The record has all a
metric needs: side, service, method, error code and the four timestamps.

Two implementations of the seam, and a twin:

- :class:`PrometheusMetrics` — ``crossway_exchanges_total`` by side, service, method and code,
  latency histograms, and the gauges of :class:`Vitals` (audit backlog, checkpoint lag,
  configuration and certificate expiry, NATS, policy version), in prometheus_client's
  multiprocess mode when the gateway runs workers (``crossway.metrics``);
- :class:`OtelMetrics` — the same exchanges and vitals as OpenTelemetry instruments, for OTLP
  export (``crossway.telemetry``);
- :class:`MemoryMetrics` — counts in a dict, for tests; :data:`NO_METRICS` when nothing is on.

Labels stay bounded: service and method come from the registry's configuration, except when an
exchange failed *because* they are unknown (a caller may send any path) — then both are empty;
and past :data:`MAX_SERIES` distinct pairs, new ones are counted as ``(other)``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from audit.trail.record import AuditRecord

__all__ = [
    "LATENCY_BUCKETS_S",
    "MAX_SERIES",
    "NO_METRICS",
    "ExchangeMetrics",
    "MemoryMetrics",
    "MetricsFanout",
    "OtelMetrics",
    "PrometheusMetrics",
    "Vitals",
    "exchange_labels",
]

# Seconds; a gateway adds about a millisecond, a backend anything up to the deadline.
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Distinct (service, method) pairs before new ones are folded into "(other)".
MAX_SERIES: Final = 2000
# Failures that mean the caller named something the registry does not have: not a label.
_UNROUTED: Final = frozenset({"service.unknown", "service.ambiguous", "method.unknown", "id.invalid"})
_OTHER: Final = "(other)"


class ExchangeMetrics(Protocol):
    def exchange(self, record: AuditRecord) -> None:
        """Count one side of one exchange (called once per audit record, on the request path)."""
        ...


class _NoMetrics:
    def exchange(self, record: AuditRecord) -> None:
        return None


NO_METRICS: Final[ExchangeMetrics] = _NoMetrics()


class _Series:
    """The bounded (service, method) label pairs of one process."""

    def __init__(self, limit: int = MAX_SERIES) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def labels(self, record: AuditRecord) -> tuple[str, str, str, str]:
        code = record.error_code or "ok"
        pair = ("", "") if code in _UNROUTED else (record.service, record.method)
        if pair not in self._seen:
            with self._lock:
                if len(self._seen) >= self._limit:
                    pair = (_OTHER, _OTHER)
                else:
                    self._seen.add(pair)
        return record.side, pair[0], pair[1], code


_default_series = _Series()


def exchange_labels(record: AuditRecord) -> tuple[str, str, str, str]:
    """(side, service, method, code) of a record, as every implementation labels it."""
    return _default_series.labels(record)


def _seconds(start_ms: int, end_ms: int) -> float | None:
    return (end_ms - start_ms) / 1000 if start_ms and end_ms >= start_ms else None


@dataclass(frozen=True, slots=True)
class Vitals:
    """One process's vital signs, sampled every few seconds (``gateway.observability``).

    None means "not known here": the checkpoint lag on a worker (only the primary signs
    checkpoints), the policy version on a gateway that provides nothing.
    """

    audit_pending: int = 0
    audit_spooled: int = 0
    audit_quarantined: int = 0
    checkpoint_lag: int | None = None
    configuration_serial: int = 0
    configuration_expiry_s: float = 0.0
    certificate_expiry_s: Mapping[str, float] = field(default_factory=dict)
    nats_connected: bool = False
    policy_version: int | None = None


class MemoryMetrics:
    """The in-memory twin: counts by (side, service, method, code), and the last vitals."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.vitals = Vitals()

    def exchange(self, record: AuditRecord) -> None:
        self.counts[exchange_labels(record)] += 1

    def update(self, vitals: Vitals) -> None:
        self.vitals = vitals


class PrometheusMetrics:
    """prometheus_client metrics; create it only after ``crossway.metrics.use_multiprocess_dir``
    when the gateway runs workers (the mode is fixed by the first import)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # Our own registry: in multiprocess mode the scrape reads the files, not a registry, and
        # a process-wide default registry would refuse a second gateway in one test process.
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self._series = _Series()
        self._exchanges = Counter(
            "crossway_exchanges",
            "Exchange sides handled, by side (client, provider), service, method and error code (ok)",
            ["side", "service", "method", "code"],
            registry=registry,
        )
        self._duration = Histogram(
            "crossway_exchange_duration_seconds",
            "Time from the request's arrival to the answer leaving this gateway",
            ["side", "service", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self._upstream = Histogram(
            "crossway_exchange_upstream_seconds",
            "Time waiting for the next hop (the provider gateway, or the backend) within an exchange",
            ["side", "service"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

        def gauge(name: str, text: str, mode: str, labels: Sequence[str] = ()) -> Any:
            return Gauge(name, text, labels, multiprocess_mode=mode, registry=registry)  # type: ignore[arg-type]

        # Backlogs add up over the processes; lags, expiry and versions show the worst process.
        self._pending = gauge("crossway_audit_records_pending", "Audit records queued or in flight", "livesum")
        self._spooled = gauge("crossway_audit_records_spooled", "Audit records in the local spool", "livesum")
        self._quarantined = gauge(
            "crossway_audit_records_quarantined", "Audit records set aside as unsendable", "livesum"
        )
        self._checkpoint_lag = gauge(
            "crossway_audit_checkpoint_lag_records", "Audit log entries not yet in a signed checkpoint", "livemax"
        )
        self._serial = gauge("crossway_registry_configuration_serial", "Serial of the configuration held", "livemin")
        self._expiry = gauge(
            "crossway_registry_configuration_expiry_seconds", "Seconds until the held configuration expires", "livemin"
        )
        self._certificates = gauge(
            "crossway_certificate_expiry_seconds",
            "Seconds until this gateway's certificate expires",
            "livemin",
            ["certificate"],
        )
        self._nats = gauge("crossway_nats_connected", "1 when the audit trail's NATS connection is up", "livemin")
        self._policy = gauge("crossway_policy_version", "Policy version in force (-1: none loaded)", "livemin")

    def exchange(self, record: AuditRecord) -> None:
        side, service, method, code = self._series.labels(record)
        self._exchanges.labels(side, service, method, code).inc()
        total = _seconds(record.request_in_ms, record.response_out_ms)
        if total is not None:
            self._duration.labels(side, service, method).observe(total)
        upstream = _seconds(record.request_out_ms, record.response_in_ms)
        if upstream is not None:
            self._upstream.labels(side, service).observe(upstream)

    def update(self, vitals: Vitals) -> None:
        self._pending.set(vitals.audit_pending)
        self._spooled.set(vitals.audit_spooled)
        self._quarantined.set(vitals.audit_quarantined)
        if vitals.checkpoint_lag is not None:
            self._checkpoint_lag.set(vitals.checkpoint_lag)
        self._serial.set(vitals.configuration_serial)
        self._expiry.set(vitals.configuration_expiry_s)
        for name, seconds in vitals.certificate_expiry_s.items():
            self._certificates.labels(name).set(seconds)
        self._nats.set(1 if vitals.nats_connected else 0)
        if vitals.policy_version is not None:
            self._policy.set(vitals.policy_version)


class OtelMetrics:
    """The same as OpenTelemetry instruments on a meter (exported by the SDK's OTLP reader).

    Each process exports its own points; the collector adds them up (OTel's model: one process,
    one ``service.instance.id``).
    """

    def __init__(self, meter: Any) -> None:
        self._series = _Series()
        self._exchanges = meter.create_counter(
            "crossway.exchanges", unit="{exchange}", description="Exchange sides handled"
        )
        self._duration = meter.create_histogram(
            "crossway.exchange.duration",
            unit="s",
            description="Time from the request's arrival to the answer leaving this gateway",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS_S),
        )
        self._vitals = Vitals()
        observe = self._observe

        def gauge(name: str, unit: str, text: str, read: Callable[[Vitals], float | None]) -> None:
            meter.create_observable_gauge(name, callbacks=[observe(read)], unit=unit, description=text)

        gauge("crossway.audit.records.pending", "{record}", "Audit records queued or in flight", _pending)
        gauge("crossway.audit.records.spooled", "{record}", "Audit records in the local spool", _spooled)
        gauge("crossway.audit.records.quarantined", "{record}", "Audit records set aside", _quarantined)
        gauge("crossway.audit.checkpoint.lag", "{record}", "Entries not in a signed checkpoint", _lag)
        gauge("crossway.registry.configuration.expiry", "s", "Until the configuration expires", _expiry)
        gauge("crossway.nats.connected", "1", "1 when NATS is connected", _nats)
        gauge("crossway.policy.version", "1", "Policy version in force", _policy)

    def _observe(self, read: Callable[[Vitals], float | None]) -> Callable[[Any], list[Any]]:
        from opentelemetry.metrics import Observation

        def callback(options: Any) -> list[Any]:
            value = read(self._vitals)
            return [] if value is None else [Observation(value)]

        return callback

    def exchange(self, record: AuditRecord) -> None:
        side, service, method, code = self._series.labels(record)
        self._exchanges.add(1, {"side": side, "service": service, "method": method, "code": code})
        total = _seconds(record.request_in_ms, record.response_out_ms)
        if total is not None:
            self._duration.record(total, {"side": side, "service": service, "method": method})

    def update(self, vitals: Vitals) -> None:
        self._vitals = vitals


def _pending(v: Vitals) -> float:
    return v.audit_pending


def _spooled(v: Vitals) -> float:
    return v.audit_spooled


def _quarantined(v: Vitals) -> float:
    return v.audit_quarantined


def _lag(v: Vitals) -> float | None:
    return v.checkpoint_lag


def _expiry(v: Vitals) -> float:
    return v.configuration_expiry_s


def _nats(v: Vitals) -> float:
    return 1.0 if v.nats_connected else 0.0


def _policy(v: Vitals) -> float | None:
    return v.policy_version


class MetricsFanout:
    """Several implementations behind the one seam (Prometheus and OTLP may both be on)."""

    def __init__(self, sinks: Sequence[PrometheusMetrics | OtelMetrics | MemoryMetrics]) -> None:
        self._sinks = tuple(sinks)

    def exchange(self, record: AuditRecord) -> None:
        for sink in self._sinks:
            sink.exchange(record)

    def update(self, vitals: Vitals) -> None:
        for sink in self._sinks:
            sink.update(vitals)
