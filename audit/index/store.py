"""The index's tables, on SQLite (default) or PostgreSQL (``postgresql://…``), behind one class.

One row per leaf of a gateway's log: ``(gateway, leaf_index)`` is the key, the record's exact
bytes (``body``) are kept next to the columns auditors filter on. Ingestion is idempotent: the
last JetStream sequence applied is stored in the same transaction as the rows, so a batch
redelivered after a crash is skipped, never doubled, and leaf indexes stay those of the stream.

PostgreSQL goes through psycopg 3 (``psycopg[binary]``): maintained by the PostgreSQL driver
authors, binary wheels for CPython (no compiler, no libpq on the host), DB-API like sqlite3 so
both stores share the SQL, and server-side cursors for streaming a million rows to ``verify``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.trail import (
    ArchivedPayload,
    AuditIndexUnavailable,
    AuditRecord,
    Checkpoint,
    CheckpointInvalid,
    leaf_hash,
    merge_cosignatures,
)

__all__ = ["Filters", "IndexStore", "Position", "Row", "open_store"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS records (
        gateway TEXT NOT NULL, leaf_index BIGINT NOT NULL, stream_seq BIGINT NOT NULL,
        record_id TEXT NOT NULL, side TEXT NOT NULL, message_id TEXT NOT NULL, client TEXT NOT NULL,
        service TEXT NOT NULL, method TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL,
        decision TEXT NOT NULL, request_in_ms BIGINT NOT NULL, body TEXT NOT NULL, leaf_hash TEXT NOT NULL,
        PRIMARY KEY (gateway, leaf_index))""",
    "CREATE INDEX IF NOT EXISTS records_client_time ON records (client, request_in_ms)",
    "CREATE INDEX IF NOT EXISTS records_time ON records (request_in_ms)",
    # The query order, for keyset paging: page N costs what page 1 costs (bench/console.py).
    "CREATE INDEX IF NOT EXISTS records_order ON records (request_in_ms, gateway, leaf_index)",
    "CREATE INDEX IF NOT EXISTS records_message ON records (message_id)",
    "CREATE INDEX IF NOT EXISTS records_record ON records (record_id)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        gateway TEXT NOT NULL, size BIGINT NOT NULL, cosigned INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (gateway, size, cosigned))""",
    "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
    # Two checkpoints of one gateway, one size, two roots: a gateway that showed two histories.
    """CREATE TABLE IF NOT EXISTS equivocations (
        gateway TEXT NOT NULL, size BIGINT NOT NULL, first_root TEXT NOT NULL, second_root TEXT NOT NULL,
        first TEXT NOT NULL, second TEXT NOT NULL, PRIMARY KEY (gateway, size, first_root, second_root))""",
    # Archived payloads (ciphertext only; the index holds no key to open them), one per record.
    """CREATE TABLE IF NOT EXISTS archives (
        record_id TEXT PRIMARY KEY, message_id TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS archives_message ON archives (message_id)",
    # Streams found recreated or rewound under the index: what it could not read (audit verify names it).
    "CREATE TABLE IF NOT EXISTS stream_gaps (at_ms BIGINT NOT NULL, stream TEXT NOT NULL, detail TEXT NOT NULL)",
]
_COLUMNS = "gateway, leaf_index, stream_seq, record_id, side, message_id, client, service, method, user_id, status, decision, request_in_ms, body, leaf_hash"


@dataclass(frozen=True, slots=True)
class Filters:
    """Query filters; empty/None means "any". Times are epoch milliseconds, ``until`` exclusive."""

    since_ms: int | None = None
    until_ms: int | None = None
    client: str = ""
    service: str = ""
    method: str = ""
    user_id: str = ""
    status: str = ""
    decision: str = ""
    message_id: str = ""
    gateways: tuple[str, ...] = ()  # restrict to these gateways (a client agency's own)
    member: str = ""  # restrict to exchanges this member took part in (client or provider)


# The columns auditors filter on, copied from each record at ingestion; verify checks them
# against the record's logged bytes (a query answered from an edited column would hide a record).
SEARCH_COLUMNS = ("record_id", "side", "message_id", "client", "service", "method", "user_id", "status", "decision",
                  "request_in_ms")  # fmt: skip
# A row's place in the query order (request_in_ms, gateway, leaf_index): where a page ends.
Position = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class Row:
    gateway: str
    leaf_index: int
    stream_seq: int
    body: str
    leaf_hash: str
    request_in_ms: int = 0  # filled by query(); the first key of the query order
    # SEARCH_COLUMNS' values as stored (only from ``leaves(..., columns=True)``)
    columns: tuple[Any, ...] = ()

    @property
    def position(self) -> Position:
        return (self.request_in_ms, self.gateway, self.leaf_index)

    def record(self) -> AuditRecord:
        return AuditRecord.from_json(self.body)


class IndexStore:
    """A DB-API connection with the index's SQL; ``?`` placeholders are rewritten for psycopg."""

    def __init__(self, conn: Any, url: str, postgres: bool) -> None:
        self._conn = conn
        self.url = url
        self.postgres = postgres
        for statement in _SCHEMA:
            self._exec(statement)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self._conn.cursor()
        cur.execute(self._sql(sql), params)
        return cur

    # -- ingestion -------------------------------------------------------------------------

    def cursor(self, name: str) -> int:
        row = self._exec("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def next_leaf(self) -> dict[str, int]:
        rows = self._exec("SELECT gateway, MAX(leaf_index) FROM records GROUP BY gateway").fetchall()
        return {str(g): int(m) + 1 for g, m in rows}

    def ingest(self, cursor_name: str, items: Sequence[tuple[int, str, bytes]], next_leaf: dict[str, int]) -> int:
        """Apply (stream_seq, gateway, record bytes) in stream order, in one transaction.

        Items at or below the stored cursor were applied before (a redelivery) and are skipped.
        ``next_leaf`` is updated only after the commit. Returns the number of rows written.
        """
        done = self.cursor(cursor_name)
        pending = dict(next_leaf)
        rows: list[tuple[Any, ...]] = []
        last = done
        for seq, gateway, data in items:
            if seq <= done:
                continue
            record = AuditRecord.from_json(data)
            index = pending.get(gateway, 0)
            pending[gateway] = index + 1
            text = data.decode()
            rows.append(
                (
                    gateway,
                    index,
                    seq,
                    record.record_id,
                    record.side,
                    record.message_id,
                    record.client,
                    record.service,
                    record.method,
                    record.user_id,
                    record.status,
                    record.decision,
                    record.request_in_ms,
                    text,
                    leaf_hash(data).hex(),
                )
            )
            last = max(last, seq)
        if last == done:
            return 0
        placeholders = ", ".join("?" * 15)
        cur = self._conn.cursor()
        cur.executemany(self._sql(f"INSERT INTO records ({_COLUMNS}) VALUES ({placeholders})"), rows)  # noqa: S608 (constants)
        self._set_cursor(cursor_name, last)
        self._conn.commit()
        next_leaf.update(pending)
        return len(rows)

    def _set_cursor(self, name: str, seq: int) -> None:
        self._exec(
            "INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            (name, seq),
        )

    def stream_created(self, cursor_name: str) -> int:
        """When the stream this cursor reads was created (epoch ms; 0 while unknown)."""
        return self.cursor(f"{cursor_name}@created")

    def set_stream_created(self, cursor_name: str, created_ms: int) -> None:
        self._set_cursor(f"{cursor_name}@created", created_ms)
        self._conn.commit()

    def record_gap(self, cursor_name: str, stream: str, detail: str, at_ms: int, created_ms: int) -> None:
        """A stream went back under the index: note it, and read the new stream from its start."""
        self._exec("INSERT INTO stream_gaps (at_ms, stream, detail) VALUES (?, ?, ?)", (at_ms, stream, detail))
        self._set_cursor(cursor_name, 0)
        self._set_cursor(f"{cursor_name}@created", created_ms)
        self._conn.commit()

    def gaps(self) -> list[tuple[int, str, str]]:
        """(when, stream, what) of every stream found recreated or rewound, oldest first."""
        rows = self._exec("SELECT at_ms, stream, detail FROM stream_gaps ORDER BY at_ms").fetchall()
        return [(int(a), str(s), str(d)) for a, s, d in rows]

    def add_checkpoint(self, cursor_name: str, seq: int, checkpoint: Checkpoint) -> None:
        """Store a checkpoint; each witness publishes its own cosignature, so copies of one
        checkpoint are merged, and one of the same size with another root is kept as an
        equivocation (both, as they were signed)."""
        if seq <= self.cursor(cursor_name):
            return
        key = (checkpoint.gateway, checkpoint.size, int(checkpoint.cosigned))
        row = self._exec("SELECT body FROM checkpoints WHERE gateway = ? AND size = ? AND cosigned = ?", key).fetchone()
        if row is None:
            self._exec(
                "INSERT INTO checkpoints (gateway, size, cosigned, body) VALUES (?, ?, ?, ?)",
                (*key, checkpoint.to_json().decode()),
            )
        else:
            held = Checkpoint.from_json(row[0])
            if held.root != checkpoint.root:
                self._exec(
                    "INSERT INTO equivocations (gateway, size, first_root, second_root, first, second) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (checkpoint.gateway, checkpoint.size, held.root.hex(), checkpoint.root.hex(),
                     row[0], checkpoint.to_json().decode()),
                )  # fmt: skip
            else:
                try:
                    merged = merge_cosignatures(held, checkpoint)
                except CheckpointInvalid:
                    merged = held  # the same tree head signed twice (another time line): keep the first
                self._exec(
                    "UPDATE checkpoints SET body = ? WHERE gateway = ? AND size = ? AND cosigned = ?",
                    (merged.to_json().decode(), *key),
                )
        self._set_cursor(cursor_name, seq)
        self._conn.commit()

    def equivocations(self) -> list[tuple[Checkpoint, Checkpoint]]:
        """Pairs of checkpoints of one gateway and size with different roots, as stored."""
        rows = self._exec("SELECT first, second FROM equivocations ORDER BY gateway, size").fetchall()
        return [(Checkpoint.from_json(a), Checkpoint.from_json(b)) for a, b in rows]

    def add_archives(self, cursor_name: str, items: Sequence[tuple[int, bytes]]) -> int:
        """Store (stream_seq, archived payload JSON); idempotent like ``ingest``. Returns rows written."""
        done = self.cursor(cursor_name)
        rows = [(a.record_id, a.message_id, data.decode()) for seq, data in items if seq > done
                for a in (ArchivedPayload.from_json(data),)]  # fmt: skip
        last = max((seq for seq, _ in items), default=done)
        if last <= done:
            return 0
        cur = self._conn.cursor()
        cur.executemany(
            self._sql("INSERT INTO archives (record_id, message_id, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
            rows,
        )
        self._set_cursor(cursor_name, last)
        self._conn.commit()
        return len(rows)

    # -- reading ---------------------------------------------------------------------------

    def archives(self, message_id: str) -> list[ArchivedPayload]:
        """The archived payloads of one exchange (both sides when both gateways archive)."""
        rows = self._exec("SELECT body FROM archives WHERE message_id = ? ORDER BY record_id", (message_id,))
        return [ArchivedPayload.from_json(r[0]) for r in rows.fetchall()]

    def latest_checkpoints(self, cosigned: bool = True) -> dict[str, Checkpoint]:
        rows = self._exec(
            "SELECT c.gateway, c.body FROM checkpoints c JOIN (SELECT gateway, MAX(size) AS size FROM checkpoints "
            "WHERE cosigned = ? GROUP BY gateway) m ON c.gateway = m.gateway AND c.size = m.size WHERE c.cosigned = ?",
            (int(cosigned), int(cosigned)),
        ).fetchall()
        return {str(g): Checkpoint.from_json(b) for g, b in rows}

    def checkpoints(self, gateway: str, cosigned: bool = True) -> list[Checkpoint]:
        """Every checkpoint of a gateway the index holds, smallest size first."""
        rows = self._exec(
            "SELECT body FROM checkpoints WHERE gateway = ? AND cosigned = ? ORDER BY size", (gateway, int(cosigned))
        ).fetchall()
        return [Checkpoint.from_json(r[0]) for r in rows]

    def gateways(self) -> list[str]:
        return [str(r[0]) for r in self._exec("SELECT DISTINCT gateway FROM records ORDER BY gateway").fetchall()]

    def count(self, gateway: str | None = None) -> int:
        if gateway is None:
            return int(self._exec("SELECT COUNT(*) FROM records").fetchone()[0])
        return int(self._exec("SELECT COUNT(*) FROM records WHERE gateway = ?", (gateway,)).fetchone()[0])

    def leaves(self, gateway: str, batch: int = 20_000, *, columns: bool = False) -> Iterator[Row]:
        """A gateway's rows in leaf order, read in keyset pages (constant memory, any store);
        with ``columns``, each row carries its searchable columns too."""
        after = -1
        extra = "".join(f", {c}" for c in SEARCH_COLUMNS) if columns else ""
        while True:
            rows = self._exec(
                f"SELECT gateway, leaf_index, stream_seq, body, leaf_hash{extra} FROM records "  # noqa: S608 (constants)
                "WHERE gateway = ? AND leaf_index > ? ORDER BY leaf_index LIMIT ?",
                (gateway, after, batch),
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield Row(str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), columns=tuple(r[5:]))
            after = int(rows[-1][1])

    def query(
        self, filters: Filters, limit: int | None = None, offset: int = 0, *, after: Position | None = None
    ) -> list[Row]:
        """Matching rows in time order (then gateway, leaf). ``after``: only rows past that
        position — keyset paging, which an index serves directly, where ``offset`` makes the
        database walk and drop every row before the page."""
        where, params = _where(filters)
        if after is not None:
            # Row values: SQLite >= 3.15 and PostgreSQL compare them lexicographically.
            where += (" AND " if where else " WHERE ") + "(request_in_ms, gateway, leaf_index) > (?, ?, ?)"
            params.extend(after)
        sql = f"SELECT gateway, leaf_index, stream_seq, body, leaf_hash, request_in_ms FROM records{where} ORDER BY request_in_ms, gateway, leaf_index"  # noqa: S608 (placeholders only)
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [
            Row(str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), int(r[5]))
            for r in self._exec(sql, params).fetchall()
        ]

    def count_matching(self, filters: Filters) -> int:
        where, params = _where(filters)
        sql = f"SELECT COUNT(*) FROM records{where}"  # noqa: S608 (placeholders only)
        return int(self._exec(sql, params).fetchone()[0])

    # -- raw access for tests and the tamper drills ----------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._exec(sql, params)
        self._conn.commit()


