"""A 100 MiB attachment from one agency to another: streamed in chunks all the way, each chunk
checked against the digest the sender signed, and neither gateway's memory grows by 64 MiB."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from delivery_support import Mail, delivery_federation, population_mail, tax_mail

from bench.procstat import RssSampler
from crossway.demo.federation import TAX_SUBSYSTEM, Federation
from protos.crossway.v1 import delivery_pb2 as dpb

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAX = str(TAX_SUBSYSTEM)
MiB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    workdir: Path = tmp_path_factory.mktemp("delivery-large")
    async with delivery_federation(workdir, relay_timeout_s=60) as federation:
        yield federation


def _block(n: int) -> bytes:
    # Distinct, cheap content per MiB (a repeated pattern would hide a misplaced chunk).
    return hashlib.sha256(str(n).encode()).digest() * (MiB // 32)


async def _upload(mail: Mail, size_mib: int, name: str) -> tuple[dpb.Attachment, str]:
    digest = hashlib.sha256()

    async def chunks() -> AsyncIterator[dpb.AttachmentChunk]:
        for n in range(size_mib):
            data = _block(n)
            digest.update(data)
            yield dpb.AttachmentChunk(name=name if n == 0 else "", content_type="application/octet-stream", data=data)

    info: dpb.Attachment = await mail.stub.SendAttachment(chunks(), metadata=mail.md, timeout=300)
    return info, digest.hexdigest()


async def _deliver(tax: Mail, population: Mail, message_id: str, size_mib: int) -> tuple[int, str, str]:
    info, sent_digest = await _upload(tax, size_mib, f"{message_id}.bin")
    assert info.size == size_mib * MiB
    response = await tax.send(message_id, b"see the attachment", attachment_ids=(info.attachment_id,), expires_in_s=600)
    assert not response.HasField("refusal"), response.refusal
    deadline = time.monotonic() + 240
    message = None
    while message is None:
        assert time.monotonic() < deadline, "not received"
        for m in await population.receive(wait_ms=1000):
            if m.ref.message_id == message_id:
                message = m
    [attachment] = message.attachments
    received = hashlib.sha256()
    size = 0
    request = dpb.AttachmentRequest(message=message.ref, attachment_id=attachment.attachment_id)
    async for chunk in population.stub.FetchAttachment(request, metadata=population.md, timeout=300):
        received.update(chunk.data)
        size += len(chunk.data)
    await population.ack(TAX, message_id)
    return size, sent_digest, received.hexdigest()


async def test_a_100_mib_attachment_is_delivered_with_each_gateways_memory_growing_under_64_mib(
    fed: Federation,
) -> None:
    tax, population = tax_mail(fed), population_mail(fed)
    try:
        await _deliver(tax, population, "warm-up", 2)  # every code path loaded before the baseline
        assert fed.tax.process is not None and fed.population.process is not None
        groups = {"sender": [fed.tax.process.pid], "recipient": [fed.population.process.pid]}
        started = time.monotonic()
        with RssSampler(groups, interval_s=0.05) as sampler:
            size, sent, received = await _deliver(tax, population, "large-1", 100)
        elapsed = time.monotonic() - started
        assert size == 100 * MiB and sent == received
        growth = sampler.growth()
        print(
            f"100 MiB delivered in {elapsed:.1f} s; RSS growth sender {growth['sender'] / MiB:.1f} MiB, "
            f"recipient {growth['recipient'] / MiB:.1f} MiB"
        )
        assert growth["sender"] < 64 * MiB and growth["recipient"] < 64 * MiB, growth
        names = [e.event.event for e in await tax.timeline(TAX, "large-1")]
        await asyncio.sleep(0)
        assert names[:2] == ["SubmissionAcceptance", "RelayAcceptance"]
    finally:
        await tax.close()
        await population.close()
