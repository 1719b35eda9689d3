"""One pipelined, acknowledged publish of a batch of audit records to JetStream.

Each record goes with ``Nats-Msg-Id`` = its record id (JetStream's de-duplication), all in
flight at once, then every ack is awaited up to ``ack_timeout``. The outcome sorts the batch:
acknowledged; not acknowledged (connection lost, no ack in time — the caller spools and retries
them); refused for good (too large for the server, or a 400 for this record while the stream took
others — the caller quarantines them, so one record never blocks the ones after it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.js.errors
from nats.js import JetStreamContext

from audit.trail.spool import SpoolEntry

__all__ = ["BatchOutcome", "publish_batch"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchOutcome:
    acked: list[SpoolEntry] = field(default_factory=list)
    unacked: list[SpoolEntry] = field(default_factory=list)
    refused: list[tuple[SpoolEntry, bytes, str]] = field(default_factory=list)  # record, bytes, why
    duplicates: int = 0
    duplicated: list[SpoolEntry] = field(default_factory=list)  # acked as duplicates of a stored id
    first_failure: BaseException | None = None


async def publish_batch(
    js: JetStreamContext, subject: str, stream: str, batch: list[tuple[SpoolEntry, bytes]], ack_timeout: float
) -> BatchOutcome:
    out = BatchOutcome()
    futures: list[asyncio.Future[Any]] = []
    sent: list[SpoolEntry] = []
    try:
        for index, (record, data) in enumerate(batch):
            try:
                fut = await js.publish_async(
                    subject,
                    data,
                    # No wait_stall: with a timeout, asyncio.wait_for yields to the loop on every
                    # call and the client flushes one socket write per record (~4x slower). The
                    # in-flight cap is twice our batch size, so acquiring it never waits.
                    wait_stall=None,
                    stream=stream,
                    headers={"Nats-Msg-Id": record.record_id},
                )
            except nats.errors.MaxPayloadError:
                # This record alone is too large for the server (its limit may be below ours).
                out.refused.append((record, data, f"{len(data)} bytes, above the server's max_payload"))
                continue
            except (nats.errors.Error, OSError) as exc:
                # Connection lost mid-batch (or outbound buffer full): the rest is unacked.
                log.warning("audit publish failed at record %s: %r", record.record_id, exc)
                out.unacked = [r for r, _ in batch[index:]]
                break
            futures.append(fut)
            sent.append(record)
        if futures:
            _, pending = await asyncio.wait(futures, timeout=ack_timeout)
            for fut in pending:
                fut.cancel()  # frees nats-py's in-flight slot; the record goes to the spool
    except BaseException:
        for fut in futures:
            fut.cancel()  # the caller re-queues the whole batch
        raise
    rejected: list[tuple[SpoolEntry, BaseException]] = []
    for record, fut in zip(sent, futures, strict=True):
        if fut.cancelled():
            out.unacked.append(record)
        elif (failure := fut.exception()) is not None:
            rejected.append((record, failure))
        else:
            out.acked.append(record)
            if fut.result().duplicate:
                out.duplicates += 1
                out.duplicated.append(record)
    for record, failure in rejected:
        # A 400 for this record while the stream took others: the record is the problem.
        if isinstance(failure, nats.js.errors.BadRequestError) and out.acked:
            data = next(d for r, d in batch if r is record)
            out.refused.append((record, data, f"refused by JetStream: {failure!r}"[:300]))
        else:
            out.unacked.append(record)
    out.first_failure = next((f for _, f in rejected), None)
    return out
