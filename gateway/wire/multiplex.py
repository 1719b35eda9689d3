"""Unary exchanges multiplexed over one long-lived ``PeerExchange.Multiplex`` stream per peer.

A unary gRPC call costs a hop far more than one message on an open stream: call setup,
metadata and status on both ends. Measured here with grpc.aio on uvloop, a 1.7 kB unary round
trip cost ~230–250 µs of client and ~330–350 µs of server CPU; the same message on an open
bidirectional stream ~120–130 and ~115–125 µs. So the client gateway sends each unary
exchange's signed REQUEST envelope on a stream of its own to the provider gateway, tagged, and
the provider answers each tag with the signed response — or with the refusal ``Call`` would
have sent as status and trailing metadata, when it refused before it could sign. Nothing of
the security model moves: the envelope is the same, verified the same way, and the signed
response is bound to its request by the header hash; the tag only pairs answers with waiters.

Client side (:class:`PeerMux`): the stream opens on first use and again after it breaks; one
write at a time (grpc.aio's rule), answers dispatched by a reader task; a broken stream fails
every exchange waiting on it with the stream's gRPC error, which the client pipeline maps like
a failed ``Call`` (``peer.*``, failover to the provider's next gateway when unreachable). A
provider without ``Multiplex`` (UNIMPLEMENTED) is remembered and served by ``Call``.

Provider side (:func:`serve_multiplex`): each request runs the ordinary provider pipeline as
its own task (at most ``max_in_flight`` per stream, each counted until its answer is written;
beyond that the stream stops reading, so HTTP/2 flow control pushes back); when the client's stream ends every answer is still sent,
and when it is cancelled every exchange on it is cancelled (and audited as such). A gateway
that is shutting down drains its streams: running exchanges are answered, new ones refused
with ``peer.unavailable`` so that the client gateway fails over, then the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from crossway.core.errors import (
    CrosswayError,
    Hop,
    InternalError,
    MessageMalformed,
    ProviderUnreachable,
    error_class_for_code,
)
from gateway.wire.codec import envelope_from_pb, envelope_to_pb
from gateway.wire.frames import Envelope
from gateway.wire.link import AuthContext
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb

__all__ = ["MAX_BATCH_BYTES", "MULTIPLEX_METHOD", "PeerMux", "decode_mux_requests", "refusal_error", "serve_multiplex"]

log = logging.getLogger(__name__)

MULTIPLEX_METHOD = "/crossway.v1.PeerExchange/Multiplex"

ProviderCall = Callable[[Envelope, AuthContext], Awaitable[Envelope]]
MuxMethod = grpc.aio.StreamStreamMultiCallable[mux_pb.MuxRequests, mux_pb.MuxReplies]


# One Multiplex message carries at most about this much: what queued during a write goes out in
# the next one, but never so much that it exceeds the other side's gRPC message limit (a batch over
# it would fail the whole stream, every exchange on it). A single larger answer goes alone.
MAX_BATCH_BYTES = 1024 * 1024


def decode_mux_requests(data: bytes) -> mux_pb.MuxRequests:
    """The provider's deserializer of a Multiplex batch; bytes that are not one are malformed."""
    try:
        return mux_pb.MuxRequests.FromString(data)
    except DecodeError as exc:
        raise MessageMalformed("the peer sent bytes that are not a crossway.v1.MuxRequests batch") from exc


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


def refusal_error(refusal: mux_pb.PeerRefusal) -> CrosswayError:
    """The provider's refusal, rebuilt as the error ``Call``'s status would have given."""
    return error_class_for_code(refusal.error_code)(refusal.message, hint=refusal.hint or None, hop=Hop.PROVIDER)


def _refusal(error: CrosswayError) -> mux_pb.PeerRefusal:
    return mux_pb.PeerRefusal(
        grpc_code=error.status.value[0], error_code=error.code, message=error.message, hint=error.hint
    )


# -- client side --------------------------------------------------------------------------


