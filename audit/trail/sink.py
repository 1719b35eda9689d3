"""The audit sink seam: where a gateway hands its audit records, and an in-memory twin.

``submit()`` only enqueues (tens of microseconds) and never drops a record; the real work —
publishing with acknowledgements, spooling — runs in a task the sink owns between ``start()``
and ``aclose()``. ``commit()`` is ``submit()`` plus the wait for durability: it returns once the
record is acknowledged by the store or fsync'd to the local spool. Gateways release an answer
only after its record's ``commit()`` (issue 12: no answer without its record); records committed
together share one acknowledgement wait and one fsync (group commit), so the wait costs a
round trip to JetStream, not one per record. ``aclose()`` drains: when it returns, every
submitted record is acknowledged or in the spool. ``writable`` is what a strict-mode gateway
checks before accepting an exchange (it refuses with ``AuditUnavailable`` when it is False);
``alarm`` names records that are stuck — quarantined, or a spool that does not drain — and turns
the ``crossway.audit`` health entry NOT_SERVING while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from audit.trail.record import AuditRecord
from crossway.core.errors import AuditUnavailable

__all__ = ["AuditSink", "AuditStats", "MemoryAuditSink"]


@dataclass(frozen=True, slots=True)
class AuditStats:
    """A snapshot of a sink's counters.

    submitted: records handed to ``submit()``; acked: acknowledged by the store (JetStream);
    spooled: records waiting in the local spool now; pending: submitted but neither acked nor
    spooled yet (queued or in flight).
    """

    submitted: int = 0
    acked: int = 0
    spooled: int = 0
    pending: int = 0
    quarantined: int = 0


@runtime_checkable
class AuditSink(Protocol):
    def submit(self, record: AuditRecord) -> None:
        """Enqueue a record; cheap, never blocks, never drops. Raises AuditUnavailable once closed."""
        ...

    async def commit(self, record: AuditRecord, timeout: float) -> None:
        """Submit, then return once the record is durable (acknowledged, or fsync'd to the spool).

        Raises ``AuditUnavailable`` when that did not happen within ``timeout`` seconds; the record
        stays queued and is still delivered when NATS or the disk come back.
        """
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None:
        """Drain: return once every submitted record is acknowledged or safely spooled."""
        ...

    @property
    def writable(self) -> bool:
        """False when records can go neither to the store nor to the spool."""
        ...

    @property
    def alarm(self) -> str:
        """Why records are stuck (quarantined, or a spool that does not drain); "" when none are."""
        ...

    @property
    def stats(self) -> AuditStats: ...


class MemoryAuditSink:
    """The in-memory twin: keeps records in a list, acknowledges at once (tests and demos)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self._closed = False
        # Tests flip this to exercise a strict gateway's refusal path.
        self.writable_flag = True
        self.alarm_text = ""
        self.commits = 0  # records submitted through commit()

    def submit(self, record: AuditRecord) -> None:
        if self._closed:
            raise AuditUnavailable(f"audit sink is closed; record {record.record_id} was not accepted")
        self.records.append(record)

    async def commit(self, record: AuditRecord, timeout: float) -> None:
        self.submit(record)  # a list append is as durable as this twin gets
        self.commits += 1

    async def start(self) -> None:
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True

    @property
    def writable(self) -> bool:
        return self.writable_flag and not self._closed

    @property
    def alarm(self) -> str:
        return self.alarm_text

    @property
    def stats(self) -> AuditStats:
        n = len(self.records)
        return AuditStats(submitted=n, acked=n, spooled=0, pending=0)
