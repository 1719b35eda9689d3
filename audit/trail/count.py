"""Read the audit stream back: how many records it holds, and the records themselves.

The demo and the tests count records in the stream itself (not in the sink's counters), so a
lost or doubled record shows. Each call opens its own short-lived connection with timeouts, as a
reader identity (index or auditor: read-only, through its own "fetch" consumer).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from audit.trail.jetstream import DEFAULT_STREAM
from audit.trail.record import AuditRecord
from crossway.natsclient import NatsAccess, connect

__all__ = ["count_stream_records", "fetch_records"]

_FETCH_BATCH = 512


@asynccontextmanager
async def _connection(access: NatsAccess, request_timeout: float) -> AsyncIterator[NATS]:
    nc = await connect(
        access, name="crossway-audit-reader", connect_timeout=max(1, round(request_timeout)), allow_reconnect=False
    )
    try:
        yield nc
    finally:
        await nc.close()


async def count_stream_records(
    access: NatsAccess, stream: str = DEFAULT_STREAM, *, request_timeout: float = 5.0
) -> int:
    """Messages currently stored in the audit stream (its state, after de-duplication)."""
    async with _connection(access, request_timeout) as nc:
        info = await nc.jetstream(timeout=request_timeout).stream_info(stream)
        return int(info.state.messages)


async def fetch_records(
    access: NatsAccess,
    stream: str = DEFAULT_STREAM,
    limit: int | None = None,
    *,
    request_timeout: float = 5.0,
) -> list[AuditRecord]:
    """The stream's records in stream order (first ``limit`` if given), via an ephemeral consumer."""
    async with _connection(access, request_timeout) as nc:
        js = nc.jetstream(timeout=request_timeout)
        info = await js.stream_info(stream)
        total = int(info.state.messages)
        if limit is not None:
            total = min(total, limit)
        if total == 0:
            return []
        # Our own consumer name (the only one our permissions allow), no acks and a short
        # inactivity threshold: the consumer cleans itself up if we die.
        name = access.identity.consumer("fetch")
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(stream, name)
        await js.add_consumer(
            stream,
            ConsumerConfig(
                name=name,
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                inactive_threshold=30.0,
                mem_storage=True,
            ),
        )
        try:
            sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
            records: list[AuditRecord] = []
            while len(records) < total:
                msgs = await sub.fetch(batch=min(_FETCH_BATCH, total - len(records)), timeout=request_timeout)
                records.extend(AuditRecord.from_json(m.data) for m in msgs)
            return records
        finally:
            await js.delete_consumer(stream, name)
