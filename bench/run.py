"""``make bench``: every figure of issue 6 in one run, written to ``bench/results/latest.json``.

Order of work: the in-process micro-benchmarks (policy decisions, audit publishing), then one
demo federation hosting the three paths measured in interleaved rounds (direct, proxy chain,
crossway, repeated ``runs`` times, so drift on a shared machine hits all three alike), the
100 MiB stream, and the audit count; then a second federation whose gateways run several worker
processes, to show how a gateway scales over cores; then registered delivery (Send to
ContentHandover) beside bare JetStream publish-and-consume, in a federation of its own; then
topics (Publish to handed over at 3 subscribers) beside bare JetStream fan-out to 3 consumers.

``crossway`` releases each answer only once both sides' audit records are durable (issue 12);
the row ``crossway_release_before_durable`` is the same path through a second federation, up at
the same time, whose gateways set ``[audit] unsafe_release_before_durable = true`` — measured in
the same interleaved rounds, so the two rows compare what durability costs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.trail import count_stream_records
from bench.audit_publish import measure as measure_audit
from bench.delivery import measure as measure_delivery
from bench.fanout import measure as measure_fanout
from bench.measure import RunResult, median_run, run_load
from bench.pipeline import measure as measure_pipeline
from bench.policy_decisions import measure as measure_policy
from bench.report import cpu_budget, format_table, targets, write_json
from bench.scenarios import crossway_spec, direct_spec, proxy_chain, stream_transfer
from crossway.demo.federation import Federation

__all__ = ["BenchSettings", "main", "run_bench"]

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True, slots=True)
class BenchSettings:
    warmup_s: float = 2.0
    window_s: float = 5.0
    runs: int = 3
    in_flight: int = 64
    payload_bytes: int = 1024
    generators: int = 1
    stream_bytes: int = 100 << 20
    stream_chunk_bytes: int = 64 << 10
    policy_calls: int = 20_000
    audit_records: int = 50_000
    pipeline_exchanges: int = 3000
    fanout_events: int = 500
    workers: int = 2  # the scaling row: gateways with this many processes (1 = skip)
    output: Path = RESULTS

    @classmethod
    def quick(cls, output: Path) -> BenchSettings:
        """A tiny run that exercises every part (the smoke test); its figures mean nothing."""
        return cls(
            warmup_s=0.3,
            window_s=0.7,
            runs=1,
            in_flight=8,
            stream_bytes=1 << 20,
            policy_calls=200,
            audit_records=500,
            pipeline_exchanges=50,
            fanout_events=20,
            workers=2,
            output=output,
        )


async def _expected_records(fed: Federation, expected: int, settle_s: float = 30.0) -> int:
    """Records in the stream, once it reaches ``expected`` or stops growing (acks are async)."""
    deadline = time.monotonic() + settle_s
    counted, stable_since = -1, time.monotonic()
    while True:
        now = await count_stream_records(fed.auditor)
        if now != counted:
            counted, stable_since = now, time.monotonic()
        if counted >= expected or time.monotonic() - stable_since > 5 or time.monotonic() > deadline:
            return counted
        await asyncio.sleep(0.2)


UNSAFE = "crossway_release_before_durable"


async def _paths(s: BenchSettings, workdir: Path, doc: dict[str, Any]) -> None:
    runs: dict[str, list[RunResult]] = {"direct": [], "proxy_chain": [], "crossway": [], UNSAFE: []}
    async with (
        Federation(workdir / "federation", require_encryption=False) as fed,
        Federation(workdir / "federation-unsafe", require_encryption=False, unsafe_release_before_durable=True) as fast,
    ):
        direct, direct_groups = direct_spec(fed, s.payload_bytes, s.in_flight)
        cross, cross_groups = crossway_spec(fed, s.payload_bytes, s.in_flight)
        unsafe, unsafe_groups = crossway_spec(fast, s.payload_bytes, s.in_flight)
        unsafe_calls = 0
        load = {"warmup_s": s.warmup_s, "window_s": s.window_s}
        # Is one generator process enough? If two push the direct path much harder, it is not.
        one = await run_load(direct, generators=1, groups=direct_groups, **load)
        two = await run_load(direct, generators=2, groups=direct_groups, **load)
        doc["loadgen_check"] = {
            "direct_1_generator_calls_per_s": round(one.calls_per_s, 1),
            "direct_2_generators_calls_per_s": round(two.calls_per_s, 1),
            "generators_used": s.generators,
        }
        crossway_calls = 0
        async with proxy_chain(fed, s.payload_bytes, s.in_flight) as (chain, chain_groups):
            for _ in range(s.runs):
                runs["direct"].append(await run_load(direct, generators=s.generators, groups=direct_groups, **load))
                runs["proxy_chain"].append(await run_load(chain, generators=s.generators, groups=chain_groups, **load))
                result = await run_load(cross, generators=s.generators, groups=cross_groups, **load)
                runs["crossway"].append(result)
                crossway_calls += result.total_ok + result.errors
                result = await run_load(unsafe, generators=s.generators, groups=unsafe_groups, **load)
                runs[UNSAFE].append(result)
                unsafe_calls += result.total_ok + result.errors
            # One call in flight: with 64 in flight latency is queueing (in-flight ÷ throughput) on
            # this 2-core machine, so this row shows what each path itself adds to a call. Short
            # runs, interleaved like the others, medians of them.
            single = {"warmup_s": min(1.0, s.warmup_s), "window_s": min(3.0, s.window_s)}
            paths = (
                ("direct", direct, direct_groups),
                ("proxy_chain", chain, chain_groups),
                ("crossway", cross, cross_groups),
                (UNSAFE, unsafe, unsafe_groups),
            )
            singles: dict[str, list[RunResult]] = {name: [] for name, _, _ in paths}
            for _ in range(s.runs):
                for name, spec, groups in paths:
                    one_call = await run_load(
                        dataclasses.replace(spec, in_flight=1), generators=1, groups=groups, **single
                    )
                    singles[name].append(one_call)
                    if name == "crossway":
                        crossway_calls += one_call.total_ok + one_call.errors
                    elif name == UNSAFE:
                        unsafe_calls += one_call.total_ok + one_call.errors
            latency: dict[str, Any] = {}
            for name, results in singles.items():
                middle = median_run(results)
                latency[name] = {
                    "calls_per_s": round(middle.calls_per_s, 1),
                    "p50_ms": round(middle.p50_ms, 3),
                    "p99_ms": round(middle.p99_ms, 3),
                }
            doc["latency_1_in_flight"] = latency
        for name, results in runs.items():
            doc[name] = median_run(results).as_json()
        doc["crossway"]["first_error"] = runs["crossway"][0].first_error
        doc["stream"] = await stream_transfer(fed, s.stream_bytes, s.stream_chunk_bytes)
        crossway_calls += 1
        # Both sides of every exchange must be in JetStream (errors are audited too).
        expected = 2 * crossway_calls
        counted = await _expected_records(fed, expected)
        doc["audit_count"] = {"expected": expected, "counted": counted, "lost": expected - counted}
        # The unsafe federation's records are not counted as lost or kept: nothing crashed, so
        # they arrive; its row is there for speed only.
        doc[UNSAFE]["audit_records"] = await _expected_records(fast, 2 * unsafe_calls)
    on, off = doc["crossway"], doc[UNSAFE]
    single = doc.get("latency_1_in_flight", {})
    doc["durable_before_answer"] = {
        "calls_per_s_on": on["calls_per_s"],
        "calls_per_s_off": off["calls_per_s"],
        "ratio_on_to_off": round(on["calls_per_s"] / off["calls_per_s"], 3) if off["calls_per_s"] else None,
        "p50_ms_on": on["p50_ms"],
        "p50_ms_off": off["p50_ms"],
        "p50_ms_1_in_flight_on": single.get("crossway", {}).get("p50_ms"),
        "p50_ms_1_in_flight_off": single.get(UNSAFE, {}).get("p50_ms"),
    }


async def _workers(s: BenchSettings, workdir: Path, doc: dict[str, Any]) -> None:
    load = {"warmup_s": s.warmup_s, "window_s": s.window_s}
    async with Federation(workdir / f"federation-w{s.workers}", require_encryption=False, workers=s.workers) as fed:
        cross, groups = crossway_spec(fed, s.payload_bytes, s.in_flight)
        cross = dataclasses.replace(cross, connections=4 * s.workers)
        results = [await run_load(cross, generators=s.generators, groups=groups, **load) for _ in range(s.runs)]
        calls = sum(r.total_ok + r.errors for r in results)
        counted = await _expected_records(fed, 2 * calls)
    doc[f"crossway_workers_{s.workers}"] = median_run(results).as_json()
    count = doc["audit_count"]
    count["expected"] += 2 * calls
    count["counted"] += counted
    count["lost"] = count["expected"] - count["counted"]


async def run_bench(s: BenchSettings) -> dict[str, Any]:
    started = time.monotonic()
    doc: dict[str, Any] = {"settings": {k: str(v) for k, v in dataclasses.asdict(s).items()}}
    doc["policy"] = dataclasses.asdict(measure_policy(s.policy_calls))
    doc["audit_publish"] = dataclasses.asdict(await measure_audit(s.audit_records))
    with tempfile.TemporaryDirectory(prefix="crossway-bench-") as tmp:
        (Path(tmp) / "pipeline").mkdir()
        cost = await measure_pipeline(Path(tmp) / "pipeline", s.pipeline_exchanges)
        doc["pipeline"] = {"us_per_exchange": round(cost.us_per_exchange, 1), "exchanges": s.pipeline_exchanges}
        await _paths(s, Path(tmp), doc)
        if s.workers > 1:
            await _workers(s, Path(tmp), doc)
        # Registered delivery (issue 14), next to bare JetStream in the same run.
        delivery = await measure_delivery(
            Path(tmp) / "federation-delivery",
            in_flight=s.in_flight,
            payload_bytes=s.payload_bytes,
            warmup_s=s.warmup_s,
            window_s=s.window_s,
            runs=s.runs,
        )
        doc["delivery"] = delivery.as_json()
        # Topics (issue 15): publish → handed over to 3 subscribers, next to bare JetStream fan-out.
        fanout = await measure_fanout(
            Path(tmp) / "federation-fanout", events=s.fanout_events, payload_bytes=s.payload_bytes, runs=s.runs
        )
        doc["fanout"] = fanout.as_json()
    doc["ratio_crossway_to_proxy_chain"] = round(doc["crossway"]["calls_per_s"] / doc["proxy_chain"]["calls_per_s"], 3)
    doc["ratio_crossway_to_direct"] = round(doc["crossway"]["calls_per_s"] / doc["direct"]["calls_per_s"], 3)
    doc["cpu_budget"] = cpu_budget(doc)
    doc["targets"] = targets(doc)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    write_json(doc, s.output)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the harness, not the speed")
    parser.add_argument("--runs", type=int, help="measured runs per path (median taken)")
    parser.add_argument("--window", type=float, help="measuring window, seconds")
    parser.add_argument("--workers", type=int, help="worker processes per gateway for the scaling row (1 = skip)")
    parser.add_argument("--generators", type=int, help="load generator processes")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = BenchSettings.quick(args.output) if args.quick else BenchSettings(output=args.output)
    overrides = {
        "runs": args.runs,
        "window_s": args.window,
        "workers": args.workers,
        "generators": args.generators,
    }
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    doc = asyncio.run(run_bench(settings))
    print(format_table(doc))
    print(f"\nwritten to {settings.output} in {doc['elapsed_s']:.0f} s")
    return 0
