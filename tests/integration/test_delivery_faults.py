"""Registered delivery when things fail: a gateway or NATS killed mid-run, a recipient away.

Every test counts: each message the sender's gateway accepted is handed over exactly once (one
ContentHandover), its evidence is in the order Submission → Relay → Handover, and the sender's
and the recipient's timelines are equal, byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest_asyncio
from delivery_support import Mail, delivery_federation, pin_ports, population_mail, restart_gateway, tax_mail

from crossway.demo.federation import TAX_SUBSYSTEM, Federation

TAX = str(TAX_SUBSYSTEM)
ORDER = ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]


@pytest_asyncio.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    async with delivery_federation(tmp_path / "fed") as federation:
        for agency in federation.agencies:
            pin_ports(agency)  # a restarted gateway comes back at the address the registry names
        yield federation


class Senders:
    """``concurrency`` tasks sending ``ids``; a send that fails is retried with the same id."""

    def __init__(self, mail: Mail, ids: list[str], concurrency: int) -> None:
        self.mail, self.ids, self.concurrency = mail, ids, concurrency
        self.accepted: set[str] = set()
        self.retried = 0
        self.duplicates = 0
        self.a_third = asyncio.Event()  # set once a third of the messages are accepted

    async def run(self) -> None:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for message_id in self.ids:
            queue.put_nowait(message_id)

        async def worker() -> None:
            while not queue.empty():
                message_id = queue.get_nowait()
                while True:
                    try:
                        response = await self.mail.send(message_id, message_id.encode(), timeout=5)
                    except grpc.aio.AioRpcError:
                        self.retried += 1
                        await asyncio.sleep(0.3)
                        continue
                    assert not response.HasField("refusal"), response.refusal
                    self.duplicates += response.duplicate
                    self.accepted.add(message_id)
                    if len(self.accepted) * 3 >= len(self.ids):
                        self.a_third.set()
                    break

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))


async def receive_all(mail: Mail, ids: set[str], timeout: float) -> Counter[str]:
    """Receive and acknowledge until every id is handed over; how often each was received."""
    seen: Counter[str] = Counter()
    handed: set[str] = set()
    deadline = time.monotonic() + timeout
    while handed != ids:
        assert time.monotonic() < deadline, f"{len(ids - handed)} message(s) never handed over"
        try:
            batch = await mail.receive(max_messages=200, wait_ms=1000)
            for message in batch:
                seen[message.ref.message_id] += 1
                await mail.ack(message.ref.sender, message.ref.message_id)
                handed.add(message.ref.message_id)
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.5)  # the gateway or NATS is coming back
    return seen


async def check_timelines(tax: Mail, population: Mail, ids: set[str]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(message_id: str) -> None:
        async with gate:
            deadline = time.monotonic() + 30
            while True:
                sender_side = await tax.timeline(TAX, message_id)
                if len(sender_side) >= 3 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            recipient_side = await population.timeline(TAX, message_id)
            assert [e.event.event for e in sender_side] == ORDER, message_id
            assert [e.data for e in sender_side] == [e.data for e in recipient_side], message_id

    await asyncio.gather(*(one(m) for m in sorted(ids)))


async def test_a_recipient_down_for_30_s_gets_500_messages_from_16_senders_exactly_once(fed: Federation) -> None:
    tax, population = tax_mail(fed), population_mail(fed)
    try:
        ids = [f"down-{n:03d}" for n in range(500)]
        assert fed.population.process is not None
        fed.population.process.kill()
        await fed.population.process.stop()
        stopped = time.monotonic()
        senders = Senders(tax, ids, 16)
        await senders.run()
        assert senders.accepted == set(ids)
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        await restart_gateway(fed, fed.population, kill=False)
        seen = await receive_all(population, set(ids), timeout=180)
        await check_timelines(tax, population, set(ids))
        assert set(seen) == set(ids)
        print(f"500 messages, recipient down {time.monotonic() - stopped:.0f} s: received {sum(seen.values())} times")
    finally:
        await tax.close()
        await population.close()


async def test_a_sender_gateway_killed_mid_relay_loses_and_doubles_nothing(fed: Federation) -> None:
    tax, population = tax_mail(fed), population_mail(fed)
    try:
        ids = [f"kill-{n:03d}" for n in range(300)]
        senders = Senders(tax, ids, 16)
        sending = asyncio.create_task(senders.run())
        await senders.a_third.wait()
        await restart_gateway(fed, fed.tax, kill=True, down_s=1.0)  # kill -9, mid-relay
        await sending
        assert senders.accepted == set(ids) and senders.retried > 0
        seen = await receive_all(population, set(ids), timeout=120)
        await check_timelines(tax, population, set(ids))
        assert set(seen) == set(ids)
    finally:
        await tax.close()
        await population.close()


async def test_nats_killed_and_restarted_mid_run_loses_and_doubles_nothing(fed: Federation) -> None:
    tax, population = tax_mail(fed), population_mail(fed)
    try:
        ids = [f"nats-{n:03d}" for n in range(300)]
        senders = Senders(tax, ids, 16)
        sending = asyncio.create_task(senders.run())
        await senders.a_third.wait()
        assert fed.nats.pid is not None
        os.kill(fed.nats.pid, signal.SIGKILL)
        await asyncio.sleep(3.0)
        await fed.nats.restart()  # same port, same data directory
        await sending
        assert senders.accepted == set(ids)
        seen = await receive_all(population, set(ids), timeout=180)
        await check_timelines(tax, population, set(ids))
        assert set(seen) == set(ids)
    finally:
        await tax.close()
        await population.close()
