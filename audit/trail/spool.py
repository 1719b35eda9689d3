"""The local spool: where audit records wait while JetStream cannot take them.

Append-only JSON-lines segment files named ``<sequence>.jsonl`` (zero-padded, so name order is
write order). Every append is flushed and fsync'd before it returns — a record that reached the
spool survives a power cut. The writer appends to the newest segment and starts a new one once it
grows past ``segment_bytes``, or when the replayer ``seal()``s it; the replayer reads sealed
segments oldest first and deletes one only after every record in it was acknowledged.

A torn last line (crash mid-write) is skipped with a warning; any other line that does not decode
is copied to ``<sequence>.corrupt`` next to the spool before its segment is deleted, so nothing
is silently thrown away. The spool is synchronous on purpose: its single owner (the sink's
publishing task) calls it through ``asyncio.to_thread`` when the disk may block.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from audit.trail.errors import AuditError
from audit.trail.record import AuditRecord

__all__ = ["Segment", "Spool", "SpoolEntry"]


class SpoolEntry(Protocol):
    """What a spool holds: audit records, or archived payloads (``audit.trail.archive``)."""

    @property
    def record_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    def to_json(self) -> bytes: ...


log = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Segment:
    """One sealed segment's records, in write order."""

    path: Path
    records: tuple[SpoolEntry, ...]
    lines: int  # complete lines in the file, decodable or not (what the spool's count includes)


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 8 * 1024 * 1024,
        decode: Callable[[bytes], SpoolEntry] = AuditRecord.from_json,
    ) -> None:
        self._dir = Path(directory)
        self._decode = decode
        self._segment_bytes = segment_bytes
        self._active: Path | None = None
        self._active_size = 0
        self._count = 0  # records currently spooled (known after open())

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def count(self) -> int:
        """Records in the spool, as far as this process knows (counted at open, kept since)."""
        return self._count

    def open(self) -> None:
        """Create the directory if needed and count what a previous run left behind."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._count = sum(_count_lines(p) for p in self.segments())

    def writable(self) -> bool:
        """Can a record be appended right now (directory exists and accepts writes)?"""
        probe = self._dir / ".probe"
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as f:
                f.write(b"x")
            probe.unlink()
        except OSError:
            return False
        return True

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        try:
            return sorted(p for p in self._dir.iterdir() if p.suffix == _SUFFIX and p.stem.isdigit())
        except FileNotFoundError:
            return []

    def append(self, records: Iterable[SpoolEntry]) -> int:
        """Append records durably (write, flush, fsync); returns how many. Raises OSError on failure."""
        data = b"".join(r.to_json() + b"\n" for r in records)
        if not data:
            return 0
        path = self._active_segment()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        n = data.count(b"\n")
        self._active_size += len(data)
        self._count += n
        return n

    def seal(self) -> None:
        """Close the active segment: the next append starts a new file; this one can be replayed."""
        self._active = None
        self._active_size = 0

    def read(self, path: Path) -> Segment:
        """All decodable records of a segment, in order (see the module docstring for bad lines)."""
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        torn = lines.pop() if lines else b""  # text after the last newline: an interrupted write
        if torn:
            log.warning("audit spool %s: skipping a torn last line (%d bytes)", path.name, len(torn))
        records: list[SpoolEntry] = []
        corrupt: list[bytes] = []
        for line in lines:
            if not line:
                continue
            try:
                records.append(self._decode(line))
            except AuditError as exc:
                corrupt.append(line)
                log.error("audit spool %s: undecodable line kept aside: %s", path.name, exc.message)
        if corrupt:
            aside = path.with_suffix(".corrupt")
            with aside.open("ab") as f:
                f.write(b"".join(c + b"\n" for c in corrupt))
                f.flush()
                os.fsync(f.fileno())
        return Segment(path, tuple(records), len(lines))

    def delete(self, segment: Segment) -> None:
        """Remove a fully acknowledged segment."""
        if self._active == segment.path:
            self.seal()
        segment.path.unlink(missing_ok=True)
        # Recount from zero once the spool is empty, so a miscount can never keep replay polling.
        self._count = max(0, self._count - segment.lines) if self.segments() else 0

    def _active_segment(self) -> Path:
        if self._active is None or self._active_size >= self._segment_bytes:
            existing = self.segments()
            last = int(existing[-1].stem) if existing else 0
            self._dir.mkdir(parents=True, exist_ok=True)
            self._active = self._dir / f"{last + 1:0{_DIGITS}d}{_SUFFIX}"
            self._active_size = 0
        return self._active


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0
