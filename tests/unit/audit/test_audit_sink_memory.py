"""The in-memory audit sink and the package's public API."""

from __future__ import annotations

from pathlib import Path

import pytest

import audit.trail
from audit.trail import AuditSink, JetStreamAuditSink, MemoryAuditSink
from audit.trail.samples import sample_record
from crossway.core.errors import AuditUnavailable


def test_every_name_in_all_exists() -> None:
    for name in audit.trail.__all__:
        assert hasattr(audit.trail, name), name


async def test_the_memory_sink_keeps_records_in_order_and_counts_them() -> None:
    sink = MemoryAuditSink()
    await sink.start()
    records = [sample_record(i) for i in range(3)]
    for r in records:
        sink.submit(r)
    assert sink.records == records
    assert sink.stats.submitted == sink.stats.acked == 3
    await sink.aclose()
    assert not sink.writable
    with pytest.raises(AuditUnavailable):
        sink.submit(sample_record(4))


def test_both_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryAuditSink(), AuditSink)
    js = JetStreamAuditSink("nats://127.0.0.1:1", gateway_id="EE/GOV/70000001/gw1", spool_dir=tmp_path)
    assert isinstance(js, AuditSink)
