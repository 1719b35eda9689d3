"""The topics row of ``make bench``: events per second published and handed over to 3 subscribers,
next to bare JetStream fan-out of the same payload to 3 consumers, measured in the same run.

Crossway: the population register's system publishes ``events`` address changes from 8 concurrent
callers (each Publish signed, sequenced and stored); the tax board, the business register and a
social insurance board, each behind a gateway of its own, receive and acknowledge them
(ContentHandover) as they come. The figure is events / the time from the first Publish until all
three subscribers have handed the last one over. In between, per event and subscriber: a Cedar
decision, SubmissionAcceptance, the peer hop, the order and hash-chain checks, the inbox,
RelayAcceptance and ContentHandover with their audit records on both gateways.

Baseline: 8 publishers put the same number of messages of the same size into a stream (each
acknowledged by JetStream) while 3 durable pull consumers fetch and acknowledge every one, as the
publisher gateway's own NATS identity on its member's topic stream: the same TLS backbone and the
same least-privilege grant. Runs interleave, medians taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.baseline import gateway_backbone
from crossway.core.ids import MemberId, SubsystemId
from crossway.demo.federation import POPULATION, TAX_SUBSYSTEM, Agency, Federation
from crossway.demo.members import population_descriptor_set
from crossway.natsclient import connect_when_up
from crossway.security.keys import save_pem
from crossway.security.tokens import mint_token
from protos.crossway.v1 import topics_pb2 as tpb
from protos.crossway.v1 import topics_pb2_grpc as tgrpc
from protos.demo.population.v1 import population_pb2 as population_pb
from registry import RegistryAuthority

__all__ = ["FanoutFigures", "measure"]

PUBLISHER = SubsystemId(POPULATION, "population")
TOPIC = f"{PUBLISHER}/address-changes"
BUSINESS = SubsystemId(MemberId("EE", "GOV", "70000003"), "business")
SOCIAL = SubsystemId(MemberId("EE", "GOV", "70000005"), "benefits")
ISSUER = "https://idp.tax.example"
PUBLISHERS = 8
POLICY = f'@id("all-three")\npermit (principal, action == Crossway::Action::"{TOPIC}", resource);\n'


def _registry(authority: RegistryAuthority) -> None:
    authority.add_subsystem(BUSINESS)
    authority.add_subsystem(SOCIAL)
    authority.set_topic(TOPIC, "population.v1.AddressChanged", population_descriptor_set(), "national_id")


def _gateway(fed: Federation, agency: Agency) -> str:
    text = "[delivery]\nack_wait_s = 10\nbackoff_s = 0.2\nbackoff_max_s = 2\n"
    if agency.member == POPULATION:
        policies = agency.directory / "policies" / "topics"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "bench.cedar").write_text(POLICY)
        text += 'topic_policy_dir = "policies/topics"\n'
    if agency.member != fed.tax.member:
        save_pem(agency.directory / "idp.pub", fed.idp_key.public_key())
        text += f'\n[client_auth.jwt]\nissuer = "{ISSUER}"\naudience = "crossway:{agency.gateway}"\npublic_keys = ["idp.pub"]\n'
    return text


@dataclass(frozen=True, slots=True)
class FanoutFigures:
    crossway_events_per_s: float
    jetstream_events_per_s: float
    events: int
    subscribers: int = 3

    def as_json(self) -> dict[str, Any]:
        return {
            "crossway_publish_to_handover_events_per_s": round(self.crossway_events_per_s, 1),
            "jetstream_fanout_events_per_s": round(self.jetstream_events_per_s, 1),
            "events": self.events,
            "subscribers": self.subscribers,
            "ratio": round(self.crossway_events_per_s / max(self.jetstream_events_per_s, 1e-9), 4),
        }


class _System:
    def __init__(self, fed: Federation, agency: Agency, subsystem: SubsystemId) -> None:
        self.channel = grpc.aio.secure_channel(agency.client_address, grpc.ssl_channel_credentials(fed.ca_pem))
        self.stub = tgrpc.TopicsStub(self.channel)  # type: ignore[no-untyped-call]
        token = mint_token(
            fed.idp_key, subject=str(subsystem), issuer=ISSUER, audience=f"crossway:{agency.gateway}", ttl_s=3600
        )
        self.md = (("authorization", f"Bearer {token}"),)

    async def drain_until(self, sub_id: str, last: int) -> None:
        """Receive and hand over until sequence ``last`` is handed over."""
        done = 0
        while done < last:
            request = tpb.TopicReceiveRequest(subscription_id=sub_id, max_events=500, wait_ms=500)
            batch = [d async for d in self.stub.Receive(request, metadata=self.md, timeout=60)]
            if batch:
                ack = tpb.TopicAck(subscription_id=sub_id, sequence=batch[-1].sequence)
                done = (await self.stub.Ack(ack, metadata=self.md, timeout=60)).handed_over


async def _crossway_run(
    publisher: _System, subscribers: list[tuple[_System, str]], events: int, payload: bytes
) -> float:
    counter = iter(range(events))

    async def publishing() -> int:
        last = 0
        for n in counter:
            person = population_pb.AddressChanged(national_id=f"3800101{n % 50:04d}", address=payload.hex())
            request = tpb.PublishRequest(topic=TOPIC, payload=person.SerializeToString())
            last = max(last, (await publisher.stub.Publish(request, metadata=publisher.md, timeout=60)).sequence)
        return last

    began = time.monotonic()
    last = max(await asyncio.gather(*(publishing() for _ in range(PUBLISHERS))))
    await asyncio.gather(*(system.drain_until(sub_id, last) for system, sub_id in subscribers))
    return events / (time.monotonic() - began)


async def _jetstream_run(fed: Federation, events: int, payload: bytes) -> float:
    async def quiet(*_: object) -> None:
        return None

    access, stream, subject = gateway_backbone(fed, fed.population)
    nc, _ = await connect_when_up(
        access,
        name="bench-fanout",
        connect_timeout=2,
        retry_interval=0.2,
        on_error=quiet,
        on_disconnected=quiet,
        on_reconnected=quiet,
    )
    js = nc.jetstream(timeout=30)
    tag = os.urandom(3).hex()
    subs = [await js.pull_subscribe(subject, durable=f"benchfan-{tag}-{i}", stream=stream) for i in range(3)]
    counter = iter(range(events))

    async def publishing() -> None:
        for _ in counter:
            await js.publish(subject, payload, stream=stream)

    async def consuming(sub: Any) -> None:
        import nats.errors

        got = 0
        while got < events:
            try:
                msgs = await sub.fetch(batch=256, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            await asyncio.gather(*(m.ack() for m in msgs))
            got += len(msgs)

    try:
        began = time.monotonic()
        await asyncio.gather(*(publishing() for _ in range(PUBLISHERS)), *(consuming(s) for s in subs))
        return events / (time.monotonic() - began)
    finally:
        for i in range(3):
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, f"benchfan-{tag}-{i}")
        await nc.close()


async def measure(workdir: Path, *, events: int, payload_bytes: int, runs: int) -> FanoutFigures:
    payload = os.urandom(payload_bytes // 2)  # hex in the event: payload_bytes on the wire
    async with Federation(
        workdir,
        require_encryption=False,
        customize_registry=_registry,
        customize_gateway=_gateway,
        extra_agencies=(
            (BUSINESS.member, "Business Register", "business"),
            (SOCIAL.member, "Social Insurance Board", "social"),
        ),
    ) as fed:
        publisher = _System(fed, fed.population, PUBLISHER)
        systems = [
            _System(fed, fed.tax, TAX_SUBSYSTEM),
            _System(fed, fed.extra[0], BUSINESS),
            _System(fed, fed.extra[1], SOCIAL),
        ]
        subscribers = []
        for system, subsystem in zip(systems, (TAX_SUBSYSTEM, BUSINESS, SOCIAL), strict=True):
            request = tpb.SubscribeRequest(topic=TOPIC, purpose=f"bench {subsystem.name}")
            info = await system.stub.Subscribe(request, metadata=system.md, timeout=30)
            subscribers.append((system, info.subscription_id))
        mine: list[float] = []
        theirs: list[float] = []
        try:
            for _ in range(runs):
                mine.append(await _crossway_run(publisher, subscribers, events, payload))
                theirs.append(await _jetstream_run(fed, events, payload))
        finally:
            for system in (publisher, *systems):
                await system.channel.close(None)
    return FanoutFigures(sorted(mine)[len(mine) // 2], sorted(theirs)[len(theirs) // 2], events)


if __name__ == "__main__":  # the row alone: python -m bench.fanout [EVENTS] [RUNS]
    import sys
    import tempfile

    async def _main() -> None:
        with tempfile.TemporaryDirectory(prefix="crossway-bench-fanout-") as tmp:
            n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
            figures = await measure(
                Path(tmp), events=n, payload_bytes=1024, runs=int(sys.argv[2]) if len(sys.argv) > 2 else 1
            )
            print(figures.as_json())

    asyncio.run(_main())