def _where(f: Filters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("client", f.client),
        ("service", f.service),
        ("method", f.method),
        ("user_id", f.user_id),
        ("status", f.status),
        ("decision", f.decision),
        ("message_id", f.message_id),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.since_ms is not None:
        clauses.append("request_in_ms >= ?")
        params.append(f.since_ms)
    if f.until_ms is not None:
        clauses.append("request_in_ms < ?")
        params.append(f.until_ms)
    if f.gateways:
        clauses.append(f"gateway IN ({', '.join('?' * len(f.gateways))})")
        params.extend(f.gateways)
    if f.member:
        # Took part: the calling subsystem or the service belongs to the member (ids are /-separated).
        # The member is escaped for LIKE, so a '_' or '%' in its code cannot widen the scope.
        prefix = f.member.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        clauses.append("(client LIKE ? ESCAPE '\\' OR service LIKE ? ESCAPE '\\')")
        params.extend([prefix, prefix])
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def open_store(url: str) -> IndexStore:
    """``postgresql://…`` → PostgreSQL; ``sqlite:///path``, ``sqlite://:memory:`` or a path → SQLite."""
    try:
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            return IndexStore(psycopg.connect(url, connect_timeout=5), url, postgres=True)
        path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite://") else url
        if url.startswith("sqlite:///"):
            path = url[len("sqlite://") :]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return IndexStore(conn, url, postgres=False)
    except Exception as exc:
        if isinstance(exc, AuditIndexUnavailable):
            raise
        raise AuditIndexUnavailable(f"cannot open the audit index at {_safe(url)} ({type(exc).__name__})") from exc


def _safe(url: str) -> str:
    """The URL without a password (never in errors or logs)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url
