"""The registry operator disables and enables what it admitted; every gateway follows within
seconds, refusing with the disabled thing's own code (issue 17)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _call(fed: Federation) -> str:
    """ "ok", or the crossway-error code of the refusal."""
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


async def _within(fed: Federation, outcome: str, seconds: float) -> float:
    """Call until the outcome is ``outcome``; how long it took (fails after ``seconds``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (got := await _call(fed)) != outcome:
        assert loop.time() - start < seconds, f"still {got!r} after {seconds} s, not {outcome!r}"
        await asyncio.sleep(0.1)
    return loop.time() - start


async def test_a_disabled_subsystem_is_refused_with_its_own_code_within_five_seconds(federation: Federation) -> None:
    assert federation.authority is not None
    assert await _call(federation) == "ok"
    federation.authority.lifecycle.disable("subsystem", str(TAX_SUBSYSTEM), "integration test")
    await _within(federation, "client.disabled", 5)
    federation.authority.lifecycle.enable("subsystem", str(TAX_SUBSYSTEM))
    await _within(federation, "ok", 5)


async def test_a_disabled_service_is_refused_with_its_own_code(federation: Federation) -> None:
    assert federation.authority is not None
    federation.authority.lifecycle.disable("service", str(POPULATION_SERVICE))
    await _within(federation, "service.disabled", 5)
    federation.authority.lifecycle.enable("service", str(POPULATION_SERVICE))
    await _within(federation, "ok", 5)


async def test_a_disabled_provider_gateway_is_not_called(federation: Federation) -> None:
    assert federation.authority is not None
    federation.authority.lifecycle.disable("gateway", str(federation.population.gateway))
    await _within(federation, "peer.disabled", 5)
    federation.authority.lifecycle.enable("gateway", str(federation.population.gateway))
    await _within(federation, "ok", 5)
