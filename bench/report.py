"""The benchmark's outputs: ``bench/results/latest.json`` and a table for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["cpu_budget", "format_table", "targets", "write_json"]

PATHS = ("direct", "proxy_chain", "crossway")


def targets(doc: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, judged on ratios from this one run."""
    proxy, crossway = doc["proxy_chain"], doc["crossway"]
    stream = doc.get("stream", {})
    growth = stream.get("rss_growth_mib", {})
    single = doc.get("latency_1_in_flight", {})
    judged = {
        "calls_per_s >= 0.75 x proxy_chain": doc["ratio_crossway_to_proxy_chain"] >= 0.75,
        "p99 <= 5 ms": crossway["p99_ms"] <= 5.0,
        "p50 <= proxy_chain p50 + 1 ms": crossway["p50_ms"] <= proxy["p50_ms"] + 1.0,
    }
    if "crossway" in single and "proxy_chain" in single:
        # What a path adds to one call, without the queueing of 64 in flight.
        judged["p50 <= proxy_chain p50 + 1 ms, one call in flight"] = (
            single["crossway"]["p50_ms"] <= single["proxy_chain"]["p50_ms"] + 1.0
        )
    return judged | {
        "stream RSS growth <= 64 MiB per gateway": bool(growth) and max(growth.values()) <= 64.0,
        "zero audit records lost": doc["audit_count"]["lost"] == 0,
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def _cpu(row: dict[str, Any]) -> str:
    parts = [f"{k.replace('_side', '')} {v:.0f}" for k, v in row["cpu_us_per_call"].items() if k != "loadgen"]
    return ", ".join(parts)


def _total(row: dict[str, Any], *, prefix: str = "") -> float:
    return float(sum(v for k, v in row["cpu_us_per_call"].items() if k.startswith(prefix)))


def cpu_budget(doc: dict[str, Any], ratio: float = 0.75) -> dict[str, float]:
    """Where a call's CPU goes, and what the two gateways may spend for crossway to reach ``ratio``.

    All processes share the machine's cores, so when every path is CPU-bound, calls/s scale as
    1 / (CPU µs per call, all processes). The gateways' budget is what is left of
    ``proxy_total / ratio`` after the processes both paths have (load generator, backend, NATS).
    """
    proxy, crossway = doc["proxy_chain"], doc["crossway"]
    proxy_total, crossway_total = _total(proxy), _total(crossway)
    gateways = _total(crossway, prefix="gateway")
    proxies = _total(proxy, prefix="proxy")
    budget = proxy_total / ratio - (crossway_total - gateways)
    out = {
        "proxies_us_per_call": round(proxies, 1),
        "gateways_us_per_call": round(gateways, 1),
        "gateways_budget_us_per_call": round(budget, 1),
        "ratio": ratio,
    }
    pipeline = doc.get("pipeline")
    if pipeline:
        out["pipeline_us_per_exchange"] = pipeline["us_per_exchange"]
    return out


def _cpu_budget(doc: dict[str, Any]) -> list[str]:
    b = doc.get("cpu_budget")
    if not b:
        return []
    lines = [
        f"CPU per call: both proxies {b['proxies_us_per_call']:,.0f} µs, both gateways {b['gateways_us_per_call']:,.0f} µs; "
        f"for {b['ratio']:.2f} x proxy chain the gateways may spend {b['gateways_budget_us_per_call']:,.0f} µs"
    ]
    if "pipeline_us_per_exchange" in b:
        lines.append(
            f"  of which Crossway's own pipeline code (both sides, no network, bench.pipeline): "
            f"{b['pipeline_us_per_exchange']:,.0f} µs; the rest is gRPC, NATS, tracing and the event loop"
        )
    in_flight = int(doc.get("settings", {}).get("in_flight", "64"))
    lines.append(
        f"  queueing at {in_flight} in flight: p50 >= {in_flight} / calls_per_s, so p99 <= 5 ms needs at least "
        f"{in_flight / 0.005:,.0f} calls/s (direct reached {doc['direct']['calls_per_s']:,.0f})"
    )
    return lines


def format_table(doc: dict[str, Any]) -> str:
    rows = [name for name in (*PATHS, *sorted(k for k in doc if k.startswith("crossway_"))) if name in doc]
    lines = [
        f"{'path':<22} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}  CPU µs/call by process",
        "-" * 100,
    ]
    for name in rows:
        r = doc[name]
        lines.append(f"{name:<22} {r['calls_per_s']:>9,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}  {_cpu(r)}")
    lines.append("")
    lines.append(
        f"crossway / proxy_chain = {doc['ratio_crossway_to_proxy_chain']:.2f}   "
        f"crossway / direct = {doc['ratio_crossway_to_direct']:.2f}"
    )
    durable = doc.get("durable_before_answer")
    if durable:
        lines.append(
            f"durable before answer: on {durable['calls_per_s_on']:,.0f} calls/s p50 {durable['p50_ms_on']:.2f} ms, "
            f"off (unsafe_release_before_durable) {durable['calls_per_s_off']:,.0f} calls/s "
            f"p50 {durable['p50_ms_off']:.2f} ms (on/off {durable['ratio_on_to_off']})"
        )
    single = doc.get("latency_1_in_flight")
    if single:
        parts = ", ".join(f"{name} p50 {r['p50_ms']:.2f} / p99 {r['p99_ms']:.2f} ms" for name, r in single.items())
        lines.append(f"one call in flight: {parts}")
    check = doc.get("loadgen_check")
    if check:
        lines.append(
            f"load generator check (direct): 1 process {check['direct_1_generator_calls_per_s']:,.0f} calls/s, "
            f"2 processes {check['direct_2_generators_calls_per_s']:,.0f} calls/s"
        )
    stream = doc.get("stream")
    if stream:
        growth = ", ".join(f"{k} +{v:.1f} MiB" for k, v in stream["rss_growth_mib"].items())
        lines.append(
            f"stream {stream['bytes'] / (1 << 20):.0f} MiB through both gateways: {stream['mib_per_s']:.1f} MiB/s; "
            f"RSS growth {growth}"
        )
    delivery = doc.get("delivery")
    if delivery:
        mine, bare = delivery["crossway_send_to_handover"], delivery["jetstream_publish_consume"]
        lines.append(
            f"delivery, Send → ContentHandover, {doc.get('settings', {}).get('in_flight', '64')} in flight: "
            f"{mine['messages_per_s']:,.0f} messages/s (p50 {mine['p50_ms']:.0f} / p99 {mine['p99_ms']:.0f} ms); "
            f"bare JetStream publish+consume {bare['messages_per_s']:,.0f} messages/s "
            f"(p50 {bare['p50_ms']:.1f} ms); ratio {delivery['ratio']:.3f}"
        )
    fanout = doc.get("fanout")
    if fanout:
        lines.append(
            f"topics, Publish → handed over to {fanout['subscribers']} subscribers, {fanout['events']} events: "
            f"{fanout['crossway_publish_to_handover_events_per_s']:,.0f} events/s; bare JetStream fan-out "
            f"{fanout['jetstream_fanout_events_per_s']:,.0f} events/s; ratio {fanout['ratio']:.3f}"
        )
    lines.extend(_cpu_budget(doc))
    policy, audit = doc.get("policy"), doc.get("audit_publish")
    if policy:
        lines.append(
            f"policy decision, {policy['policies']} policies / {policy['services']} services: "
            f"p50 {policy['p50_us']:.0f} µs, p99 {policy['p99_us']:.0f} µs"
        )
    if audit:
        lines.append(f"audit publish (acked, pipelined): {audit['acked_per_s']:,.0f} records/s")
    count = doc["audit_count"]
    lines.append(
        f"audit records after the crossway runs: expected {count['expected']}, in JetStream {count['counted']}, "
        f"lost {count['lost']}"
    )
    lines.append("")
    lines.append("targets:")
    for name, ok in doc["targets"].items():
        lines.append(f"  [{'met' if ok else 'MISSED'}] {name}")
    return "\n".join(lines)
