"""Both pipelines together in one process, through the loopback link: no socket, no NATS.

The tax board's client gateway calls the population register's provider gateway; the registry,
keys, signatures, encryption, Cedar and audit records are real, the hop, backend, audit sink and
configuration source are the in-memory twins (``crossway.demo.inprocess``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from crossway.core.errors import CrosswayError
from crossway.demo.federation import MARKETING_SUBSYSTEM, POPULATION_SERVICE
from crossway.demo.inprocess import PEOPLE, InProcessPair
from gateway.client import ClientPipeline
from gateway.shared.metaservice import ALLOWED_METHODS_PATH
from gateway.wire.frames import Envelope
from gateway.wire.link import PeerLink, PeerStream, PeerTarget
from protos.crossway.v1 import meta_pb2
from protos.demo.population.v1 import population_pb2 as pb

SERVICE = str(POPULATION_SERVICE)

MINIMIZING_POLICY = f"""\
@id("tax-reads-names-only")
@fields("national_id, given_name, family_name")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action in Crossway::Action::"population.v1.PersonRegistry/*",
  resource == Crossway::Service::"{SERVICE}"
);
"""

GET_ONLY_POLICY = f"""\
@id("tax-gets-persons")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/tax",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{SERVICE}"
);
"""


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[InProcessPair]:
    built = InProcessPair.build(tmp_path)
    yield built
    await built.aclose()


def _get(national_id: str = "38001010001") -> bytes:
    return pb.GetPersonRequest(national_id=national_id).SerializeToString()


def _sides(pair: InProcessPair) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    client = [(r.status, r.error_code, r.decision) for r in pair.client_audit.records]
    provider = [(r.status, r.error_code, r.decision) for r in pair.provider_audit.records]
    return client, provider


async def _messages(*bodies: bytes) -> AsyncIterator[bytes]:
    for body in bodies:
        yield body


class _Meddling:
    """A link that lets a test change what passes on the way to the provider."""

    def __init__(self, inner: PeerLink, change: Callable[[Envelope], list[Envelope]]) -> None:
        self._inner = inner
        self._change = change

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        answer: Envelope | None = None
        errors: list[CrosswayError] = []
        for sent in self._change(envelope):
            try:
                answer = await self._inner.exchange(target, sent, timeout)
            except CrosswayError as exc:
                errors.append(exc)
        if errors:
            raise errors[-1]
        assert answer is not None
        return answer

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        return self._inner.open_stream(target, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- unary ----------------------------------------------------------------------------------


async def test_an_allowed_unary_call_returns_the_backends_answer_and_both_sides_are_audited_ok(
    pair: InProcessPair,
) -> None:
    answer = await pair.client.unary(pair.call("GetPerson", purpose="tax-assessment"), _get())

    assert pb.Person.FromString(answer) == PEOPLE[0]
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])
    client, provider = pair.client_audit.records[0], pair.provider_audit.records[0]
    assert client.message_id == provider.message_id
    assert (client.request_sha256, client.response_sha256) == (provider.request_sha256, provider.response_sha256)
    assert provider.purpose == "tax-assessment" and provider.client == "EE/GOV/70000001/tax"
    assert provider.policy_ids == ("tax-uses-population-register",)
    assert client.peer_gateway == str(pair.federation.population.gateway)


async def test_a_subsystem_without_a_permit_is_denied_by_the_provider_and_both_sides_record_it(
    pair: InProcessPair,
) -> None:
    with pytest.raises(CrosswayError) as refused:
        await pair.client.unary(pair.call("GetPerson", subsystem=MARKETING_SUBSYSTEM), _get())

    assert refused.value.code == "policy.denied"
    assert refused.value.details().startswith("provider gateway:")
    assert _sides(pair) == (
        [("PERMISSION_DENIED", "policy.denied", "")],
        [("PERMISSION_DENIED", "policy.denied", "deny")],
    )
    assert pair.backend.calls == []


async def test_a_body_changed_on_the_way_is_refused_as_tampered_and_never_reaches_the_backend(
    pair: InProcessPair,
) -> None:
    client = pair.client_via(_Meddling(pair.link, lambda env: [replace(env, body=env.body + b"!")]))

    with pytest.raises(CrosswayError) as refused:
        await client.unary(pair.call("GetPerson"), _get())

    assert refused.value.code == "message.tampered"
    assert pair.backend.calls == []
    assert [r.error_code for r in pair.provider_audit.records] == ["message.tampered"]


async def test_a_forged_signature_is_refused_before_the_header_is_believed(pair: InProcessPair) -> None:
    def forge(env: Envelope) -> list[Envelope]:
        return [replace(env, signature=bytes(len(env.signature)))]

    with pytest.raises(CrosswayError) as refused:
        await pair.client_via(_Meddling(pair.link, forge)).unary(pair.call("GetPerson"), _get())

    assert refused.value.code == "message.signature_invalid"
    assert pair.backend.calls == []


async def test_a_replayed_request_is_refused_and_the_backend_is_called_once(pair: InProcessPair) -> None:
    client = pair.client_via(_Meddling(pair.link, lambda env: [env, env]))

    with pytest.raises(CrosswayError) as refused:
        await client.unary(pair.call("GetPerson"), _get())

    assert refused.value.code == "message.replayed"
    assert len(pair.backend.calls) == 1
    assert [r.error_code for r in pair.provider_audit.records] == ["", "message.replayed"]


async def test_a_request_issued_outside_the_providers_time_window_is_refused_as_expired(
    pair: InProcessPair,
) -> None:
    pair.provider_clock.shift_ms = 5 * 60_000  # the provider's clock runs five minutes ahead

    with pytest.raises(CrosswayError) as refused:
        await pair.client.unary(pair.call("GetPerson"), _get())

    assert refused.value.code == "message.expired"
    assert pair.backend.calls == []


async def test_a_provider_gateway_that_is_down_is_reported_unavailable_and_audited(pair: InProcessPair) -> None:
    pair.link.stop_serving(
        pair.client_context.config().member(pair.federation.population.member).gateways[0].peer_address
    )  # type: ignore[union-attr]

    with pytest.raises(CrosswayError) as refused:
        await pair.client.unary(pair.call("GetPerson"), _get())

    assert refused.value.code == "peer.unavailable"
    assert [r.error_code for r in pair.client_audit.records] == ["peer.unavailable"]
    assert pair.provider_audit.records == []


async def test_an_encrypted_service_carries_only_ciphertext_between_the_gateways(tmp_path: Path) -> None:
    pair = InProcessPair.build(tmp_path, require_encryption=True)
    seen: list[Envelope] = []

    def watch(env: Envelope) -> list[Envelope]:
        seen.append(env)
        return [env]

    try:
        answer = await pair.client_via(_Meddling(pair.link, watch)).unary(pair.call("GetPerson"), _get())
    finally:
        await pair.aclose()

    assert pb.Person.FromString(answer) == PEOPLE[0]
    assert len(seen) == 1 and b"38001010001" not in seen[0].body
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])


async def test_fields_the_permit_does_not_grant_are_withheld_and_recorded_on_both_sides(tmp_path: Path) -> None:
    pair = InProcessPair.build(tmp_path, policy=MINIMIZING_POLICY)
    try:
        answer = await pair.client.unary(pair.call("GetPerson"), _get())
    finally:
        await pair.aclose()

    person = pb.Person.FromString(answer)
    assert (person.given_name, person.address, person.health_notes) == ("Mari", "", "")
    assert pair.client_audit.records[0].withheld_fields == pair.provider_audit.records[0].withheld_fields
    assert set(pair.provider_audit.records[0].withheld_fields) >= {"address", "health_notes"}


async def test_allowed_methods_is_answered_by_the_providers_policies_not_by_a_backend(tmp_path: Path) -> None:
    pair = InProcessPair.build(tmp_path, policy=GET_ONLY_POLICY)
    call = replace(pair.call(ALLOWED_METHODS_PATH), provider_hint=SERVICE)
    try:
        answer = meta_pb2.AllowedMethodsResponse.FromString(await pair.client.unary(call, b""))
    finally:
        await pair.aclose()

    assert [m.name for m in answer.methods] == ["GetPerson"]
    assert pair.backend.calls == []
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])


# -- the streaming kinds --------------------------------------------------------------------


async def _collect(client: ClientPipeline, pair: InProcessPair, method: str, *bodies: bytes) -> list[bytes]:
    return [m async for m in client.stream(pair.call(method), _messages(*bodies))]


async def test_a_server_streaming_call_delivers_every_message_in_order(pair: InProcessPair) -> None:
    request = pb.ListPeopleRequest(family_name="Tamm").SerializeToString()

    answers = await _collect(pair.client, pair, "ListPeople", request)

    assert [pb.Person.FromString(a).national_id for a in answers] == [p.national_id for p in PEOPLE]
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])


async def test_a_client_streaming_call_hands_every_message_to_the_backend(pair: InProcessPair) -> None:
    answers = await _collect(pair.client, pair, "ImportPeople", *(p.SerializeToString() for p in PEOPLE))

    summary = pb.ImportSummary.FromString(answers[0])
    assert (summary.received, list(summary.national_ids)) == (3, [p.national_id for p in PEOPLE])
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])


async def test_a_bidirectional_call_answers_each_message_and_records_matching_digests(pair: InProcessPair) -> None:
    answers = await _collect(pair.client, pair, "LookupPeople", _get("38001010003"), _get("38001010001"))

    assert [pb.Person.FromString(a).given_name for a in answers] == ["Liis", "Mari"]
    client, provider = pair.client_audit.records[0], pair.provider_audit.records[0]
    assert (client.request_sha256, client.response_sha256) == (provider.request_sha256, provider.response_sha256)
    assert (client.status, provider.status) == ("OK", "OK")


async def test_an_encrypted_stream_round_trips(tmp_path: Path) -> None:
    pair = InProcessPair.build(tmp_path, require_encryption=True)
    try:
        answers = await _collect(pair.client, pair, "LookupPeople", _get("38001010002"))
    finally:
        await pair.aclose()

    assert [pb.Person.FromString(a).given_name for a in answers] == ["Jaan"]


async def test_a_denied_stream_is_refused_with_the_providers_code_on_both_sides(pair: InProcessPair) -> None:
    call = pair.call("ListPeople")
    call = replace(call, authorization=f"Bearer {pair.federation.token(MARKETING_SUBSYSTEM)}")

    with pytest.raises(CrosswayError) as refused:
        [m async for m in pair.client.stream(call, _messages(b""))]

    assert refused.value.code == "policy.denied"
    assert _sides(pair) == (
        [("PERMISSION_DENIED", "policy.denied", "")],
        [("PERMISSION_DENIED", "policy.denied", "deny")],
    )


async def test_a_stream_frame_injected_on_the_way_breaks_the_stream(pair: InProcessPair) -> None:
    class Injecting(_Meddling):
        def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
            stream = self._inner.open_stream(target, timeout)
            original = stream.write
            sent: list[Envelope] = []

            async def write(envelope: Envelope) -> None:
                sent.append(envelope)
                if len(sent) == 2:  # the first data frame goes twice: a replayed frame mid-stream
                    await original(envelope)
                await original(envelope)

            stream.write = write  # type: ignore[method-assign]
            return stream

    client = pair.client_via(Injecting(pair.link, lambda env: [env]))

    with pytest.raises(CrosswayError) as refused:
        await _collect(client, pair, "LookupPeople", _get("38001010001"), _get("38001010002"))

    assert refused.value.code == "message.stream_broken"
    assert [r.error_code for r in pair.provider_audit.records] == ["message.stream_broken"]


class _ClosingLink:
    """A hop that behaves as gRPC does when the client closes a finished call: the provider's
    stream is closed at the point where it handed over its final frame."""

    def __init__(self, pair: InProcessPair) -> None:
        self._pair = pair
        self.closed: list[asyncio.Task[None]] = []

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        raise AssertionError("streams only")

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        link = self
        inbox: asyncio.Queue[Envelope | None] = asyncio.Queue()

        async def frames() -> AsyncIterator[Envelope]:
            while (env := await inbox.get()) is not None:
                yield env

        auth = {"ssl_tls_version": [b"TLSv1.3"], "x509_pem_cert": [self._pair.client_certificate_pem]}
        provider_frames = self._pair.provider.stream(frames(), auth)

        class Stream:
            async def write(self, envelope: Envelope) -> None:
                inbox.put_nowait(envelope)

            async def done_writing(self) -> None:
                inbox.put_nowait(None)

            async def responses(self) -> AsyncIterator[Envelope]:
                async for env in provider_frames:
                    yield env

            def cancel(self) -> None:
                link.closed.append(asyncio.ensure_future(provider_frames.aclose()))

        return Stream()

    async def aclose(self) -> None:
        return None


async def test_a_client_closing_a_finished_stream_does_not_turn_the_providers_record_into_cancelled(
    pair: InProcessPair,
) -> None:
    link = _ClosingLink(pair)

    answers = await _collect(pair.client_via(link), pair, "ImportPeople", PEOPLE[0].SerializeToString())
    await asyncio.gather(*link.closed)

    assert pb.ImportSummary.FromString(answers[0]).received == 1
    assert _sides(pair) == ([("OK", "", "")], [("OK", "", "allow")])
