"""Measure acknowledged, pipelined audit publishing (prints; asserts nothing).

    .venv/bin/python -m bench.audit_publish --records 50000

Starts a private nats-server (port 0, temporary data dir) secured as in production — TLS 1.3,
the gateway connecting with its certificate-mapped identity and least-privilege permissions —
submits records as fast as the request path would, and reports the submit() cost and end-to-end
acked records per second, counted from the stream itself (by an auditor identity).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from audit.trail.count import count_stream_records
from audit.trail.jetstream import JetStreamAuditSink
from audit.trail.samples import sample_record
from crossway.natslocal import LocalBackbone
from crossway.security.natspki import NatsIdentity, NatsRole

__all__ = ["AuditBench", "main", "measure"]


@dataclass(frozen=True, slots=True)
class AuditBench:
    records: int
    submit_us: float  # submit() cost per record (enqueue only)
    acked_per_s: float  # end to end, until every record is acknowledged
    in_stream: int
    acked: int
    spooled: int


async def measure(records: int = 50_000, max_in_flight: int = 1024) -> AuditBench:
    """Publish ``records`` through a real sink into a private nats-server (used by ``make bench``)."""
    with tempfile.TemporaryDirectory(prefix="crossway-audit-bench-") as tmp:
        async with LocalBackbone(Path(tmp) / "nats") as server:
            gateway = "EE/GOV/70000001/gw1"
            access = await server.grant(NatsIdentity.gateway(gateway))
            auditor = await server.grant(NatsIdentity(NatsRole.AUDITOR, "bench"))
            batch = [sample_record(i) for i in range(records)]
            sink = JetStreamAuditSink(
                access, gateway_id=gateway, spool_dir=Path(tmp) / "spool", max_in_flight=max_in_flight
            )
            await sink.start()
            t0 = time.perf_counter()
            for r in batch:
                sink.submit(r)
            t_submit = time.perf_counter() - t0
            await sink.aclose()  # drains: returns once every record is acked (or spooled, reported below)
            t_acked = time.perf_counter() - t0
            stored = await count_stream_records(auditor)
    stats = sink.stats
    return AuditBench(records, t_submit / records * 1e6, records / t_acked, stored, stats.acked, stats.spooled)


async def _run(records: int, max_in_flight: int) -> None:
    r = await measure(records, max_in_flight)
    print(f"records submitted        {r.records}")
    print(f"submit() cost            {r.submit_us:.2f} µs/record (enqueue only)")
    print(f"acked publish rate       {r.acked_per_s:,.0f} records/s (max_in_flight={max_in_flight})")
    print(f"in stream / acked / spooled   {r.in_stream} / {r.acked} / {r.spooled}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--max-in-flight", type=int, default=1024)
    args = parser.parse_args(argv)
    asyncio.run(_run(args.records, args.max_in_flight))


if __name__ == "__main__":
    main()
