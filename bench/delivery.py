"""The delivery row of ``make bench``: messages per second from Send to ContentHandover, 64 in flight,
next to bare JetStream publish-and-consume of the same payload, measured in the same run.

Crossway: 64 senders (the tax board's system, one TLS channel to its gateway) each send a message,
wait until the population register's system has received it (Receive) and acknowledged it (Ack →
ContentHandover evidence), then send the next; a message's latency is from its Send to the Ack's
answer. In between: signing, the OUTBOX, the relay worker, the peer hop, the recipient's checks
and Cedar decision, the INBOX, the evidence chain (compare-and-set) and its audit records on both
gateways, and the evidence forwarded back.

Baseline: 64 publishers on one NATS connection each publish (acknowledged by JetStream) and wait
until a pull consumer on the same connection has fetched and acknowledged that message. Both run
in interleaved rounds, medians taken, so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from crossway.bus import Names
from crossway.core.ids import SubsystemId
from crossway.demo.federation import POPULATION, TAX_SUBSYSTEM, Agency, Federation
from crossway.natsclient import NatsAccess, connect_when_up
from crossway.security.keys import save_pem
from crossway.security.tokens import mint_token
from protos.crossway.v1 import delivery_pb2 as dpb
from protos.crossway.v1 import delivery_pb2_grpc as dgrpc
from registry import RegistryAuthority

__all__ = ["DeliveryFigures", "measure"]

MAILBOX = SubsystemId(POPULATION, "population")
POLICY = (
    '@id("tax-sends")\npermit (principal == Crossway::Subsystem::"EE/GOV/70000001/tax", '
    'action == Crossway::Action::"crossway.v1.Document", resource);\n'
)
ISSUER = "https://idp.tax.example"


def _registry(authority: RegistryAuthority) -> None:
    authority.set_mailbox(MAILBOX, document_content_types=["application/octet-stream"])


def _gateway(fed: Federation, agency: Agency) -> str:
    text = "[delivery]\nmax_in_flight = 512\n"
    if agency.member == POPULATION:
        policies = agency.directory / "policies" / "delivery"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "bench.cedar").write_text(POLICY)
        save_pem(agency.directory / "idp.pub", fed.idp_key.public_key())
        text += 'policy_dir = "policies/delivery"\n'
        text += f'\n[client_auth.jwt]\nissuer = "{ISSUER}"\naudience = "crossway:{agency.gateway}"\npublic_keys = ["idp.pub"]\n'
    return text


@dataclass(frozen=True, slots=True)
class Run:
    messages_per_s: float
    p50_ms: float
    p99_ms: float
    messages: int


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    crossway: Run
    jetstream: Run

    def as_json(self) -> dict[str, Any]:
        def row(r: Run) -> dict[str, Any]:
            return {
                "messages_per_s": round(r.messages_per_s, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "messages": r.messages,
            }

        return {
            "crossway_send_to_handover": row(self.crossway),
            "jetstream_publish_consume": row(self.jetstream),
            "ratio": round(self.crossway.messages_per_s / max(self.jetstream.messages_per_s, 1e-9), 4),
        }


async def _closed_loop(in_flight: int, warmup_s: float, window_s: float, one: Callable[[int], Awaitable[None]]) -> Run:
    """``in_flight`` loops doing ``one`` back to back; what completed inside the window counts."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup_s
    end = start + window_s

    async def worker() -> None:
        while loop.time() < end:
            began = loop.time()
            await one(next(_COUNTER))
            done = loop.time()
            if start <= began and done <= end:
                latencies.append((done - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    latencies.sort()
    if not latencies:
        return Run(0.0, 0.0, 0.0, 0)
    return Run(
        len(latencies) / window_s,
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        len(latencies),
    )


class _Crossway:
    def __init__(self, fed: Federation, payload: bytes) -> None:
        self._fed, self._payload = fed, payload
        creds = grpc.ssl_channel_credentials(fed.ca_pem)
        self._send = grpc.aio.secure_channel(fed.tax.client_address, creds)
        self._recv = grpc.aio.secure_channel(fed.population.client_address, creds)
        self._sender = dgrpc.DeliveryStub(self._send)  # type: ignore[no-untyped-call]
        self._recipient = dgrpc.DeliveryStub(self._recv)  # type: ignore[no-untyped-call]
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._prefix = os.urandom(4).hex()
        self._task: asyncio.Task[None] | None = None
        self._md_send = self._md(fed.tax, TAX_SUBSYSTEM)
        self._md_recv = self._md(fed.population, MAILBOX)

    def _md(self, agency: Agency, subsystem: SubsystemId) -> tuple[tuple[str, str], ...]:
        token = mint_token(
            self._fed.idp_key, subject=str(subsystem), issuer=ISSUER, audience=f"crossway:{agency.gateway}", ttl_s=3600
        )
        return (("authorization", f"Bearer {token}"),)

    def start(self) -> None:
        self._task = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        """The recipient system: receive what waits, acknowledge each (ContentHandover)."""

        async def ack(message: dpb.DeliveredMessage) -> None:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._recipient.Ack(message.ref, metadata=self._md_recv, timeout=30)
            future = self._waiting.pop(message.ref.message_id, None)
            if future is not None and not future.done():
                future.set_result(None)

        while True:
            request = dpb.ReceiveRequest(max_messages=128, wait_ms=1000)
            acks = []
            try:
                async for message in self._recipient.Receive(request, metadata=self._md_recv, timeout=30):
                    acks.append(asyncio.create_task(ack(message)))  # as each arrives
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
            await asyncio.gather(*acks)

    async def one(self, n: int) -> None:
        message_id = f"bench-{self._prefix}-{n}"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        request = dpb.SendRequest(
            recipient=str(MAILBOX),
            message_id=message_id,
            type="crossway.v1.Document",
            payload=self._payload,
            content_type="application/octet-stream",
            expires_at_ms=int((time.time() + 600) * 1000),
        )
        await self._sender.Send(request, metadata=self._md_send, timeout=30)
        await asyncio.wait_for(future, 60)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._send.close(None)
        await self._recv.close(None)


class _JetStream:
    """Bare JetStream: publish (acked), a pull consumer fetches and acks, the publisher is told.

    On the same secured backbone, as the sender gateway's own NATS identity (TLS, its permissions):
    a subject of its own on its member's chunk stream, which no worker consumes."""

    def __init__(self, access: NatsAccess, names: Names, payload: bytes) -> None:
        self._access, self._payload = access, payload
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None
        self._tag = f"bench-{os.urandom(4).hex()}"
        self._stream = names.chunks_stream
        self._subject = names.chunks(self._tag)

    async def start(self) -> None:
        async def quiet(*_: object) -> None:
            return None

        self._nc, _ = await connect_when_up(
            self._access,
            name="bench-baseline",
            connect_timeout=2,
            retry_interval=0.2,
            on_error=quiet,
            on_disconnected=quiet,
            on_reconnected=quiet,
        )
        js = self._nc.jetstream(timeout=30)
        self._js = js
        self._sub = await js.pull_subscribe(self._subject, durable=self._tag, stream=self._stream)
        self._task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        import nats.errors

        while True:
            try:
                msgs = await self._sub.fetch(batch=128, timeout=0.2)
            except (nats.errors.TimeoutError, TimeoutError):
                continue

            async def ack(msg: Any) -> None:
                await msg.ack()
                future = self._waiting.pop(msg.headers["Nats-Msg-Id"], None)
                if future is not None and not future.done():
                    future.set_result(None)

            await asyncio.gather(*(ack(m) for m in msgs))

    async def one(self, n: int) -> None:
        key = f"{self._tag}-{n}"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        await self._js.publish(self._subject, self._payload, headers={"Nats-Msg-Id": key})
        await asyncio.wait_for(future, 60)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._js.delete_consumer(self._stream, self._tag)
        with contextlib.suppress(Exception):
            await self._nc.close()


# Message numbers across every run of a process: an id is never sent twice (it would be a duplicate).
_COUNTER = itertools.count()


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.messages_per_s)[len(runs) // 2]


async def measure(
    workdir: Path, *, in_flight: int, payload_bytes: int, warmup_s: float, window_s: float, runs: int
) -> DeliveryFigures:
    payload = os.urandom(payload_bytes)
    async with Federation(
        workdir, require_encryption=False, customize_registry=_registry, customize_gateway=_gateway
    ) as fed:
        crossway = _Crossway(fed, payload)
        baseline = _JetStream(fed.gateway_nats(fed.tax), Names(fed.tax.gateway), payload)
        crossway.start()
        await baseline.start()
        try:
            mine: list[Run] = []
            theirs: list[Run] = []
            for _ in range(runs):
                mine.append(await _closed_loop(in_flight, warmup_s, window_s, crossway.one))
                theirs.append(await _closed_loop(in_flight, warmup_s, window_s, baseline.one))
        finally:
            await crossway.aclose()
            await baseline.aclose()
    return DeliveryFigures(_median(mine), _median(theirs))
