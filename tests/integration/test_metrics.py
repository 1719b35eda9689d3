"""Prometheus /metrics of gateways running two worker processes each (issue 17).

The calls are spread over the tax gateway's two processes (one connection per call: the kernel
hands each to one of them) and, as the kernel places the peer connections, over the population
gateway's two (peer_connections = 2); the primary's /metrics must add up every process's counts,
each exchange counted once per side.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from crossway.demo.federation import POPULATION_SERVICE, Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALLS = 20


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    json_logs = '\n[logging]\nformat = "json"\n'
    async with Federation(tmp_path_factory.mktemp("metrics"), workers=2, gateway_toml=json_logs) as fed:
        yield fed


async def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == want for k, want in labels.items()))


def _counter_files(directory: Path) -> list[Path]:
    return list(directory.glob("counter_*.db"))  # one per process that counted something


async def _get_person(fed: Federation) -> None:
    async with fed.channel() as channel:  # a fresh connection: any of the gateway's processes
        await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment")),
            timeout=10,
        )


async def _denied(fed: Federation) -> str:
    async with fed.marketing_channel() as channel:
        try:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))
    raise AssertionError("the marketing subsystem was let through")


async def test_the_demo_gateways_print_their_metrics_urls(federation: Federation) -> None:
    for agency in federation.agencies:
        assert agency.metrics_url.startswith("http://127.0.0.1:") and agency.metrics_url.endswith("/metrics")


async def test_a_scrape_of_a_two_process_gateway_counts_every_exchange_once(federation: Federation) -> None:
    for _ in range(CALLS):
        await _get_person(federation)
    assert await _denied(federation) == "policy.denied"
    labels = {"service": str(POPULATION_SERVICE), "method": "GetPerson"}
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        tax = await _scrape(federation.tax.metrics_url)
        population = await _scrape(federation.population.metrics_url)
        client_ok = _total(tax, "crossway_exchanges_total", side="client", code="ok", **labels)
        provider_ok = _total(population, "crossway_exchanges_total", side="provider", code="ok", **labels)
        if (client_ok, provider_ok) == (CALLS, CALLS) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (client_ok, provider_ok) == (CALLS, CALLS)
    # The denial is counted on both sides with its code.
    assert _total(tax, "crossway_exchanges_total", side="client", code="policy.denied", **labels) == 1
    assert _total(population, "crossway_exchanges_total", side="provider", code="policy.denied", **labels) == 1
    # Latency histograms count the same exchanges.
    assert _total(tax, "crossway_exchange_duration_seconds_count", side="client", **labels) == CALLS + 1
    # Both of the tax gateway's processes counted some of them (one connection per call, 21
    # connections: the sum is not one process's view). The population gateway's share depends on
    # where the kernel put the tax workers' few long-lived peer connections (all on one process
    # about one run in eight), so there the sum above is what is checked.
    assert len(_counter_files(federation.tax.directory / "data" / "metrics")) == 2
    assert len(_counter_files(federation.population.directory / "data" / "metrics")) >= 1


async def test_the_gauges_show_expiry_nats_and_the_policy_version(federation: Federation) -> None:
    population = await _scrape(federation.population.metrics_url)
    assert _total(population, "crossway_registry_configuration_expiry_seconds") > 0
    assert _total(population, "crossway_registry_configuration_serial") >= 1
    assert _total(population, "crossway_certificate_expiry_seconds", certificate="tls") > 300 * 86400
    assert _total(population, "crossway_certificate_expiry_seconds", certificate="signing") > 300 * 86400
    assert _total(population, "crossway_nats_connected") == 1
    assert _total(population, "crossway_policy_version") == 0  # the directory's version, on each process
    assert "crossway_audit_records_spooled" in population
    assert "crossway_audit_records_pending" in population
    assert "crossway_audit_checkpoint_lag_records" in population


async def test_a_workers_json_log_lines_reach_the_primarys_output_as_json_naming_the_worker(
    federation: Federation,
) -> None:
    assert federation.tax.process is not None
    logged = [json.loads(line) for line in federation.tax.process.lines if line.startswith("{")]
    assert {entry["worker"] for entry in logged} == {0, 1}
    assert all(entry["gateway"] == str(federation.tax.gateway) for entry in logged)
