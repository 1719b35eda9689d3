"""Issue 12 acceptance: no answer without its record, through crashes of either gateway.

Real gateways, NATS and backend; 64 calls in flight; ``kill -9`` of the provider gateway, then of
the client gateway. Every exchange whose caller got an answer must have both records in the
audit stream, exactly once each — counted in the stream itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.trail import AuditRecord, fetch_records
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

IN_FLIGHT = 64


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("durability")) as fed:
        yield fed


@dataclass
class Load:
    """``IN_FLIGHT`` callers, each calling again as soon as it has its answer (or error)."""

    fed: Federation
    answered: list[str] = field(default_factory=list)  # message ids of calls that returned OK
    failed: Counter[str] = field(default_factory=Counter)  # status names of the others
    stop: bool = False

    async def run(self) -> None:
        async with self.fed.channel() as channel:
            stub = pb_grpc.PersonRegistryStub(channel)
            await asyncio.gather(*(self._caller(stub, i) for i in range(IN_FLIGHT)))

    async def _caller(self, stub: pb_grpc.PersonRegistryStub, index: int) -> None:
        while not self.stop:
            md = (("authorization", f"Bearer {self.fed.token()}"), ("crossway-purpose", "tax-assessment"))
            try:
                if index % 4 == 0:  # a quarter of them server-streaming
                    call = stub.ListPeople(pb.ListPeopleRequest(family_name="Tamm"), metadata=md, timeout=15)
                    people = [p async for p in call]
                    assert people  # the real backend has two Tamms
                else:
                    call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=15)
                    await call
                trailing = dict(await call.trailing_metadata() or ())
                self.answered.append(str(trailing["crossway-message-id"]))
            except grpc.aio.AioRpcError as exc:
                self.failed[exc.code().name] += 1
                await asyncio.sleep(0.05)

    async def until(self, answers: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while len(self.answered) < answers:
            assert time.monotonic() < deadline, f"only {len(self.answered)} answers; failures {dict(self.failed)}"
            await asyncio.sleep(0.02)


async def _records_of(fed: Federation, ids: set[str], within: float = 60.0) -> list[AuditRecord]:
    """The stream's records once every answered exchange has both sides there (or time is up)."""
    deadline = time.monotonic() + within
    while True:
        records = await fetch_records(fed.auditor)
        present = {(r.message_id, r.side) for r in records}
        if all((m, s) in present for m in ids for s in ("client", "provider")) or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.5)


async def test_kill_9_of_either_gateway_under_load_loses_no_record_of_an_answered_exchange(
    federation: Federation, tmp_path: Path
) -> None:
    load = Load(federation)
    task = asyncio.create_task(load.run())
    try:
        await load.until(300)
        assert federation.population.process is not None
        federation.population.process.kill()  # SIGKILL: no drain, whatever was in memory is gone
        killed_provider_at = len(load.answered)
        await asyncio.sleep(0.5)
        await federation.restart_gateway(federation.population)
        await load.until(killed_provider_at + 300)
        assert federation.tax.process is not None
        federation.tax.process.kill()
        killed_client_at = len(load.answered)
        await asyncio.sleep(0.5)
        load.stop = True
        await asyncio.wait_for(task, 30)
    finally:
        load.stop = True
        if not task.done():
            task.cancel()
    # The client gateway comes back (its spool, if any, is replayed at start).
    await federation.restart_gateway(federation.tax)

    ids = set(load.answered)
    assert len(ids) == len(load.answered), "message ids are unique"
    records = await _records_of(federation, ids)
    sides = Counter((r.message_id, r.side) for r in records)
    missing = sorted((m, s) for m in ids for s in ("client", "provider") if sides[(m, s)] == 0)
    # Refusals before a request was authenticated have no message id: distinct exchanges, not doubles.
    doubled = sorted(key for key, n in sides.items() if n > 1 and key[0])
    print(
        f"answered {len(ids)} (provider killed after {killed_provider_at}, client after {killed_client_at}); "
        f"failed {dict(load.failed)}; records in the stream {len(records)}; missing {len(missing)}; "
        f"doubled {len(doubled)} {doubled[:3]}"
    )
    assert load.failed, "the kills must hit calls in flight"
    assert missing == [], f"{len(missing)} record(s) of answered exchanges are not in the stream"
    assert doubled == [], f"{len(doubled)} record(s) are in the stream more than once"
    assert len({r.record_id for r in records}) == len(records)
