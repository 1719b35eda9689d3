"""Issue 4 acceptance: the audit trail survives NATS going away and the index being killed.

Real gateways, a real nats-server and the index as a real ``crossway audit index`` subprocess.
Records are counted in the stream itself, so a lost or doubled record shows.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats.js.errors
import pytest

from audit.index import open_store
from audit.trail import AuditRecord, count_stream_records, fetch_records
from crossway.demo.federation import Federation
from crossway.demo.processes import ManagedProcess
from crossway.natsclient import NatsAccess
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

_WORKERS = 8  # concurrent callers: enough to keep the gateways busy on a 2-core machine


class Load:
    """``n`` allowed exchanges by 'tax', ``_WORKERS`` at a time; every one must succeed."""

    def __init__(self, fed: Federation, n: int) -> None:
        self._fed = fed
        self._n = n
        self._next = 0
        self.message_ids: list[str] = []

    @property
    def done(self) -> int:
        return len(self.message_ids)

    async def run(self) -> list[str]:
        async with self._fed.channel() as channel:
            stub = pb_grpc.PersonRegistryStub(channel)
            await asyncio.gather(*(self._worker(stub) for _ in range(_WORKERS)))
        return self.message_ids

    async def _worker(self, stub: pb_grpc.PersonRegistryStub) -> None:
        while self._next < self._n:
            self._next += 1
            md = (("authorization", f"Bearer {self._fed.token()}"), ("crossway-purpose", "tax-assessment"))
            call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=20)
            await call
            self.message_ids.append(str(dict(await call.trailing_metadata() or ())["crossway-message-id"]))


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {within:.0f} s: {what}")
        await asyncio.sleep(0.1)


async def _progress(load: Load, task: asyncio.Task[list[str]], reached: int) -> None:
    """Until the load has done ``reached`` exchanges (or failed: its exception surfaces)."""
    while load.done < reached:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.02)


async def _stream_count(url: NatsAccess) -> int:
    """Records in the audit stream; 0 before the first gateway record created it."""
    try:
        return await count_stream_records(url)
    except nats.js.errors.NotFoundError:
        return 0


def _sides(records: list[AuditRecord], message_ids: set[str]) -> Counter[tuple[str, str]]:
    return Counter((r.message_id, r.side) for r in records if r.message_id in message_ids)


async def test_nats_stopped_during_500_exchanges_loses_no_record_and_doubles_none(federation: Federation) -> None:
    url = federation.auditor
    before = await _stream_count(url)
    load = Load(federation, 500)
    task = asyncio.create_task(load.run())

    await _progress(load, task, 150)
    await federation.nats.stop()
    stopped_at = load.done
    # The gateways keep their last good configuration and spool the records: exchanges go on.
    await _progress(load, task, stopped_at + 200)
    during_outage = load.done - stopped_at
    await federation.nats.start()
    ids = set(await task)

    assert len(ids) == 500
    assert during_outage >= 200, "the outage must overlap the exchanges"

    async def all_arrived() -> bool:
        try:
            return await count_stream_records(url) >= before + 1000
        except Exception:  # NATS may still be settling after the restart
            return False

    await _until(all_arrived, 60, "1,000 records in the stream")
    await asyncio.sleep(1.0)  # a late duplicate would land now
    assert await count_stream_records(url) == before + 1000
    sides = _sides(await fetch_records(url), ids)
    assert set(sides) == {(m, s) for m in ids for s in ("client", "provider")}
    assert set(sides.values()) == {1}


def _indexed(index: str) -> int:
    store = open_store(index)
    try:
        return store.count()
    finally:
        store.close()


async def test_the_index_killed_under_load_catches_up_with_no_gap_and_no_duplicate(
    federation: Federation, tmp_path: Path
) -> None:
    url = federation.auditor
    before = await _stream_count(url)
    index = str(tmp_path / "audit.sqlite")
    nats = federation.index
    argv = [sys.executable, "-m", "crossway.cli", "audit", "index", "--index", index, "--nats", nats.url]
    argv += ["--nats-ca", str(nats.ca_file), "--nats-cert", str(nats.cert_file), "--nats-key", str(nats.key_file)]

    def indexer() -> ManagedProcess:
        return ManagedProcess("audit index", argv)

    first = indexer()
    await first.start()
    await first.wait_for(r"audit index consuming", 30)
    load = Load(federation, 400)
    task = asyncio.create_task(load.run())

    async def indexing() -> bool:
        return _indexed(index) > 0

    await _progress(load, task, 100)
    await _until(indexing, 30, "the index has records")
    first.kill()  # SIGKILL: no drain, no ack of the batch in hand
    assert await asyncio.wait_for(first.stop(), 10) != 0
    killed_at = _indexed(index)
    await _progress(load, task, 250)

    second = indexer()
    await second.start()
    try:
        await second.wait_for(r"audit index consuming", 30)
        ids = set(await task)
        total = before + 800

        async def all_arrived() -> bool:
            return await count_stream_records(url) >= total

        await _until(all_arrived, 30, f"{total} records in the stream")

        async def caught_up() -> bool:
            return _indexed(index) >= total

        await _until(caught_up, 60, f"the index holds all {total} records")
        await asyncio.sleep(1.0)  # a redelivered batch applied twice would land now
    finally:
        await second.stop()

    assert killed_at < total, "the kill must happen before the index had everything"
    stream = await fetch_records(url)
    store = open_store(index)
    try:
        assert store.count() == len(stream) == total
        for gateway in {r.gateway for r in stream}:
            rows = list(store.leaves(gateway))
            # No gap: leaves 0..n-1. Same records in the same order as the stream: no duplicate.
            assert [r.leaf_index for r in rows] == list(range(len(rows)))
            assert [r.record().record_id for r in rows] == [s.record_id for s in stream if s.gateway == gateway]
    finally:
        store.close()
    assert set(_sides(stream, ids).values()) == {1} and len(_sides(stream, ids)) == 800
