"""Registered delivery with the gateways' clocks in the test's hands (two rooms in one process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from delivery_inprocess import DeliveryPair
from delivery_support import DOCUMENT, MAILBOX

from crossway.demo.federation import TAX_SUBSYSTEM
from gateway.delivery.sender import Submission

TAX = str(TAX_SUBSYSTEM)
HOUR_MS = 3_600_000


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[DeliveryPair]:
    pair = await DeliveryPair.start(tmp_path)
    try:
        yield pair
    finally:
        await pair.aclose()


def _submission(message_id: str, now_ms: int, expires_in_ms: int = 3 * HOUR_MS) -> Submission:
    return Submission(
        recipient=str(MAILBOX),
        message_id=message_id,
        message_type=DOCUMENT,
        payload=b"the same summons",
        expires_at_ms=now_ms + expires_in_ms,
        content_type="text/plain",
        purpose="notice",
    )


async def _names(pair: DeliveryPair, message_id: str, role: str = "out") -> list[str]:
    queries = pair.tax.queries if role == "out" else pair.population.queries
    caller = TAX_SUBSYSTEM if role == "out" else MAILBOX
    _, state = await queries.state(caller, TAX, message_id)
    return [e.event.event for e in state.events]


async def _until(pair: DeliveryPair, message_id: str, event: str) -> None:
    deadline = time.monotonic() + 20
    while event not in await _names(pair, message_id):
        assert time.monotonic() < deadline, f"no {event}"
        await asyncio.sleep(0.1)


async def test_a_duplicate_an_hour_later_returns_the_original_evidence_and_is_not_delivered_again(
    pair: DeliveryPair,
) -> None:
    first = await pair.tax.submissions.send(TAX_SUBSYSTEM, _submission("summons-7", pair.clock.now_ms()))
    await _until(pair, "summons-7", "RelayAcceptance")
    received = [d async for d in pair.population.mailboxes.receive(MAILBOX, 10, 2000)]
    assert [d.message_id for d in received] == ["summons-7"]
    await pair.population.mailboxes.ack(MAILBOX, TAX, "summons-7")
    await _until(pair, "summons-7", "ContentHandover")

    pair.clock.shift_ms += HOUR_MS  # an hour later, on both gateways
    again = await pair.tax.submissions.send(TAX_SUBSYSTEM, _submission("summons-7", pair.clock.now_ms()))
    assert again.duplicate and again.evidence.data == first.evidence.data
    assert [d async for d in pair.population.mailboxes.receive(MAILBOX, 10, 1000)] == []
    await asyncio.sleep(1.0)
    assert await _names(pair, "summons-7") == ["SubmissionAcceptance", "RelayAcceptance", "ContentHandover"]
    assert await _names(pair, "summons-7", "in") == await _names(pair, "summons-7")


async def test_a_recipient_away_past_expiry_gives_a_relay_failure_at_the_sender(pair: DeliveryPair) -> None:
    pair.peers.down.add("loopback.population.example:7443")
    await pair.tax.submissions.send(TAX_SUBSYSTEM, _submission("summons-8", pair.clock.now_ms(), 2 * HOUR_MS))
    await asyncio.sleep(1.0)
    assert await _names(pair, "summons-8") == ["SubmissionAcceptance"]
    pair.clock.shift_ms += 3 * HOUR_MS  # the relay worker's next retry finds it expired
    await _until(pair, "summons-8", "RelayFailure")
    _, state = await pair.tax.queries.state(TAX_SUBSYSTEM, TAX, "summons-8")
    assert state.events[-1].event.reason_code == "delivery.expired"
