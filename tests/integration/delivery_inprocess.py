"""Two gateways' delivery rooms in one process, on a real nats-server, with clocks the test moves.

Everything but the hop between gateways is real: the demo federation's registry, keys and
certificates, the signed configuration, signatures, Cedar, JetStream streams and KV; the rooms
reach each other through the loopback link twin, so a test can shift both gateways' clocks by an
hour and see what an hour later looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from delivery_support import POLICY, customize_registry

from audit.trail import MemoryAuditSink
from crossway.demo.federation import Agency, Federation
from crossway.demo.inprocess import ShiftedClock
from crossway.natslocal import LocalBackbone
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.natspki import NatsIdentity
from crossway.security.pki import cert_fingerprint
from crossway.security.signing import Signer
from gateway.delivery import DeliveryConfig, DeliveryService
from gateway.delivery.loopback import LoopbackDeliveryLink, LoopbackPeers
from gateway.provider.peers import PeerVerifier
from gateway.shared import GatewayContext
from registry import RegistryAuthority, StaticConfigurationSource


class _NoCallers:
    def authenticate(self, peer_cert_pem: bytes | None, authorization: str | None) -> object:
        raise AssertionError("the in-process pair is driven through its desks, not the client port")


def _signer(agency: Agency) -> Signer:
    keys = agency.directory / "keys"
    return Signer(load_private_key(keys / "signing.key"), cert_fingerprint(load_certificate(keys / "signing.crt")))  # type: ignore[arg-type]


@dataclass
class DeliveryPair:
    nats: LocalBackbone
    authority: RegistryAuthority
    tax: DeliveryService
    population: DeliveryService
    clock: ShiftedClock
    peers: LoopbackPeers
    tax_audit: MemoryAuditSink
    population_audit: MemoryAuditSink

    @classmethod
    async def start(cls, workdir: Path) -> DeliveryPair:
        fed = Federation(workdir)
        authority = RegistryAuthority.init(workdir / "registry", "EE")
        fed._admit(authority)
        customize_registry(authority)
        authority.set_gateway_address(fed.tax.gateway, "loopback.tax.example:7443")
        authority.set_gateway_address(fed.population.gateway, "loopback.population.example:7443")
        signed = authority.build_configuration(validity_s=6 * 3600)
        policies = workdir / "delivery-policies"
        policies.mkdir()
        (policies / "delivery.cedar").write_text(POLICY)
        # The backbone as in production: TLS, each gateway its own identity, its member's streams.
        nats = LocalBackbone(workdir / "nats", members=(str(fed.tax.member), str(fed.population.member)))
        await nats.start()
        clock = ShiftedClock()
        peers = LoopbackPeers()
        config = DeliveryConfig(
            policy_dir=policies, ack_wait_s=3, backoff_s=0.2, backoff_max_s=1, handover_ack_wait_s=3
        )
        rooms = []
        audits = []
        for agency in (fed.tax, fed.population):
            audit = MemoryAuditSink()
            ctx = GatewayContext(
                agency.gateway,
                _signer(agency),
                StaticConfigurationSource(signed, authority.anchor, clock),
                clock,
                audit,
            )
            link = LoopbackDeliveryLink(peers, (agency.directory / "keys" / "tls.crt").read_bytes())
            room = DeliveryService(
                ctx,
                config,
                await nats.grant(NatsIdentity.gateway(agency.gateway)),
                callers=_NoCallers(),  # type: ignore[arg-type]
                peers=PeerVerifier(),
                encryption_key=load_private_key(agency.directory / "keys" / "encryption.key"),
                link=link,
            )
            await room.start()
            await room.wait_ready()
            rooms.append(room)
            audits.append(audit)
        peers.serve("loopback.tax.example:7443", rooms[0])
        peers.serve("loopback.population.example:7443", rooms[1])
        return cls(nats, authority, rooms[0], rooms[1], clock, peers, audits[0], audits[1])

    async def aclose(self) -> None:
        for room in (self.tax, self.population):
            await room.aclose()
        await self.nats.aclose()
        self.authority.close()
