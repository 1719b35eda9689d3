"""A federation for topics: the population register publishes address changes, three agencies subscribe.

Publisher: EE/GOV/70000002/population (topic ``…/population/address-changes``, event type
``population.v1.AddressChanged``, key field ``national_id``). Subscribers, each behind a gateway
of its own: the tax board (EE/GOV/70000001/tax, every field), the business register
(EE/GOV/70000003/business, ``@fields("national_id, address")``) and the social insurance board
(EE/GOV/70000005/benefits, every field). Topic policies live at the publisher's gateway and can
be rewritten during a test (they are looked at again within a second).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc

from crossway.core.ids import MemberId, SubsystemId
from crossway.demo.federation import POPULATION, TAX_SUBSYSTEM, Agency, Federation
from crossway.demo.members import population_descriptor_set
from crossway.security.keys import save_pem
from crossway.security.tokens import mint_token
from protos.crossway.v1 import topics_pb2 as tpb
from protos.crossway.v1 import topics_pb2_grpc as tgrpc
from protos.demo.population.v1 import population_pb2 as population_pb
from registry import RegistryAuthority

BUSINESS = MemberId("EE", "GOV", "70000003")
SOCIAL = MemberId("EE", "GOV", "70000005")
PUBLISHER = SubsystemId(POPULATION, "population")
TOPIC = f"{PUBLISHER}/address-changes"
TAX_SUB = TAX_SUBSYSTEM
BUSINESS_SUB = SubsystemId(BUSINESS, "business")
SOCIAL_SUB = SubsystemId(SOCIAL, "benefits")
ISSUER = "https://idp.tax.example"

PERMITS = {
    "tax": f"""@id("tax-follows-addresses")
permit (principal == Crossway::Subsystem::"{TAX_SUB}", action == Crossway::Action::"{TOPIC}", resource)
when {{ context.purpose == "taxation" }};
""",
    "business": f"""@id("business-gets-addresses-only")
@fields("national_id, address")
permit (principal == Crossway::Subsystem::"{BUSINESS_SUB}", action == Crossway::Action::"{TOPIC}", resource);
""",
    "social": f"""@id("social-follows-addresses")
permit (principal == Crossway::Subsystem::"{SOCIAL_SUB}", action == Crossway::Action::"{TOPIC}", resource);
""",
}


def write_policies(fed: Federation, *names: str) -> None:
    """The publisher's topic policies, exactly these permits (the others are withdrawn)."""
    directory = fed.population.directory / "policies" / "topics"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "topics.cedar").write_text("\n".join(PERMITS[n] for n in names) or "// no permits\n")


def customize_registry(authority: RegistryAuthority) -> None:
    authority.add_subsystem(BUSINESS_SUB)
    authority.add_subsystem(SOCIAL_SUB)
    authority.set_topic(TOPIC, "population.v1.AddressChanged", population_descriptor_set(), "national_id")


def make_customize_gateway(**delivery: Any) -> Any:
    settings = {"ack_wait_s": 4, "backoff_s": 0.2, "backoff_max_s": 2, "relay_timeout_s": 5, **delivery}
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())

    def customize(fed: Federation, agency: Agency) -> str:
        text = "[delivery]\n" + lines
        if agency.member == POPULATION:
            text += 'topic_policy_dir = "policies/topics"\n'
        if agency.member == BUSINESS:  # push subscriptions of the business register go to a backend
            text += (
                f'\n[[delivery.push]]\nmailbox = "{BUSINESS_SUB}"\nadapter = "grpc"\n'
                f'address = "127.0.0.1:{fed.backend_port}"\nmethod = "/population.v1.PersonRegistry/GetPerson"\n'
            )
        if agency.member != fed.tax.member:  # the tax gateway accepts the test IdP's tokens already
            save_pem(agency.directory / "idp.pub", fed.idp_key.public_key())
            text += (
                f'\n[client_auth.jwt]\nissuer = "{ISSUER}"\n'
                f'audience = "crossway:{agency.gateway}"\npublic_keys = ["idp.pub"]\n'
            )
        return text

    return customize


