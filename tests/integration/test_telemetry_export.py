"""OTLP export of spans and metrics to a collector stand-in, and JSON log lines (issue 17).

The gateways are configured the standard way only: OTEL_* environment variables for the export,
``[logging] format = "json"`` for the logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from crossway.demo.federation import POPULATION_SERVICE, Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc
from tests.integration.otlp_collector import OtlpCollector, Received

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRACE_ID = os.urandom(16).hex()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def collector() -> AsyncIterator[OtlpCollector]:
    stand_in = OtlpCollector()
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector) -> AsyncIterator[Federation]:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    workdir = tmp_path_factory.mktemp("otlp")
    async with Federation(workdir, gateway_env=env, gateway_toml='\n[logging]\nformat = "json"\n') as fed:
        yield fed


async def _call(fed: Federation) -> None:
    async with fed.channel() as channel:
        await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"),
            metadata=(
                ("authorization", f"Bearer {fed.token()}"),
                ("traceparent", f"00-{TRACE_ID}-{os.urandom(8).hex()}-01"),
            ),
            timeout=10,
        )


async def test_spans_of_both_gateways_reach_the_collector_in_the_callers_trace(
    federation: Federation, collector: OtlpCollector
) -> None:
    await _call(federation)

    def both(received: Received) -> bool:
        services = {service for service, _, trace_id in received.spans if trace_id == TRACE_ID}
        return {f"crossway-gateway {a.gateway}" for a in (federation.tax, federation.population)} <= services

    await collector.wait_for(both)


async def test_exchange_metrics_of_both_sides_reach_the_collector(
    federation: Federation, collector: OtlpCollector
) -> None:
    await _call(federation)
    wanted = {("client", str(federation.tax.gateway)), ("provider", str(federation.population.gateway))}

    def counted(received: Received) -> bool:
        seen = {
            (attrs["side"], service.removeprefix("crossway-gateway "))
            for service, name, attrs, value in received.points
            if name == "crossway.exchanges"
            and attrs.get("service") == str(POPULATION_SERVICE)
            and attrs.get("code") == "ok"
            and value >= 1
        }
        return wanted <= seen

    await collector.wait_for(counted)
    names = {name for _, name, _, _ in collector.received.points}
    assert {"crossway.exchange.duration", "crossway.registry.configuration.expiry", "crossway.nats.connected"} <= names


async def test_every_log_line_of_a_json_gateway_is_one_object_naming_the_gateway(federation: Federation) -> None:
    assert federation.population.process is not None
    lines = federation.population.process.lines
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert logged, lines
    for entry in logged:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["gateway"] == str(federation.population.gateway) and entry["worker"] == 0
    assert any(e["logger"] == "gateway.provider.authorization" for e in logged)
    # What is not JSON are the CLI's own status lines (ready, configuration serial), not log lines.
    assert all(" INFO " not in line and " WARNING " not in line for line in lines if not line.startswith("{"))


async def test_a_call_to_a_gateway_exporting_telemetry_still_answers(federation: Federation) -> None:
    async with federation.channel() as channel:
        try:
            person = await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"),
                metadata=(("authorization", f"Bearer {federation.token()}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(exc.details()) from exc
    assert person.given_name == "Mari"
