"""The indexer: consumes the audit and checkpoint streams into the index, and catches up after downtime.

Two durable JetStream pull consumers (their names are fixed, so a restarted indexer resumes where
the last one acknowledged): one over ``crossway.audit.>`` and one over the checkpoint stream.
Each fetched batch is written in one transaction together with its last stream sequence, then
acknowledged (AckAll, one ack per batch). Crash before the commit: redelivered and applied.
Crash after the commit, before the ack: redelivered and skipped by the stored sequence. So the
index never has a gap and never a duplicate, whatever moment it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from auditindex.store import IndexStore
from gateway.audit import (
    AUDIT_SUBJECTS,
    CHECKPOINT_STREAM,
    CHECKPOINT_SUBJECTS,
    DEFAULT_STREAM,
    Checkpoint,
    ensure_checkpoint_stream,
    gateway_from_subject,
)

__all__ = ["AuditIndexer"]

log = logging.getLogger(__name__)

_RECORDS_CONSUMER = "crossway-audit-index"
_CHECKPOINTS_CONSUMER = "crossway-audit-index-checkpoints"


class AuditIndexer:
    def __init__(
        self, nats_url: str, store: IndexStore, *, stream: str = DEFAULT_STREAM, batch: int = 1000, name: str = ""
    ) -> None:
        self._url = nats_url
        self._store = store
        self._stream = stream
        self._batch = batch
        self._records_consumer = name or _RECORDS_CONSUMER
        self._checkpoints_consumer = (name + "-checkpoints") if name else _CHECKPOINTS_CONSUMER
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_leaf: dict[str, int] = {}
        self.indexed = 0

    async def start(self) -> None:
        self._next_leaf = self._store.next_leaf()
        self._nc = await nats.connect(self._url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        self._task = asyncio.create_task(self._run(), name="audit-indexer")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def catch_up(self, timeout: float = 30.0) -> int:
        """Run until both streams are drained (for ``--once`` and tests); returns records indexed."""
        nc = await nats.connect(self._url, connect_timeout=2, allow_reconnect=False)
        self._next_leaf = self._store.next_leaf()
        before = self.indexed
        try:
            js = nc.jetstream(timeout=5.0)
            await asyncio.wait_for(self._drain(js), timeout)
        finally:
            await nc.close()
        return self.indexed - before

    async def _run(self) -> None:
        while True:
            try:
                assert self._nc is not None
                js = self._nc.jetstream(timeout=5.0)
                await ensure_checkpoint_stream(self._nc)
                rec = await self._subscribe(js, self._stream, self._records_consumer, AUDIT_SUBJECTS)
                cps = await self._subscribe(js, CHECKPOINT_STREAM, self._checkpoints_consumer, CHECKPOINT_SUBJECTS)
                while True:
                    got = await self._records_step(rec, 0.5)
                    got += await self._checkpoints_step(cps, 0.05 if got else 0.5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit indexer: %s: %s; retrying", type(exc).__name__, exc)
                await asyncio.sleep(0.5)

    async def _drain(self, js: JetStreamContext) -> None:
        rec = await self._subscribe(js, self._stream, self._records_consumer, AUDIT_SUBJECTS)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.stream_info(CHECKPOINT_STREAM)
            cps = await self._subscribe(js, CHECKPOINT_STREAM, self._checkpoints_consumer, CHECKPOINT_SUBJECTS)
            while await self._checkpoints_step(cps, 0.5):
                pass
        while await self._records_step(rec, 0.5):
            pass

    async def _subscribe(self, js: JetStreamContext, stream: str, durable: str, subject: str) -> object:
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=subject,
            max_ack_pending=self._batch * 4,
            ack_wait=30.0,
        )
        return await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)

    async def _records_step(self, sub: object, timeout: float) -> int:
        try:
            msgs = await sub.fetch(batch=self._batch, timeout=timeout)  # type: ignore[attr-defined]
        except (nats.errors.TimeoutError, TimeoutError):
            return 0
        items = [(m.metadata.sequence.stream, gateway_from_subject(m.subject), m.data) for m in msgs]
        items.sort()  # stream order (a pull batch is already ordered; this only makes it explicit)
        written = await asyncio.to_thread(self._store.ingest, "records", items, self._next_leaf)
        self.indexed += written
        await msgs[-1].ack()  # AckAll: everything up to this one
        return len(msgs)

    async def _checkpoints_step(self, sub: object, timeout: float) -> int:
        try:
            msgs = await sub.fetch(batch=100, timeout=timeout)  # type: ignore[attr-defined]
        except (nats.errors.TimeoutError, TimeoutError):
            return 0
        for m in msgs:
            doc = json.loads(m.data)
            checkpoint = Checkpoint.from_dict(doc.get("checkpoint", doc))
            self._store.add_checkpoint("checkpoints", m.metadata.sequence.stream, checkpoint)
        await msgs[-1].ack()
        return len(msgs)
