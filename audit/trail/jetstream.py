"""The JetStream audit sink: acknowledged, de-duplicated, spooled when NATS is away — never lost.

Flow (one background task, the *pump*, owns the connection's publishing and the spool; the
connection itself, made in the background and kept up, is ``audit.trail.connection``):

1. ``submit()`` appends to an in-memory queue and wakes the pump (thread-safe, no I/O).
2. The pump takes up to ``max_in_flight`` records, ``publish_async``es each with the header
   ``Nats-Msg-Id: record_id`` and ``Nats-Expected-Stream``, then awaits all the acks at once.
   Pipelining matters: sequential acked publishing measured ~6k msg/s, pipelined ~70k msg/s
   (notes/performance-baseline.md). Fire-and-forget lost ~1% of records, so acks are mandatory.
3. Records whose ack did not come (timeout, disconnect, API error) go to the spool (fsync'd),
   and the pump backs off for ``retry_interval``; while NATS is down everything goes to the spool.
4. Once NATS is back (and the stream confirmed), the pump replays sealed spool segments oldest
   first and deletes a segment only after all of its records were acked, then resumes the queue.
   A record acked whose ack was lost is replayed too; JetStream's duplicate window (1 h) drops
   the second copy, so a record is stored once. Keep outages' replays inside that window.
5. ``commit()`` waits for step 2's ack or step 3's fsync of its record (group commit: everything
   queued while a batch was in flight goes out as the next batch, one ack wait and at most one
   fsync for all of it). The pump lingers for a batch to gather only when nobody waits.
6. A record the store refuses for good — larger than NATS' ``max_payload``, or refused (400)
   while its neighbours are taken — is quarantined (``audit.trail.quarantine``) before it ever
   reaches the spool, never retried, and never holds up the records behind it; ``alarm`` says so
   until an operator has handled it, and also when the spool stops draining while NATS is up.

The sink creates no stream: the gateway's NATS user may publish its own subject and nothing of
the JetStream API (``crossway.natsauth``); streams are provisioned by the operator, checked for
their protections (``crossway.natsstreams``). A missing stream means no ack: records go to the
spool until it is back. An ack saying ``duplicate`` for a record's *first* publish means another
publisher used its id inside the de-duplication window (which would silently drop ours; notes
§2) — ids are random, so that is logged as an alarm and counted, never ignored.

Logs carry record ids and counts, never record contents beyond ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from nats.js.client import JetStreamContext

from audit.trail.connection import AuditConnection
from audit.trail.publish import publish_batch
from audit.trail.quarantine import Quarantine
from audit.trail.record import AuditRecord
from audit.trail.sink import AuditStats
from audit.trail.spool import Spool, SpoolEntry
from audit.trail.subjects import audit_subject
from crossway.backbone import AUDIT_STREAM, DUPLICATE_WINDOW_S
from crossway.core.errors import AuditUnavailable
from crossway.natsclient import NatsAccess

__all__ = ["DEFAULT_STREAM", "DUPLICATE_WINDOW_S", "JetStreamAuditSink"]

log = logging.getLogger(__name__)

DEFAULT_STREAM = AUDIT_STREAM


_LINGER_S = 0.02
_LINGER_BELOW = 256
# Headers (Nats-Msg-Id, Nats-Expected-Stream) count toward NATS' message limit, hence the margin.
_HEADER_MARGIN = 1024
# A spool that has not drained for this long while NATS is up is stuck: an alarm, not a wait.
_STUCK_AFTER_S = 30.0


class JetStreamAuditSink:
    """An ``AuditSink`` publishing to a JetStream stream, with a disk spool as the fallback."""

    def __init__(
        self,
        nats: NatsAccess,
        *,
        gateway_id: str,
        spool_dir: Path,
        stream: str = DEFAULT_STREAM,
        max_in_flight: int = 1024,
        ack_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retry_interval: float = 0.5,
        drain_timeout: float = 30.0,
        subject: str | None = None,
        decode: Callable[[bytes], SpoolEntry] = AuditRecord.from_json,
    ) -> None:
        # subject/stream/decode let the same acked, spooled delivery carry archived payloads
        # (audit.trail.archive) to their own stream.
        self._subject = subject or audit_subject(gateway_id)  # validates the id early
        self._stream = stream
        self._max_in_flight = max(1, max_in_flight)
        self._ack_timeout = ack_timeout
        self._retry_interval = retry_interval
        self._drain_timeout = drain_timeout
        self._spool = Spool(spool_dir, decode=decode)
        self._quarantine = Quarantine(Path(spool_dir) / "quarantine", Path(spool_dir))
        # commit() waiters by record id: settled when the record is acked, spooled or quarantined.
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._replay_blocked_since = 0.0  # monotonic time the spool replay began failing while online

        self._queue: deque[SpoolEntry] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake = asyncio.Event()
        self._conn = AuditConnection(
            nats,
            gateway_id=gateway_id,
            connect_timeout=connect_timeout,
            ack_timeout=ack_timeout,
            retry_interval=retry_interval,
            max_pending=self._max_in_flight * 2,
            wake=self._wake.set,
            closing=lambda: self._closing,
        )
        self._pump_task: asyncio.Task[None] | None = None
        self._spool_ok = True
        self._closing = False
        self._closed = False

        self._submit_lock = threading.Lock()
        self._submitted = 0
        self._acked = 0
        self._duplicates = 0
        self.foreign_duplicates = 0  # first publishes acked as duplicates: someone else used the id
        self._in_flight = 0

    # -- the request path ------------------------------------------------------------------

    def submit(self, record: SpoolEntry) -> None:
        """Enqueue; O(1), no I/O. Safe from any thread. Refuses (never drops) once closing."""
        if self._closing:
            raise AuditUnavailable(f"audit sink is closed; record {record.record_id} was not accepted")
        # The lock keeps the counter exact under worker threads (``+=`` is not atomic); uncontended
        # it costs well under a microsecond. deque.append itself is thread-safe.
        with self._submit_lock:
            self._queue.append(record)
            self._submitted += 1
        loop = self._loop
        if loop is None:
            return  # not started yet: start() drains what is queued
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def commit(self, record: SpoolEntry, timeout: float) -> None:
        """Submit, then wait until the record is acked, fsync'd to the spool or quarantined."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[record.record_id] = future
        try:
            self.submit(record)
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AuditUnavailable(
                f"audit record {record.record_id} of message {record.message_id} is not durable after {timeout:.0f} s",
                hint=f"neither JetStream nor the spool {self._spool.directory} takes records; check NATS and the disk",
            ) from None
        finally:
            self._waiters.pop(record.record_id, None)

    def _settle(self, records: list[SpoolEntry]) -> None:
        """These records are durable: release whoever waits for them."""
        if not self._waiters:
            return
        for record in records:
            future = self._waiters.pop(record.record_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    @property
    def alarm(self) -> str:
        quarantined = self._quarantine.count()
        if quarantined:
            return (
                f"{quarantined} audit record(s) quarantined in {self._quarantine.directory} (or corrupt in the spool): "
                "inspect them, then move them out of the directory"
            )
        blocked = self._replay_blocked_since
        if blocked and time.monotonic() - blocked > _STUCK_AFTER_S and self._spool.count:
            return (
                f"{self._spool.count} spooled audit record(s) have not drained for {_STUCK_AFTER_S:.0f} s with NATS up"
            )
        return ""

    @property
    def writable(self) -> bool:
        if self._closing:
            return False
        return self._conn.connected or self._spool_ok

    @property
    def stats(self) -> AuditStats:
        # acked can exceed submitted when a previous run's spool was replayed.
        return AuditStats(
            submitted=self._submitted,
            acked=self._acked,
            spooled=self._spool.count,
            pending=len(self._queue) + self._in_flight,
            quarantined=self._quarantine.count(),
        )

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def nats_state(self) -> tuple[str, str]:
        """(state, server) of this sink's NATS connection, for the gateway's status."""
        return self._conn.state

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._pump_task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            await asyncio.to_thread(self._spool.open)
            self._spool_ok = await asyncio.to_thread(self._spool.writable)
        except OSError as exc:
            self._spool_ok = False
            log.error("audit spool %s is unusable: %s", self._spool.directory, exc)
        if self._spool.count:
            log.warning("audit spool holds %d record(s) from an earlier run; replaying", self._spool.count)
        await self._conn.start()
        self._pump_task = asyncio.create_task(self._pump(), name="audit-pump")

    async def aclose(self) -> None:
        """Drain the queue to JetStream or the spool, then disconnect. Raises if records remain."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        try:
            if self._pump_task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._pump_task), self._drain_timeout)
                except TimeoutError:
                    self._pump_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._pump_task
            elif self._queue:
                # Never started: spool what was submitted (_to_spool re-queues on failure).
                batch = list(self._queue)
                self._queue.clear()
                await self._to_spool(batch)
        finally:
            self._closed = True
            await self._conn.close()
        if self._queue:
            ids = ", ".join(r.record_id for r in list(self._queue)[:5])
            log.critical("audit sink closed with %d record(s) neither acked nor spooled: %s", len(self._queue), ids)
            raise AuditUnavailable(
                f"{len(self._queue)} audit record(s) could not be published or spooled (first: {ids})",
                hint=f"make {self._spool.directory} writable or bring NATS back before stopping",
            )

    async def __aenter__(self) -> JetStreamAuditSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the pump ------------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                # Poll while there is background work (spool to replay, NATS or spool to recheck).
                idle = not self._spool.count and self._spool_ok and self._conn.stream_ready
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if idle else self._retry_interval)
            if (
                0 < len(self._queue) < _LINGER_BELOW
                and self._conn.stream_ready
                and not self._closing
                and not self._waiters
            ):
                # Let a batch gather: per batch there is a fixed cost (an ack wait, a socket write,
                # connection checks) that a record-per-wake pump pays per record (~220 µs each
                # under load, measured). A few ms later, off the request path, is nothing for audit.
                # When a caller waits (commit), its batch is whatever queued during the last ack
                # wait: group commit without a timer.
                await asyncio.sleep(_LINGER_S)
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not stop auditing; the records are back in the queue or spooled.
                log.exception("audit pump step failed; retrying")
                await asyncio.sleep(self._retry_interval)

    async def _step(self) -> None:
        if not self._conn.connected:
            self._replay_blocked_since = 0.0  # waiting for NATS is not being stuck
        if not self._spool_ok:
            self._spool_ok = await asyncio.to_thread(self._spool.writable)
        js = await self._conn.online()
        if js is not None and self._spool.count and not self._closing and not await self._replay(js):
            js = None
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_in_flight))]
        if not batch:
            return
        try:
            # Poison first: a record the store can never take must not reach the spool either.
            encoded = await self._sendable(batch)
            unacked = await self._publish(js, encoded, fresh=True) if js is not None else [r for r, _ in encoded]
            spooled = await self._to_spool(unacked) if unacked else True
        except BaseException:
            # Cancelled (drain timeout) or a bug: the batch goes back to the queue, never lost.
            # Records already acked may be resent; their Nats-Msg-Id makes that harmless.
            self._queue.extendleft(reversed(batch))
            raise
        if not spooled:
            await asyncio.sleep(self._retry_interval)  # neither NATS nor disk: don't spin

    async def _sendable(self, records: list[SpoolEntry]) -> list[tuple[SpoolEntry, bytes]]:
        """Each record with its bytes; those larger than NATS accepts are quarantined instead."""
        limit = max(1, self._conn.max_payload - _HEADER_MARGIN)
        encoded = [(r, r.to_json()) for r in records]
        poison = [(r, data) for r, data in encoded if len(data) > limit]
        if not poison:
            return encoded
        for record, data in poison:
            await self._to_quarantine(record, data, f"{len(data)} bytes, above the {limit}-byte message limit")
        return [(r, data) for r, data in encoded if len(data) <= limit]

    async def _to_quarantine(self, record: SpoolEntry, data: bytes, reason: str) -> None:
        try:
            await asyncio.to_thread(self._quarantine.put, record.record_id, data, reason)
        except OSError as exc:
            # The disk refuses even this: keep the record in the queue's stead, in the spool path's
            # care (_to_spool re-queues it when that fails too), so it is never dropped.
            log.error("audit record %s cannot be quarantined (%s); spooling it", record.record_id, exc)
            await self._to_spool([record])
            return
        self._settle([record])

    async def _publish(
        self, js: JetStreamContext, batch: list[tuple[SpoolEntry, bytes]], *, fresh: bool = False
    ) -> list[SpoolEntry]:
        """Publish a batch pipelined and await its acks; returns the records not acknowledged
        (refused records are quarantined, not returned). ``fresh``: never sent before (not a
        spool replay), so a duplicate ack cannot be our own earlier copy."""
        self._in_flight = len(batch)
        try:
            outcome = await publish_batch(js, self._subject, self._stream, batch, self._ack_timeout)
        finally:
            self._in_flight = 0
        self._acked += len(outcome.acked)
        self._duplicates += outcome.duplicates
        if fresh and outcome.duplicated:
            # First publishes acked as duplicates: another publisher used these ids (they are random).
            self.foreign_duplicates += len(outcome.duplicated)
            log.error("audit ALARM: %d record(s), first %s, acked as duplicates on their first publish: another "
                      "publisher used their ids in %s; they may not be stored", len(outcome.duplicated),
                      outcome.duplicated[0].record_id, self._stream)  # fmt: skip
        self._settle(outcome.acked)
        for record, data, reason in outcome.refused:
            await self._to_quarantine(record, data, reason)
        unacked = outcome.unacked
        if unacked:
            first = outcome.first_failure
            reason = repr(first) if first is not None else "no ack in time / not sent"
            log.warning("audit: %d of %d record(s) unacked (%s); first %s", len(unacked), len(batch), reason,
                        unacked[0].record_id)  # fmt: skip
            self._conn.back_off()  # and re-check the stream before the next try
        return unacked

    async def _replay(self, js: JetStreamContext) -> bool:
        """Publish sealed spool segments oldest first; True when the spool is empty again."""
        self._spool.seal()  # new spooling goes to a fresh segment while we replay this one
        for path in self._spool.segments():
            segment = await asyncio.to_thread(self._spool.read, path)
            for start in range(0, len(segment.records), self._max_in_flight):
                if self._closing:
                    return False  # still safely spooled; the next start replays it
                chunk = list(segment.records[start : start + self._max_in_flight])
                # Poison in the spool (written before it was recognised, or by an older version)
                # is quarantined here, so it cannot hold up the rest of the segment.
                if await self._publish(js, await self._sendable(chunk)):
                    log.warning("audit spool replay of %s paused; will retry", path.name)
                    self._replay_blocked_since = self._replay_blocked_since or time.monotonic()
                    return False
            await asyncio.to_thread(self._spool.delete, segment)
            log.info("audit spool segment %s replayed: %d record(s) acked", path.name, len(segment.records))
        self._replay_blocked_since = 0.0
        return True

    async def _to_spool(self, records: list[SpoolEntry]) -> bool:
        """Append to the spool; on failure put the records back at the queue's head, return False."""
        try:
            await asyncio.to_thread(self._spool.append, records)
        except OSError as exc:
            self._spool_ok = False
            # Neither NATS nor disk took them: keep them queued, in order, and retry later.
            self._queue.extendleft(reversed(records))
            log.error("audit spool %s not writable (%s); %d record(s) held in memory, first %s",
                      self._spool.directory, exc, len(records), records[0].record_id)  # fmt: skip
            return False
        self._spool_ok = True
        self._settle(records)
        log.info("audit: %d record(s) spooled (%s … %s)", len(records), records[0].record_id, records[-1].record_id)
        if log.isEnabledFor(logging.DEBUG):
            for r in records:
                log.debug("audit spooled record %s message %s", r.record_id, r.message_id)
        return True
