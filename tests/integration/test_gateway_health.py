"""The gateway's health check (grpc.health.v1) over real gateways: Check, List and Watch on the
client and admin ports, a backend going away and coming back, an expired registry configuration,
and ``crossway gateway health`` as a subprocess."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crossway.demo.federation import POPULATION_SERVICE, Federation
from crossway.demo.processes import ManagedProcess
from crossway.security.keys import generate_signing_key, save_pem
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE = str(POPULATION_SERVICE)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
VALIDITY_S = 6


class HealthFederation(Federation):
    """The demo federation, its registry configuration short-lived, an [admin] port on 'population'."""

    def _write_population_gateway(self) -> None:
        super()._write_population_gateway()
        agency = self.population
        save_pem(agency.directory / "admin-idp.pub", generate_signing_key("ES256").public_key())
        assert agency.config_path is not None
        with agency.config_path.open("a") as f:
            f.write(
                '\n[admin]\nlisten = "127.0.0.1:0"\nissuer = "https://admin-idp.example"\n'
                'audience = "crossway-admin"\npublic_keys = ["admin-idp.pub"]\n'
            )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dedicated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HealthFederation]:
    async with HealthFederation(tmp_path_factory.mktemp("health"), config_validity_s=VALIDITY_S) as fed:
        yield fed


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_address(dedicated: HealthFederation) -> str:
    assert dedicated.population.process is not None
    match = await dedicated.population.process.wait_for(r"admin API of \S+ listening on 127\.0\.0\.1:(\d+)")
    return f"127.0.0.1:{match.group(1)}"


def _channel(fed: Federation, address: str) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(fed.ca_pem))


async def _list(fed: Federation, address: str) -> dict[str, str]:
    async with _channel(fed, address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        listed = await stub.List(health_pb2.HealthListRequest(), timeout=5)
    return {name: health_pb2.HealthCheckResponse.ServingStatus.Name(r.status) for name, r in listed.statuses.items()}


async def _check(fed: Federation, address: str, service: str = "") -> int:
    async with _channel(fed, address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def _get_person(fed: Federation) -> pb.Person:
    async with fed.channel() as channel:
        return await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"),),
            timeout=10,
        )


async def _until(watch: Any, wanted: int, timeout: float) -> None:
    """Read the Watch stream until it pushes ``wanted``; fail when it does not within ``timeout``."""

    async def read() -> None:
        while True:
            response = await watch.read()
            assert response is not grpc.aio.EOF, "the Watch stream ended"
            if response.status == wanted:
                return

    await asyncio.wait_for(read(), timeout)


def _cli(fed: Federation, tmp_path: Path, address: str, *extra: str) -> subprocess.CompletedProcess[str]:
    ca = tmp_path / "registry-ca.pem"
    ca.write_bytes(fed.ca_pem)
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "gateway", "health", "--address", address, "--ca", str(ca), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- a healthy federation ------------------------------------------------------------------------


async def test_a_healthy_federation_reports_both_gateways_serving_on_their_client_ports(federation: Federation) -> None:
    # Before any call the adapter has not seen its backend: UNKNOWN, published as such.
    assert (await _list(federation, federation.population.client_address))[SERVICE] == "UNKNOWN"
    assert (await _get_person(federation)).given_name == "Mari"
    consumer = await _list(federation, federation.tax.client_address)
    assert consumer == {"": "SERVING", "crossway.registry": "SERVING", "crossway.audit": "SERVING"}
    expected = {
        "": "SERVING",
        "crossway.registry": "SERVING",
        "crossway.audit": "SERVING",
        "crossway.policy": "SERVING",
        SERVICE: "SERVING",
    }
    provider: dict[str, str] = {}
    for _ in range(20):  # the gateway re-assesses its health twice a second
        provider = await _list(federation, federation.population.client_address)
        if provider == expected:
            break
        await asyncio.sleep(0.25)
    assert provider == expected
    assert await _check(federation, federation.population.client_address, SERVICE) == SERVING


async def test_an_unknown_health_entry_is_not_found(federation: Federation) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _check(federation, federation.tax.client_address, "EE/GOV/70000009/nobody/x.v1.Nothing")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_health_cli_prints_every_entry_and_exits_0_when_serving(
    federation: Federation, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(_cli, federation, tmp_path, federation.population.client_address)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "SERVING         (gateway)" in lines
    assert f"SERVING         {SERVICE}" in lines
    one = await asyncio.to_thread(
        _cli, federation, tmp_path, federation.tax.client_address, "--service", "crossway.registry"
    )
    assert (one.returncode, one.stdout.split()) == (0, ["SERVING", "crossway.registry"])


async def test_the_health_cli_exits_1_with_a_hint_when_nothing_listens(federation: Federation, tmp_path: Path) -> None:
    result = await asyncio.to_thread(_cli, federation, tmp_path, "127.0.0.1:9", "--timeout", "2")
    assert result.returncode == 1
    assert "error[health.unavailable]" in result.stderr and "hint:" in result.stderr


# -- a backend going away, a configuration expiring (a federation of their own) -----------------


async def test_a_provided_service_turns_not_serving_when_its_backend_stops_and_serving_when_it_returns(
    dedicated: HealthFederation, admin_address: str, tmp_path: Path
) -> None:
    async with _channel(dedicated, admin_address) as channel:  # the admin port asks for no token here
        watch: Any = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        await _get_person(dedicated)
        await _until(watch, SERVING, 10)
        # The backend goes away; the next call is the probe (adapters do not poll their backends).
        assert dedicated.backend is not None
        await dedicated.backend.stop()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _get_person(dedicated)
        assert dict(info.value.trailing_metadata() or ()).get("crossway-error") == "upstream.unavailable"
        await _until(watch, NOT_SERVING, 10)
        # One service down is not the gateway down: its other services, and its peers, still work.
        assert await _check(dedicated, admin_address) == SERVING
        down = await asyncio.to_thread(_cli, dedicated, tmp_path, admin_address, "--service", SERVICE)
        assert (down.returncode, down.stdout.split()) == (1, ["NOT_SERVING", SERVICE])
        # The backend comes back on the same port; the first call that gets through says so.
        listen = f"127.0.0.1:{dedicated.backend_port}"
        dedicated.backend = ManagedProcess(
            "backend", [sys.executable, "-m", "crossway.cli", "demo", "backend", "--listen", listen]
        )
        await dedicated.backend.start()
        await dedicated.backend.wait_for(r"backend listening")
        for _ in range(40):  # the adapter's channel reconnects with gRPC's backoff
            try:
                await _get_person(dedicated)
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
        await _until(watch, SERVING, 10)
        watch.cancel()


async def test_the_gateway_turns_not_serving_when_its_registry_configuration_expires(
    dedicated: HealthFederation, tmp_path: Path
) -> None:
    address = dedicated.tax.client_address
    async with _channel(dedicated, address) as channel:
        watch: Any = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        await _until(watch, SERVING, 5)
        # The registry goes away: nobody re-publishes, and the gateway's copy runs out.
        assert dedicated.registry is not None
        await dedicated.registry.aclose()
        dedicated.registry = None
        await _until(watch, NOT_SERVING, VALIDITY_S + 5)
        watch.cancel()
    assert (await _list(dedicated, address))["crossway.registry"] == "NOT_SERVING"
    result = await asyncio.to_thread(_cli, dedicated, tmp_path, address)
    assert result.returncode == 1
    assert "NOT_SERVING     (gateway)" in result.stdout.splitlines()
    assert "NOT_SERVING     crossway.registry" in result.stdout.splitlines()
