"""The demo's topics scenario: the population register publishes address changes; the tax board
and the business register subscribe, each through its own gateway.

The population register's gateway decides both subscriptions with its topic policies (and again
for every event): the tax board receives whole events, the business register only
``national_id`` and ``address`` (``@fields``). Six changes of three people are published; each
subscriber receives them, checks they came in order per person with nothing missing, and
acknowledges them. The summary line counts topics, subscriptions, events published, deliveries
and missing events (expected deliveries that did not arrive in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from crossway.core.ids import SubsystemId
from crossway.demo.business import BUSINESS_SERVICE
from crossway.demo.delivery import ISSUER, DemoSystem, demo_jwt_table
from crossway.demo.delivery import customize_gateway as delivery_gateway
from crossway.demo.delivery import customize_registry as delivery_registry
from crossway.demo.federation import Agency, Federation
from crossway.demo.members import POPULATION, POPULATION_SERVICE, TAX_SUBSYSTEM, population_descriptor_set
from protos.crossway.v1 import topics_pb2 as tpb
from protos.crossway.v1 import topics_pb2_grpc as tgrpc
from protos.demo.population.v1 import population_pb2 as population_pb
from registry import RegistryAuthority

__all__ = ["TOPIC", "TopicsResult", "customize_gateway", "customize_registry", "run_topics_scenario"]

PUBLISHER = POPULATION_SERVICE.subsystem
TOPIC = f"{PUBLISHER}/address-changes"
REGISTER = BUSINESS_SERVICE.subsystem
TAX_ISSUER = "https://idp.tax.example"  # the tax gateway's own trusted issuer (see Federation)

POLICY = f"""\
// Who may follow the population register's address changes (topics, issue 15).
@id("tax-follows-addresses")
permit (
  principal == Crossway::Subsystem::"{TAX_SUBSYSTEM}",
  action == Crossway::Action::"{TOPIC}",
  resource
) when {{ context.purpose == "tax-assessment" }};

@id("business-register-gets-addresses-only")
@fields("national_id, address")
permit (
  principal == Crossway::Subsystem::"{REGISTER}",
  action == Crossway::Action::"{TOPIC}",
  resource
);
"""


def customize_registry(authority: RegistryAuthority) -> None:
    delivery_registry(authority)
    authority.set_topic(TOPIC, "population.v1.AddressChanged", population_descriptor_set(), "national_id")


def customize_gateway(fed: Federation, agency: Agency) -> str:
    """Delivery's tables, plus the population register's topic policies and its demo callers."""
    text = delivery_gateway(fed, agency)
    if agency.member == POPULATION:
        policies = agency.directory / "policies" / "topics"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "topics.cedar").write_text(POLICY)
        text = text.replace("[delivery]\n", '[delivery]\ntopic_policy_dir = "policies/topics"\n', 1)
        text += demo_jwt_table(fed, agency)
    return text


@dataclass(slots=True)
class TopicsResult:
    topics: int = 0
    subscriptions: int = 0
    published: int = 0
    deliveries: int = 0
    missing: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"topics: {self.topics} topics, {self.subscriptions} subscriptions, {self.published} events published, "
            f"{self.deliveries} deliveries, {self.missing} missing"
        )


class _System(DemoSystem):
    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId, issuer: str) -> None:
        super().__init__(fed, agency, subsystem, issuer)
        self.stub = tgrpc.TopicsStub(self.channel)


async def _drain(system: _System, sub_id: str, want: int) -> list[tpb.TopicDelivery]:
    got: list[tpb.TopicDelivery] = []
    deadline = time.monotonic() + 30
    while len(got) < want and time.monotonic() < deadline:
        request = tpb.TopicReceiveRequest(subscription_id=sub_id, max_events=100, wait_ms=1000)
        batch = [d async for d in system.stub.Receive(request, metadata=system.md, timeout=15)]
        if batch:
            got.extend(batch)
            ack = tpb.TopicAck(subscription_id=sub_id, sequence=batch[-1].sequence)
            await system.stub.Ack(ack, metadata=system.md, timeout=15)
    return got


async def run_topics_scenario(fed: Federation, say: Callable[[str], None] = print) -> TopicsResult:
    assert fed.business is not None
    result = TopicsResult(topics=1)
    publisher = _System(fed, fed.population, PUBLISHER, ISSUER)
    followers = [
        ("tax board", _System(fed, fed.tax, TAX_SUBSYSTEM, TAX_ISSUER), "tax-assessment"),
        ("business register", _System(fed, fed.business, REGISTER, ISSUER), "registry-upkeep"),
    ]
    say("The population register publishes address changes; two agencies subscribe (decided per event):")
    try:
        subs = []
        for _name, system, purpose in followers:
            request = tpb.SubscribeRequest(topic=TOPIC, purpose=purpose)
            info = await system.stub.Subscribe(request, metadata=system.md, timeout=15)
            subs.append(info.subscription_id)
            result.subscriptions += 1
        people = ["38001010001", "49002020002", "37503030003"]
        for n in range(6):
            event = population_pb.AddressChanged(
                national_id=people[n % 3],
                address=f"Narva mnt {n + 1}, Tallinn",
                previous_address="Tartu mnt 1",
                family_name="Tamm",
                effective_on="2026-12-01",
            )
            await publisher.stub.Publish(
                tpb.PublishRequest(topic=TOPIC, payload=event.SerializeToString()), metadata=publisher.md, timeout=15
            )
            result.published += 1
        for (name, system, _), sub_id in zip(followers, subs, strict=True):
            got = await _drain(system, sub_id, result.published)
            in_order = _in_order(got)
            result.deliveries += len(got)
            result.missing += result.published - in_order
            withheld = sorted({f for d in got for f in d.withheld_fields})
            fields = f", withheld: {', '.join(withheld)}" if withheld else ", every field"
            say(
                f"  {'✔' if in_order == result.published else '✘'} {name}: {len(got)} events in order per person{fields}"
            )
    except grpc.aio.AioRpcError as exc:
        result.failures.append(f"topics: {exc.code().name} {exc.details()}")
        say(f"  ✘ topics: {exc.code().name} {exc.details()}")
    finally:
        for system in (publisher, *(f[1] for f in followers)):
            await system.channel.close(None)
    if result.missing:
        result.failures.append(f"topics: {result.missing} events missing or out of order")
    return result


def _in_order(got: list[tpb.TopicDelivery]) -> int:
    """How many events arrived as expected: consecutive sequences, each key's sequence one more."""
    count, last_key, last_seq = 0, dict[str, int](), 0
    for d in got:
        if (last_seq and d.sequence != last_seq + 1) or d.key_sequence != last_key.get(d.key, 0) + 1:
            continue
        last_seq, last_key[d.key] = d.sequence, d.key_sequence
        count += 1
    return count
