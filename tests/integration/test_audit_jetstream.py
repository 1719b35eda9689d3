"""The JetStream audit sink against a real nats-server: acked, spooled, replayed, never doubled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import nats.js.errors
import pytest

from audit.trail import AuditRecord, JetStreamAuditSink, count_stream_records, fetch_records
from audit.trail.samples import sample_record
from crossway.core.errors import AuditUnavailable
from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.security.natspki import NatsIdentity

GATEWAY = "EE/GOV/70000001/gw1"


def make_sink(
    nats: NatsAccess, spool: Path, *, connect_timeout: float = 2.0, drain_timeout: float = 30.0
) -> JetStreamAuditSink:
    return JetStreamAuditSink(
        nats,
        gateway_id=GATEWAY,
        spool_dir=spool,
        ack_timeout=2.0,
        retry_interval=0.2,
        connect_timeout=connect_timeout,
        drain_timeout=drain_timeout,
    )


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def stream_count_reaches(reader: NatsAccess, n: int, within: float = 20.0) -> int:
    """The stream's count once it reaches n (or the deadline passes); 0 while the sink has not created it."""
    deadline = time.monotonic() + within
    while True:
        try:
            count = await count_stream_records(reader)
        except nats.js.errors.NotFoundError:
            count = 0
        if count >= n or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


