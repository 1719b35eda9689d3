"""``python -m bench.pipeline``: the CPU our own pipeline code costs per exchange, both sides.

The client pipeline's peer call is wired straight into the provider pipeline and the backend is
an in-memory echo, so what is measured is Crossway's work alone — caller check, routing,
header, ES256 signing and verification, the Cedar decision, minimization, the audit record —
without gRPC, sockets or NATS (audit records go to the in-memory sink). Set ``--trace`` to add
the JSON-lines span exporter. Compare with ``make bench``'s CPU per call per gateway to see how
much of a gateway's time is gRPC and NATS rather than security work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.base import BackendCall
from audit.trail import MemoryAuditSink
from crossway.core.clock import SystemClock
from crossway.demo.federation import DEMO_POLICY, POPULATION_SERVICE, TAX, Agency, Federation
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint
from crossway.security.replay import MemoryReplayGuard
from crossway.security.signing import Signer
from crossway.security.tokens import JwtVerifier
from crossway.telemetry import extract_context, setup_tracing
from gateway.client.callers import CallerAuthenticator
from gateway.client.pipeline import ClientPipeline, OutgoingCall
from gateway.provider.authorization import PolicyManager
from gateway.provider.pipeline import ProviderPipeline
from gateway.shared.context import GatewayContext
from protos.crossway.v1 import envelope_pb2 as pb
from protos.demo.population.v1 import population_pb2
from registry import RegistryAuthority, StaticConfigurationSource

__all__ = ["PipelineCost", "main", "measure"]

ECHO = "/population.v1.PersonRegistry/Echo"


@dataclass(frozen=True, slots=True)
class PipelineCost:
    us_per_exchange: float
    # Statuses of the audit records both sides wrote (warm-up included): proof the work was real.
    statuses: tuple[str, ...]


class _EchoBackend:
    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        return body


class _DirectPeer:
    """Stands in for the pooled mTLS channel: the envelope goes straight to the provider."""

    def __init__(self, provider: ProviderPipeline, auth_context: Mapping[str, Iterable[bytes]]) -> None:
        self._provider = provider
        self._auth_context = auth_context

    async def exchange(self, env: pb.Envelope, timeout: float) -> pb.Envelope:
        return await self._provider.call(env, self._auth_context)

    def get(self, address: str, ca_pem: bytes) -> _DirectPeer:
        return self


def _signer(agency: Agency) -> Signer:
    keys = agency.directory / "keys"
    return Signer(load_private_key(keys / "signing.key"), cert_fingerprint(load_certificate(keys / "signing.crt")))  # type: ignore[arg-type]


async def measure(workdir: Path, exchanges: int = 3000, payload_bytes: int = 1024) -> PipelineCost:
    """µs of CPU (this process, all threads) per exchange, client and provider side together."""
    fed = Federation(workdir, require_encryption=False)
    authority = RegistryAuthority.init(workdir / "registry", "EE")
    fed._admit(authority)  # the demo's members, keys and certificates, without starting anything
    authority.set_gateway_address(fed.population.gateway, "127.0.0.1:1")
    signed = authority.build_configuration()
    clock = SystemClock()
    client_audit, provider_audit = MemoryAuditSink(), MemoryAuditSink()
    client_ctx = GatewayContext(
        fed.tax.gateway,
        _signer(fed.tax),
        StaticConfigurationSource(signed, authority.anchor, clock),
        clock,
        client_audit,
    )
    provider_ctx = GatewayContext(
        fed.population.gateway,
        _signer(fed.population),
        StaticConfigurationSource(signed, authority.anchor, clock),
        clock,
        provider_audit,
    )
    policies = workdir / "policies"
    policies.mkdir()
    (policies / "population.cedar").write_text(DEMO_POLICY)
    provider = ProviderPipeline(
        provider_ctx,
        MemoryReplayGuard(),
        PolicyManager(policies, [POPULATION_SERVICE]),
        {POPULATION_SERVICE: _EchoBackend()},  # type: ignore[dict-item]
        None,
    )
    tls_pem = (fed.tax.directory / "keys" / "tls.crt").read_bytes()
    peer = _DirectPeer(provider, {"ssl_tls_version": [b"TLSv1.3"], "x509_pem_cert": [tls_pem]})
    jwt = JwtVerifier(
        issuer="https://idp.tax.example", audience=f"crossway:{fed.tax.gateway}", public_keys=[fed.idp_key.public_key()]
    )
    callers = CallerAuthenticator(TAX, {}, jwt, lambda subsystem: True, time.time)
    client = ClientPipeline(client_ctx, peer, callers)  # type: ignore[arg-type]
    authorization = f"Bearer {fed.token(ttl_s=3600)}"
    body = population_pb2.EchoRequest(payload=b"x" * payload_bytes).SerializeToString()
    parent = extract_context([])

    async def run(n: int) -> None:
        for _ in range(n):
            call = OutgoingCall(os.urandom(16).hex(), ECHO, "", "", "", None, authorization, 10.0, parent)
            await client.unary(call, body)

    await run(min(300, exchanges))  # warm caches: routes, keys, peer identity, tokens, policy slices
    started = time.process_time()
    await run(exchanges)
    spent = time.process_time() - started
    authority.close()
    statuses = tuple(r.status for r in (*client_audit.records, *provider_audit.records))
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
