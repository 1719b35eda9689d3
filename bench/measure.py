"""One measured run: start the generators, share one window, read CPU of every process around it.

The orchestrator snapshots ``utime + stime`` of each process group at the window's start and
end (it knows both instants: it told the generators), so CPU per call is the window's CPU over
the calls completed in it — warm-up and start-up costs are left out.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bench.loadgen import LoadResult, LoadSpec
from bench.procstat import cpu_seconds

__all__ = ["RunResult", "median_run", "run_load"]

# Process groups to measure, resolved at the window's start (workers may have been spawned late).
Groups = Callable[[], dict[str, list[int]]]


@dataclass(frozen=True, slots=True)
class RunResult:
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int
    errors: int
    total_ok: int  # every OK call, warm-up included
    cpu_us_per_call: dict[str, float]  # process group → CPU µs per call
    first_error: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "calls_per_s": round(self.calls_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "calls": self.calls,
            "errors": self.errors,
            "cpu_us_per_call": {k: round(v, 1) for k, v in self.cpu_us_per_call.items()},
            "cpu_us_per_call_total_excl_loadgen": round(
                sum(v for k, v in self.cpu_us_per_call.items() if k != "loadgen"), 1
            ),
        }


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))] / 1000


async def run_load(spec: LoadSpec, *, generators: int, warmup_s: float, window_s: float, groups: Groups) -> RunResult:
    procs = []
    per = [spec.in_flight // generators + (1 if i < spec.in_flight % generators else 0) for i in range(generators)]
    try:
        for n in per:
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    replace(spec, in_flight=n).to_json(),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"load generator did not start: {line!r}")
        start = time.time() + warmup_s
        end = start + window_s
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start} {end}\n".encode())
            await proc.stdin.drain()
        watched = {**groups(), "loadgen": [p.pid for p in procs]}
        await asyncio.sleep(max(0.0, start - time.time()))
        before = {name: cpu_seconds(pids) for name, pids in watched.items()}
        await asyncio.sleep(max(0.0, end - time.time()))
        after = {name: cpu_seconds(pids) for name, pids in watched.items()}
        results = []
        for proc in procs:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            results.append(LoadResult.from_json(out.decode().strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    latencies = sorted(v for r in results for v in r.latencies_us)
    calls = sum(r.calls for r in results)
    return RunResult(
        calls_per_s=calls / window_s,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        calls=calls,
        errors=sum(r.total_errors for r in results),
        total_ok=sum(r.total_ok for r in results),
        cpu_us_per_call={name: (after[name] - before[name]) * 1e6 / max(1, calls) for name in watched},
        first_error=next((r.first_error for r in results if r.first_error), ""),
    )


def median_run(runs: list[RunResult]) -> RunResult:
    """The median of each figure over the runs (noisy shared machines: medians, not means)."""
    names = runs[0].cpu_us_per_call.keys()
    return RunResult(
        calls_per_s=statistics.median(r.calls_per_s for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        calls=sum(r.calls for r in runs),
        errors=sum(r.errors for r in runs),
        total_ok=sum(r.total_ok for r in runs),
        cpu_us_per_call={n: statistics.median(r.cpu_us_per_call[n] for r in runs) for n in names},
        first_error=next((r.first_error for r in runs if r.first_error), ""),
    )