class _Stream:
    """One open Multiplex call: its waiters by tag, its outbox, a writer and a reader task.

    Requests queue in the outbox; the writer sends everything that queued while it was writing
    as one message, so under load a batch costs one write, and alone a request costs one.
    """

    def __init__(self, call: grpc.aio.StreamStreamCall[mux_pb.MuxRequests, mux_pb.MuxReplies]) -> None:
        self.call = call
        self.waiters: dict[int, asyncio.Future[mux_pb.MuxReply]] = {}
        self.failure: grpc.aio.AioRpcError | None = None
        self._outbox: list[mux_pb.MuxRequest] = []
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.reader = loop.create_task(self._read(), name="crossway-mux-reader")
        self.writer = loop.create_task(self._write(), name="crossway-mux-writer")

    def send(self, request: mux_pb.MuxRequest) -> None:
        self._outbox.append(request)
        self._wake.set()

    def withdraw(self, request: mux_pb.MuxRequest) -> None:
        """A request whose caller gave up (deadline, cancellation) is not sent if still queued."""
        with contextlib.suppress(ValueError):
            self._outbox.remove(request)

    async def _write(self) -> None:
        while self.failure is None:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self.failure is None:
                batch = _take_batch(self._outbox)
                try:
                    await self.call.write(mux_pb.MuxRequests(requests=batch))
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                    # The stream ended under us: nothing of this batch is known to have arrived.
                    failure = exc if isinstance(exc, grpc.aio.AioRpcError) else None
                    self._fail(failure or _rpc_error(grpc.StatusCode.UNAVAILABLE, "the exchange stream ended"))
                    return
                except Exception:
                    # A bug must not leave this stream looking usable with no writer: fail what
                    # waits, end the call, and the next exchange opens a new stream.
                    log.exception("the Multiplex writer failed; reopening the stream")
                    self._fail(_rpc_error(grpc.StatusCode.UNAVAILABLE, "the exchange stream failed in this gateway"))
                    return

    async def _read(self) -> None:
        failure = _rpc_error(grpc.StatusCode.UNAVAILABLE, "the exchange stream was closed by this gateway")
        try:
            async for replies in self.call:
                for reply in replies.replies:
                    waiter = self.waiters.pop(reply.tag, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(reply)
            failure = _rpc_error(grpc.StatusCode.UNAVAILABLE, "the provider gateway closed the exchange stream")
        except grpc.aio.AioRpcError as exc:
            failure = exc
        finally:
            self._fail(failure)

    def _fail(self, failure: grpc.aio.AioRpcError) -> None:
        """Every exchange waiting on this stream fails with the stream's error; it takes no more."""
        if self.failure is None:
            self.failure = failure
        self.call.cancel()  # no-op when the call has ended; frees it when this side gave up on it
        self._outbox = []
        self._wake.set()  # lets the writer see the failure and stop
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(self.failure)


def _take_batch(outbox: list[mux_pb.MuxRequest]) -> list[mux_pb.MuxRequest]:
    """Remove and return the next batch: at least one request, at most about MAX_BATCH_BYTES."""
    size, count = 0, 0
    for request in outbox:
        size += request.envelope.ByteSize()
        if count and size > MAX_BATCH_BYTES:
            break
        count += 1
    batch = outbox[:count]
    del outbox[:count]
    return batch


def _expire(waiter: asyncio.Future[mux_pb.MuxReply]) -> None:
    if not waiter.done():
        waiter.set_exception(_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer within the deadline"))


class PeerMux:
    """Unary exchanges to one provider gateway address over a Multiplex stream."""

    def __init__(self, method: MuxMethod) -> None:
        self._method = method
        self._stream: _Stream | None = None
        self._next_tag = 0
        self.unsupported = False  # the provider answered UNIMPLEMENTED: use Call

    def _open(self) -> _Stream:
        stream = self._stream
        if stream is None or stream.failure is not None or stream.call.done():
            # wait_for_ready=False: a peer that is down fails the exchange at once (failover).
            stream = self._stream = _Stream(self._method(None, wait_for_ready=False))
        return stream

    async def exchange(self, envelope: pb.Envelope, timeout: float) -> mux_pb.MuxReply:
        """Send one request envelope; its answer, or the stream's ``AioRpcError``."""
        stream = self._open()
        self._next_tag += 1
        tag = self._next_tag
        waiter: asyncio.Future[mux_pb.MuxReply] = asyncio.get_running_loop().create_future()
        stream.waiters[tag] = waiter
        request = mux_pb.MuxRequest(tag=tag, envelope=envelope)
        stream.send(request)
        # A timer on the waiter itself: asyncio.wait_for would wrap it in one more future.
        expiry = asyncio.get_running_loop().call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            expiry.cancel()
            if stream.waiters.pop(tag, None) is not None:  # no answer came: don't send it late
                stream.withdraw(request)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.call.cancel()
            for task in (stream.writer, stream.reader):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# -- provider side ------------------------------------------------------------------------


async def serve_multiplex(
    requests: AsyncIterator[mux_pb.MuxRequests],
    auth_context: AuthContext,
    provide: ProviderCall,
    *,
    draining: asyncio.Event | None = None,
    max_in_flight: int = 256,
) -> AsyncIterator[mux_pb.MuxReplies]:
    """Answer every tagged request with ``provide``'s signed response or the refusal.

    Once ``draining`` is set (the gateway is shutting down) new requests are refused with
    ``peer.unavailable`` before anything is started — the client gateway fails over to the
    provider's next gateway — and the stream ends as soon as the exchanges already running
    have been answered, so a stopping gateway neither cuts them off nor waits for its grace.
    """
    answers: asyncio.Queue[mux_pb.MuxReply | None] = asyncio.Queue()
    running: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(max_in_flight)
    draining = draining if draining is not None else asyncio.Event()

    async def answer(request: mux_pb.MuxRequest) -> None:
        try:
            response = await provide(envelope_from_pb(request.envelope), auth_context)
            reply = mux_pb.MuxReply(tag=request.tag, response=envelope_to_pb(response))
        except CrosswayError as exc:
            reply = mux_pb.MuxReply(tag=request.tag, refusal=_refusal(exc.at(Hop.PROVIDER)))
        except Exception as exc:
            log.exception("internal error in a multiplexed exchange", exc_info=exc)
            error = InternalError(f"unexpected {type(exc).__name__} while handling a multiplexed exchange")
            reply = mux_pb.MuxReply(tag=request.tag, refusal=_refusal(error))
        answers.put_nowait(reply)

    async def read() -> None:
        async for batch in requests:
            for request in batch.requests:
                # A slot is held until the answer has been written: a client that sends without
                # reading its answers stops being read (HTTP/2 flow control), it cannot pile
                # answers up in this gateway's memory.
                await slots.acquire()
                if draining.is_set():
                    answers.put_nowait(mux_pb.MuxReply(tag=request.tag, refusal=_refusal(_shutting_down())))
                    continue
                task = asyncio.get_running_loop().create_task(answer(request))
                running.add(task)
                task.add_done_callback(running.discard)
        # The client finished sending: every exchange still gets its answer.
        await _settle(running)
        answers.put_nowait(None)

    async def drain() -> None:
        await draining.wait()
        await _settle(running)
        answers.put_nowait(None)

    loop = asyncio.get_running_loop()
    reader = loop.create_task(read(), name="crossway-mux-serve")
    reader.add_done_callback(lambda task: _end_on_failure(task, answers))
    drainer = loop.create_task(drain(), name="crossway-mux-drain")
    try:
        # Everything answered while the last batch was being written goes out as the next one.
        while (reply := await answers.get()) is not None:
            batch, size = [reply], reply.ByteSize()
            while size < MAX_BATCH_BYTES and not answers.empty() and (reply := answers.get_nowait()) is not None:
                batch.append(reply)
                size += reply.ByteSize()
            yield mux_pb.MuxReplies(replies=batch)  # resumes once grpc has taken the message
            for _ in batch:
                slots.release()
            if reply is None:
                break
        # The request side failed with a refusal of its own (a batch that does not decode): the
        # stream ends with that error, so the peer learns its code instead of a plain end.
        if reader.done() and not reader.cancelled() and isinstance(reader.exception(), CrosswayError):
            raise reader.exception()  # type: ignore[misc]
    finally:
        reader.cancel()
        drainer.cancel()
        for task in list(running):
            task.cancel()


async def _settle(running: set[asyncio.Task[None]]) -> None:
    while running:
        await asyncio.gather(*running, return_exceptions=True)


def _shutting_down() -> CrosswayError:
    return ProviderUnreachable(
        "this provider gateway is shutting down; the exchange was not started",
        hint="retry: the client gateway fails over to the provider's other gateways when it has any",
        hop=Hop.PROVIDER,
    )


def _end_on_failure(task: asyncio.Task[Any], answers: asyncio.Queue[mux_pb.MuxReply | None]) -> None:
    # The request side broke (client cancelled, connection lost): stop answering.
    if task.cancelled() or task.exception() is not None:
        answers.put_nowait(None)
