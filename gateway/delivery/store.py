"""The delivery room's NATS plumbing: one connection, the streams, the state bucket, consumers.

Connects only through ``crossway.natsclient``, as the gateway's own NATS identity (a first
connect that never hangs a shutdown, then reconnecting forever). The gateway creates no stream:
its member's streams and state bucket are provisioned on the backbone (by the registry for every
member, or by ``crossway nats provision``); it waits for them, saying so, and fails with a hint
when they do not come. The names and who may use them are in :mod:`crossway.bus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from crossway.bus import Names
from crossway.core.errors import ConfigError
from crossway.natsclient import NatsAccess, close_owner, connect_when_up
from gateway.delivery.state import StateStore

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

# How long a starting gateway waits for its member's streams to be provisioned.
_PROVISION_WAIT_S = 60.0


class DeliveryStore:
    def __init__(self, access: NatsAccess, names: Names, retention_s: float, *, timeout_s: float = 5.0) -> None:
        self._access = access
        self._names = names
        self._gateway = str(names.gateway)
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
        """Connect (retrying until NATS answers) and wait for the member's streams and bucket."""
        nc, _ = await connect_when_up(
            self._access,
            name=f"crossway-delivery {self._gateway}",
            connect_timeout=2.0,
            retry_interval=0.5,
            on_error=self._on_error,
            on_disconnected=self._on_disconnected,
            on_reconnected=self._on_reconnected,
        )
        self._nc = nc
        self.js = nc.jetstream(timeout=self._timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _PROVISION_WAIT_S
        while True:
            try:
                await self._ensure()
                break
            except (nats.js.errors.NotFoundError, nats.js.errors.BucketNotFoundError) as exc:
                if loop.time() > deadline:
                    raise ConfigError(
                        f"the delivery streams of {self._names.gateway.member} are not on the backbone ({exc})",
                        hint="the registry creates them for every member; or run crossway nats provision",
                    ) from None
                log.warning("delivery: waiting for the member's streams to be provisioned")
                await asyncio.sleep(1.0)
            except NATS_ERRORS as exc:
                log.warning("delivery: streams not ready yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
        self.ready.set()

    async def _ensure(self) -> None:
        js = self.js
        assert js is not None
        for name in self._names.streams:
            await js.stream_info(name)
        self.states = StateStore(await js.key_value(self._names.state_bucket), self._retention_s)

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
