"""Records that cannot be sent as they are: set aside, kept durably, and an alarm until handled.

A record is quarantined when the store refuses *that record* for good — it is larger than
NATS accepts (``max_payload``), or JetStream answers 400 for it while taking its neighbours —
and never because NATS is away (that is what the spool is for). Retrying such a record forever
used to stop every record behind it (issue 12, "poison records"); instead it goes to its own
file here, written and fsync'd before the record leaves the spool or the queue, and the
records after it keep flowing.

Each quarantined record is one file ``<time ms>-<sha256 of the record id, 16 hex>.quarantined``:
a first line of JSON saying why and when, then the record's exact bytes. Undecodable spool lines
(``<segment>.corrupt`` next to the spool) count as quarantined too. Nothing here retries them:
while any such file exists the sink's ``alarm`` says so and the ``crossway.audit`` health entry
is NOT_SERVING. The operator inspects the file (the record's bytes are evidence: the exchange's
other side has its own record) and moves it out of the directory, which ends the alarm.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

__all__ = ["Quarantine"]

log = logging.getLogger(__name__)

_SUFFIX = ".quarantined"
_RECOUNT_S = 1.0


class Quarantine:
    """The quarantine directory of one sink (``<spool>/quarantine``) and the spool's ``.corrupt`` files."""

    def __init__(self, directory: Path, spool_directory: Path) -> None:
        self._dir = Path(directory)
        self._spool_dir = Path(spool_directory)
        self._count = 0
        self._counted_at = 0.0

    @property
    def directory(self) -> Path:
        return self._dir

    def put(self, record_id: str, data: bytes, reason: str) -> Path:
        """Keep one record aside, durably (write, fsync the file and the directory)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The record id may come from a spool written by another version: never a path of its own.
        name = f"{int(time.time() * 1000)}-{hashlib.sha256(record_id.encode()).hexdigest()[:16]}{_SUFFIX}"
        path = self._dir / name
        note = json.dumps({"record_id": record_id[:128], "reason": reason, "bytes": len(data)}, sort_keys=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(note.encode() + b"\n" + data + b"\n")
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._count += 1
        log.critical("audit record %s quarantined (%s) in %s; later records keep flowing", record_id[:64], reason, path)
        return path

    def count(self) -> int:
        """Quarantined records and corrupt spool files now on disk (re-read at most once a second)."""
        now = time.monotonic()
        if now - self._counted_at >= _RECOUNT_S:
            self._counted_at = now
            self._count = _files(self._dir, _SUFFIX) + _files(self._spool_dir, ".corrupt")
        return self._count


def _files(directory: Path, suffix: str) -> int:
    try:
        return sum(1 for entry in os.scandir(directory) if entry.name.endswith(suffix))
    except OSError:
        return 0
