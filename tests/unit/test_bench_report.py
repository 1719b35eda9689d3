"""``make bench``'s report: the CPU budget is plain arithmetic over the measured rows."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import cpu_budget, format_table


def _doc() -> dict[str, Any]:
    row = {"calls_per_s": 1.0, "p50_ms": 1.0, "p99_ms": 2.0}
    return {
        "settings": {"in_flight": "64"},
        "direct": {**row, "cpu_us_per_call": {"backend": 400.0, "loadgen": 300.0}},
        "proxy_chain": {
            **row,
            "cpu_us_per_call": {
                "proxy_client_side": 600.0,
                "proxy_provider_side": 600.0,
                "backend": 400.0,
                "loadgen": 300.0,
            },
        },
        "crossway": {
            **row,
            "cpu_us_per_call": {
                "gateway_client_side": 1500.0,
                "gateway_provider_side": 1700.0,
                "backend": 400.0,
                "nats": 100.0,
                "loadgen": 300.0,
            },
        },
        "pipeline": {"us_per_exchange": 700.0},
        "ratio_crossway_to_proxy_chain": 0.5,
        "ratio_crossway_to_direct": 0.2,
        "audit_count": {"expected": 2, "counted": 2, "lost": 0},
        "targets": {},
    }


def test_the_gateways_budget_is_what_the_ratio_leaves_after_the_shared_processes() -> None:
    budget = cpu_budget(_doc())
    # proxy chain: 1,900 µs per call in all; at 0.75 crossway may spend 1,900 / 0.75 = 2,533.3,
    # of which backend + NATS + load generator take 800.
    assert budget["gateways_budget_us_per_call"] == pytest.approx(1733.3, abs=0.1)
    assert (budget["gateways_us_per_call"], budget["proxies_us_per_call"]) == (3200.0, 1200.0)
    assert budget["pipeline_us_per_exchange"] == 700.0


def test_the_table_shows_the_budget_and_the_queueing_bound() -> None:
    doc = _doc()
    doc["cpu_budget"] = cpu_budget(doc)
    table = format_table(doc)
    assert "the gateways may spend 1,733 µs" in table
    assert "needs at least 12,800 calls/s" in table
