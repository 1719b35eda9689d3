from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace

from crossway.telemetry import (
    current_traceparent,
    extract_context,
    get_tracer,
    inject_metadata,
    setup_tracing,
    shutdown_tracing,
    trace_id_hex,
)


@pytest.fixture
def spans_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "spans.jsonl"
    setup_tracing("gateway-a", export_path=path)
    yield path
    shutdown_tracing()


def _read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_finished_span_lands_in_the_json_lines_file_with_its_trace_id(spans_file: Path) -> None:
    with get_tracer("test").start_as_current_span("peer.exchange", attributes={"crossway.message_id": "m-1"}) as span:
        expected_trace = trace_id_hex(span)
        with get_tracer("test").start_as_current_span("policy.decide"):
            pass
    shutdown_tracing()
    records = {r["name"]: r for r in _read(spans_file)}
    outer, inner = records["peer.exchange"], records["policy.decide"]
    assert outer["trace_id"] == inner["trace_id"] == expected_trace
    assert inner["parent_span_id"] == outer["span_id"] and outer["parent_span_id"] is None
    assert outer["service"] == "gateway-a"
    assert outer["attributes"] == {"crossway.message_id": "m-1"}
    assert outer["status"] == {"code": "UNSET", "description": None}
    assert isinstance(outer["start_ns"], int) and isinstance(outer["end_ns"], int)


def test_inject_then_extract_keeps_the_trace_id(spans_file: Path) -> None:
    with get_tracer("test").start_as_current_span("client.call") as span:
        metadata = inject_metadata()
        assert dict(metadata)["traceparent"] == current_traceparent()
        caller_trace = trace_id_hex(span)
    # The receiving side sees gRPC metadata, possibly mixed with other keys and bytes values.
    incoming: list[tuple[str, str | bytes]] = [("user-agent", "grpc-python")]
    incoming += [(k, v.encode()) for k, v in metadata]
    with get_tracer("test").start_as_current_span("provider.handle", context=extract_context(incoming)) as child:
        assert trace_id_hex(child) == caller_trace
        assert current_traceparent().split("-")[1] == caller_trace


def test_without_incoming_trace_context_a_new_trace_starts(spans_file: Path) -> None:
    assert trace.get_current_span(extract_context([("user-agent", "x")])).get_span_context().is_valid is False
    assert inject_metadata() == [] and current_traceparent() == ""
