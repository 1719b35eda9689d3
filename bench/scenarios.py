"""What the benchmark starts and measures: direct, proxy chain and Crossway paths, the stream.

Everything runs beside one demo :class:`~crossway.demo.federation.Federation`: *direct* calls its
backend, the *proxy chain* forwards to that same backend, *crossway* goes through its two
gateways. One backend for all three keeps the comparison about the path, not the service. The
proxies reuse the gateways' own TLS keys and the registry CA, so their mTLS costs what the
gateways' does (same curve, same chain).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.loadgen import LoadSpec
from bench.measure import Groups
from bench.procstat import RssSampler, descendants
from bench.proxy import ProxySpec
from crossway.demo.federation import Federation
from crossway.demo.processes import ManagedProcess
from protos.demo.population.v1 import population_pb2 as pb

__all__ = ["ECHO", "crossway_groups", "crossway_spec", "direct_spec", "proxy_chain", "stream_transfer"]

ECHO = "/population.v1.PersonRegistry/Echo"
EXPORT = "/population.v1.PersonRegistry/Export"


def _echo_hex(payload_bytes: int) -> str:
    return pb.EchoRequest(payload=os.urandom(payload_bytes)).SerializeToString().hex()


def _pid(process: ManagedProcess | None) -> list[int]:
    return descendants(process.pid) if process is not None else []


def direct_spec(fed: Federation, payload_bytes: int, in_flight: int) -> tuple[LoadSpec, Groups]:
    spec = LoadSpec(f"127.0.0.1:{fed.backend_port}", ECHO, _echo_hex(payload_bytes), in_flight)
    return spec, lambda: {"backend": _pid(fed.backend)}


def crossway_groups(fed: Federation) -> Groups:
    def groups() -> dict[str, list[int]]:
        nats = fed.nats.pid
        return {
            "gateway_client_side": _pid(fed.tax.process),
            "gateway_provider_side": _pid(fed.population.process),
            "backend": _pid(fed.backend),
            "nats": [nats] if nats else [],
        }

    return groups


def crossway_spec(fed: Federation, payload_bytes: int, in_flight: int) -> tuple[LoadSpec, Groups]:
    spec = LoadSpec(
        fed.tax.client_address,
        ECHO,
        _echo_hex(payload_bytes),
        in_flight,
        ca_pem=fed.ca_pem.decode(),
        metadata=(("authorization", f"Bearer {fed.token(ttl_s=3600)}"),),
    )
    return spec, crossway_groups(fed)


@asynccontextmanager
async def proxy_chain(fed: Federation, payload_bytes: int, in_flight: int) -> AsyncIterator[tuple[LoadSpec, Groups]]:
    """caller → proxy 1 ══mTLS══▶ proxy 2 → backend, with the gateways' keys and the registry CA."""
    ca = fed.workdir / "bench-ca.pem"
    ca.write_bytes(fed.ca_pem)
    tax_keys, pop_keys = fed.tax.directory / "keys", fed.population.directory / "keys"
    second = ProxySpec(
        listen="127.0.0.1:0",
        upstream=f"127.0.0.1:{fed.backend_port}",
        server_key=str(pop_keys / "tls.key"),
        server_cert=str(pop_keys / "tls.crt"),
        client_ca=str(ca),
    )
    proxies: list[ManagedProcess] = []
    try:
        port2 = await _start_proxy("proxy 2", second, proxies)
        first = ProxySpec(
            listen="127.0.0.1:0",
            upstream=f"127.0.0.1:{port2}",
            upstream_ca=str(ca),
            upstream_key=str(tax_keys / "tls.key"),
            upstream_cert=str(tax_keys / "tls.crt"),
        )
        port1 = await _start_proxy("proxy 1", first, proxies)
        spec = LoadSpec(f"127.0.0.1:{port1}", ECHO, _echo_hex(payload_bytes), in_flight)
        yield (
            spec,
            lambda: {
                "proxy_client_side": _pid(proxies[1]),
                "proxy_provider_side": _pid(proxies[0]),
                "backend": _pid(fed.backend),
            },
        )
    finally:
        for proxy in proxies:
            await proxy.stop()


async def _start_proxy(name: str, spec: ProxySpec, started: list[ManagedProcess]) -> int:
    proc = ManagedProcess(name, [sys.executable, "-m", "bench.proxy", spec.to_json()])
    started.append(proc)
    await proc.start()
    match = await proc.wait_for(r"proxy listening on 127\.0\.0\.1:(\d+)", 30)
    return int(match.group(1))


async def stream_transfer(fed: Federation, total_bytes: int, chunk_bytes: int) -> dict[str, object]:
    """One server-streaming Export of ``total_bytes`` through both gateways: rate and RSS growth."""
    groups = {"gateway_client_side": _pid(fed.tax.process), "gateway_provider_side": _pid(fed.population.process)}
    request = pb.ExportRequest(total_bytes=total_bytes, chunk_size=chunk_bytes).SerializeToString()
    metadata = (("authorization", f"Bearer {fed.token(ttl_s=3600)}"),)
    async with fed.channel() as channel:
        call = channel.unary_stream(EXPORT, request_serializer=_identity, response_deserializer=pb.Chunk.FromString)
        received = 0
        with RssSampler(groups) as sampler:
            t0 = time.perf_counter()
            async for chunk in call(request, metadata=metadata, timeout=600):
                received += len(chunk.data)
            seconds = time.perf_counter() - t0
    if received != total_bytes:
        raise RuntimeError(f"stream delivered {received} of {total_bytes} bytes")
    return {
        "bytes": total_bytes,
        "chunk_bytes": chunk_bytes,
        "seconds": round(seconds, 2),
        "mib_per_s": round(total_bytes / (1 << 20) / seconds, 1),
        "rss_growth_mib": {k: round(v / (1 << 20), 1) for k, v in sampler.growth().items()},
        "rss_peak_mib": {k: round(v / (1 << 20), 1) for k, v in sampler.peak.items()},
    }


def _identity(data: bytes) -> bytes:
    return data
