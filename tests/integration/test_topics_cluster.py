"""Topics on the 3-node NATS cluster of the backbone: the node leading the topic's stream is killed
(SIGKILL) while events are published and fanned out; nothing is lost or doubled.

Every publish the publisher's system saw acknowledged is delivered; the topic's sequences run
without a hole; each subscriber receives each sequence exactly once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from topics_support import TopicClient, address_change, clients, topics_federation

from crossway.bus import Names
from crossway.demo.federation import Federation

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVENTS = 200


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("topics-cluster")
    async with topics_federation(workdir, nats_nodes=3) as federation:
        yield federation


async def _leader(fed: Federation) -> int:
    stream = Names(fed.population.gateway).topic_stream
    nc = await fed.nats.admin_connection()
    try:
        info = await nc.jetstream(timeout=5).stream_info(stream)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader
    return int(info.cluster.leader.removeprefix("n"))


async def _publish_through(publisher: TopicClient, n: int) -> int:
    """One event; retried while the cluster elects a new leader (the system's own retry)."""
    for _ in range(60):
        try:
            return int((await publisher.publish(address_change(f"3700101{n % 9:04d}", f"cluster {n}", n))).sequence)
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.5)
    raise AssertionError(f"event {n} could not be published in 30 s")


@pytest.mark.timeout(600)
async def test_a_node_killed_mid_run_loses_and_doubles_no_event(fed: Federation) -> None:
    sides = clients(fed)
    try:
        subs = {
            name: await sides[name].subscribe(purpose)
            for name, purpose in (("tax", "taxation"), ("business", "registry-upkeep"), ("social", "benefits"))
        }
        victim = await _leader(fed)

        async def publishing() -> list[int]:
            return [await _publish_through(sides["publisher"], n) for n in range(EVENTS)]

        task = asyncio.create_task(publishing())
        await asyncio.sleep(3)
        assert not task.done()  # the kill lands mid-run
        await fed.nats.nodes[victim].kill()  # SIGKILL: no flush, no goodbye
        await asyncio.sleep(8)
        await fed.nats.nodes[victim].start()
        acknowledged = await task
        status = await sides["publisher"].status()
        start = subs["tax"].start_sequence
        topic_sequences = list(range(start, status.published + 1))
        assert sorted(acknowledged) == sorted(set(acknowledged))  # no sequence given twice
        assert set(acknowledged) <= set(topic_sequences)
        for name, sub in subs.items():
            got = await sides[name].drain(sub.subscription_id, len(topic_sequences), deadline_s=400)
            assert [e.sequence for e in got] == topic_sequences, name  # each once, in order, no hole
    finally:
        for client in sides.values():
            await client.close()
