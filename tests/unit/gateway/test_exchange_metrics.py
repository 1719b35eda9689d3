"""Exchanges are counted once per side, from the audit record, with bounded labels (issue 17)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from audit.trail.samples import sample_record
from crossway.core.errors import CrosswayError
from crossway.demo.federation import MARKETING_SUBSYSTEM, POPULATION_SERVICE
from crossway.demo.inprocess import InProcessPair
from gateway.shared.metrics import MAX_SERIES, MemoryMetrics, PrometheusMetrics, Vitals, exchange_labels
from protos.demo.population.v1 import population_pb2 as pb

SERVICE = str(POPULATION_SERVICE)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[InProcessPair]:
    built = InProcessPair.build(tmp_path)
    yield built
    await built.aclose()


def _get() -> bytes:
    return pb.GetPersonRequest(national_id="38001010001").SerializeToString()


async def test_every_client_side_exchange_is_counted_once_with_its_code(pair: InProcessPair) -> None:
    metrics = pair.client_context.metrics = MemoryMetrics()
    await pair.client.unary(pair.call("GetPerson"), _get())
    await pair.client.unary(pair.call("GetPerson"), _get())
    with pytest.raises(CrosswayError):
        await pair.client.unary(pair.call("GetPerson", subsystem=MARKETING_SUBSYSTEM), _get())
    assert metrics.counts == {
        ("client", SERVICE, "GetPerson", "ok"): 2,
        ("client", SERVICE, "GetPerson", "policy.denied"): 1,
    }
    assert len(pair.client_audit.records) == 3  # the same exchanges as the audit trail


async def test_a_call_to_an_unknown_method_is_counted_without_the_callers_path(pair: InProcessPair) -> None:
    metrics = pair.client_context.metrics = MemoryMetrics()
    with pytest.raises(CrosswayError):
        await pair.client.unary(pair.call("/population.v1.PersonRegistry/NoSuchMethodXYZ"), b"")
    assert metrics.counts == {("client", "", "", "method.unknown"): 1}


def test_labels_of_unrouted_failures_are_empty_and_ok_is_named() -> None:
    record = sample_record()
    assert exchange_labels(replace(record, error_code=""))[3] == "ok"
    assert exchange_labels(replace(record, error_code="service.unknown", service="x/y", method="z"))[1:3] == ("", "")


def test_prometheus_metrics_fold_new_pairs_into_other_past_the_limit() -> None:
    metrics = PrometheusMetrics()
    record = replace(sample_record(), error_code="", request_in_ms=1_000, response_out_ms=1_250)
    for n in range(MAX_SERIES + 5):
        metrics.exchange(replace(record, method=f"M{n}"))
    seen = {s.labels["method"] for f in metrics.registry.collect() for s in f.samples if s.name.endswith("_total")}
    assert len(seen) == MAX_SERIES + 1 and "(other)" in seen
    durations = [
        s.value
        for f in metrics.registry.collect()
        for s in f.samples
        if s.name == "crossway_exchange_duration_seconds_sum" and s.labels["method"] == "M0"
    ]
    assert durations == [0.25]


def test_prometheus_gauges_take_the_vital_signs() -> None:
    metrics = PrometheusMetrics()
    metrics.update(
        Vitals(
            audit_pending=3,
            audit_spooled=7,
            configuration_serial=12,
            configuration_expiry_s=300,
            certificate_expiry_s={"tls": 86400.0},
            nats_connected=True,
            policy_version=4,
        )
    )
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in metrics.registry.collect() for s in f.samples}
    assert values[("crossway_audit_records_spooled", ())] == 7
    assert values[("crossway_registry_configuration_serial", ())] == 12
    assert values[("crossway_certificate_expiry_seconds", (("certificate", "tls"),))] == 86400
    assert values[("crossway_nats_connected", ())] == 1
    assert values[("crossway_policy_version", ())] == 4