def topics_federation(workdir: Path, nats_nodes: int = 1, **delivery: Any) -> Federation:
    fed = Federation(
        workdir,
        nats_nodes=nats_nodes,
        span_flush_ms=200,
        customize_registry=customize_registry,
        customize_gateway=make_customize_gateway(**delivery),
        extra_agencies=((BUSINESS, "Business Register", "business"), (SOCIAL, "Social Insurance Board", "social")),
    )
    write_policies(fed, "tax", "business", "social")
    return fed


def address_change(national_id: str, address: str, n: int = 0) -> bytes:
    return population_pb.AddressChanged(
        national_id=national_id,
        address=address,
        previous_address=f"old {n}",
        family_name="Tamm",
        effective_on="2026-11-27",
    ).SerializeToString()


class TopicClient:
    """An agency system's view of its own gateway's Topics service."""

    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId) -> None:
        self._fed = fed
        self._agency = agency
        self.subsystem = subsystem
        self.channel = grpc.aio.secure_channel(agency.client_address, grpc.ssl_channel_credentials(fed.ca_pem))
        self.stub = tgrpc.TopicsStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        token = mint_token(
            self._fed.idp_key,
            subject=str(self.subsystem),
            issuer=ISSUER,
            audience=f"crossway:{self._agency.gateway}",
            ttl_s=300,
        )
        return (("authorization", f"Bearer {token}"),)

    async def publish(self, payload: bytes, topic: str = TOPIC, idempotency_key: str = "") -> tpb.PublishResponse:
        request = tpb.PublishRequest(topic=topic, payload=payload, idempotency_key=idempotency_key)
        response: tpb.PublishResponse = await self.stub.Publish(request, metadata=self.md, timeout=20)
        return response

    async def subscribe(self, purpose: str, start: int = 0, push: bool = False) -> tpb.SubscriptionInfo:
        request = tpb.SubscribeRequest(topic=TOPIC, purpose=purpose, start_sequence=start, push=push)
        info: tpb.SubscriptionInfo = await self.stub.Subscribe(request, metadata=self.md, timeout=20)
        return info

    async def receive(self, sub_id: str, max_events: int = 100, wait_ms: int = 1000) -> list[tpb.TopicDelivery]:
        request = tpb.TopicReceiveRequest(subscription_id=sub_id, max_events=max_events, wait_ms=wait_ms)
        return [d async for d in self.stub.Receive(request, metadata=self.md, timeout=wait_ms / 1000 + 20)]

    async def ack(self, sub_id: str, sequence: int) -> int:
        reply = await self.stub.Ack(
            tpb.TopicAck(subscription_id=sub_id, sequence=sequence), metadata=self.md, timeout=30
        )
        return int(reply.handed_over)

    async def drain(self, sub_id: str, want: int, deadline_s: float = 120.0) -> list[tpb.TopicDelivery]:
        """Receive and acknowledge until ``want`` events have come (or the deadline passes)."""
        got: list[tpb.TopicDelivery] = []
        end = time.monotonic() + deadline_s
        while len(got) < want and time.monotonic() < end:
            batch = await self.receive(sub_id, max_events=200, wait_ms=1000)
            if batch:
                got.extend(batch)
                await self.ack(sub_id, batch[-1].sequence)
        return got

    async def status(self) -> tpb.TopicStatus:
        status: tpb.TopicStatus = await self.stub.Status(
            tpb.TopicStatusRequest(topic=TOPIC), metadata=self.md, timeout=20
        )
        return status

    async def replay(self, sub_id: str, first: int, last: int) -> tpb.ReplayProof:
        request = tpb.ReplayRequest(subscription_id=sub_id, from_sequence=first, to_sequence=last)
        proof: tpb.ReplayProof = await self.stub.Replay(request, metadata=self.md, timeout=30)
        return proof

    async def close(self) -> None:
        await self.channel.close()


def clients(fed: Federation) -> dict[str, TopicClient]:
    business, social = fed.extra
    return {
        "publisher": TopicClient(fed, fed.population, PUBLISHER),
        "tax": TopicClient(fed, fed.tax, TAX_SUB),
        "business": TopicClient(fed, business, BUSINESS_SUB),
        "social": TopicClient(fed, social, SOCIAL_SUB),
    }
