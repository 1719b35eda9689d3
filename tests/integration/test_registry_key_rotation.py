"""Rotating the registry's configuration key keeps every gateway serving, without a flag day (issue 17).

The tax gateway pins the *old* anchor for the whole test (an agency that has not replaced its
anchor.json yet); the population gateway reads the registry's anchor.json, which the rotation
rewrites. Calls run without a pause while the registry announces its next key, rotates to it, and
both gateways restart afterwards: none may fail.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("rotation")) as fed:
        assert fed.tax.config_path is not None
        shutil.copy(fed.workdir / "registry" / "anchor.json", fed.tax.directory / "anchor-pinned.json")
        text = fed.tax.config_path.read_text()
        fed.tax.config_path.write_text(text.replace('"../registry/anchor.json"', '"anchor-pinned.json"'))
        await fed.restart_gateway(fed.tax)
        yield fed


async def _call(fed: Federation) -> str:
    async with fed.channel() as channel:
        try:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"),
                metadata=(("authorization", f"Bearer {fed.token()}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return str(dict(exc.trailing_metadata() or ()).get("crossway-error", exc.code().name))
    return "ok"


async def test_every_gateway_keeps_serving_across_a_key_rotation_and_a_restart(federation: Federation) -> None:
    authority = federation.authority
    assert authority is not None
    old_key = authority.anchor.key_id
    outcomes: list[str] = []
    stop = asyncio.Event()

    async def keep_calling() -> None:
        while not stop.is_set():
            outcomes.append(await _call(federation))
            await asyncio.sleep(0.05)

    caller = asyncio.create_task(keep_calling())
    try:
        authority.announce_next_key()
        await federation.publish_and_wait()  # both gateways hold a configuration announcing it
        new_key = authority.rotate_key()
        await federation.publish_and_wait()  # both accept one signed with the new key
        assert new_key != old_key
    finally:
        stop.set()
        await caller
    assert outcomes and set(outcomes) == {"ok"}, outcomes
    # A restart with the old anchor (tax) and with the new one (population): both start and serve.
    for agency in (federation.tax, federation.population):
        await federation.restart_gateway(agency)
    assert await _call(federation) == "ok"
    for agency in federation.agencies:
        assert agency.process is not None
        assert not any("ignoring registry configuration" in line for line in agency.process.lines)
