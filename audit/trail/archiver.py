"""The gateway's payload archiver: seals each record's bodies at once, then hands them to delivery.

Sealing happens in ``submit()``, on the caller's task, so only ciphertext is ever queued, spooled
or published (the plaintext and the content key die with the call). Delivery is a
``JetStreamAuditSink`` pointed at the archive stream: the same acks, de-duplication (by record id)
and disk spool as the records themselves. An archive larger than ``max_bytes`` (NATS refuses
messages above its ``max_payload``, 1 MiB by default) is not archived; that is logged with the
record id and counted, so it is visible instead of blocking the stream forever.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from audit.trail.archive import ArchivedPayload, seal_payload
from audit.trail.record import AuditRecord
from audit.trail.spool import SpoolEntry

__all__ = ["ArchiveDelivery", "MemoryArchiveDelivery", "PayloadArchiver"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 900_000


class ArchiveDelivery(Protocol):
    def submit(self, record: SpoolEntry) -> None: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryArchiveDelivery:
    """The in-memory twin: keeps sealed archives in a list (tests and demos)."""

    def __init__(self) -> None:
        self.archived: list[SpoolEntry] = []

    def submit(self, record: SpoolEntry) -> None:
        self.archived.append(record)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class PayloadArchiver:
    def __init__(
        self, auditors: Sequence[bytes], delivery: ArchiveDelivery, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if not auditors:
            raise ValueError("payload archiving needs at least one auditor public key")
        self._auditors = tuple(auditors)
        self._delivery = delivery
        self._max_bytes = max_bytes
        self.sealed = 0
        self.too_large = 0

    def submit(self, record: AuditRecord, request: Sequence[bytes], response: Sequence[bytes]) -> None:
        archived: ArchivedPayload = seal_payload(record, request, response, self._auditors)
        size = len(archived.ciphertext)
        if size > self._max_bytes:
            self.too_large += 1
            log.warning("audit archive: record %s message %s: sealed payload of %d bytes exceeds %d; not archived",
                        record.record_id, record.message_id, size, self._max_bytes)  # fmt: skip
            return
        self.sealed += 1
        self._delivery.submit(archived)

    async def start(self) -> None:
        await self._delivery.start()

    async def aclose(self) -> None:
        await self._delivery.aclose()
