"""Issue 13 in one process: message size, deadline and metadata bounds, each refusal coded and
recorded by the side that refused (both pipelines over the loopback link, as in test_pipelines)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from crossway.core.errors import ClientMetadataInvalid, CrosswayError
from crossway.demo.inprocess import InProcessPair
from gateway.client import metadata_problem
from gateway.shared import Limits
from gateway.wire.frames import Envelope
from gateway.wire.link import PeerLink, PeerStream, PeerTarget
from protos.crossway.v1 import envelope_pb2 as wire
from protos.demo.population.v1 import population_pb2 as pb

KIB = 1024


class _Watching:
    """A link that keeps every envelope it passes on (to read the signed header sent)."""

    def __init__(self, inner: PeerLink) -> None:
        self.inner = inner
        self.sent: list[Envelope] = []

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        self.sent.append(envelope)
        return await self.inner.exchange(target, envelope, timeout)

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        return self.inner.open_stream(target, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _build(tmp_path: Path, limits: Limits, provider: Limits | None = None) -> InProcessPair:
    return InProcessPair.build(tmp_path, limits=limits, provider_limits=provider)


def _get() -> bytes:
    return pb.GetPersonRequest(national_id="38001010001").SerializeToString()


def _echo(size: int) -> bytes:
    return pb.EchoRequest(payload=b"x" * size).SerializeToString()


async def _refused(coroutine: object) -> CrosswayError:
    with pytest.raises(CrosswayError) as refused:
        await coroutine  # type: ignore[misc]
    return refused.value


# -- size --------------------------------------------------------------------------------------


async def test_a_unary_request_over_the_limit_is_refused_by_the_client_gateway_and_recorded(tmp_path: Path) -> None:
    pair = await _build(tmp_path, Limits(max_message_bytes=64 * KIB))
    try:
        error = await _refused(pair.client.unary(pair.call("Echo"), _echo(65 * KIB)))
        assert error.code == "message.too_large" and "65" in error.message
        [record] = pair.client_audit.records
        assert (record.client, record.error_code) == ("EE/GOV/70000001/tax", "message.too_large")
        assert pair.provider_audit.records == [] and pair.backend.calls == []  # nothing was sent
        # Exactly at the limit passes.
        body = _echo(64 * KIB - 8)
        assert len(body) <= 64 * KIB
        answer = await pair.client.unary(pair.call("Echo"), body)
        assert len(pb.EchoResponse.FromString(answer).payload) == 64 * KIB - 8
    finally:
        await pair.aclose()


async def test_an_encrypted_request_exactly_at_the_limit_passes_both_gateways(tmp_path: Path) -> None:
    # Sealing adds AES-GCM's tag to the body: the provider must not count it against the caller.
    pair = InProcessPair.build(tmp_path, require_encryption=True, limits=Limits(max_message_bytes=64 * KIB))
    try:
        body = _echo(64 * KIB - 4)  # field tag and length: 4 bytes
        assert len(body) == 64 * KIB
        answer = await pair.client.unary(pair.call("Echo"), body)
        assert len(pb.EchoResponse.FromString(answer).payload) == 64 * KIB - 4
    finally:
        await pair.aclose()


async def test_the_provider_refuses_a_body_over_its_own_limit_before_checking_it_and_records_the_peer(
    tmp_path: Path,
) -> None:
    # A client gateway allowed more than this provider: the provider decides for itself.
    pair = await _build(tmp_path, Limits(max_message_bytes=1024 * KIB), provider=Limits(max_message_bytes=64 * KIB))
    try:
        error = await _refused(pair.client.unary(pair.call("Echo"), _echo(100 * KIB)))
        assert (error.code, error.hop.value) == ("message.too_large", "provider gateway")
        [record] = pair.provider_audit.records
        assert (record.peer_gateway, record.error_code) == (str(pair.federation.tax.gateway), "message.too_large")
        assert pair.backend.calls == []
    finally:
        await pair.aclose()


async def test_a_stream_message_over_the_limit_fails_the_exchange_and_the_backend_never_sees_a_clean_end(
    tmp_path: Path,
) -> None:
    pair = await _build(tmp_path, Limits(max_message_bytes=64 * KIB))

    async def people() -> AsyncIterator[bytes]:
        yield pb.Person(national_id="1").SerializeToString()
        yield pb.Person(national_id="2", address="x" * (65 * KIB)).SerializeToString()
        yield pb.Person(national_id="3").SerializeToString()

    try:
        with pytest.raises(CrosswayError) as refused:
            async for _ in pair.client.stream(pair.call("ImportPeople"), people()):
                pytest.fail("the backend summarised a stream the caller never finished")
        assert refused.value.code == "message.too_large"
        [client] = pair.client_audit.records
        assert client.error_code == "message.too_large"
        # The provider saw the request chain end without its signed STREAM_END: a broken stream.
        [provider] = pair.provider_audit.records
        assert provider.error_code == "message.stream_broken"
    finally:
        await pair.aclose()


# -- deadline ----------------------------------------------------------------------------------


async def test_a_callers_deadline_beyond_the_maximum_is_shortened_to_it_in_the_signed_header(tmp_path: Path) -> None:
    pair = await _build(tmp_path, Limits(max_deadline_s=60))
    watching = _Watching(pair.link)
    try:
        client = pair.client_via(watching)
        await client.unary(pair.call("GetPerson", timeout_s=10 * 365 * 86400.0), _get())
        header = wire.Header.FromString(watching.sent[0].header)
        assert header.deadline_ms - header.issued_at_ms == 60_000
    finally:
        await pair.aclose()


async def test_a_signed_header_asking_for_more_time_than_the_provider_allows_is_refused_with_its_code(
    tmp_path: Path,
) -> None:
    # Ten years ahead, signed by a client gateway that allows it; the provider allows 60 s.
    ten_years = 10 * 365 * 86400.0
    pair = await _build(tmp_path, Limits(max_deadline_s=ten_years), provider=Limits(max_deadline_s=60))
    try:
        error = await _refused(pair.client.unary(pair.call("GetPerson", timeout_s=ten_years), _get()))
        assert (error.code, error.hop.value) == ("message.deadline_too_far", "provider gateway")
        assert "at most 60 s" in error.message
        [record] = pair.provider_audit.records
        assert record.error_code == "message.deadline_too_far" and record.client == "EE/GOV/70000001/tax"
        assert pair.backend.calls == []
    finally:
        await pair.aclose()


# -- metadata ----------------------------------------------------------------------------------


def _problem(metadata: list[tuple[str, object]], entries: int = 64, size: int = 8192) -> ClientMetadataInvalid | None:
    return metadata_problem(metadata, max_entries=entries, max_bytes=size)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([(f"x-k{i}", "v") for i in range(300)], "300 metadata entries; at most 64"),
        ([("x-big", "v" * 9000)], "metadata is 9005 bytes; at most 8192"),
        ([("crossway-purpose", "a"), ("crossway-purpose", "b")], "crossway-purpose is given more than once"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "authorization is given more than once"),
        ([("crossway-user-id", "u" * 300)], "crossway-user-id is 300 bytes long; at most 256"),
        ([("crossway-purpse", "tax")], "crossway-purpse is not one Crossway reads"),
    ],
)
def test_metadata_out_of_bounds_is_refused_with_the_reason(metadata: list[tuple[str, object]], reason: str) -> None:
    problem = _problem(metadata)
    assert problem is not None and problem.code == "client.metadata_invalid"
    assert reason in problem.message
    assert "v" * 100 not in problem.message  # never a value


def test_a_misspelt_crossway_key_suggests_the_right_one() -> None:
    problem = _problem([("crossway-purpse", "tax")])
    assert problem is not None and problem.hint == "did you mean crossway-purpose?"


def test_ordinary_metadata_passes() -> None:
    ordinary = [
        ("authorization", "Bearer x"),
        ("crossway-purpose", "tax-assessment"),
        ("crossway-user-id", "EE38001010001"),
        ("traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01"),
        ("x-request-id", "42"),
        ("x-trace-bin", b"\x00\x01"),
        ("user-agent", "grpc-python/1.85"),
    ]
    assert _problem(ordinary) is None


async def test_bad_metadata_is_refused_after_the_caller_is_authenticated_and_recorded_against_it(
    tmp_path: Path,
) -> None:
    pair = await _build(tmp_path, Limits())
    try:
        call = replace(pair.call("GetPerson"), metadata_problem=_problem([(f"x-k{i}", "v") for i in range(300)]))
        error = await _refused(pair.client.unary(call, _get()))
        assert (error.code, error.hop.value) == ("client.metadata_invalid", "client gateway")
        [record] = pair.client_audit.records
        assert (record.client, record.error_code) == ("EE/GOV/70000001/tax", "client.metadata_invalid")
        # An unauthenticated caller gets the authentication error first.
        anonymous = replace(call, authorization=None)
        assert (await _refused(pair.client.unary(anonymous, _get()))).code == "client.unauthenticated"
    finally:
        await pair.aclose()
