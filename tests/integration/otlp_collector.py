"""A stand-in for an OpenTelemetry collector: an OTLP/gRPC receiver on loopback, port 0.

It implements the collector's two services with the servicers generated in opentelemetry-proto
(``TraceService/Export`` and ``MetricsService/Export``) and keeps what it receives, flattened:
spans as (service name, span name, trace id hex), metric points as (service name, metric name,
attributes, value).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind else None
    return out


@dataclass
class Received:
    spans: list[tuple[str, str, str]] = field(default_factory=list)
    points: list[tuple[str, str, dict[str, Any], float]] = field(default_factory=list)


class _Traces(trace_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self._received = received

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self._received.spans.append((service, span.name, span.trace_id.hex()))
        return trace_pb.ExportTraceServiceResponse()


class _Metrics(metrics_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self._received = received

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_metrics in request.resource_metrics:
            service = str(_attributes(resource_metrics.resource.attributes).get("service.name", ""))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        if kind == "histogram":
                            value = float(point.count)
                        else:
                            value = float(point.as_int if point.WhichOneof("value") == "as_int" else point.as_double)
                        self._received.points.append((service, metric.name, _attributes(point.attributes), value))
        return metrics_pb.ExportMetricsServiceResponse()


class OtlpCollector:
    def __init__(self) -> None:
        self.received = Received()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = grpc.aio.server()
        trace_grpc.add_TraceServiceServicer_to_server(_Traces(self.received), self._server)
        metrics_grpc.add_MetricsServiceServicer_to_server(_Metrics(self.received), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.stop(1)

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self.received):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"the collector did not receive it in {timeout} s: {len(self.received.spans)} spans, "
                    f"metrics {sorted({p[1] for p in self.received.points})}"
                )
            await asyncio.sleep(0.2)
