"""Two gateways in one process: the tax board's client pipeline and the population register's
provider pipeline, joined by the in-process link twin (:class:`~gateway.wire.loopback.LoopbackLink`).

Everything security-relevant is real — the demo federation's registry, CA, certificates and keys,
the signed configuration, ES256 signatures, end-to-end encryption, Cedar, minimization, the
audit records — and nothing touches a socket, a process or NATS: the twins stand in for the
hop between gateways (loopback link), the backend (:class:`PopulationBackend`), the audit sink
(:class:`~audit.trail.MemoryAuditSink`) and the configuration source (static, verified). Used by
the pipelines' unit tests and by ``bench.pipeline``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.base import AdapterHealth, BackendCall
from adapters.health import HealthTracker
from audit.trail import MemoryAuditSink
from crossway.core.errors import Hop, UpstreamFailed
from crossway.core.ids import SubsystemId
from crossway.demo.federation import DEMO_POLICY, POPULATION_SERVICE, TAX, TAX_SUBSYSTEM, Agency, Federation
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint
from crossway.security.replay import MemoryReplayGuard
from crossway.security.signing import Signer
from crossway.security.tokens import JwtVerifier
from crossway.telemetry import extract_context
from gateway.client import CallerAuthenticator, ClientPipeline, OutgoingCall
from gateway.provider import PolicyManager, ProviderPipeline
from gateway.shared import GatewayContext, Limits
from gateway.wire.link import PeerLink
from gateway.wire.loopback import LoopbackLink
from protos.demo.population.v1 import population_pb2 as pb
from registry import RegistryAuthority, StaticConfigurationSource

__all__ = ["InProcessPair", "PopulationBackend", "ShiftedClock"]

PROVIDER_ADDRESS = "loopback.population.example:7443"

PEOPLE = (
    pb.Person(national_id="38001010001", given_name="Mari", family_name="Tamm", address="Tallinn", health_notes="x"),
    pb.Person(national_id="38001010002", given_name="Jaan", family_name="Tamm", address="Tartu", health_notes="y"),
    pb.Person(national_id="38001010003", given_name="Liis", family_name="Tamm", address="Pärnu", health_notes="z"),
)


@dataclass(slots=True)
class ShiftedClock:
    """The system clock, shifted by ``shift_ms`` (a gateway whose clock runs ahead or behind)."""

    shift_ms: int = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.shift_ms


class PopulationBackend:
    """The population register's backend as an in-memory adapter, for every kind of call."""

    def __init__(self) -> None:
        self._health = HealthTracker()
        self.calls: list[BackendCall] = []

    def health(self) -> AdapterHealth:
        return self._health.snapshot()

    async def unary(self, call: BackendCall, body: bytes) -> bytes:
        self.calls.append(call)
        if call.method_name == "GetPerson":
            return _person(body)
        if call.method_name == "Echo":
            return pb.EchoResponse(payload=pb.EchoRequest.FromString(body).payload).SerializeToString()
        raise UpstreamFailed(f"no unary {call.method_name}", hop=Hop.BACKEND, status=grpc.StatusCode.UNIMPLEMENTED)

    async def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self.calls.append(call)
        if call.method_name == "ListPeople":  # server streaming
            async for body in requests:
                family = pb.ListPeopleRequest.FromString(body).family_name
                for person in PEOPLE:
                    if person.family_name == family:
                        yield person.SerializeToString()
        elif call.method_name == "ImportPeople":  # client streaming
            ids = [pb.Person.FromString(body).national_id async for body in requests]
            yield pb.ImportSummary(received=len(ids), national_ids=ids).SerializeToString()
        elif call.method_name == "LookupPeople":  # bidirectional
            async for body in requests:
                yield _person(body)
        else:
            raise UpstreamFailed(f"no stream {call.method_name}", hop=Hop.BACKEND, status=grpc.StatusCode.UNIMPLEMENTED)

    async def aclose(self) -> None:
        return None


def _person(get_person_request: bytes) -> bytes:
    wanted = pb.GetPersonRequest.FromString(get_person_request).national_id
    for person in PEOPLE:
        if person.national_id == wanted:
            return person.SerializeToString()
    raise UpstreamFailed(f"no person {wanted}", hop=Hop.BACKEND, status=grpc.StatusCode.NOT_FOUND)


def _signer(agency: Agency) -> Signer:
    keys = agency.directory / "keys"
    return Signer(load_private_key(keys / "signing.key"), cert_fingerprint(load_certificate(keys / "signing.crt")))  # type: ignore[arg-type]


