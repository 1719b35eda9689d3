"""Agency systems call a peer's service with its own generated stubs, through both gateways."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest

from audit.trail import count_stream_records, fetch_records
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _md(fed: Federation, **extra: str) -> tuple[tuple[str, str], ...]:
    pairs = [("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment")]
    pairs += [(k.replace("_", "-"), v) for k, v in extra.items()]
    return tuple(pairs)


def _error_code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", ""))


async def _records_for(fed: Federation, message_id: str, expected: int, timeout: float = 10.0) -> list:
    """Audit records of one exchange, read back from the JetStream stream itself."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        records = [r for r in await fetch_records(fed.auditor) if r.message_id == message_id]
        if len(records) >= expected or asyncio.get_running_loop().time() > deadline:
            return records
        await asyncio.sleep(0.1)


async def test_a_unary_call_returns_the_backends_answer_and_the_message_id(federation: Federation) -> None:
    async with federation.channel() as channel:
        call = pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="38001010001"), metadata=_md(federation), timeout=10
        )
        person = await call
        trailing = dict(await call.trailing_metadata() or ())
    assert (person.given_name, person.family_name) == ("Mari", "Tamm")
    assert len(str(trailing["crossway-message-id"])) == 32
    records = await _records_for(federation, str(trailing["crossway-message-id"]), 2)
    assert sorted(r.side for r in records) == ["client", "provider"]
    provider = next(r for r in records if r.side == "provider")
    assert provider.decision == "allow" and provider.policy_ids == ("tax-uses-population-register",)
    assert provider.client == "EE/GOV/70000001/tax" and provider.purpose == "tax-assessment"
    # Both sides saw the same bytes: the request and response digests agree.
    client = next(r for r in records if r.side == "client")
    assert client.request_sha256 == provider.request_sha256
    assert client.response_sha256 == provider.response_sha256
    assert client.request_signature == provider.request_signature != ""


async def test_a_server_streaming_call_streams_every_message(federation: Federation) -> None:
    async with federation.channel() as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        people = [p async for p in stub.ListPeople(pb.ListPeopleRequest(), metadata=_md(federation), timeout=10)]
    assert [p.national_id for p in people] == ["38001010001", "39002020002", "48503030003"]


async def test_a_client_streaming_call_delivers_every_message_in_order(federation: Federation) -> None:
    async def people() -> AsyncIterator[pb.Person]:
        for i in range(50):
            yield pb.Person(national_id=f"id-{i}")

    async with federation.channel() as channel:
        summary = await pb_grpc.PersonRegistryStub(channel).ImportPeople(people(), metadata=_md(federation), timeout=10)
    assert summary.received == 50
    assert list(summary.national_ids) == [f"id-{i}" for i in range(50)]


async def test_a_bidirectional_call_answers_each_request_as_it_comes(federation: Federation) -> None:
    async with federation.channel() as channel:
        call = pb_grpc.PersonRegistryStub(channel).LookupPeople(metadata=_md(federation), timeout=10)
        answers = []
        for national_id in ("48503030003", "38001010001", "nobody"):
            await call.write(pb.GetPersonRequest(national_id=national_id))
            answers.append(await call.read())
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
    assert [a.given_name for a in answers] == ["Liis", "Mari", ""]


async def test_a_large_stream_passes_through_both_gateways(federation: Federation) -> None:
    async with federation.channel() as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        total = 0
        async for chunk in stub.Export(
            pb.ExportRequest(total_bytes=8 * 1024 * 1024, chunk_size=256 * 1024), metadata=_md(federation), timeout=30
        ):
            total += len(chunk.data)
    assert total == 8 * 1024 * 1024


async def test_a_caller_without_a_permitting_policy_is_denied_and_the_denial_is_audited(
    federation: Federation,
) -> None:
    async with federation.marketing_channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"), timeout=10
            )
    exc = info.value
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _error_code(exc) == "policy.denied"
    details = exc.details() or ""
    assert details.startswith("provider gateway: policy.denied:")
    for name in ("EE/GOV/70000001/marketing", "GetPerson", "EE/GOV/70000002/population/population.v1.PersonRegistry"):
        assert name in details
    message_id = str(dict(exc.trailing_metadata() or ())["crossway-message-id"])
    records = await _records_for(federation, message_id, 2)
    provider = next(r for r in records if r.side == "provider")
    assert (provider.decision, provider.status, provider.error_code) == ("deny", "PERMISSION_DENIED", "policy.denied")
    assert next(r for r in records if r.side == "client").error_code == "policy.denied"


