"""Issue 11, item 7 under fire: 64 calls in flight for 60 s on a 3-node cluster; one node killed -9
at 20 s and restarted at 40 s; then the same with the audit stream's leader. No audit record may be
lost or doubled: exactly one per message id and side, counted in the stream itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from audit.trail import count_stream_records, fetch_records
from crossway.backbone import AUDIT_STREAM
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(480)]

IN_FLIGHT = 64
RUN_S, KILL_AT_S, RESTART_AT_S = 60.0, 20.0, 40.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("chaos"), nats_nodes=3) as federation:
        yield federation


class Load:
    """``IN_FLIGHT`` callers, each calling again as soon as its call ends, until stopped."""

    def __init__(self, fed: Federation) -> None:
        self._fed = fed
        self.ok: list[str] = []
        self.errors: Counter[str] = Counter()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        async with self._fed.channel() as channel:
            stub = pb_grpc.PersonRegistryStub(channel)
            await asyncio.gather(*(self._caller(stub) for _ in range(IN_FLIGHT)))

    async def _caller(self, stub: pb_grpc.PersonRegistryStub) -> None:
        while not self.stop.is_set():
            md = (("authorization", f"Bearer {self._fed.token()}"), ("crossway-purpose", "tax-assessment"))
            call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=20)
            try:
                await call
                self.ok.append(str(dict(await call.trailing_metadata() or ())["crossway-message-id"]))
            except grpc.aio.AioRpcError as exc:
                code = dict(exc.trailing_metadata() or ()).get("crossway-error", exc.code().name)
                self.errors[str(code)] += 1


async def _leader(fed: Federation) -> int:
    nc = await fed.nats.admin_connection()
    try:
        info = await nc.jetstream(timeout=5).stream_info(AUDIT_STREAM)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader
    return int(info.cluster.leader.removeprefix("n"))


async def _run_with_a_node_killed(fed: Federation, victim: int) -> Load:
    load = Load(fed)
    started = time.monotonic()
    task = asyncio.create_task(load.run())
    await asyncio.sleep(KILL_AT_S)
    await fed.nats.nodes[victim].kill()  # SIGKILL: no flush, no goodbye
    await asyncio.sleep(RESTART_AT_S - (time.monotonic() - started))
    await fed.nats.nodes[victim].start()
    await asyncio.sleep(RUN_S - (time.monotonic() - started))
    load.stop.set()
    await task
    return load


async def test_no_audit_record_is_lost_or_doubled_when_a_node_then_the_stream_leader_is_killed(
    fed: Federation,
) -> None:
    leader = await _leader(fed)
    follower = next(i for i in range(3) if i != leader)
    runs = {"follower": await _run_with_a_node_killed(fed, follower)}
    runs["stream leader"] = await _run_with_a_node_killed(fed, await _leader(fed))
    ok = [m for load in runs.values() for m in load.ok]
    errors = sum((load.errors for load in runs.values()), Counter())
    print(f"\nchaos: {len(ok)} exchanges ok, errors by code {dict(errors)}")
    for name, load in runs.items():
        print(f"  {name} killed: {len(load.ok)} ok, {dict(load.errors)}")
    assert len(ok) > 1000  # the load really ran through both faults
    felt = [line for a in fed.agencies if a.process is not None for line in a.process.lines if "unacked" in line]
    print(f"  the gateways' audit sinks logged {len(felt)} batch(es) left unacked by the faults (retried)")

    # Every record reaches the stream once: spooled ones replayed, duplicates dropped by Nats-Msg-Id.
    expected = 2 * (len(ok) + sum(errors.values()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if await count_stream_records(fed.auditor) >= expected:
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(2.0)  # a late duplicate would land now
    records = await fetch_records(fed.auditor)
    sides = Counter((r.message_id, r.side) for r in records)
    doubled = {key: n for key, n in sides.items() if n > 1}
    assert not doubled, f"{len(doubled)} records stored twice, e.g. {next(iter(doubled))}"
    missing = [(m, s) for m in ok for s in ("client", "provider") if (m, s) not in sides]
    assert not missing, f"{len(missing)} records lost, e.g. {missing[0]}"
