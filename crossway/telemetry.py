"""OpenTelemetry tracing for every Crossway process, and W3C trace context over gRPC metadata.

One trace follows an exchange from the calling agency system through both gateways to the backend:
each hop extracts ``traceparent``/``tracestate`` (W3C Trace Context) from incoming gRPC metadata and
injects them into outgoing metadata; the header's ``traceparent`` field carries the same value
across the signed envelope.

Spans go through the SDK's ``BatchSpanProcessor`` (~12-16 µs per span on the baseline machine,
export off the hot path). :class:`JsonLinesSpanExporter` writes finished spans as JSON lines, which
the integration tests read to prove that one trace id spans all processes; it is also a simple
local sink for operators without a collector.

OTLP (issue 17): when the standard OpenTelemetry variables ask for it, spans and metrics also go
to a collector over OTLP/gRPC. :func:`otlp_signals` decides which signals are on — the one place
Crossway reads ``OTEL_*`` itself; everything else (endpoint, headers, certificates, timeouts,
``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``)
is read by the OpenTelemetry SDK and exporters, as their specification says.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from crossway.core.errors import ConfigError

__all__ = [
    "OTLP_SIGNALS",
    "JsonLinesSpanExporter",
    "TRACEPARENT",
    "TRACESTATE",
    "current_traceparent",
    "extract_context",
    "get_tracer",
    "inject_metadata",
    "otlp_signals",
    "setup_otlp_metrics",
    "setup_tracing",
    "shutdown_otlp_metrics",
    "shutdown_tracing",
    "trace_id_hex",
    "traceparent_of",
]

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
_TRACE_KEYS: Final = frozenset({TRACEPARENT, TRACESTATE})

# The propagator is stateless; one instance serves every call.
_PROPAGATOR: Final = TraceContextTextMapPropagator()

_lock = threading.Lock()
_provider: TracerProvider | None = None
_meter_provider: Any = None

OTLP_SIGNALS: Final = ("traces", "metrics")


def otlp_signals(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The signals ("traces", "metrics") to export over OTLP, from the standard variables.

    A signal is on when ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` lists ``otlp``, or
    when that variable is unset and an OTLP endpoint is (``OTEL_EXPORTER_OTLP_ENDPOINT`` or the
    signal's own). Unlike the specification's default (``otlp``), nothing is exported when
    nothing is set: a gateway must not start sending to ``localhost:4317`` on its own.
    ``OTEL_SDK_DISABLED=true`` turns everything off. Only OTLP over gRPC is built in.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return frozenset()
    on = set()
    for signal in OTLP_SIGNALS:
        names = {n.strip() for n in env.get(f"OTEL_{signal.upper()}_EXPORTER", "").split(",") if n.strip()}
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        if "otlp" in names or (not names and endpoint):
            on.add(signal)
    if on:
        protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip() or "grpc"
        if protocol != "grpc":
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported",
                hint="Crossway exports OTLP over gRPC: unset it or set it to grpc (port 4317 of a collector)",
            )
    return frozenset(on)


def _resource(service_name: str, attributes: Mapping[str, AttributeValue] | None) -> Resource:
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (the SDK reads them);
    # service.instance.id tells the processes of one gateway apart, so a collector adds them up.
    base: dict[str, AttributeValue] = {SERVICE_NAME: service_name, "service.instance.id": f"{os.getpid()}"}
    return Resource.create({**base, **(attributes or {})})


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file, flushed after every batch.

    Fields: ``name``, ``service``, ``kind``, ``trace_id`` and ``span_id`` (lower-case hex),
    ``parent_span_id`` (hex or null), ``start_ns``, ``end_ns``, ``attributes``, ``status``
    (``{"code": "UNSET"|"OK"|"ERROR", "description": ...}``).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        # Line-oriented appends from several processes to one file are fine: each batch is one write.
        self._file: IO[str] | None = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(_span_record(span), separators=(",", ":")) + "\n" for span in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            try:
                self._file.write(text)
                self._file.flush()
            except OSError:
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _json_value(value: Any) -> Any:
    # OTel attribute values are str/bool/int/float or homogeneous sequences of those.
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, Sequence):
        return [_json_value(v) for v in value]
    return str(value)


def _span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    parent = span.parent
    resource = span.resource.attributes if span.resource is not None else {}
    return {
        "name": span.name,
        "service": resource.get(SERVICE_NAME),
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x") if context is not None else None,
        "span_id": format(context.span_id, "016x") if context is not None else None,
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": {k: _json_value(v) for k, v in (span.attributes or {}).items()},
        "status": {"code": span.status.status_code.name, "description": span.status.description},
    }


def setup_tracing(
    service_name: str,
    *,
    export_path: Path | None = None,
    console: bool = False,
    otlp: bool = False,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> TracerProvider:
    """Create this process's tracer provider; call once at start-up, before serving.

    The first provider also becomes OpenTelemetry's global one (the API allows setting it only
    once per process); :func:`get_tracer` always uses the latest provider, so tests can set up
    again with another file. ``otlp``: also export to the collector the ``OTEL_EXPORTER_OTLP_*``
    variables name (see :func:`otlp_signals`).
    """
    global _provider
    provider = TracerProvider(resource=_resource(service_name, attributes))
    if export_path is not None:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(export_path)))
    if otlp:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(service_name=service_name)))
    with _lock:
        previous, _provider = _provider, provider
        if previous is None and not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(provider)
    if previous is not None:
        previous.shutdown()
    return provider


def shutdown_tracing() -> None:
    """Flush pending spans and stop the exporters (call on shutdown; safe to call twice)."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        provider.force_flush()
        provider.shutdown()


