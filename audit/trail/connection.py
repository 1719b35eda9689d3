"""The audit sink's NATS connection: made in the background, kept up forever, and asked before
each batch whether publishing should be tried now.

The first connect never hangs a shutdown (``crossway.natsclient.connect_when_up``); after that
nats-py reconnects by itself. While NATS is away, and for ``retry_interval`` after a batch went
unacked, ``online()`` says no and the sink spools instead. An outage is logged once, not once
per failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from crossway.natsclient import NatsAccess, connect_when_up, connection_state

__all__ = ["AuditConnection"]

# The sink's log: an operator follows one logger for the audit trail's delivery.
log = logging.getLogger("audit.trail.jetstream")

# NATS' default max_payload; the server's own figure replaces it once connected.
_DEFAULT_MAX_PAYLOAD = 1024 * 1024


class AuditConnection:
    """One audit sink's connection to NATS and its JetStream context.

    ``wake`` is called when publishing may resume (connected, reconnected); ``closing`` says
    whether the sink is shutting down (a disconnect then is expected, not worth a warning).
    """

    def __init__(
        self,
        nats: NatsAccess,
        *,
        gateway_id: str,
        connect_timeout: float,
        ack_timeout: float,
        retry_interval: float,
        max_pending: int,
        wake: Callable[[], None],
        closing: Callable[[], bool],
    ) -> None:
        self._nats = nats
        self._gateway_id = gateway_id
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._retry_interval = retry_interval
        self._max_pending = max_pending
        self._wake = wake
        self._closing = closing
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._logged_connect_error = False
        # Publishing was tried and not refused since the last (re)connect or unacked batch.
        self.stream_ready = False

    @property
    def connected(self) -> bool:
        nc = self._nc
        return nc is not None and nc.is_connected

    @property
    def state(self) -> tuple[str, str]:
        """(state, server) of the connection, for the gateway's status."""
        return connection_state(self._nc)

    @property
    def max_payload(self) -> int:
        """The largest message the server takes (NATS' default until connected)."""
        nc = self._nc
        return nc.max_payload if nc is not None and nc.is_connected else _DEFAULT_MAX_PAYLOAD

    async def start(self) -> None:
        """Start connecting; wait one connect timeout for it, then leave it to the background."""
        self._connect_task = asyncio.create_task(self._connect(), name="audit-nats-connect")
        # Give a reachable NATS one connect timeout so a normal start is connected on return;
        # an unreachable one keeps being retried in the background while records go to the spool.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._connect_task), self._connect_timeout)
        if self._connect_task.done():
            # Ensure the stream now, so it exists once the gateway says it is ready (readers and
            # the index may look before the first record); failures just retry in the pump.
            await self.online()

    async def online(self) -> JetStreamContext | None:
        """The JetStream context when publishing should be tried now, else None."""
        nc, js = self._nc, self._js
        if nc is None or js is None or not nc.is_connected or time.monotonic() < self._retry_at:
            return None
        # The stream is the operator's (provisioned); an ack proves it is there, a missing one spools.
        self.stream_ready = True
        return js

    def back_off(self) -> None:
        """A batch went unacked: wait ``retry_interval``, and re-check the stream before the next try."""
        self._retry_at = time.monotonic() + self._retry_interval
        self.stream_ready = False

    async def close(self) -> None:
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()
            # Bounded: if nats-py ever swallows the cancellation, closing must still finish.
            await asyncio.wait({task}, timeout=self._connect_timeout)
            if not task.done():
                log.warning("audit sink: NATS connect did not stop when cancelled; abandoning it")
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), self._connect_timeout + self._ack_timeout)

    async def _connect(self) -> None:
        """Connect when NATS answers (see crossway.natsclient: a first connect that never hangs a
        shutdown), then reconnect forever; the pump publishes once this returns."""
        nc, attempts = await connect_when_up(
            self._nats,
            name=f"crossway-audit {self._gateway_id}",
            connect_timeout=self._connect_timeout,
            retry_interval=self._retry_interval,
            on_error=self._on_error,
            on_disconnected=self._on_disconnected,
            on_reconnected=self._on_reconnected,
        )
        self._nc = nc
        self._js = nc.jetstream(timeout=self._ack_timeout, publish_async_max_pending=self._max_pending)
        self._logged_connect_error = False
        log.info("audit sink connected to NATS for gateway %s after %d attempt(s)", self._gateway_id, attempts)
        self._wake()

    async def _on_error(self, exc: Exception) -> None:
        # The client reports every failed (re)connect attempt; one warning per outage is enough.
        if not self._logged_connect_error:
            self._logged_connect_error = True
            log.warning("audit sink cannot reach NATS (%s); spooling records", type(exc).__name__)
        else:
            log.debug("audit sink NATS error: %r", exc)

    async def _on_disconnected(self) -> None:
        self.stream_ready = False
        if not self._closing():
            log.warning("audit sink disconnected from NATS; spooling until it is back")

    async def _on_reconnected(self) -> None:
        self._logged_connect_error = False
        log.info("audit sink reconnected to NATS")
        self._wake()
