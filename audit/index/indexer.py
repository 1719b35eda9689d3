"""The indexer: consumes the audit and checkpoint streams into the index, and catches up after downtime.

The index itself is the only bookmark: each batch is written in one transaction together with its
last stream sequence (the store's cursor), and every (re)start reads the streams from cursor + 1
through an ephemeral pull consumer without acks (``DeliverPolicy.BY_START_SEQUENCE``). A durable
consumer with AckAll lost records here: when an indexer was killed, records already delivered
to it were acknowledged by its successor's first AckAll and never redelivered (a gap that
tests/integration/test_audit_outages.py caught). Now:

1. crash before a commit → the batch is read again from the cursor;
2. crash after it → the cursor already says so, nothing is applied twice;
3. a delivery lost in flight → the next batch does not start at the expected sequence, the
   consumer is dropped and re-created from the cursor (a gap is never written);
4. the first message of a fresh consumer may lie beyond cursor + 1 only when the stream no longer
   holds the records in between (limits); that is logged, and ``audit verify`` names them;
5. a stream that went back — deleted and created again (its creation time changed), or ending
   below the cursor — is never skipped silently: the gap is recorded in the index (``audit verify``
   names it), logged as critical, and the new stream is read from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from audit.index.store import IndexStore
from audit.trail import (
    ARCHIVE_STREAM,
    CHECKPOINT_STREAM,
    DEFAULT_STREAM,
    Checkpoint,
    gateway_from_subject,
)
from crossway.natsclient import NatsAccess, close_owner, connect

__all__ = ["AuditIndexer"]

log = logging.getLogger(__name__)

_RECORDS_CURSOR = "records"
_CHECKPOINTS_CURSOR = "checkpoints"
_ARCHIVE_CURSOR = "archive"
# An ephemeral consumer left behind by a killed indexer is removed by the server after this.
_INACTIVE_S = 30.0


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds") if ms else "unknown"


class _Feed:
    """One stream, read in sequence order from the index's cursor + 1; re-created on any gap."""

    def __init__(self, js: JetStreamContext, stream: str, store: IndexStore, cursor_name: str, name: str) -> None:
        self._js = js
        self._stream = stream
        self._store = store
        self._cursor_name = cursor_name
        self._empty = 0
        self._sub: Any = None
        # The one consumer name this reader's permissions allow for this purpose (crossway.natsauth).
        self._consumer = name
        self._name = ""
        self._expected = 0  # the next stream sequence; 0 right after (re)creation

    def _cursor(self) -> int:
        return self._store.cursor(self._cursor_name)

    async def _check_epoch(self) -> None:
        """5. The stream is the one the cursor was read from (same creation time, not shorter)."""
        info = await self._js.stream_info(self._stream)
        created = int(info.created.timestamp() * 1000) if info.created is not None else 0
        known, cursor = self._store.stream_created(self._cursor_name), self._cursor()
        if (known and created and created != known) or (info.state.last_seq or 0) < cursor:
            detail = (
                f"stream {self._stream} went back: it was created again at {_iso(created)} (the index had read the "
                f"one created at {_iso(known)} up to sequence {cursor}) and now ends at sequence {info.state.last_seq}; "
                f"what the old stream held after sequence {cursor} was never indexed, and records stored since are "
                "not in the gateways' signed logs"
            )
            log.critical("audit index: GAP: %s", detail)
            self._store.record_gap(self._cursor_name, self._stream, detail, int(time.time() * 1000), created)
        elif created and created != known:
            self._store.set_stream_created(self._cursor_name, created)

    async def _open(self) -> None:
        await self._check_epoch()
        # No filter: the stream holds only audit subjects, so its sequences are contiguous.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self._stream, self._consumer)  # a predecessor's, left behind
        config = ConsumerConfig(
            name=self._consumer,
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._cursor() + 1,
            inactive_threshold=_INACTIVE_S,
            mem_storage=True,
        )
        info = await self._js.add_consumer(self._stream, config)
        self._name = info.name
        self._sub = await self._js.pull_subscribe_bind(consumer=self._name, stream=self._stream)
        self._expected = 0

    async def close(self) -> None:
        sub, name, self._sub, self._name = self._sub, self._name, None, ""
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self._stream, name)

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """The next messages, contiguous in stream order; [] when none came within ``timeout``."""
        for _ in range(3):
            if self._sub is None:
                await self._open()
            try:
                msgs: list[Msg] = await self._sub.fetch(batch=batch, timeout=timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                msgs = []
            if not msgs:
                # Idle: now and then make sure the stream is still the one we read (a deleted
                # stream takes our consumer with it, and a fetch from it just stays empty).
                self._empty += 1
                if self._empty % 10 == 0:
                    await self.close()
                return []
            self._empty = 0
            first = msgs[0].metadata.sequence.stream
            if self._expected == 0 and first > self._cursor() + 1:
                # 4. the stream no longer holds what lies between (limits or a purge)
                log.warning("audit index: %s has no messages %d..%d", self._stream, self._cursor() + 1, first - 1)
            expected = self._expected or first
            kept: list[Msg] = []
            for m in msgs:
                if m.metadata.sequence.stream != expected:
                    break
                kept.append(m)
                expected += 1
            if len(kept) < len(msgs):
                # 3. a delivery was lost in flight: read again from the cursor (after `kept`)
                log.warning("audit index: gap in %s delivery at %d; re-reading", self._stream, expected)
                await self.close()
            else:
                self._expected = expected
            if kept:
                return kept
        return []


class AuditIndexer:
    def __init__(self, nats: NatsAccess, store: IndexStore, *, stream: str = DEFAULT_STREAM, batch: int = 1000) -> None:
        self._nats = nats
        self._store = store
        self._stream = stream
        self._batch = batch
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_leaf: dict[str, int] = {}
        self.indexed = 0

    async def start(self) -> None:
        self._next_leaf = self._store.next_leaf()
        self._nc = await connect(
            self._nats,
            name="crossway-audit-index",
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        self._task = asyncio.create_task(self._run(), name="audit-indexer")

    async def aclose(self) -> None:
        await close_owner(self._task, self._nc)

    async def catch_up(self, timeout: float = 30.0) -> int:
        """Run until both streams are drained (for ``--once`` and tests); returns records indexed."""
        nc = await connect(self._nats, name="crossway-audit-index", connect_timeout=2, allow_reconnect=False)
        self._next_leaf = self._store.next_leaf()
        before = self.indexed
        try:
            js = nc.jetstream(timeout=5.0)
            # Its own consumers ("fetch"), so a catch-up never disturbs a running indexer's ("feed").
            await asyncio.wait_for(self._drain(js, "fetch"), timeout)
        finally:
            await nc.close()
        return self.indexed - before

    def _feeds(self, js: JetStreamContext, purpose: str) -> tuple[_Feed, _Feed]:
        name = self._nats.identity.consumer(purpose)
        return (
            _Feed(js, self._stream, self._store, _RECORDS_CURSOR, name),
            _Feed(js, CHECKPOINT_STREAM, self._store, _CHECKPOINTS_CURSOR, name),
        )

    async def _archive_feed(self, js: JetStreamContext, purpose: str) -> _Feed | None:
        """The archive stream's feed, or None while there is no archive stream."""
        try:
            await js.stream_info(ARCHIVE_STREAM)
        except nats.js.errors.NotFoundError:
            return None
        name = self._nats.identity.consumer(purpose)
        return _Feed(js, ARCHIVE_STREAM, self._store, _ARCHIVE_CURSOR, name)

    async def _run(self) -> None:
        while True:
            assert self._nc is not None
            js = self._nc.jetstream(timeout=5.0)
            records, checkpoints = self._feeds(js, "feed")
            archive: _Feed | None = None
            try:
                rounds = 0
                while True:
                    got = await self._records_step(records, 0.5)
                    got += await self._checkpoints_step(checkpoints, 0.05 if got else 0.5)
                    if archive is None and rounds % 20 == 0:
                        archive = await self._archive_feed(js, "feed")  # looked for again every ~20 rounds
                    if archive is not None:
                        await self._archive_step(archive, 0.05)
                    rounds += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit indexer: %s: %s; retrying", type(exc).__name__, exc)
                await asyncio.sleep(0.5)
            finally:
                await records.close()
                await checkpoints.close()
                if archive is not None:
                    await archive.close()

    async def _drain(self, js: JetStreamContext, purpose: str) -> None:
        records, checkpoints = self._feeds(js, purpose)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.stream_info(CHECKPOINT_STREAM)
                while await self._checkpoints_step(checkpoints, 0.5):
                    pass
            while await self._records_step(records, 0.5):
                pass
            archive = await self._archive_feed(js, purpose)
            if archive is not None:
                try:
                    while await self._archive_step(archive, 0.5):
                        pass
                finally:
                    await archive.close()
        finally:
            await records.close()
            await checkpoints.close()

    async def _archive_step(self, feed: _Feed, timeout: float) -> int:
        msgs = await feed.fetch(self._batch, timeout)
        if msgs:
            items = [(m.metadata.sequence.stream, m.data) for m in msgs]
            await asyncio.to_thread(self._store.add_archives, _ARCHIVE_CURSOR, items)
        return len(msgs)

    async def _records_step(self, feed: _Feed, timeout: float) -> int:
        msgs = await feed.fetch(self._batch, timeout)
        if not msgs:
            return 0
        items = [(m.metadata.sequence.stream, gateway_from_subject(m.subject), m.data) for m in msgs]
        written = await asyncio.to_thread(self._store.ingest, _RECORDS_CURSOR, items, self._next_leaf)
        self.indexed += written
        return len(msgs)

    async def _checkpoints_step(self, feed: _Feed, timeout: float) -> int:
        msgs = await feed.fetch(100, timeout)
        for m in msgs:
            doc = json.loads(m.data)
            checkpoint = Checkpoint.from_dict(doc.get("checkpoint", doc))
            self._store.add_checkpoint(_CHECKPOINTS_CURSOR, m.metadata.sequence.stream, checkpoint)
        return len(msgs)
