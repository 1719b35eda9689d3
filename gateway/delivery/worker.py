"""A durable pull consumer worked by many concurrent handlers: the shape of every delivery worker.

Each message is handed to ``handler``, which returns None (done: ack) or a delay in seconds
(not yet: nak, redelivered after the delay — how retries with backoff and timers at a message's
expiry are kept in JetStream itself, surviving restarts). An exception is logged and the message
retried after a second. At most ``max_in_flight`` handlers run at once. The worker owns its task
(``start``/``aclose``); ``aclose`` lets handlers in flight finish for a grace period, and a
message it abandons is redelivered after the consumer's ack wait — never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg

from gateway.delivery.store import NATS_ERRORS, DeliveryStore

__all__ = ["Handler", "PullWorker", "backoff_delay", "fetch_some"]

log = logging.getLogger(__name__)

Handler = Callable[[Msg], Awaitable[float | None]]


async def fetch_some(sub: Any, limit: int, wait_s: float) -> list[Msg]:
    """Up to ``limit`` messages: waits up to ``wait_s`` for the first, then takes what is there.

    nats-py's ``fetch(batch=N)`` with fewer than N messages available waits out its whole timeout
    (its pull request lingers on the server until the batch fills); a batch of one returns on the
    first message, so: one, then the rest with a timeout of a few milliseconds.
    """
    try:
        msgs: list[Msg] = await sub.fetch(batch=1, timeout=max(0.01, wait_s))
    except (nats.errors.TimeoutError, TimeoutError):
        return []
    if limit > 1:
        with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
            msgs += await sub.fetch(batch=limit - 1, timeout=0.005)
    return msgs


def backoff_delay(attempt: int, base_s: float, cap_s: float, limit_s: float | None = None) -> float:
    """Exponential backoff with full jitter (AWS architecture blog, 2015): uniform in [d/2, d],
    d = base·2^(attempt-1) capped; never past ``limit_s`` (e.g. the time left to expiry)."""
    ceiling = min(cap_s, base_s * (2 ** max(0, min(attempt - 1, 30))))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret
    if limit_s is not None:
        delay = min(delay, max(0.05, limit_s))
    return delay


class PullWorker:
    def __init__(
        self,
        name: str,
        store: DeliveryStore,
        stream: str,
        durable: str,
        subject: str,
        handler: Handler,
        *,
        ack_wait_s: float,
        max_in_flight: int = 64,
        consumer_options: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self._store = store
        self._stream = stream
        self._durable = durable
        self._subject = subject
        self._handler = handler
        self._ack_wait_s = ack_wait_s
        self._max = max(1, max_in_flight)
        self._options = dict(consumer_options or {})  # e.g. start_seq, max_ack_pending (DeliveryStore.consumer)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"delivery {self.name}")

    async def _run(self) -> None:
        await self._store.ready.wait()
        while True:
            try:
                sub = await self._store.consumer(
                    self._stream, self._durable, self._subject, ack_wait_s=self._ack_wait_s, **self._options
                )
                while True:
                    free = self._max - len(self._tasks)
                    if free <= 0:
                        self._slot.clear()
                        await self._slot.wait()
                        continue
                    msgs = await fetch_some(sub, min(free, 128), 1.0)
                    for msg in msgs:
                        task = asyncio.create_task(self._one(msg))
                        self._tasks.add(task)
                        task.add_done_callback(self._done)
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()  # reconnected: bind again
            except asyncio.CancelledError:
                raise
            except NATS_ERRORS as exc:
                log.warning("delivery %s: consumer unavailable (%s); retrying", self.name, type(exc).__name__)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("delivery %s: consumer loop failed; restarting it", self.name)
                await asyncio.sleep(1.0)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot.set()

    async def _heartbeat(self, msg: Msg) -> None:
        """Long work (an attachment streaming): tell JetStream we are on it, so the message is not
        handed to another worker meanwhile (``+WPI`` resets the ack wait)."""
        while True:
            await asyncio.sleep(max(0.5, self._ack_wait_s / 3))
            with contextlib.suppress(*NATS_ERRORS):
                await msg.in_progress()

    async def _one(self, msg: Msg) -> None:
        beat = asyncio.create_task(self._heartbeat(msg))
        try:
            delay = await self._handler(msg)
        except asyncio.CancelledError:
            return  # shutting down: redelivered after the ack wait
        except NATS_ERRORS as exc:
            log.warning("delivery %s: NATS unavailable while handling a message (%s)", self.name, type(exc).__name__)
            delay = 1.0
        except Exception:
            log.exception("delivery %s: handling a message failed; it will be retried", self.name)
            delay = 1.0
        finally:
            beat.cancel()
        try:
            if delay is None:
                await msg.ack()
            else:
                await msg.nak(delay=delay)
        except NATS_ERRORS as exc:
            # The ack is lost with the connection: the message comes back after the ack wait and
            # its handler recognises what was already done (every step is idempotent by id).
            log.debug("delivery %s: could not settle a message (%s)", self.name, type(exc).__name__)

    async def aclose(self, grace_s: float = 2.0) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
