"""The audit sink seam: where a gateway hands its audit records, and an in-memory twin.

``submit()`` sits on the request path, so it only enqueues (tens of microseconds) and never
drops a record; the real work — publishing with acknowledgements, spooling — runs in a task the
sink owns between ``start()`` and ``aclose()``. ``aclose()`` drains: when it returns, every
submitted record is acknowledged or in the spool. ``writable`` is what a strict-mode gateway
checks before accepting an exchange (it refuses with ``AuditUnavailable`` when it is False).
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


@runtime_checkable
class AuditSink(Protocol):
    def submit(self, record: AuditRecord) -> None:
        """Enqueue a record; cheap, never blocks, never drops. Raises AuditUnavailable once closed."""
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
    def stats(self) -> AuditStats: ...


class MemoryAuditSink:
    """The in-memory twin: keeps records in a list, acknowledges at once (tests and demos)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self._closed = False
        # Tests flip this to exercise a strict gateway's refusal path.
        self.writable_flag = True

    def submit(self, record: AuditRecord) -> None:
        if self._closed:
            raise AuditUnavailable(f"audit sink is closed; record {record.record_id} was not accepted")
        self.records.append(record)

    async def start(self) -> None:
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True

    @property
    def writable(self) -> bool:
        return self.writable_flag and not self._closed

    @property
    def stats(self) -> AuditStats:
        n = len(self.records)
        return AuditStats(submitted=n, acked=n, spooled=0, pending=0)
