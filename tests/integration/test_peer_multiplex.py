"""Unary exchanges multiplexed over one ``PeerExchange.Multiplex`` stream per provider gateway.

Against the real provider gateway (mTLS, real keys): answers are paired with requests by tag,
refusals carry the same stable codes ``Call`` gives, and replay protection spans both methods.
Against small grpc.aio servers on port 0 that stand in for a provider misbehaving or too old
to multiplex: the client side falls back to ``Call``, fails waiting exchanges when the stream
breaks and then reopens it, and gives up at the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from crossway.core.errors import CrosswayError, Hop, MessageTampered
from crossway.demo.federation import POPULATION_SERVICE, TAX_SUBSYSTEM, Federation
from crossway.security.keys import generate_signing_key, load_private_key
from crossway.security.signing import Signer
from gateway.channels import PeerChannels, PeerStubs
from gateway.multiplex import MULTIPLEX_METHOD, PeerMux, serve_multiplex
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb
from protos.demo.population.v1 import population_pb2 as population
from protos.demo.population.v1 import population_pb2_grpc as population_grpc
from tests.integration.peer_client import EncryptedExchange, PeerClient, outcome, pem_key, with_new_tls_certificate

pytestmark = pytest.mark.asyncio(loop_scope="module")

GET_PERSON = population.GetPersonRequest(national_id="38001010001").SerializeToString()


def _peer(fed: Federation) -> PeerClient:
    return PeerClient.from_gateway_keys(
        fed.tax.directory / "keys", f"127.0.0.1:{fed.population.peer_port}", fed.ca_pem, str(fed.tax.member)
    )


def _valid(fed: Federation, peer: PeerClient, signer: Signer | None = None) -> pb.Envelope:
    header = peer.request_header(str(TAX_SUBSYSTEM), str(POPULATION_SERVICE), "GetPerson")
    provider_key = (fed.population.directory / "keys" / "encryption.pub").read_bytes()
    opened = EncryptedExchange(provider_key, header.message_id).opening(header, GET_PERSON)
    return peer.seal(*opened, signer)


# -- the real provider gateway --------------------------------------------------------------


async def test_one_stream_answers_each_tag_with_its_own_response_or_refusal(federation: Federation) -> None:
    peer = _peer(federation)
    tampered = _valid(federation, peer)
    tampered.body = tampered.body[:-1] + bytes([tampered.body[-1] ^ 1])
    forger = Signer(generate_signing_key("ES256"), peer.signer.key_id)
    envelopes = [_valid(federation, peer), tampered, _valid(federation, peer), _valid(federation, peer, forger)]
    replies = await peer.multiplex(envelopes)
    assert {tag: outcome(reply) for tag, reply in replies.items()} == {
        1: "ok",
        2: "message.tampered",
        3: "ok",
        4: "message.signature_invalid",
    }
    # Each signed response belongs to the request of its tag.
    for tag in (1, 3):
        request_id = pb.Header.FromString(envelopes[tag - 1].header).message_id
        assert pb.Header.FromString(replies[tag].response.header).message_id == request_id
    refusal = replies[2].refusal
    assert refusal.grpc_code == MessageTampered("x").status.value[0]  # what Call's status would be
    assert refusal.hint and refusal.message


async def test_a_message_sent_by_call_is_a_replay_on_the_stream(federation: Federation) -> None:
    peer = _peer(federation)
    env = _valid(federation, peer)
    assert outcome(await peer.call(env)) == "ok"
    assert outcome((await peer.multiplex([env]))[1]) == "message.replayed"


async def test_many_exchanges_in_flight_on_one_stream_all_complete(federation: Federation) -> None:
    peer = _peer(federation)
    replies = await peer.multiplex([_valid(federation, peer) for _ in range(40)])
    assert sorted(replies) == list(range(1, 41))
    assert {outcome(reply) for reply in replies.values()} == {"ok"}


# -- the client side against providers that misbehave or are too old --------------------------


@asynccontextmanager
async def _provider(handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> AsyncIterator[PeerStubs]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("crossway.v1.PeerExchange", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stubs = PeerStubs(
        call=channel.unary_unary(
            "/crossway.v1.PeerExchange/Call",
            request_serializer=pb.Envelope.SerializeToString,
            response_deserializer=pb.Envelope.FromString,
        ),
        stream=channel.stream_stream("/crossway.v1.PeerExchange/Stream"),  # type: ignore[arg-type]
        mux=PeerMux(
            channel.stream_stream(
                MULTIPLEX_METHOD,
                request_serializer=mux_pb.MuxRequests.SerializeToString,
                response_deserializer=mux_pb.MuxReplies.FromString,
            )
        ),
    )
    try:
        yield stubs
    finally:
        assert stubs.mux is not None
        await stubs.mux.aclose()
        await channel.close(None)
        await server.stop(None)


def _echo_call() -> grpc.RpcMethodHandler[Any, Any]:
    async def call(env: pb.Envelope, context: grpc.aio.ServicerContext[Any, Any]) -> pb.Envelope:
        return pb.Envelope(header=b"via-call", body=env.body)

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=pb.Envelope.FromString, response_serializer=pb.Envelope.SerializeToString
    )


def _mux(behaviour: Any) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.stream_stream_rpc_method_handler(
        behaviour,
        request_deserializer=mux_pb.MuxRequests.FromString,
        response_serializer=mux_pb.MuxReplies.SerializeToString,
    )


async def test_a_provider_without_multiplex_is_served_by_call_from_then_on() -> None:
    async with _provider({"Call": _echo_call()}) as stubs:
        first = await stubs.exchange(pb.Envelope(header=b"h", body=b"one"), timeout=5)
        assert (first.header, first.body) == (b"via-call", b"one")
        assert stubs.mux is not None and stubs.mux.unsupported
        assert (await stubs.exchange(pb.Envelope(header=b"h", body=b"two"), timeout=5)).body == b"two"


async def test_a_refusal_on_the_stream_is_the_providers_error_with_its_code_and_hint() -> None:
    async def refuse(requests: AsyncIterator[mux_pb.MuxRequests], context: Any) -> AsyncIterator[mux_pb.MuxReplies]:
        async for batch in requests:
            refusal = mux_pb.PeerRefusal(
                grpc_code=7, error_code="peer.revoked", message="certificate 1f is revoked", hint="renew it"
            )
            yield mux_pb.MuxReplies(replies=[mux_pb.MuxReply(tag=r.tag, refusal=refusal) for r in batch.requests])

    async with _provider({"Call": _echo_call(), "Multiplex": _mux(refuse)}) as stubs:
        with pytest.raises(CrosswayError) as caught:
            await stubs.exchange(pb.Envelope(header=b"h", body=b"x"), timeout=5)
    error = caught.value
    assert (error.code, error.message, error.hint, error.hop) == (
        "peer.revoked",
        "certificate 1f is revoked",
        "renew it",
        Hop.PROVIDER,
    )


async def test_a_broken_stream_fails_the_waiting_exchanges_and_the_next_one_reopens_it() -> None:
    streams = 0

    async def answer_then_drop(
        requests: AsyncIterator[mux_pb.MuxRequests], context: Any
    ) -> AsyncIterator[mux_pb.MuxReplies]:
        nonlocal streams
        streams += 1
        if streams == 1:
            async for _ in requests:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "provider restarting")
        async for batch in requests:
            yield mux_pb.MuxReplies(
                replies=[mux_pb.MuxReply(tag=r.tag, response=pb.Envelope(body=r.envelope.body)) for r in batch.requests]
            )

    async with _provider({"Multiplex": _mux(answer_then_drop)}) as stubs:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.exchange(pb.Envelope(header=b"h", body=b"lost"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (await stubs.exchange(pb.Envelope(header=b"h", body=b"after"), timeout=5)).body == b"after"
        assert streams == 2


async def test_exchanges_sent_while_a_write_is_under_way_go_out_together() -> None:
    batches: list[int] = []

    async def echo(requests: AsyncIterator[mux_pb.MuxRequests], context: Any) -> AsyncIterator[mux_pb.MuxReplies]:
        async for batch in requests:
            batches.append(len(batch.requests))
            yield mux_pb.MuxReplies(
                replies=[mux_pb.MuxReply(tag=r.tag, response=pb.Envelope(body=r.envelope.body)) for r in batch.requests]
            )

    async with _provider({"Multiplex": _mux(echo)}) as stubs:
        bodies = [str(i).encode() for i in range(50)]
        answers = await asyncio.gather(*(stubs.exchange(pb.Envelope(header=b"h", body=b), timeout=5) for b in bodies))
    assert [a.body for a in answers] == bodies  # each waiter got its own answer
    assert sum(batches) == 50 and len(batches) < 50


async def test_no_answer_within_the_deadline_is_deadline_exceeded() -> None:
    async def silent(requests: AsyncIterator[mux_pb.MuxRequests], context: Any) -> AsyncIterator[mux_pb.MuxReplies]:
        async for _ in requests:
            pass
        if False:  # pragma: no cover - an async generator that never yields
            yield mux_pb.MuxReplies()

    async with _provider({"Multiplex": _mux(silent)}) as stubs:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.exchange(pb.Envelope(header=b"h", body=b"x"), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# -- the provider side, without a network ------------------------------------------------


async def test_answers_go_out_as_they_finish_and_all_are_sent_after_the_client_stops_sending() -> None:
    release = {1: asyncio.Event(), 2: asyncio.Event(), 3: asyncio.Event()}

    async def provide(env: pb.Envelope, auth: object) -> pb.Envelope:
        tag = int(env.body)
        await release[tag].wait()
        return pb.Envelope(body=env.body)

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        yield mux_pb.MuxRequests(
            requests=[mux_pb.MuxRequest(tag=t, envelope=pb.Envelope(body=str(t).encode())) for t in (1, 2, 3)]
        )

    replies = serve_multiplex(requests(), {}, provide)
    release[3].set()
    first = await anext(replies)
    release[1].set()
    second = await anext(replies)
    release[2].set()
    rest = [reply for batch in [b async for b in replies] for reply in batch.replies]
    answered = [*first.replies, *second.replies, *rest]
    assert [r.tag for r in answered] == [3, 1, 2]
    assert all(r.response.body == str(r.tag).encode() for r in answered)


async def test_answers_that_are_ready_together_go_out_in_one_message() -> None:
    async def provide(env: pb.Envelope, auth: object) -> pb.Envelope:
        return pb.Envelope(body=env.body)

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        yield mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=t, envelope=pb.Envelope()) for t in range(1, 9)])

    batches = [batch async for batch in serve_multiplex(requests(), {}, provide)]
    assert sorted(r.tag for b in batches for r in b.replies) == list(range(1, 9))
    assert len(batches) < 8  # answered in the same loop turn, written together


async def test_a_draining_provider_answers_what_runs_refuses_what_comes_then_ends_the_stream() -> None:
    started, release, draining = asyncio.Event(), asyncio.Event(), asyncio.Event()
    inbox: asyncio.Queue[mux_pb.MuxRequests] = asyncio.Queue()

    async def provide(env: pb.Envelope, auth: object) -> pb.Envelope:
        started.set()
        await release.wait()
        return pb.Envelope(body=env.body)

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        while True:  # the client never half-closes: only the drain ends the stream
            yield await inbox.get()

    replies = serve_multiplex(requests(), {}, provide, draining=draining)
    inbox.put_nowait(mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=1, envelope=pb.Envelope(body=b"running"))]))
    first = asyncio.ensure_future(anext(replies))
    await started.wait()
    draining.set()
    inbox.put_nowait(mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=2, envelope=pb.Envelope(body=b"late"))]))
    (refused,) = (await first).replies
    assert (refused.tag, refused.refusal.error_code) == (2, "peer.unavailable")
    release.set()
    (answered,) = (await anext(replies)).replies
    assert (answered.tag, answered.response.body) == (1, b"running")
    assert [reply async for reply in replies] == []  # the stream ended


async def test_stopping_the_provider_gateway_lets_the_exchanges_in_flight_finish(tmp_path: Path) -> None:
    async with Federation(tmp_path / "federation", require_encryption=False) as fed:
        metadata = (("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment"))
        async with fed.channel() as channel:
            stub = population_grpc.PersonRegistryStub(channel)

            async def slow_call() -> grpc.StatusCode:
                try:
                    await stub.GetPerson(
                        population.GetPersonRequest(national_id="slow-1500"), metadata=metadata, timeout=20
                    )
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK

            # Warm the Multiplex stream, then put four slow exchanges on it and stop the provider.
            assert await stub.GetPerson(population.GetPersonRequest(national_id="38001010001"), metadata=metadata)
            calls = [asyncio.ensure_future(slow_call()) for _ in range(4)]
            await asyncio.sleep(0.5)
            assert fed.population.process is not None
            assert await fed.population.process.stop() == 0
            # The backend answered each (no such person): none was cut off or refused.
            assert await asyncio.gather(*calls) == [grpc.StatusCode.NOT_FOUND] * 4
            with pytest.raises(grpc.aio.AioRpcError) as after:
                await stub.GetPerson(
                    population.GetPersonRequest(national_id="38001010001"), metadata=metadata, timeout=10
                )
            assert after.value.code() == grpc.StatusCode.UNAVAILABLE
            assert dict(after.value.trailing_metadata() or ())["crossway-error"] == "peer.unavailable"


async def test_a_client_that_does_not_read_its_answers_stops_being_read() -> None:
    provided = 0

    async def provide(env: pb.Envelope, auth: object) -> pb.Envelope:
        nonlocal provided
        provided += 1
        return pb.Envelope(body=env.body)

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        for tag in range(1, 101):
            yield mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=tag, envelope=pb.Envelope())])

    replies = serve_multiplex(requests(), {}, provide, max_in_flight=4)
    first = await anext(replies)  # then the client stops reading
    for _ in range(20):
        await asyncio.sleep(0)
    # At most 4 answers exist unwritten: the stream is not read beyond them.
    assert provided <= len(first.replies) + 4
    rest = [r for batch in [b async for b in replies] for r in batch.replies]
    assert sorted(r.tag for r in [*first.replies, *rest]) == list(range(1, 101))


async def test_several_connections_per_provider_are_taken_in_turn(federation: Federation) -> None:
    """``peer_connections``: each connection may land on another worker of the provider."""
    peers: list[str] = []

    async def echo(requests: AsyncIterator[mux_pb.MuxRequests], context: Any) -> AsyncIterator[mux_pb.MuxReplies]:
        async for batch in requests:
            peers.append(context.peer())
            yield mux_pb.MuxReplies(
                replies=[mux_pb.MuxReply(tag=r.tag, response=pb.Envelope(body=r.envelope.body)) for r in batch.requests]
            )

    pop_keys, tax_keys = federation.population.directory / "keys", federation.tax.directory / "keys"
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("crossway.v1.PeerExchange", {"Multiplex": _mux(echo)})]
    )
    pair = [(pem_key(load_private_key(pop_keys / "tls.key")), (pop_keys / "tls.crt").read_bytes())]
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials(pair, root_certificates=federation.ca_pem, require_client_auth=True)
    )
    await server.start()
    channels = PeerChannels(
        pem_key(load_private_key(tax_keys / "tls.key")), (tax_keys / "tls.crt").read_bytes(), connections=3
    )
    try:
        for i in range(6):
            stubs = channels.get(f"127.0.0.1:{port}", federation.ca_pem)
            assert (await stubs.exchange(pb.Envelope(header=b"h", body=bytes([i])), timeout=10)).body == bytes([i])
    finally:
        await channels.aclose()
        await server.stop(None)
    assert len(peers) == 6 and len(set(peers)) == 3  # three TCP connections, two exchanges each


class _StuckCall:
    """A Multiplex call whose first write never completes (a provider that stopped reading)."""

    def __init__(self) -> None:
        self.written: list[mux_pb.MuxRequests] = []
        self.gate = asyncio.Event()

    async def write(self, message: mux_pb.MuxRequests) -> None:
        self.written.append(message)
        await self.gate.wait()

    def done(self) -> bool:
        return False

    def cancel(self) -> bool:
        self.gate.set()
        return True

    def __aiter__(self) -> _StuckCall:
        return self

    async def __anext__(self) -> mux_pb.MuxReplies:
        await asyncio.Event().wait()
        raise StopAsyncIteration


async def test_requests_whose_callers_gave_up_are_not_sent_late() -> None:
    call = _StuckCall()
    mux = PeerMux(lambda *args, **kwargs: call)  # type: ignore[arg-type,return-value]
    first = asyncio.ensure_future(mux.exchange(pb.Envelope(body=b"1"), timeout=5))
    await asyncio.sleep(0.01)  # the writer is now stuck writing the first
    for body in (b"2", b"3"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mux.exchange(pb.Envelope(body=body), timeout=0.05)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    call.gate.set()  # the provider reads again
    await asyncio.sleep(0.01)
    assert [[r.envelope.body for r in m.requests] for m in call.written] == [[b"1"]]
    first.cancel()
    await mux.aclose()


async def test_a_certificate_revoked_while_its_stream_is_open_is_refused_on_that_stream(
    federation: Federation,
) -> None:
    """The peer is checked per exchange against the current configuration, not once per stream."""
    assert federation.authority is not None
    peer, serial = await with_new_tls_certificate(_peer(federation), federation)
    outbox: asyncio.Queue[mux_pb.MuxRequests | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        while (batch := await outbox.get()) is not None:
            yield batch

    async with peer.channel() as channel:
        method = channel.stream_stream(
            MULTIPLEX_METHOD,
            request_serializer=mux_pb.MuxRequests.SerializeToString,
            response_deserializer=mux_pb.MuxReplies.FromString,
        )
        stream = method(requests(), timeout=30)
        replies = stream.__aiter__()

        async def exchange(tag: int) -> str:
            outbox.put_nowait(
                mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=tag, envelope=_valid(federation, peer))])
            )
            (reply,) = (await anext(replies)).replies
            assert reply.tag == tag
            return outcome(reply)

        assert await exchange(1) == "ok"
        federation.authority.revoke(serial, "key compromise")
        await federation.publish_and_wait()
        assert await exchange(2) == "peer.revoked"  # same stream, same TLS connection
        outbox.put_nowait(None)


class _BrokenWriteCall(_StuckCall):
    async def write(self, message: mux_pb.MuxRequests) -> None:
        raise RuntimeError("a bug in the write path")


async def test_a_writer_that_fails_unexpectedly_fails_the_exchange_and_the_next_one_reopens() -> None:
    calls: list[_StuckCall] = []

    def open_call(*args: object, **kwargs: object) -> _StuckCall:
        calls.append(_BrokenWriteCall() if not calls else _StuckCall())
        return calls[-1]

    mux = PeerMux(open_call)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mux.exchange(pb.Envelope(body=b"1"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # at once, not at the deadline
    assert calls[0].gate.is_set()  # the broken call was cancelled
    second = asyncio.ensure_future(mux.exchange(pb.Envelope(body=b"2"), timeout=5))
    await asyncio.sleep(0.01)
    assert len(calls) == 2 and [r.envelope.body for m in calls[1].written for r in m.requests] == [b"2"]
    second.cancel()
    await mux.aclose()
