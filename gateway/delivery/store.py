"""The delivery room's NATS plumbing: one connection, the streams, the state bucket, consumers.

Connects only through ``crossway.natsclient`` (a first connect that never hangs a shutdown, then
reconnecting forever). Streams are created when missing (file storage, the retention period as
their age limit, a duplicate window for ``Nats-Msg-Id`` that covers any retry); the names and who
may use them are in :mod:`gateway.delivery.subjects`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from crossway.natsclient import close_owner, connect_when_up
from gateway.delivery.state import StateStore
from gateway.delivery.subjects import CHUNKS_STREAM, FORWARD_STREAM, INBOX_STREAM, OUTBOX_STREAM, STATE_BUCKET

__all__ = ["NATS_ERRORS", "DeliveryStore"]

log = logging.getLogger(__name__)

# What a NATS operation raises while the server is away or restarting: retry later.
NATS_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.Error,
    nats.js.errors.Error,
    TimeoutError,
    asyncio.TimeoutError,
    ConnectionError,
    OSError,
)

_STREAMS = (
    (OUTBOX_STREAM, "crossway.delivery.outbox.>", "Crossway delivery: signed messages awaiting relay"),
    (INBOX_STREAM, "crossway.delivery.inbox.>", "Crossway delivery: relayed messages awaiting handover"),
    (FORWARD_STREAM, "crossway.delivery.forward.>", "Crossway delivery: evidence to send to the other side"),
    (CHUNKS_STREAM, "crossway.delivery.chunks.>", "Crossway delivery: attachment chunks"),
)
# Must exceed the longest retry of a publish whose acknowledgement was lost (NATS restarts).
_DUPLICATE_WINDOW_S = 3600.0


class DeliveryStore:
    def __init__(self, url: str, gateway: str, retention_s: float, *, timeout_s: float = 5.0) -> None:
        self._url = url
        self._gateway = gateway
        self._retention_s = retention_s
        self._timeout_s = timeout_s
        self._nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.states: StateStore | None = None
        self.ready = asyncio.Event()
        # Bumped on every reconnect: pull subscriptions are bound again rather than trusted to
        # have survived a server restart.
        self.generation = 0

    async def start(self) -> None:
        """Connect (retrying until NATS answers) and make sure the streams and bucket exist."""
        nc, _ = await connect_when_up(
            self._url,
            name=f"crossway-delivery {self._gateway}",
            connect_timeout=2.0,
            retry_interval=0.5,
            on_error=self._on_error,
            on_disconnected=self._on_disconnected,
            on_reconnected=self._on_reconnected,
        )
        self._nc = nc
        self.js = nc.jetstream(timeout=self._timeout_s)
        while True:
            try:
                await self._ensure()
                break
            except NATS_ERRORS as exc:
                log.warning("delivery: streams not ready yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
        self.ready.set()

    async def _ensure(self) -> None:
        js = self.js
        assert js is not None
        for name, subjects, description in _STREAMS:
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                config = StreamConfig(
                    name=name,
                    subjects=[subjects],
                    description=description,
                    storage=StorageType.FILE,
                    max_age=self._retention_s,
                    duplicate_window=min(_DUPLICATE_WINDOW_S, self._retention_s),
                )
                with contextlib.suppress(nats.js.errors.BadRequestError):  # created meanwhile by another gateway
                    await js.add_stream(config)
        try:
            kv = await js.key_value(STATE_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            try:
                kv = await js.create_key_value(
                    KeyValueConfig(
                        bucket=STATE_BUCKET,
                        description="Crossway delivery: message states and their evidence",
                        history=1,
                        ttl=self._retention_s,
                        storage=StorageType.FILE,
                    )
                )
            except nats.js.errors.BadRequestError:
                kv = await js.key_value(STATE_BUCKET)
        self.states = StateStore(kv, self._retention_s)

    async def consumer(
        self,
        stream: str,
        durable: str,
        subject: str,
        *,
        ack_wait_s: float,
        max_ack_pending: int = 100_000,
        start_seq: int = 0,
    ) -> Any:
        """A durable pull subscription (created when missing): redelivered after ``ack_wait_s``
        when not acked, forever (the workers decide when a message is done, up to its expiry).
        ``start_seq``: the stream sequence to begin at when it is created (0: the first).
        ``max_ack_pending=1`` keeps the messages in order (a topic subscription's fan-out)."""
        js = self.js
        assert js is not None
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start_seq else DeliverPolicy.ALL,
            opt_start_seq=start_seq or None,
            ack_wait=ack_wait_s,
            max_deliver=-1,
            max_ack_pending=max_ack_pending,
        )
        with contextlib.suppress(nats.js.errors.BadRequestError):  # exists (maybe with older settings)
            await js.add_consumer(stream, config)
        return await js.pull_subscribe_bind(durable=durable, stream=stream)

    async def publish(
        self, subject: str, data: bytes, msg_id: str, stream: str, headers: dict[str, str] | None = None
    ) -> None:
        js = self.js
        assert js is not None
        await js.publish(subject, data, stream=stream, headers={**(headers or {}), "Nats-Msg-Id": msg_id})

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def _on_error(self, exc: Exception) -> None:
        log.debug("delivery NATS error: %r", exc)

    async def _on_disconnected(self) -> None:
        log.warning("delivery: NATS connection lost; retrying")

    async def _on_reconnected(self) -> None:
        self.generation += 1
        log.info("delivery: NATS connection back")

    async def aclose(self) -> None:
        await close_owner(None, self._nc)
