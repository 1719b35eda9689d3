"""Issue 13 from outside, the way an attacker or a careless caller would try it: real gateways,
real ports, hand-made bytes (tests/integration/peer_client.py holds the tax gateway's keys).

Every refusal carries a Crossway code in ``crossway-error``; once the caller or peer is known,
the refusal is in the audit trail. The last test restarts the provider gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import DecodeError

from audit.trail import AuditRecord, fetch_records
from crossway.core.errors import CrosswayError
from crossway.core.errors.codes import _all_subclasses
from crossway.demo.federation import MARKETING_SUBSYSTEM, POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from gateway.wire.codec import encode_envelope, seal_frame
from gateway.wire.frames import Envelope
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb
from protos.demo.population.v1 import population_pb2 as population
from tests.integration.peer_client import CALL, MULTIPLEX, STREAM, PeerClient, outcome

pytestmark = pytest.mark.asyncio(loop_scope="module")

GARBAGE = b"\xff\xff\xff\xff not a protobuf message at all"
MIB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    # Unencrypted bodies: the hand-made requests below stay short; encryption has its own tests.
    async with Federation(tmp_path_factory.mktemp("bad-input"), require_encryption=False) as federation:
        yield federation


def _peer(fed: Federation) -> PeerClient:
    return PeerClient.from_gateway_keys(
        fed.tax.directory / "keys", f"127.0.0.1:{fed.population.peer_port}", fed.ca_pem, str(fed.tax.member)
    )


def _get_person(peer: PeerClient, client: str = str(TAX_SUBSYSTEM), **fields: object) -> pb.Envelope:
    header = peer.request_header(client, str(POPULATION_SERVICE), "GetPerson", **fields)
    return peer.seal(header, population.GetPersonRequest(national_id="38001010001").SerializeToString())


async def _send(peer: PeerClient, env: pb.Envelope) -> str:
    try:
        return outcome(await peer.call(env))
    except grpc.aio.AioRpcError as exc:
        return outcome(exc)


async def _raw(fed: Federation, method: str, payload: bytes, *, streaming: bool) -> grpc.aio.AioRpcError:
    """Send raw bytes to a peer port method; the error it must answer with."""
    async with _peer(fed).channel() as channel:
        try:
            if streaming:
                answers = [m async for m in channel.stream_stream(method)(iter([payload]), timeout=10)]
                pytest.fail(f"{method} answered garbage with {answers!r} and a clean end")
            await channel.unary_unary(method)(payload, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc
    pytest.fail(f"{method} accepted garbage")


def _code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("crossway-error", f"(none: {exc.code().name})"))


async def _record(fed: Federation, wanted: Callable[[AuditRecord], bool], timeout: float = 15.0) -> AuditRecord:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in await fetch_records(fed.auditor) if wanted(r)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, "the refusal never reached the audit trail"
        await asyncio.sleep(0.2)


# -- the peer port: bytes that are not what they should be -----------------------------------------


@pytest.mark.parametrize(("method", "streaming"), [(CALL, False), (STREAM, True), (MULTIPLEX, True)])
async def test_garbage_on_each_peer_method_is_refused_as_malformed_and_recorded_against_the_peer(
    fed: Federation, method: str, streaming: bool
) -> None:
    before = time.time() * 1000
    exc = await _raw(fed, method, GARBAGE, streaming=streaming)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(exc) == "message.malformed"
    assert (exc.details() or "").startswith("provider gateway: message.malformed: the peer sent bytes that are not")
    record = await _record(
        fed,
        lambda r: r.side == "provider" and r.error_code == "message.malformed" and r.request_in_ms >= before,
    )
    assert record.peer_gateway == str(fed.tax.gateway)


async def test_changed_requests_on_call_and_multiplex_are_each_answered_with_a_code(fed: Federation) -> None:
    # The unit fuzz (tests/unit/gateway/test_fuzz_inputs.py) covers decoding and the pipeline; this
    # checks what leaves the real port: a signed answer, or a status with crossway-error — for
    # requests changed at seeded random places, one by one on Call and all at once on Multiplex.
    rng = random.Random(13)
    peer = _peer(fed)
    changed = []
    for _ in range(24):
        data = bytearray(_get_person(peer).SerializeToString())
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        changed.append(bytes(data[: rng.choice([len(data), rng.randrange(1, len(data))])]))
    codes = {cls.code for cls in _all_subclasses(CrosswayError)} | {"ok"}
    async with peer.channel() as channel:
        call = channel.unary_unary(CALL, response_deserializer=pb.Envelope.FromString)
        for data in changed:
            try:
                answer = outcome(await call(data, timeout=10))
            except grpc.aio.AioRpcError as exc:
                answer = _code(exc)
            assert answer in codes, answer
        # Inside a batch each request is an envelope already: keep the changed ones that parse.
        requests = []
        for tag, data in enumerate(changed, 1):
            with contextlib.suppress(DecodeError):
                requests.append(mux_pb.MuxRequest(tag=tag, envelope=pb.Envelope.FromString(data)))
        mux = channel.stream_stream(
            MULTIPLEX,
            request_serializer=mux_pb.MuxRequests.SerializeToString,
            response_deserializer=mux_pb.MuxReplies.FromString,
        )
        replies = [r async for rs in mux(iter([mux_pb.MuxRequests(requests=requests)]), timeout=10) for r in rs.replies]
    assert sorted(r.tag for r in replies) == [r.tag for r in requests]
    assert all(outcome(r) in codes for r in replies)


# -- size ------------------------------------------------------------------------------------------


async def test_a_call_over_the_limit_at_the_client_port_is_refused_with_its_code_and_recorded(fed: Federation) -> None:
    token = [("authorization", f"Bearer {fed.token()}")]
    request = population.EchoRequest(payload=b"x" * (4 * MIB + 512 * 1024)).SerializeToString()
    async with fed.channel() as channel:
        echo = channel.unary_unary("/population.v1.PersonRegistry/Echo")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await echo(request, metadata=token, timeout=20)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _code(refused.value) == "message.too_large"
        assert "limit of 4194304 bytes" in (refused.value.details() or "")
        message_id = dict(refused.value.trailing_metadata() or ())["crossway-message-id"]
        record = await _record(fed, lambda r: r.message_id == message_id)
        assert (record.side, record.client, record.error_code) == ("client", str(TAX_SUBSYSTEM), "message.too_large")
        # Far over the limit, gRPC refuses before reading (this is what bounds memory): no code.
        with pytest.raises(grpc.aio.AioRpcError) as cut_off:
            await echo(b"x" * (6 * MIB), metadata=token, timeout=20)
        assert cut_off.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (cut_off.value.details() or "")


async def test_an_envelope_with_a_body_over_the_providers_limit_is_refused_with_its_code(fed: Federation) -> None:
    peer = _peer(fed)
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "Echo")
    env = peer.seal(header, population.EchoRequest(payload=b"x" * (4 * MIB + 64)).SerializeToString())
    assert await _send(peer, env) == "message.too_large"


# -- deadline --------------------------------------------------------------------------------------


async def test_a_signed_header_with_a_deadline_ten_years_ahead_is_refused(fed: Federation) -> None:
    peer = _peer(fed)
    ten_years = int(time.time() * 1000) + 10 * 365 * 86_400_000
    assert await _send(peer, _get_person(peer, deadline_ms=ten_years)) == "message.deadline_too_far"


# -- the client port: metadata ---------------------------------------------------------------------


async def test_three_hundred_metadata_entries_are_refused_with_a_code_and_a_hint(fed: Federation) -> None:
    metadata = [("authorization", f"Bearer {fed.token()}")] + [(f"x-entry-{i}", "v" * 10) for i in range(300)]
    request = population.GetPersonRequest(national_id="38001010001").SerializeToString()
    async with fed.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/population.v1.PersonRegistry/GetPerson")(request, metadata=metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailing = dict(refused.value.trailing_metadata() or ())
    assert trailing["crossway-error"] == "client.metadata_invalid"
    assert "metadata entries; at most 64 are accepted" in (refused.value.details() or "")
    assert trailing["crossway-hint"]
    record = await _record(fed, lambda r: r.message_id == trailing["crossway-message-id"])
    assert (record.client, record.error_code) == (str(TAX_SUBSYSTEM), "client.metadata_invalid")


async def test_a_misspelt_crossway_key_is_refused_with_the_right_name(fed: Federation) -> None:
    metadata = [("authorization", f"Bearer {fed.token()}"), ("crossway-purpse", "tax-assessment")]
    request = population.GetPersonRequest(national_id="38001010001").SerializeToString()
    async with fed.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/population.v1.PersonRegistry/GetPerson")(request, metadata=metadata, timeout=10)
    trailing = dict(refused.value.trailing_metadata() or ())
    assert (trailing["crossway-error"], trailing["crossway-hint"]) == (
        "client.metadata_invalid",
        "did you mean crossway-purpose?",
    )


# -- deny before the body --------------------------------------------------------------------------


async def test_a_stream_without_a_permit_is_denied_from_its_header_before_any_body_is_sent(fed: Federation) -> None:
    # The marketing subsystem has no permit. The test holds the body frames back until the
    # provider has answered: if it waited for them before deciding, this would time out.
    peer = _peer(fed)
    header = peer.request_header(str(MARKETING_SUBSYSTEM), str(POPULATION_SERVICE), "ImportPeople")
    opening, _ = seal_frame(header, b"", peer.signer)
    answered = asyncio.Event()

    async def frames() -> AsyncIterator[Envelope]:
        yield opening
        # The body would follow here. It never needs to: the answer comes first (a provider that
        # waited for the body would leave this waiting until the timeout fails the test).
        await asyncio.wait_for(answered.wait(), 10)

    async with peer.channel() as channel:
        call = channel.stream_stream(
            STREAM, request_serializer=encode_envelope, response_deserializer=pb.Envelope.FromString
        )
        answers = []
        async for answer in call(frames(), timeout=10):
            answers.append(answer)
            answered.set()
    assert [outcome(a) for a in answers] == ["policy.denied"]


# -- replay after a restart (restarts the provider gateway: keep last) -----------------------------


async def test_a_captured_request_replayed_after_the_provider_restarts_is_refused_and_the_backend_called_once(
    fed: Federation,
) -> None:
    peer = _peer(fed)
    captured = _get_person(peer)
    message_id = pb.Header.FromString(captured.header).message_id
    assert await _send(peer, captured) == "ok"
    await fed.restart_gateway(fed.population)
    assert await _send(_peer(fed), captured) == "message.replayed"
    calls = [json.loads(line) for line in (await asyncio.to_thread(fed.calls_log.read_text)).splitlines()]
    assert [c["crossway-message-id"] for c in calls if c.get("crossway-message-id") == message_id] == [message_id]
