"""The two ends of ``PeerExchange.Multiplex`` on their own (real gateways: test_peer_multiplex.py).

The client side against small grpc.aio servers on port 0 (or call objects) that stand in for a
provider misbehaving or too old to multiplex: it falls back to ``Call``, fails waiting exchanges
when the stream breaks and then reopens it, gives up at the deadline, batches what queues during
a write and withdraws what its callers gave up on. The provider side without a network: answers
go out as they finish and batched, a draining provider ends the stream, and a client that does
not read stops being read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest

from crossway.core.errors import CrosswayError, Hop
from gateway.wire.channels import PeerStubs
from gateway.wire.frames import Envelope
from gateway.wire.multiplex import MULTIPLEX_METHOD, PeerMux, serve_multiplex
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb
from tests.integration.peer_client import mux_handler

pytestmark = pytest.mark.asyncio(loop_scope="module")

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

    async with _provider({"Call": _echo_call(), "Multiplex": mux_handler(refuse)}) as stubs:
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

    async with _provider({"Multiplex": mux_handler(answer_then_drop)}) as stubs:
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

    async with _provider({"Multiplex": mux_handler(echo)}) as stubs:
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

    async with _provider({"Multiplex": mux_handler(silent)}) as stubs:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.exchange(pb.Envelope(header=b"h", body=b"x"), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# -- the provider side, without a network ------------------------------------------------


async def test_answers_go_out_as_they_finish_and_all_are_sent_after_the_client_stops_sending() -> None:
    release = {1: asyncio.Event(), 2: asyncio.Event(), 3: asyncio.Event()}

    async def provide(env: Envelope, auth: object) -> Envelope:
        tag = int(env.body)
        await release[tag].wait()
        return replace(env, header=b"")

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
    async def provide(env: Envelope, auth: object) -> Envelope:
        return replace(env, header=b"")

    async def requests() -> AsyncIterator[mux_pb.MuxRequests]:
        yield mux_pb.MuxRequests(requests=[mux_pb.MuxRequest(tag=t, envelope=pb.Envelope()) for t in range(1, 9)])

    batches = [batch async for batch in serve_multiplex(requests(), {}, provide)]
    assert sorted(r.tag for b in batches for r in b.replies) == list(range(1, 9))
    assert len(batches) < 8  # answered in the same loop turn, written together


async def test_a_draining_provider_answers_what_runs_refuses_what_comes_then_ends_the_stream() -> None:
    started, release, draining = asyncio.Event(), asyncio.Event(), asyncio.Event()
    inbox: asyncio.Queue[mux_pb.MuxRequests] = asyncio.Queue()

    async def provide(env: Envelope, auth: object) -> Envelope:
        started.set()
        await release.wait()
        return replace(env, header=b"")

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


async def test_a_client_that_does_not_read_its_answers_stops_being_read() -> None:
    provided = 0

    async def provide(env: Envelope, auth: object) -> Envelope:
        nonlocal provided
        provided += 1
        return replace(env, header=b"")

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