def setup_otlp_metrics(service_name: str, *, attributes: Mapping[str, AttributeValue] | None = None) -> Any:
    """A meter whose instruments are exported over OTLP every ``OTEL_METRIC_EXPORT_INTERVAL`` ms
    (60 s by default); the exporter reads its endpoint and the rest from the environment."""
    global _meter_provider
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
        resource=_resource(service_name, attributes),
    )
    with _lock:
        previous, _meter_provider = _meter_provider, provider
    if previous is not None:
        previous.shutdown()
    return provider.get_meter("crossway")


def shutdown_otlp_metrics() -> None:
    """Export what is pending, then stop (call on shutdown; safe to call twice)."""
    global _meter_provider
    with _lock:
        provider, _meter_provider = _meter_provider, None
    if provider is not None:
        provider.force_flush()
        provider.shutdown()


def get_tracer(name: str) -> trace.Tracer:
    """A tracer from the provider set up by :func:`setup_tracing` (the global one otherwise)."""
    provider = _provider
    return provider.get_tracer(name) if provider is not None else trace.get_tracer(name)


def extract_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context:
    """The remote parent context from incoming gRPC invocation metadata (empty when absent)."""
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        # gRPC lower-cases metadata keys; only the two W3C keys matter here.
        if key in _TRACE_KEYS:
            carrier[key] = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not carrier:
        return Context()
    return _PROPAGATOR.extract(carrier)


def inject_metadata(context: Context | None = None) -> list[tuple[str, str]]:
    """``traceparent``/``tracestate`` for outgoing gRPC metadata (empty when no span is active)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    return list(carrier.items())


def current_traceparent() -> str:
    """The W3C ``traceparent`` of the current span, or ``""`` when none is recording."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def traceparent_of(span: trace.Span) -> str:
    """The W3C ``traceparent`` naming ``span`` as parent, built directly (no propagator, no
    context switch: the gateways pass it on the hot path)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def trace_id_hex(span: trace.Span) -> str:
    """The span's trace id as 32 lower-case hex digits (what audit records and logs carry)."""
    return format(span.get_span_context().trace_id, "032x")
