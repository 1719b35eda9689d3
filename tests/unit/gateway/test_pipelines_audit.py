"""Issue 12 in the pipelines: no answer without its record, no poison record, the audited status
is the caller's status. Both pipelines in one process (``crossway.demo.inprocess``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from audit.trail import AuditRecord, MemoryAuditSink
from crossway.core.errors import AuditUnavailable, CrosswayError
from crossway.demo.inprocess import InProcessPair
from gateway.wire.codec import open_envelope, seal_frame
from gateway.wire.frames import Envelope
from gateway.wire.link import PeerStream, PeerTarget
from protos.demo.population.v1 import population_pb2 as pb

TWO_MIB = 2 << 20


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[InProcessPair]:
    built = InProcessPair.build(tmp_path)
    yield built
    await built.aclose()


def _get() -> bytes:
    return pb.GetPersonRequest(national_id="38001010001").SerializeToString()


class _Rewriting:
    """A link through which a misbehaving member re-signs what passes (a valid signature on a bad header)."""

    def __init__(self, pair: InProcessPair, *, request: dict[str, object] | None = None,
                 response: dict[str, object] | None = None) -> None:  # fmt: skip
        self._pair = pair
        self._request = request or {}
        self._response = response or {}

    def _resign(self, env: Envelope, member: str, changes: dict[str, object], ctx: object) -> Envelope:
        if not changes:
            return env
        lookup = self._pair.client_context.key_lookup(self._pair.client_context.config())
        frame = open_envelope(env, member, lookup)
        signer = ctx.signer  # type: ignore[attr-defined]
        resigned, _ = seal_frame(replace(frame.header, **changes), frame.body, signer)  # type: ignore[arg-type]
        return resigned

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        fed = self._pair.federation
        sent = self._resign(envelope, str(fed.tax.member), self._request, self._pair.client_context)
        answer = await self._pair.link.exchange(target, sent, timeout)
        return self._resign(answer, str(fed.population.member), self._response, self._pair.provider._ctx)

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        return self._pair.link.open_stream(target, timeout)

    async def aclose(self) -> None:
        return None


async def test_both_sides_commit_their_record_before_the_answer_is_returned(pair: InProcessPair) -> None:
    client_audit, provider_audit = pair.client_audit, pair.provider_audit
    assert isinstance(client_audit, MemoryAuditSink) and isinstance(provider_audit, MemoryAuditSink)
    await pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert (client_audit.commits, provider_audit.commits) == (1, 1)


class _Refusing(MemoryAuditSink):
    async def commit(self, record: AuditRecord, timeout: float) -> None:
        self.submit(record)  # queued, but never durable in time
        raise AuditUnavailable(f"audit record {record.record_id} is not durable after {timeout:.0f} s")


async def test_an_answer_whose_record_is_not_durable_is_not_released(pair: InProcessPair) -> None:
    pair.client_context.audit = _Refusing()
    with pytest.raises(CrosswayError) as refused:
        await pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert refused.value.code == "audit.unavailable"


async def test_with_the_unsafe_setting_the_answer_leaves_without_waiting_for_the_record(pair: InProcessPair) -> None:
    pair.client_context.audit = _Refusing()
    pair.client_context.unsafe_release_before_durable = True
    answer = await pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert answer  # released; the record was only enqueued
    assert len(pair.client_context.audit.records) == 1  # type: ignore[attr-defined]


async def test_a_caller_purpose_over_the_limit_is_refused_as_malformed_by_the_client_gateway(
    pair: InProcessPair,
) -> None:
    with pytest.raises(CrosswayError) as refused:
        await pair.client.unary(pair.call("GetPerson", purpose="p" * 5000), _get())
    assert refused.value.code == "message.malformed"
    assert pair.provider_audit.records == []  # nothing left this gateway
    (record,) = pair.client_audit.records
    assert record.error_code == "message.malformed" and len(record.to_json()) < 4096
    assert "[5000 chars, sha256 " in record.purpose


async def test_a_signed_request_with_a_2_mib_purpose_is_refused_before_anything_is_recorded_of_it(
    pair: InProcessPair,
) -> None:
    client = pair.client_via(_Rewriting(pair, request={"purpose": "p" * TWO_MIB}))
    with pytest.raises(CrosswayError) as refused:
        await client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert refused.value.code == "message.malformed"
    assert pair.backend.calls == []
    (record,) = pair.provider_audit.records
    assert record.error_code == "message.malformed"
    assert len(record.to_json()) < 4096, "the provider's record stays small"


async def test_a_signed_response_listing_2_mib_of_withheld_fields_is_refused_by_the_client_gateway(
    pair: InProcessPair,
) -> None:
    fields = tuple(f"field_{i:07d}" for i in range(150_000))
    client = pair.client_via(_Rewriting(pair, response={"withheld_fields": fields}))
    with pytest.raises(CrosswayError) as refused:
        await client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert refused.value.code == "message.malformed"
    (record,) = pair.client_audit.records
    assert record.status == "INVALID_ARGUMENT" and len(record.to_json()) < 8192
    assert len(record.withheld_fields) <= 17 and any("150000 paths" in f for f in record.withheld_fields)


async def test_a_unary_call_cancelled_by_its_caller_is_audited_cancelled(pair: InProcessPair) -> None:
    started = asyncio.Event()

    async def slow(call: object, body: bytes) -> bytes:
        started.set()
        await asyncio.sleep(10)
        return b""

    pair.backend.unary = slow  # type: ignore[method-assign]
    task = asyncio.create_task(pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert [r.status for r in pair.client_audit.records] == ["CANCELLED"]
    assert [r.status for r in pair.provider_audit.records] == ["CANCELLED"]


async def test_an_unexpected_exception_is_audited_internal_like_the_status_the_caller_gets(
    pair: InProcessPair,
) -> None:
    async def broken(call: object, body: bytes) -> bytes:
        raise RuntimeError("a bug in an adapter")

    pair.backend.unary = broken  # type: ignore[method-assign]
    with pytest.raises(CrosswayError) as failed:
        await pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())
    assert failed.value.code == "internal"
    assert [(r.status, r.error_code) for r in pair.provider_audit.records] == [("INTERNAL", "internal")]
    assert [(r.status, r.error_code) for r in pair.client_audit.records] == [("INTERNAL", "internal")]


class _AbandonedAfterTheAnswer:
    """A stream link whose provider side is closed right after it yields its signed final frame —
    what gRPC does to a provider's handler when the client cancels the call as soon as it has the
    answer (the race of issue 12: the provider then audited CANCELLED, the client OK)."""

    def __init__(self, pair: InProcessPair) -> None:
        self._pair = pair

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        return await self._pair.link.exchange(target, envelope, timeout)

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        return _AbandoningStream(self._pair)

    async def aclose(self) -> None:
        return None


class _AbandoningStream:
    def __init__(self, pair: InProcessPair) -> None:
        self._requests: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._responses: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._serve(pair))

    async def _frames(self) -> AsyncIterator[Envelope]:
        while (env := await self._requests.get()) is not None:
            yield env

    async def _serve(self, pair: InProcessPair) -> None:
        from protos.crossway.v1 import envelope_pb2

        frames = pair.provider.stream(self._frames(), pair.link._auth)
        try:
            async for env in frames:
                self._responses.put_nowait(env)
                if envelope_pb2.Header.FromString(env.header).kind == envelope_pb2.MESSAGE_KIND_RESPONSE:
                    await frames.aclose()  # cancelled at the yield of the final frame
                    return
        finally:
            self._responses.put_nowait(None)

    async def write(self, envelope: Envelope) -> None:
        self._requests.put_nowait(envelope)

    async def done_writing(self) -> None:
        self._requests.put_nowait(None)

    async def responses(self) -> AsyncIterator[Envelope]:
        while (env := await self._responses.get()) is not None:
            yield env

    def cancel(self) -> None:
        self._task.cancel()


async def test_a_stream_closed_once_its_final_frame_left_is_audited_as_the_status_it_carried(
    pair: InProcessPair,
) -> None:
    client = pair.client_via(_AbandonedAfterTheAnswer(pair))
    body = pb.ListPeopleRequest(family_name="Tamm").SerializeToString()

    async def one() -> AsyncIterator[bytes]:
        yield body

    got = [m async for m in client.stream(pair.call("ListPeople", purpose="tax-assessment"), one())]
    assert got
    assert [r.status for r in pair.client_audit.records] == ["OK"]
    assert [r.status for r in pair.provider_audit.records] == ["OK"]
