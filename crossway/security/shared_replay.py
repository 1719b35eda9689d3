"""The replay window on disk: survives restarts, shared by a gateway's worker processes (one SQLite file).
(A member's gateways on separate hosts share theirs in NATS KV: ``crossway.natsreplay``.)

Every gateway keeps its window here (issue 13): an in-process window forgets every id when the
gateway restarts, so a captured envelope replayed a second after a restart was accepted and the
backend called twice. With ``[gateway] workers = N`` the kernel also spreads peer connections
over N processes (SO_REUSEPORT), and a message replayed on another connection may reach a worker
that never saw it; one file in the gateway's data directory serves them all, and ``INSERT`` on the
primary key is the atomic "first sight?" test across processes (SQLite serializes writers with
its file lock).

Same fail-closed rules as the memory guard: an id already present and unexpired → seen; an id
already past its expiry → seen; any database error → seen (refuse rather than risk a replay); a
file that cannot be opened stops the gateway at start-up, naming it. WAL with
``synchronous=NORMAL``: a committed id survives the process (crash or restart) at no fsync per
message; only a power loss of the host may lose the last ids, and a host that reboots is down for
longer than most windows (``[security] max_clock_skew_s``) — and the file stays consistent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from crossway.core.errors import ConfigError

__all__ = ["SharedReplayGuard"]

log = logging.getLogger(__name__)

_PURGE_EVERY = 4096  # calls between deletions of expired ids (keeps the table ~ rate x window)


class SharedReplayGuard:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 2000) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"the replay window {path} cannot be opened: {exc}",
                hint=(
                    "check the data directory's permissions and disk; a damaged file may be moved away once "
                    "the gateway has been stopped for longer than twice [security] max_clock_skew_s"
                ),
            ) from exc
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
