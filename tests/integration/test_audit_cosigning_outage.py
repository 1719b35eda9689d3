"""Issue 12 acceptance: cosigning survives a NATS crash.

``kill -9`` of NATS under load, then a restart: checkpoint publishes that timed out may still have
been stored, which used to fork what the gateway and the registry believed (the registry then
refused every later checkpoint). Within a minute of recovery every record must be covered by a
checkpoint cosigned by the quorum of witnesses (the federation's: the registry, each agency's
witness for the other's log and an audit office's, 2 of them) and ``audit verify`` must pass —
also with ``--signed-only``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.index import AuditIndexer, open_store
from audit.trail import count_stream_records
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

WORKERS = 8


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("cosign-outage"), require_encryption=False, witnesses=True) as fed:
        yield fed


class Load:
    def __init__(self, fed: Federation) -> None:
        self.fed = fed
        self.answered = 0
        self.failed = 0
        self.stop = False

    async def run(self) -> None:
        async with self.fed.channel() as channel:
            stub = pb_grpc.PersonRegistryStub(channel)
            await asyncio.gather(*(self._worker(stub) for _ in range(WORKERS)))

    async def _worker(self, stub: pb_grpc.PersonRegistryStub) -> None:
        while not self.stop:
            md = (("authorization", f"Bearer {self.fed.token()}"), ("crossway-purpose", "tax-assessment"))
            try:
                await stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=20)
                self.answered += 1
            except grpc.aio.AioRpcError:
                self.failed += 1
                await asyncio.sleep(0.05)

    async def until(self, answered: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while self.answered < answered:
            assert time.monotonic() < deadline, f"only {self.answered} answered ({self.failed} failed)"
            await asyncio.sleep(0.05)


def _verify(index: str, anchor: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", "verify", "--index", index, "--anchor", anchor, "--quiet",
         *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_kill_9_of_nats_under_load_then_every_record_is_cosigned_within_a_minute(
    federation: Federation, tmp_path: Path
) -> None:
    load = Load(federation)
    task = asyncio.create_task(load.run())
    try:
        await load.until(200)
        pid = federation.nats.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # mid-load: publishes and acks in flight are cut off
        await federation.nats.aclose()  # reaps it; the port and the data directory stay
        killed_at = load.answered
        await load.until(killed_at + 100)  # the gateways answer on, records go to their spools
        await federation.nats.start()
        recovered = time.monotonic()
        await load.until(load.answered + 200)
    finally:
        load.stop = True
        await asyncio.wait_for(task, 30)

    index = str(tmp_path / "audit.sqlite")
    anchor = str(federation.workdir / "registry" / "anchor.json")
    store = open_store(index)
    indexer = AuditIndexer(federation.index, store)
    try:
        while True:
            await indexer.catch_up()
            stored = await count_stream_records(federation.auditor)
            counts = {g: store.count(g) for g in store.gateways()}
            # --nats: the witnesses and quorum of the registry's configuration; no --signed-only:
            # every record of the index must be under a checkpoint with that quorum.
            result = _verify(index, anchor, *federation.nats_arguments(federation.index))
            if store.count() == stored and sum(counts.values()) >= 2 * load.answered and result.returncode == 0:
                break
            assert time.monotonic() - recovered < 60, f"not covered a minute after recovery: {result.stdout}"
            await asyncio.sleep(0.5)
    finally:
        store.close()
    covered_after = time.monotonic() - recovered
    print(f"{load.answered} answered ({load.failed} failed); all {sum(counts.values())} records under "
          f"quorum-cosigned checkpoints {covered_after:.1f} s after NATS came back")  # fmt: skip
    nats = federation.nats_arguments(federation.index)
    for extra in (nats, (*nats, "--signed-only")):
        result = _verify(index, anchor, *extra)
        assert result.returncode == 0, result.stdout
        assert "intact" in result.stdout