async def test_the_backends_own_error_reaches_the_caller_marked_as_the_backends(federation: Federation) -> None:
    async with federation.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="00000000000"), metadata=_md(federation), timeout=10
            )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert (info.value.details() or "").startswith("backend: upstream.error: no person with national id")


async def test_an_unknown_service_is_refused_with_its_own_code(federation: Federation) -> None:
    async with federation.channel() as channel:
        method = channel.unary_unary("/registry.v9.Unknown/Lookup")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await method(b"", metadata=_md(federation), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert _error_code(info.value) == "service.unknown"
    assert "registry.v9.Unknown" in (info.value.details() or "")


async def test_a_caller_without_credentials_is_unauthenticated(federation: Federation) -> None:
    async with federation.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(pb.GetPersonRequest(national_id="1"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _error_code(info.value) == "client.unauthenticated"


async def test_an_expired_token_is_refused_and_not_echoed(federation: Federation) -> None:
    token = federation.token(ttl_s=-120)
    async with federation.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="1"), metadata=(("authorization", f"Bearer {token}"),), timeout=10
            )
    assert _error_code(info.value) == "client.token_invalid"
    assert token not in (info.value.details() or "")
    assert "expired" in (info.value.details() or "")


async def test_the_callers_deadline_bounds_a_slow_backend(federation: Federation) -> None:
    async with federation.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="slow-5000"), metadata=_md(federation), timeout=1.0
            )
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_one_thousand_calls_from_64_callers_all_succeed_with_two_audit_records_each(
    federation: Federation,
) -> None:
    md = _md(federation)
    message_ids: list[str] = []
    errors: list[str] = []
    before = await count_stream_records(federation.auditor)

    async with federation.channel() as channel:
        stub = pb_grpc.PersonRegistryStub(channel)

        async def caller(n: int) -> None:
            for _ in range(n):
                try:
                    call = stub.GetPerson(pb.GetPersonRequest(national_id="39002020002"), metadata=md, timeout=30)
                    person = await call
                    assert person.given_name == "Jaan"
                    message_ids.append(str(dict(await call.trailing_metadata() or ())["crossway-message-id"]))
                except grpc.aio.AioRpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")

        # 1,000 calls spread over 64 concurrent callers (40 of them make 16 calls, 24 make 15).
        await asyncio.gather(*(caller(16 if i < 40 else 15) for i in range(64)))

    assert errors == []
    assert len(message_ids) == 1000 == len(set(message_ids))
    # Count from the stream itself, by exchange: other tests' records may still be arriving, so a
    # global before/after difference would not say which records belong to these calls.
    ours = set(message_ids)

    async def per_exchange() -> Counter[tuple[str, str]]:
        return Counter((r.message_id, r.side) for r in await fetch_records(federation.auditor) if r.message_id in ours)

    deadline = asyncio.get_running_loop().time() + 30
    while sum((await per_exchange()).values()) < 2000:
        assert asyncio.get_running_loop().time() < deadline, "audit records did not all arrive"
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # a duplicate would show up as a third record: give it time to arrive
    counted = await per_exchange()
    assert len(counted) == 2000 and set(counted.values()) == {1}  # (message id, side) once each
    assert await count_stream_records(federation.auditor) >= before + 2000


async def test_one_trace_id_spans_the_caller_both_gateways_and_the_backend(federation: Federation) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller_span = "00f067aa0ba902b7"
    md = (*_md(federation), ("traceparent", f"00-{trace_id}-{caller_span}-01"))
    async with federation.channel() as channel:
        await pb_grpc.PersonRegistryStub(channel).GetPerson(
            pb.GetPersonRequest(national_id="48503030003"), metadata=md, timeout=10
        )

    def spans(agency_dir: str) -> list[dict[str, str]]:
        path = federation.workdir / agency_dir / "spans.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [s for s in map(json.loads, lines) if s["trace_id"] == trace_id]

    deadline = asyncio.get_running_loop().time() + 10
    while not (spans("tax") and spans("population")):
        assert asyncio.get_running_loop().time() < deadline, "gateway spans with the caller's trace id never appeared"
        await asyncio.sleep(0.1)
    client_span = spans("tax")[0]
    provider_span = spans("population")[0]
    assert client_span["parent_span_id"] == caller_span  # the caller's span is the client gateway span's parent
    assert provider_span["parent_span_id"] == client_span["span_id"]
    backend_calls = [json.loads(line) for line in federation.calls_log.read_text().splitlines()]
    seen = [c for c in backend_calls if c.get("traceparent", "").split("-")[1:2] == [trace_id]]
    assert seen and seen[-1]["traceparent"].split("-")[2] == provider_span["span_id"]
