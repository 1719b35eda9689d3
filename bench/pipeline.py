"""``python -m bench.pipeline``: the CPU our own pipeline code costs per exchange, both sides.

The client pipeline reaches the provider pipeline through the in-process link twin
(``crossway.demo.inprocess``) and the backend is in memory, so what is measured is Crossway's work alone — caller check, routing,
header, ES256 signing and verification, the Cedar decision, minimization, the audit record —
without gRPC, sockets or NATS (audit records go to the in-memory sink). Set ``--trace`` to add
the JSON-lines span exporter. Compare with ``make bench``'s CPU per call per gateway to see how
much of a gateway's time is gRPC and NATS rather than security work.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from crossway.demo.inprocess import InProcessPair
from crossway.telemetry import setup_tracing
from protos.demo.population.v1 import population_pb2

__all__ = ["PipelineCost", "main", "measure"]

ECHO = "/population.v1.PersonRegistry/Echo"


@dataclass(frozen=True, slots=True)
class PipelineCost:
    us_per_exchange: float
    # Statuses of the audit records both sides wrote (warm-up included): proof the work was real.
    statuses: tuple[str, ...]


async def measure(workdir: Path, exchanges: int = 3000, payload_bytes: int = 1024) -> PipelineCost:
    """µs of CPU (this process, all threads) per exchange, client and provider side together."""
    pair = InProcessPair.build(workdir)
    client = pair.client
    authorization = f"Bearer {pair.federation.token(ttl_s=3600)}"
    body = population_pb2.EchoRequest(payload=b"x" * payload_bytes).SerializeToString()

    async def run(n: int) -> None:
        for _ in range(n):
            await client.unary(pair.call("Echo", authorization=authorization), body)

    await run(min(300, exchanges))  # warm caches: routes, keys, peer identity, tokens, policy slices
    started = time.process_time()
    await run(exchanges)
    spent = time.process_time() - started
    await pair.aclose()
    statuses = tuple(r.status for r in (*pair.client_audit.records, *pair.provider_audit.records))
    return PipelineCost(1e6 * spent / exchanges, statuses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=3000)
    parser.add_argument("--trace", action="store_true", help="export spans to a JSON-lines file, as the demo does")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossway-pipeline-") as tmp:
        workdir = Path(tmp)
        if args.trace:
            setup_tracing("bench-pipeline", export_path=workdir / "spans.jsonl")
        cost = asyncio.run(measure(workdir, args.exchanges))
    print(
        f"our pipeline code, both sides, no network: {cost.us_per_exchange:.0f} µs CPU per exchange "
        f"({args.exchanges} exchanges, {len(cost.statuses)} audit records)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
