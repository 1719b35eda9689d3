"""A replay window shared by a member's gateways on separate hosts, in NATS JetStream KV (issue 11)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from typing import Any

import nats.js.errors

from crossway.backbone import kv_subject
from crossway.natsclient import NatsAccess, connect
from crossway.security.replay import MemoryReplayGuard

__all__ = ["NatsReplayGuard"]

log = logging.getLogger(__name__)

# JetStream's "wrong last sequence": the key already holds a value (create-if-absent refused).
_WRONG_LAST_SEQUENCE = 10071


class NatsReplayGuard:
    """A replay window shared by a member's gateways on separate hosts, in NATS JetStream KV.

    One bucket per member (``crossway.backbone.replay_bucket``), kept for the whole window (its
    TTL, set when the bucket is provisioned); only that member's gateways may write it. "First
    sight?" is one atomic operation on the server: a create-if-absent of the id's key — a publish
    with ``Nats-Expected-Last-Subject-Sequence: 0`` — that fails once any gateway of the member
    wrote it. Keys are SHA-256 of the id (KV keys have a narrow charset).

    ``seen_before`` is synchronous (the provider pipeline's seam), so the NATS connection lives on
    a loop in a thread of its own and the caller waits for one round trip (~0.3 ms on a LAN); a
    local window in front answers repeats without one. Fails closed: no answer within
    ``timeout_s``, or any error, means "seen" (the message is refused, never let through).
    """

    def __init__(self, nats: NatsAccess, bucket: str, *, timeout_s: float = 2.0, local_entries: int = 1_000_000):
        self._nats = nats
        self._bucket = bucket
        self._timeout_s = timeout_s
        self._local = MemoryReplayGuard(local_entries)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"replay-{bucket}", daemon=True)
        self._nc: Any = None
        self._js: Any = None

    async def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
        await asyncio.wrap_future(future)

    async def _connect(self) -> None:
        self._nc = await connect(self._nats, name=f"crossway-replay {self._bucket}", max_reconnect_attempts=-1)
        self._js = self._nc.jetstream(timeout=self._timeout_s)

    async def _create(self, key: str) -> bool:
        """True when the key already exists (a replay), False when this call created it."""
        try:
            await self._js.publish(
                kv_subject(self._bucket, key), b"", headers={"Nats-Expected-Last-Subject-Sequence": "0"}
            )
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code == _WRONG_LAST_SEQUENCE:
                return True
            raise
        return False

    def seen_before(self, message_id: str, expires_at_ms: int, now_ms: int) -> bool:
        if self._local.seen_before(message_id, expires_at_ms, now_ms):
            return True
        key = hashlib.sha256(message_id.encode()).hexdigest()
        try:
            return asyncio.run_coroutine_threadsafe(self._create(key), self._loop).result(self._timeout_s)
        except Exception as exc:  # no answer, no bucket, no connection: refuse rather than risk a replay
            log.error("shared replay window %s unavailable (%s); refusing message %s", self._bucket, exc, message_id)
            return True

    async def aclose(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5.0)
