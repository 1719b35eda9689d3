"""``python -m bench.memory``: what large calls cost each gateway in memory (issue 13).

Before issue 13 the message limit was 64 MiB on both ports: one 50 MiB unary call raised each
gateway's RSS by ~300 MB, and eight concurrent ones peaked at 2.3 GB and 1.9 GB and were not
given back. Now one message is bounded by ``[limits] max_message_bytes`` (default gRPC's 4 MiB)
and large payloads travel as streams. This starts the demo federation (real gateway processes,
encrypted bodies as the demo service requires) and prints, per gateway, RSS at rest, its peak
while the load runs (sampled every 20 ms over the gateway and its children), and RSS once
settled (``--settle`` seconds after the load), for:

1. eight concurrent unary calls of the maximum size (Echo: 4 MiB in, 4 MiB back);
2. eight concurrent 32 MiB server streams (Export, 64 KiB chunks) — how large payloads go;
3. one 50 MiB unary call — refused before it is read, so it costs nothing.

Not a timed test and not part of ``make bench``: a run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.procstat import RssSampler, descendants, rss_bytes
from crossway.demo.federation import Federation
from gateway.wire.metadata import metadata_text
from protos.demo.population.v1 import population_pb2 as pb

__all__ = ["main", "measure"]

ECHO = "/population.v1.PersonRegistry/Echo"
EXPORT = "/population.v1.PersonRegistry/Export"
MIB = 1 << 20
LIMIT = 4 * MIB  # the default [limits] max_message_bytes


def _identity(data: bytes) -> bytes:
    return data


def _mib(value: float) -> float:
    return round(value / MIB, 1)


async def _settled(groups: dict[str, list[int]], seconds: float) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {name: _mib(rss_bytes(pids)) for name, pids in groups.items()}


async def _row(name: str, groups: dict[str, list[int]], load: Any, settle_s: float) -> dict[str, Any]:
    # Live processes only: a gateway's children (none by default) are counted with it.
    current = {label: descendants(pids[0]) for label, pids in groups.items()}
    with RssSampler(current) as sampler:
        t0 = time.perf_counter()
        outcome = await load()
        seconds = time.perf_counter() - t0
    return {
        "load": name,
        "outcome": outcome,
        "seconds": round(seconds, 2),
        "rss_at_rest_mib": {k: _mib(v) for k, v in sampler.baseline.items()},
        "rss_peak_mib": {k: _mib(v) for k, v in sampler.peak.items()},
        "rss_settled_mib": await _settled(current, settle_s),
    }


async def measure(
    workdir: Path, *, calls: int = 8, stream_mib: int = 32, settle_s: float = 10.0
) -> list[dict[str, Any]]:
    async with Federation(workdir / "federation") as fed:
        assert fed.tax.process is not None and fed.population.process is not None
        groups = {"client gateway": [fed.tax.process.pid], "provider gateway": [fed.population.process.pid]}
        metadata = (("authorization", f"Bearer {fed.token(ttl_s=3600)}"),)
        # The largest request the limit admits: the payload field's tag and length take 5 bytes.
        largest = pb.EchoRequest(payload=b"\x5a" * (LIMIT - 5)).SerializeToString()
        assert len(largest) == LIMIT
        await asyncio.sleep(settle_s)  # let the start-up settle before "at rest"
        async with fed.channel() as channel:
            echo = channel.unary_unary(ECHO, request_serializer=_identity, response_deserializer=_identity)
            export = channel.unary_stream(EXPORT, request_serializer=_identity, response_deserializer=_identity)

            async def unary_at_the_limit() -> str:
                answers = await asyncio.gather(*(echo(largest, metadata=metadata, timeout=120) for _ in range(calls)))
                assert all(len(a) == LIMIT for a in answers)
                return f"{calls} x {LIMIT // MIB} MiB in and out: ok"

            async def streams() -> str:
                request = pb.ExportRequest(total_bytes=stream_mib * MIB, chunk_size=64 * 1024).SerializeToString()

                async def one() -> int:
                    return sum([len(chunk) async for chunk in export(request, metadata=metadata, timeout=600)])

                received = await asyncio.gather(*(one() for _ in range(calls)))
                assert all(r >= stream_mib * MIB for r in received), received
                return f"{calls} x {stream_mib} MiB streamed: ok"

            async def far_over_the_limit() -> str:
                try:
                    await echo(b"\x5a" * (50 * MIB), metadata=metadata, timeout=60)
                except grpc.aio.AioRpcError as exc:
                    code = metadata_text(exc.trailing_metadata()).get("crossway-error", "-")
                    return f"refused: {exc.code().name} [{code}] {(exc.details() or '')[:80]}"
                return "accepted (unexpected)"

            rows = [
                await _row(
                    f"{calls} concurrent unary calls of {LIMIT // MIB} MiB", groups, unary_at_the_limit, settle_s
                ),
                await _row(f"{calls} concurrent {stream_mib} MiB streams", groups, streams, settle_s),
                await _row("one 50 MiB unary call", groups, far_over_the_limit, settle_s),
            ]
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'load':<38}{'gateway':<18}{'at rest':>9}{'peak':>9}{'settled':>9}  MiB RSS")
    for row in rows:
        for i, gateway in enumerate(row["rss_peak_mib"]):
            label = row["load"] if i == 0 else ""
            print(
                f"{label:<38}{gateway:<18}{row['rss_at_rest_mib'][gateway]:>9}"
                f"{row['rss_peak_mib'][gateway]:>9}{row['rss_settled_mib'][gateway]:>9}"
            )
        print(f"{'':<38}{row['outcome']} ({row['seconds']} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="concurrent calls per load (default 8)")
    parser.add_argument("--stream-mib", type=int, default=32, help="MiB per stream (default 32)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait before 'settled' (default 10)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossway-bench-memory-") as tmp:
        rows = asyncio.run(measure(Path(tmp), calls=args.calls, stream_mib=args.stream_mib, settle_s=args.settle))
    _print(rows)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
