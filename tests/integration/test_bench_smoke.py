"""``make bench``'s harness, run for a tiny window: it starts everything and writes the JSON.

The figures of such a short run mean nothing and nothing here asserts a time; the test keeps
the harness (generators, proxies, worker gateways, audit count) working.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.run import BenchSettings, run_bench


async def test_a_tiny_bench_run_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    await run_bench(BenchSettings.quick(output))
    doc = json.loads(output.read_text())
    for path in ("direct", "proxy_chain", "crossway", "crossway_release_before_durable", "crossway_workers_2"):
        assert {"calls_per_s", "p50_ms", "p99_ms", "cpu_us_per_call"} <= doc[path].keys()
        assert doc[path]["calls"] > 0
    assert {
        "ratio_crossway_to_proxy_chain",
        "ratio_crossway_to_direct",
        "stream",
        "policy",
        "audit_publish",
        "pipeline",
        "cpu_budget",
    } <= doc.keys()
    assert doc["pipeline"]["us_per_exchange"] > 0
    budget = doc["cpu_budget"]
    assert budget["gateways_us_per_call"] > 0 and budget["proxies_us_per_call"] > 0
    assert doc["crossway"]["errors"] == 0
    assert set(doc["latency_1_in_flight"]) == {"direct", "proxy_chain", "crossway", "crossway_release_before_durable"}
    assert doc["durable_before_answer"]["calls_per_s_on"] > 0 and doc["durable_before_answer"]["calls_per_s_off"] > 0
    assert all(row["calls_per_s"] > 0 for row in doc["latency_1_in_flight"].values())
    assert doc["audit_count"]["lost"] == 0  # every exchange's two records are in JetStream
    delivery = doc["delivery"]
    assert delivery["crossway_send_to_handover"]["messages"] > 0
    assert delivery["jetstream_publish_consume"]["messages"] > 0
    fanout = doc["fanout"]  # topics (issue 15): published and handed over to 3 subscribers, and bare fan-out
    assert fanout["crossway_publish_to_handover_events_per_s"] > 0 and fanout["jetstream_fanout_events_per_s"] > 0


async def test_the_pipeline_measurement_runs_a_real_exchange_through_both_pipelines(tmp_path: Path) -> None:
    from bench.pipeline import measure

    # A handful of exchanges: this checks that the measurement still drives the real pipelines
    # (a signed, authorized, audited exchange per call), not how fast they are.
    cost = await measure(tmp_path, exchanges=20)
    assert cost.statuses == ("OK",) * 80  # 20 warm-up + 20 measured exchanges, two sides each
    assert cost.us_per_exchange > 0
