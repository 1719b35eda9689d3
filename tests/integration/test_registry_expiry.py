"""When the registry stops publishing, gateways keep the last good configuration until it expires,
then refuse to exchange: stale means deny."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

VALIDITY_S = 6


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def short_lived(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("short-lived")
    async with Federation(workdir, config_validity_s=VALIDITY_S) as fed:
        yield fed


async def _get_person(fed: Federation) -> pb.Person:
    async with fed.channel() as channel:
        return await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"),),
            timeout=10,
        )


async def test_an_expired_registry_configuration_stops_exchanges_with_registry_stale(short_lived: Federation) -> None:
    assert (await _get_person(short_lived)).given_name == "Mari"
    # The registry goes away: nobody re-publishes, the gateways' copy runs out.
    assert short_lived.registry is not None
    await short_lived.registry.aclose()
    short_lived.registry = None
    await asyncio.sleep(VALIDITY_S + 1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _get_person(short_lived)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(info.value.trailing_metadata() or ()).get("crossway-error") == "registry.stale"
    assert "expired" in (info.value.details() or "")