async def test_two_thousand_records_land_in_the_stream_exactly_once_each(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    records = [sample_record(i) for i in range(2000)]
    async with make_sink(gateway_nats, tmp_path / "spool") as sink:
        for r in records:
            sink.submit(r)
    assert sink.stats.acked == 2000
    assert await count_stream_records(auditor_nats) == 2000
    stored = await fetch_records(auditor_nats)
    assert Counter(r.record_id for r in stored) == Counter(r.record_id for r in records)
    assert stored == records  # one publisher, one ordered pipeline: stream order is submit order
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


async def test_records_submitted_while_nats_is_stopped_go_to_the_spool_and_arrive_after_restart(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    sink = make_sink(gateway_nats, spool)
    await sink.start()
    try:
        before = [sample_record(i) for i in range(100)]
        for r in before:
            sink.submit(r)
        await eventually(lambda: sink.stats.acked == 100)

        await nats_server.stop()
        during = [sample_record(i) for i in range(100, 400)]
        for r in during:
            sink.submit(r)
        await eventually(lambda: sink.stats.spooled == 300)
        assert sink.writable  # the spool takes them
        assert sum(p.read_bytes().count(b"\n") for p in spool.glob("*.jsonl")) == 300

        await nats_server.start()
        after = [sample_record(i) for i in range(400, 450)]
        for r in after:
            sink.submit(r)
        assert await stream_count_reaches(auditor_nats, 450) == 450
        await eventually(lambda: sink.stats.spooled == 0)
    finally:
        await sink.aclose()
    stored = await fetch_records(auditor_nats)
    assert Counter(r.record_id for r in stored) == Counter(r.record_id for r in before + during + after)
    assert list(spool.glob("*.jsonl")) == []


async def test_a_sink_closed_with_a_full_spool_replays_it_when_reopened(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    await nats_server.stop()
    records = [sample_record(i) for i in range(250)]
    sink = make_sink(gateway_nats, spool, connect_timeout=1.0)
    await sink.start()
    for r in records:
        sink.submit(r)
    await sink.aclose()  # drains into the spool: NATS is down
    assert sink.stats.spooled == 250

    await nats_server.start()
    async with make_sink(gateway_nats, spool) as reopened:
        assert await stream_count_reaches(auditor_nats, 250) == 250
        await eventually(lambda: reopened.stats.spooled == 0)
    stored = await fetch_records(auditor_nats)
    assert [r.record_id for r in stored] == [r.record_id for r in records]


async def test_replaying_records_that_were_already_stored_does_not_store_them_twice(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    records = [sample_record(i) for i in range(50)]
    async with make_sink(gateway_nats, tmp_path / "first") as sink:
        for r in records:
            sink.submit(r)
    # As if the acks had been lost: the same records sit in another spool and get replayed.
    spool = tmp_path / "second"
    spool.mkdir()
    (spool / "000000000001.jsonl").write_bytes(b"".join(r.to_json() + b"\n" for r in records))
    async with make_sink(gateway_nats, spool) as replayer:
        await eventually(lambda: replayer.stats.spooled == 0)
    assert replayer.stats.acked == 50
    assert await count_stream_records(auditor_nats) == 50


async def test_the_sink_is_not_writable_when_the_spool_is_unusable_and_nats_is_down(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool directory should be")
    await nats_server.stop()
    sink = make_sink(gateway_nats, blocker / "spool", connect_timeout=1.0, drain_timeout=2.0)
    await sink.start()
    assert not sink.writable
    record = sample_record(1)
    sink.submit(record)  # still accepted: held in memory, not dropped
    await asyncio.sleep(0.5)
    assert sink.stats.pending == 1

    await nats_server.start()
    await eventually(lambda: sink.writable)
    assert await stream_count_reaches(auditor_nats, 1) == 1
    await sink.aclose()
    assert [r.record_id for r in await fetch_records(auditor_nats)] == [record.record_id]


async def test_closing_with_records_that_nowhere_can_take_raises_audit_unavailable(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    await nats_server.stop()
    sink = make_sink(gateway_nats, blocker / "spool", connect_timeout=1.0, drain_timeout=1.0)
    await sink.start()
    sink.submit(sample_record(1))
    with pytest.raises(AuditUnavailable, match="could not be published or spooled"):
        await sink.aclose()
    with pytest.raises(AuditUnavailable):
        sink.submit(sample_record(2))


async def test_a_sink_started_while_nats_is_down_spools_then_delivers(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    await nats_server.stop()
    sink = make_sink(gateway_nats, tmp_path / "spool", connect_timeout=1.0)
    await sink.start()
    try:
        assert sink.writable
        for i in range(20):
            sink.submit(sample_record(i))
        await eventually(lambda: sink.stats.spooled == 20)
        await nats_server.start()
        assert await stream_count_reaches(auditor_nats, 20) == 20
    finally:
        await sink.aclose()
    assert await count_stream_records(auditor_nats) == 20


async def test_records_submitted_from_other_threads_all_arrive(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    # A sync gRPC server calls submit() from its worker threads; the sink must wake and deliver.
    records = [sample_record(i) for i in range(400)]
    async with make_sink(gateway_nats, tmp_path / "spool") as sink:
        await asyncio.gather(*(asyncio.to_thread(_submit_all, sink, records[i::4]) for i in range(4)))
        await eventually(lambda: sink.stats.acked == 400)
        assert sink.stats.submitted == 400
    stored = await fetch_records(auditor_nats)
    assert Counter(r.record_id for r in stored) == Counter(r.record_id for r in records)


def _submit_all(sink: JetStreamAuditSink, records: list[AuditRecord]) -> None:
    for r in records:
        sink.submit(r)


async def test_a_gateway_id_with_dots_and_underscores_publishes_to_an_escaped_subject(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    gateway = "EE/GOV/700.01/gw_1.a"
    access = await nats_server.grant(NatsIdentity.gateway(gateway))
    sink = JetStreamAuditSink(access, gateway_id=gateway, spool_dir=tmp_path / "spool")
    assert sink.subject == "crossway.audit.EE.GOV.700_2E01.gw_5F1_2Ea"
    async with sink:
        sink.submit(sample_record(1, gateway=gateway))
    (stored,) = await fetch_records(auditor_nats)
    assert stored.gateway == gateway


async def test_commit_returns_once_the_record_is_acked_and_many_commits_share_few_batches(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    async with make_sink(gateway_nats, tmp_path / "spool") as sink:
        one = sample_record(0)
        await sink.commit(one, 5.0)
        assert sink.stats.acked == 1 and sink.stats.pending == 0
        records = [sample_record(i) for i in range(1, 201)]
        started = time.monotonic()
        await asyncio.gather(*(sink.commit(r, 5.0) for r in records))
        assert sink.stats.acked == 201
        # Group commit: 200 concurrent commits cost a few round trips, not 200 linger periods.
        assert time.monotonic() - started < 2.0
    stored = {r.record_id for r in await fetch_records(auditor_nats)}
    assert {r.record_id for r in [one, *records]} <= stored


async def test_commit_while_nats_is_down_returns_once_the_record_is_fsynced_to_the_spool(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    sink = make_sink(gateway_nats, spool)
    await sink.start()
    try:
        await sink.commit(sample_record(0), 5.0)
        await nats_server.stop()
        record = sample_record(1)
        await sink.commit(record, 10.0)
        assert any(record.record_id.encode() in p.read_bytes() for p in spool.glob("*.jsonl"))
        await nats_server.start()
        assert await stream_count_reaches(auditor_nats, 2) == 2
    finally:
        await sink.aclose()


async def test_commit_raises_audit_unavailable_when_neither_nats_nor_the_disk_takes_the_record(
    gateway_nats: NatsAccess, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the spool should be")
    nowhere = gateway_nats.with_servers(["tls://127.0.0.1:1"])  # nobody listens there
    sink = make_sink(nowhere, blocked, connect_timeout=0.2, drain_timeout=0.5)
    await sink.start()
    with pytest.raises(AuditUnavailable):
        await sink.commit(sample_record(0), 0.5)
    with pytest.raises(AuditUnavailable):
        await sink.aclose()  # the record is still held, and closing says so


async def test_a_record_too_large_for_nats_is_quarantined_and_the_records_after_it_flow(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    async with make_sink(gateway_nats, spool) as sink:
        poison = sample_record(0, purpose="p" * (2 << 20))
        others = [sample_record(i) for i in range(1, 51)]
        await sink.commit(poison, 5.0)  # durable — in the quarantine — and never retried
        await asyncio.gather(*(sink.commit(r, 5.0) for r in others))
        assert sink.stats.quarantined == 1
        assert "1 audit record(s) quarantined" in sink.alarm
    assert await count_stream_records(auditor_nats) == 50
    files = list((spool / "quarantine").glob("*.quarantined"))
    assert len(files) == 1
    note, data, _ = files[0].read_bytes().split(b"\n", 2)
    assert poison.record_id.encode() in note and AuditRecord.from_json(data) == poison
    assert list(spool.glob("*.jsonl")) == []
    files[0].rename(tmp_path / "handled.quarantined")  # the operator moves it out: the alarm ends
    await asyncio.sleep(1.1)
    assert sink.alarm == ""


async def test_a_poison_record_left_in_the_spool_by_an_older_version_does_not_stop_the_replay(
    nats_server: LocalBackbone, gateway_nats: NatsAccess, auditor_nats: NatsAccess, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    poison = sample_record(0, withheld_fields=tuple(f"field_{i:07d}" for i in range(150_000)))
    later = [sample_record(i) for i in range(1, 21)]
    (spool / "000000000001.jsonl").write_bytes(b"".join(r.to_json() + b"\n" for r in [poison, *later]))
    async with make_sink(gateway_nats, spool) as sink:
        assert await stream_count_reaches(auditor_nats, 20) == 20
        await eventually(lambda: sink.stats.spooled == 0)
        assert sink.stats.quarantined == 1 and sink.alarm
    stored = await fetch_records(auditor_nats)
    assert [r.record_id for r in stored] == [r.record_id for r in later]