@dataclass
class InProcessPair:
    """The tax board's client side and the population register's provider side, one process."""

    federation: Federation
    authority: RegistryAuthority
    client: ClientPipeline
    provider: ProviderPipeline
    link: LoopbackLink
    backend: PopulationBackend
    client_audit: MemoryAuditSink
    provider_audit: MemoryAuditSink
    client_clock: ShiftedClock
    provider_clock: ShiftedClock
    client_context: GatewayContext
    callers: CallerAuthenticator
    client_certificate_pem: bytes  # the client gateway's TLS certificate (what the provider's step 1 sees)

    @classmethod
    def build(
        cls,
        workdir: Path,
        *,
        policy: str = DEMO_POLICY,
        require_encryption: bool = False,
        limits: Limits | None = None,
        provider_limits: Limits | None = None,
    ) -> InProcessPair:
        """The demo federation's members, keys and certificates, admitted by a real registry
        authority; the policy is the provider's whole Cedar policy set. ``limits`` are both
        gateways' [limits] unless the provider's are given apart."""
        fed = Federation(workdir, require_encryption=require_encryption)
        authority = RegistryAuthority.init(workdir / "registry", "EE")
        fed._admit(authority)  # members, keys and certificates, without starting anything
        authority.set_gateway_address(fed.population.gateway, PROVIDER_ADDRESS)
        signed = authority.build_configuration()
        client_clock, provider_clock = ShiftedClock(), ShiftedClock()
        client_audit, provider_audit = MemoryAuditSink(), MemoryAuditSink()
        client_ctx = GatewayContext(
            fed.tax.gateway,
            _signer(fed.tax),
            StaticConfigurationSource(signed, authority.anchor, client_clock),
            client_clock,
            client_audit,
            limits=limits or Limits(),
        )
        provider_ctx = GatewayContext(
            fed.population.gateway,
            _signer(fed.population),
            StaticConfigurationSource(signed, authority.anchor, provider_clock),
            provider_clock,
            provider_audit,
            limits=provider_limits or limits or Limits(),
        )
        policies = workdir / "policies"
        policies.mkdir(exist_ok=True)
        (policies / "population.cedar").write_text(policy)
        backend = PopulationBackend()
        encryption_key = load_private_key(fed.population.directory / "keys" / "encryption.key")
        provider = ProviderPipeline(
            provider_ctx,
            MemoryReplayGuard(),
            PolicyManager(policies, [POPULATION_SERVICE]),
            {POPULATION_SERVICE: backend},
            encryption_key,
        )
        client_certificate_pem = (fed.tax.directory / "keys" / "tls.crt").read_bytes()
        link = LoopbackLink(client_certificate_pem)
        link.serve(PROVIDER_ADDRESS, provider)
        jwt = JwtVerifier(
            issuer="https://idp.tax.example",
            audience=f"crossway:{fed.tax.gateway}",
            public_keys=[fed.idp_key.public_key()],
        )
        callers = CallerAuthenticator(TAX, {}, jwt, lambda subsystem: True, time.time)
        client = ClientPipeline(client_ctx, link, callers)
        return cls(
            fed,
            authority,
            client,
            provider,
            link,
            backend,
            client_audit,
            provider_audit,
            client_clock,
            provider_clock,
            client_ctx,
            callers,
            client_certificate_pem,
        )

    def client_via(self, link: PeerLink) -> ClientPipeline:
        """The same client gateway reaching the provider through another link (e.g. one that
        tampers with, drops or replays what passes)."""
        return ClientPipeline(self.client_context, link, self.callers)

    def call(
        self,
        method: str,
        *,
        subsystem: SubsystemId = TAX_SUBSYSTEM,
        purpose: str = "",
        user_id: str = "",
        timeout_s: float = 10.0,
        authorization: str | None = None,
    ) -> OutgoingCall:
        """What an agency system's call to ``population.v1.PersonRegistry/METHOD`` looks like to
        the client pipeline, authenticated with a fresh bearer token of ``subsystem``."""
        token = authorization if authorization is not None else f"Bearer {self.federation.token(subsystem)}"
        return OutgoingCall(
            message_id=os.urandom(16).hex(),
            grpc_path=f"/population.v1.PersonRegistry/{method}" if not method.startswith("/") else method,
            provider_hint="",
            user_id=user_id,
            purpose=purpose,
            peer_cert_pem=None,
            authorization=token,
            time_remaining_s=timeout_s,
            parent=extract_context([]),
        )

    async def aclose(self) -> None:
        await self.link.aclose()
        self.authority.close()
