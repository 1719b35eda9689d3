"""The load generator: one process keeping N unary calls in flight against one target.

Run by the orchestrator as ``python -m bench.loadgen '<spec json>'`` so that generating load
never shares a process (or a GIL) with what is measured. Protocol on stdin/stdout, so several
generators share one measuring window:

1. the generator connects and prints ``ready``;
2. it reads one line ``<measure_from> <measure_until>`` (epoch seconds) from stdin;
3. it calls continuously from then on: warm-up until ``measure_from``, then the window;
4. at ``measure_until`` it stops starting calls, waits for those in flight, and prints one JSON
   line: calls completed inside the window, their latencies (µs) and every call's outcome.

Requests are pre-serialized bytes and responses are not parsed (identity serializers): the
generator spends its CPU on gRPC, not on protobuf.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import grpc

__all__ = ["LoadResult", "LoadSpec"]


@dataclass(frozen=True, slots=True)
class LoadSpec:
    target: str
    method: str
    request_hex: str  # the serialized request message
    in_flight: int
    ca_pem: str = ""  # TLS to the target when set
    metadata: tuple[tuple[str, str], ...] = ()
    # TCP connections to spread the calls over: a gateway with worker processes gets one
    # connection per worker only if the caller opens several (SO_REUSEPORT balances connections).
    connections: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        doc = json.loads(text)
        doc["metadata"] = tuple(tuple(pair) for pair in doc.get("metadata", ()))
        return cls(**doc)


@dataclass(slots=True)
class LoadResult:
    window_s: float = 0.0
    calls: int = 0  # completed OK inside the window
    latencies_us: list[int] = field(default_factory=list)
    total_ok: int = 0  # every OK call, warm-up included (what the audit trail must hold)
    total_errors: int = 0
    first_error: str = ""

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        return cls(**json.loads(text))


def _identity(data: bytes) -> bytes:
    return data


async def _generate(spec: LoadSpec) -> LoadResult:
    # A local subchannel pool: otherwise grpc shares one connection between identical channels.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.secure_channel(spec.target, grpc.ssl_channel_credentials(spec.ca_pem.encode()), options=options)
        if spec.ca_pem
        else grpc.aio.insecure_channel(spec.target, options=options)
        for _ in range(max(1, spec.connections))
    ]
    calls = [
        c.unary_unary(spec.method, request_serializer=_identity, response_deserializer=_identity) for c in channels
    ]
    request = bytes.fromhex(spec.request_hex)
    metadata = spec.metadata or None
    await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), 30)
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start_epoch, end_epoch = (float(x) for x in line.split())
    # Map the shared epoch times onto this process's monotonic clock once.
    offset = time.perf_counter() - time.time()
    start, end = start_epoch + offset, end_epoch + offset
    result = LoadResult(window_s=end_epoch - start_epoch)

    async def worker(call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            try:
                await call(request, metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as exc:
                result.total_errors += 1
                if not result.first_error:
                    result.first_error = f"{exc.code().name}: {exc.details()}"[:300]
                continue
            t1 = time.perf_counter()
            result.total_ok += 1
            if start <= t1 <= end:
                result.calls += 1
                result.latencies_us.append(int((t1 - t0) * 1e6))

    await asyncio.gather(*(worker(calls[i % len(calls)]) for i in range(spec.in_flight)))
    for channel in channels:
        await channel.close(None)
    return result


def main(argv: list[str]) -> int:
    spec = LoadSpec.from_json(argv[0])
    result = asyncio.run(_generate(spec))
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
