"""Topics between real gateways over real NATS: one publisher, three subscribers, in order, minimized.

The population register publishes address changes; the tax board, the business register (a
narrower ``@fields`` permit) and the social insurance board subscribe (see topics_support).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from topics_support import (
    TOPIC,
    TopicClient,
    address_change,
    clients,
    topics_federation,
)

from crossway.demo.federation import Federation
from gateway.wire.metadata import metadata_text
from protos.demo.population.v1 import population_pb2 as population_pb

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("topics")
    async with topics_federation(workdir) as federation:
        yield federation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sides(fed: Federation) -> AsyncIterator[dict[str, TopicClient]]:
    made = clients(fed)
    yield made
    for client in made.values():
        await client.close()


def _code(exc: grpc.aio.AioRpcError) -> str:
    return metadata_text(exc.trailing_metadata()).get("crossway-error", "")


async def test_a_subscription_without_a_permit_is_refused_by_the_publishers_gateway(
    sides: dict[str, TopicClient],
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["tax"].subscribe("marketing")  # the tax permit asks for purpose "taxation"
    assert _code(caught.value) == "policy.denied"


async def test_only_the_owner_publishes_and_only_events_of_the_topics_type(sides: dict[str, TopicClient]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["tax"].publish(address_change("38001010001", "Tartu"))
    assert _code(caught.value) == "topic.not_owner"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["publisher"].publish(b"\xff\xff not a protobuf")
    assert _code(caught.value) == "topic.event_invalid"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sides["publisher"].publish(address_change("38001010001", "Tartu"), topic=f"{TOPIC}-nope")
    assert _code(caught.value) == "topic.unknown"


async def test_a_publish_retried_with_its_idempotency_key_stores_the_event_once(
    sides: dict[str, TopicClient],
) -> None:
    publisher = sides["publisher"]
    first = await publisher.publish(address_change("38001010099", "Valga"), idempotency_key="change-99")
    again = await publisher.publish(address_change("38001010099", "Valga"), idempotency_key="change-99")
    assert not first.duplicate and again.duplicate
    assert (again.sequence, again.event_hash, again.key_sequence) == (
        first.sequence,
        first.event_hash,
        first.key_sequence,
    )
    # Retries racing each other: one stores the event, every other answer names it.
    racing = await asyncio.gather(
        *(publisher.publish(address_change("38001010098", "Võru"), idempotency_key="change-98") for _ in range(6))
    )
    assert sum(not r.duplicate for r in racing) == 1 and len({r.sequence for r in racing}) == 1
    assert racing[0].sequence == first.sequence + 1
    # The key names one event: another payload under it is refused, and nothing is stored.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publisher.publish(address_change("38001010099", "Narva"), idempotency_key="change-99")
    assert _code(caught.value) == "topic.idempotency_conflict"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publisher.publish(address_change("38001010097", "Paide"), idempotency_key="k" * 129)
    assert _code(caught.value) == "topic.event_invalid"
    after = await publisher.publish(address_change("38001010097", "Paide"))
    assert after.sequence == racing[0].sequence + 1  # no sequence was taken by a duplicate or a refusal


@pytest.mark.timeout(900)  # a guard for a slow machine, not an assertion: 3,000 deliveries, each with evidence
async def test_1000_events_from_8_publishers_reach_3_subscribers_once_each_in_order_per_key(
    fed: Federation, sides: dict[str, TopicClient]
) -> None:
    subs = {
        "tax": await sides["tax"].subscribe("taxation"),
        "business": await sides["business"].subscribe("registry-upkeep"),
        "social": await sides["social"].subscribe("benefits"),
    }
    start = subs["tax"].start_sequence
    assert all(s.state == "active" for s in subs.values())
    people = [f"3800101{n:04d}" for n in range(40)]

    async def publisher(worker: int) -> list[tuple[str, int]]:
        out = []
        for n in range(125):
            person = people[(worker * 125 + n) % len(people)]
            reply = await sides["publisher"].publish(address_change(person, f"street {worker}-{n}", n))
            out.append((reply.key, reply.key_sequence))
        return out

    published = [p for batch in await asyncio.gather(*(publisher(w) for w in range(8))) for p in batch]
    assert len(published) == 1000
    # every key's sequences run 1..k without a hole or a repeat
    per_key = collections.defaultdict(list)
    for key, key_sequence in published:
        per_key[key].append(key_sequence)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in per_key.values())

    drained = await asyncio.gather(*(sides[n].drain(subs[n].subscription_id, 1000, deadline_s=800) for n in subs))
    got = dict(zip(subs, drained, strict=True))
    for name, events in got.items():
        sequences = [e.sequence for e in events]
        assert sequences == list(range(start, start + 1000)), name  # every event once, in topic order
        last_per_key: dict[str, int] = {}
        for e in events:
            assert e.key_sequence == last_per_key.get(e.key, 0) + 1, (name, e.key)  # per key in order
            last_per_key[e.key] = e.key_sequence
    # field minimization per subscriber: the business register sees the id and the address only
    for e in got["business"]:
        event = population_pb.AddressChanged.FromString(e.payload)
        assert event.national_id and event.address and not event.previous_address and not event.family_name
        assert sorted(e.withheld_fields) == ["effective_on", "family_name", "previous_address"]
    for e in got["tax"]:
        assert population_pb.AddressChanged.FromString(e.payload).family_name == "Tamm"
        assert not e.withheld_fields
    # the status matrix at the publisher: all handed over, nothing missing
    for _ in range(60):
        status = await sides["publisher"].status()
        rows = {r.subscriber: r for r in status.subscribers}
        if all(r.handed_over == status.published and r.lag == 0 for r in rows.values()) and len(rows) == 3:
            break
        await asyncio.sleep(0.5)
    assert len(rows) == 3 and all(r.lag == 0 and r.refusals == 0 for r in rows.values()), status
    assert status.published == start + 999
