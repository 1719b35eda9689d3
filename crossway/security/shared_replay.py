"""A replay window shared by the worker processes of one gateway (one host, one SQLite file).

With ``[gateway] workers = N`` the kernel spreads peer connections over N processes
(SO_REUSEPORT); an in-process :class:`~crossway.security.replay.MemoryReplayGuard` would let a
message replayed on another connection reach a worker that never saw it. This guard keeps the
window in one SQLite file in the gateway's data directory, and ``INSERT`` on the primary key is
the atomic "first sight?" test across processes (SQLite serializes writers with its file lock).

Same fail-closed rules as the memory guard: an id already present and unexpired → seen; an id
already past its expiry → seen; any database error → seen (refuse rather than risk a replay).
``synchronous=OFF``: the window only has to survive as long as the processes do — the memory
guard forgets everything on restart too, and the issued-at window bounds what a restart exposes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["SharedReplayGuard"]

log = logging.getLogger(__name__)

_PURGE_EVERY = 4096  # calls between deletions of expired ids (keeps the table ~ rate x window)


class SharedReplayGuard:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 2000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)")
        self._lock = threading.Lock()
        self._calls = 0

    def seen_before(self, message_id: str, expires_at_ms: int, now_ms: int) -> bool:
        if expires_at_ms <= now_ms:
            return True
        with self._lock:
            try:
                self._calls += 1
                if self._calls % _PURGE_EVERY == 0:
                    self._db.execute("DELETE FROM seen WHERE expires_ms <= ?", (now_ms,))
                # An expired row for the same id may linger until the next purge: replace it only
                # when expired, so a live id is never overwritten.
                cursor = self._db.execute(
                    "INSERT INTO seen (id, expires_ms) VALUES (?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET expires_ms = excluded.expires_ms WHERE seen.expires_ms <= ?",
                    (message_id, expires_at_ms, now_ms),
                )
                return cursor.rowcount == 0
            except sqlite3.Error as exc:
                log.error("shared replay window unavailable (%s); refusing message %s", exc, message_id)
                return True

    def close(self) -> None:
        with self._lock:
            self._db.close()
