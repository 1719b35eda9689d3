"""The registry's change log: every change, signed by the registry and chained by hash (issue 17).

Every write the registry's database makes (``RegistryStore``: a member admitted, a certificate
issued or revoked, a subsystem disabled, …) is appended here, in the same ``registry.db``, as one
entry: sequence number, time, who (the operating-system user running the command), what (the
store's own description of the change), the SHA-256 of the previous entry, its own SHA-256, and an
Ed25519 signature of that hash by the registry's configuration key. So the log proves its own
order and completeness: an entry removed, altered or inserted breaks the chain or a signature
(:func:`verify_changes`).

The log is also the outbox of the audit trail: ``audit.index.registry_log`` publishes each entry
as an audit record (side ``admin``, gateway :func:`registry_log_id`) into the audit stream, where
it is checkpointed, cosigned and indexed like a gateway's log — so ``crossway audit query`` shows
registry changes beside policy changes and exchanges. Publishing happens from the entries here,
never from the change itself: a change made while NATS is away is published later, not lost.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from crossway.core.ids import GatewayId, MemberId
from crossway.security.keys import load_certificate
from crossway.security.pki import cert_fingerprint

__all__ = [
    "REGISTRY_LOG_CERTIFICATE",
    "ChangeLog",
    "RegistryChange",
    "read_changes",
    "registry_log_id",
    "registry_log_key_id",
    "verify_changes",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_changes (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, what TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
"""
_GENESIS = "0" * 64
# The certificate of the key that signs the checkpoints of the registry's log in the audit trail
# (made by audit.index.registry_log; the registry's cosigner accepts that key for that log only).
REGISTRY_LOG_CERTIFICATE = "registry-log.crt"


def registry_log_id(instance: str) -> GatewayId:
    """The id the registry's log carries in the audit trail (a gateway id no member can hold:
    class REGISTRY is reserved for it)."""
    return GatewayId(MemberId(instance, "REGISTRY", "registry"), "registry")


def registry_log_key_id(registry_dir: Path) -> str | None:
    """The key id (certificate fingerprint) the registry log's checkpoints are signed with."""
    path = registry_dir / REGISTRY_LOG_CERTIFICATE
    return cert_fingerprint(load_certificate(path)) if path.exists() else None


@dataclass(frozen=True, slots=True)
class RegistryChange:
    seq: int
    at_ms: int
    actor: str
    what: str
    prev_hash: str
    hash: str
    key_id: str
    signature: str  # base64 Ed25519 signature of bytes.fromhex(hash)

    def body(self) -> bytes:
        """What the hash covers: canonical JSON of everything but the hash and signature."""
        doc = {"seq": self.seq, "at_ms": self.at_ms, "actor": self.actor, "what": self.what, "prev": self.prev_hash}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container): say so
        return "unknown"


class ChangeLog:
    """Append and read the change log in ``registry.db`` (its own table, its own connection)."""

    def __init__(self, db_path: Path, sign: Callable[[bytes], bytes], key_id: str, now_ms: Callable[[], int]) -> None:
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._sign, self._key_id, self._now_ms = sign, key_id, now_ms

    def close(self) -> None:
        self._db.close()

    def use_key(self, sign: Callable[[bytes], bytes], key_id: str) -> None:
        """Sign later entries with another key (after a configuration key rotation)."""
        self._sign, self._key_id = sign, key_id

    def append(self, what: str) -> RegistryChange:
        """One entry, in a transaction of its own (several registry commands may append at once)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            entry = self.append_in(self._db, what)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return entry

    def append_in(self, db: sqlite3.Connection, what: str) -> RegistryChange:
        """One entry inside the caller's open transaction on ``registry.db``: the change and its
        entry commit together, or neither does."""
        row = db.execute("SELECT seq, hash FROM registry_changes ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, _GENESIS)
        draft = RegistryChange(seq, self._now_ms(), _actor(), what, prev, "", self._key_id, "")
        digest = hashlib.sha256(draft.body()).hexdigest()
        signature = base64.b64encode(self._sign(bytes.fromhex(digest))).decode()
        entry = RegistryChange(seq, draft.at_ms, draft.actor, what, prev, digest, self._key_id, signature)
        db.execute(
            "INSERT INTO registry_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.seq, entry.at_ms, entry.actor, entry.what, entry.prev_hash, entry.hash, entry.key_id, signature),
        )
        return entry

    def entries(self, after: int = 0, limit: int = 10_000) -> list[RegistryChange]:
        rows = self._db.execute(
            "SELECT seq, at_ms, actor, what, prev_hash, hash, key_id, signature FROM registry_changes"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [RegistryChange(*row) for row in rows]


def read_changes(db_path: Path, after: int = 0, limit: int = 10_000) -> list[RegistryChange]:
    """Entries after sequence ``after``, read-only (a publisher that holds no registry key)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'registry_changes'").fetchone() is None:
            return []
        rows = db.execute(
            "SELECT seq, at_ms, actor, what, prev_hash, hash, key_id, signature FROM registry_changes"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
    finally:
        db.close()
    return [RegistryChange(*row) for row in rows]


def verify_changes(
    entries: list[RegistryChange], keys: Mapping[str, ed25519.Ed25519PublicKey], *, start_hash: str = _GENESIS
) -> list[str]:
    """Problems with a run of entries (empty: intact): sequence, chain, hash and signature each."""
    problems: list[str] = []
    prev, expected_seq = start_hash, entries[0].seq if entries else 1
    for entry in entries:
        where = f"change {entry.seq}"
        if entry.seq != expected_seq:
            problems.append(f"{where}: expected change {expected_seq} (one is missing)")
        if entry.prev_hash != prev:
            problems.append(f"{where}: does not chain to the entry before it")
        if hashlib.sha256(entry.body()).hexdigest() != entry.hash:
            problems.append(f"{where}: its content does not match its hash (altered)")
        key = keys.get(entry.key_id)
        try:
            if key is None:
                raise InvalidSignature
            key.verify(base64.b64decode(entry.signature), bytes.fromhex(entry.hash))
        except (InvalidSignature, ValueError):
            problems.append(f"{where}: the registry's signature does not verify")
        prev, expected_seq = entry.hash, entry.seq + 1
    return problems
