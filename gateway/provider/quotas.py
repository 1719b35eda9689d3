"""Per-client quotas from the deciding permits' ``@quota`` (see ``policies.obligations``).

A token bucket per (policy, client, method): ``limit`` calls, refilled evenly over ``period_s``,
so a burst of ``limit`` is allowed and then one call per ``period_s / limit``. Every quota of
the decision must have a token left, else nothing is taken and the call is refused with
``policy.rate_limited`` naming when to retry.

Where the buckets live:
- :class:`QuotaLimiter` keeps them in process memory (a gateway with one process);
- :class:`SharedQuotaLimiter` keeps them in one SQLite file in the gateway's data directory, so
  the worker processes of one gateway (``[gateway] workers = N``, one host) share one budget:
  a "2/min" quota allows 2 calls a minute in total, whichever process the kernel hands them to.

Separate gateway hosts (replicas behind a load balancer) still do *not* share: each enforces the
full limit, so the operator divides it between them (or state moves to NATS KV later — noted in
the issue).

The bucket arithmetic is :func:`_settle`, used by both, so the two refuse with the same message
and the same retry-after.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crossway.core.errors import ConfigError, PolicyUnavailable, RateLimited
from policies import Quota

__all__ = ["QuotaLimiter", "Quotas", "SharedQuotaLimiter"]

log = logging.getLogger(__name__)

_MAX_BUCKETS = 100_000  # memory limiter: beyond this, forget every bucket (a fresh burst each)
_PURGE_EVERY = 4096  # shared limiter: calls between deletions of buckets that have refilled

_Key = tuple[str, str, str]  # (policy id, client, method)


class Quotas(Protocol):
    """The seam the provider pipeline takes quotas through (memory or shared)."""

    def take(self, client: str, method: str, quotas: tuple[Quota, ...], now_ms: int) -> None:
        """Take one call from every quota, or raise ``RateLimited`` (nothing taken) naming the wait."""
        ...


@dataclass(frozen=True, slots=True)
class _Bucket:
    tokens: float
    last_ms: int


def _rate_per_ms(q: Quota) -> float:
    return q.limit / (q.period_s * 1000)


def _refilled(q: Quota, bucket: _Bucket | None, now_ms: int) -> _Bucket:
    """The bucket as of ``now_ms``: an unknown bucket is full.

    Time never runs backwards for a bucket: worker processes read the clock before they queue for
    the shared file, so a bucket may have been written "later" than the ``now_ms`` of the call
    being settled. Such a call gets no refill (rather than a negative one) and keeps the later time.
    """
    if bucket is None:
        return _Bucket(float(q.limit), now_ms)
    elapsed = max(0, now_ms - bucket.last_ms)
    tokens = min(float(q.limit), bucket.tokens + elapsed * _rate_per_ms(q))
    return _Bucket(tokens, max(now_ms, bucket.last_ms))


def _refusal(client: str, method: str, quotas: tuple[Quota, ...], wait_s: float) -> RateLimited:
    retry = max(1, math.ceil(wait_s))
    names = ", ".join(f"{q.policy_id} ({q.limit}/{q.period_s}s)" for q in quotas)
    return RateLimited(
        f"{client} exceeded the quota of {method} under {names}; retry after {retry} s",
        hint=f"retry after {retry} s, or ask the service owner for a higher @quota",
    )


def _settle(
    client: str, method: str, quotas: tuple[Quota, ...], now_ms: int, stored: Mapping[_Key, _Bucket]
) -> dict[_Key, _Bucket]:
    """The buckets after taking one call from each quota (all or nothing).

    Pure: ``stored`` holds the buckets as last written (absent = never used or forgotten, i.e.
    full); the caller writes the result back. Raises ``RateLimited`` with the longest wait when any
    bucket lacks a whole token, so a refused call costs no quota anywhere.
    """
    after: dict[_Key, _Bucket] = {}
    wait_s = 0.0
    for q in quotas:
        key = (q.policy_id, client, method)
        bucket = _refilled(q, stored.get(key), now_ms)
        if bucket.tokens < 1.0:
            # In whole seconds of the period (not via the per-ms rate) so that the float error of
            # 1 / (1/3600000) cannot round an exact "3600 s" up to 3601.
            wait_s = max(wait_s, (1.0 - bucket.tokens) * q.period_s / q.limit)
        after[key] = _Bucket(bucket.tokens - 1.0, bucket.last_ms)
    if wait_s > 0:
        raise _refusal(client, method, quotas, wait_s)
    return after


def _full_at_ms(q: Quota, bucket: _Bucket) -> int:
    """When the bucket is full again; from then on forgetting it changes nothing (absent = full)."""
    return bucket.last_ms + math.ceil((q.limit - bucket.tokens) * q.period_s * 1000 / q.limit)


class QuotaLimiter:
    """The buckets of one process, in memory (a gateway with ``workers = 1``)."""

    def __init__(self) -> None:
        self._buckets: dict[_Key, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str, method: str, quotas: tuple[Quota, ...], now_ms: int) -> None:
        """Take one call from every quota, or raise ``RateLimited`` with the wait in seconds."""
        if not quotas:
            return
        with self._lock:
            after = _settle(client, method, quotas, now_ms, self._buckets)
            if len(self._buckets) > _MAX_BUCKETS:
                self._buckets.clear()  # bounded memory; a reset only ever grants a fresh burst
            self._buckets.update(after)


class SharedQuotaLimiter:
    """The buckets of all worker processes of one gateway, in one SQLite file.

    One decision is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock before
    reading, so two processes can never both spend the last token of a bucket, and every bucket of
    the decision is written or none is. A process waits up to ``busy_timeout_ms`` for the lock.

    Fails closed: a database error refuses the call with ``policy.unavailable`` (the quota cannot
    be vouched for; retrying is sensible, so UNAVAILABLE rather than RESOURCE_EXHAUSTED, which
    would blame the client). ``synchronous=OFF``: the buckets need only outlive the processes —
    the memory limiter forgets everything on restart too, and a lost bucket is a full one.
    """

    def __init__(self, path: Path, *, busy_timeout_ms: int = 2000) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._calls = 0
        try:
            self._db = _open(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise ConfigError(
                f"the shared quota state {path} cannot be opened: {exc}",
                hint="it only holds rate-limit buckets: fix the data directory's permissions or delete the file",
            ) from exc

    def take(self, client: str, method: str, quotas: tuple[Quota, ...], now_ms: int) -> None:
        """Take one call from every quota, or raise ``RateLimited`` with the wait in seconds.

        Raises ``PolicyUnavailable`` when the shared file cannot be used (nothing is taken).
        """
        if not quotas:
            return
        with self._lock:
            try:
                self._take(client, method, quotas, now_ms)
            except sqlite3.Error as exc:
                # Identifiers only: the payload never reaches this module.
                log.error("shared quota state %s unavailable (%s); refusing %s on %s", self._path, exc, client, method)
                raise PolicyUnavailable(
                    f"this gateway cannot check the quota of {method} for {client} now; the call was refused",
                    hint="retry shortly; the gateway's operator should check its log and data directory",
                ) from exc

    def _take(self, client: str, method: str, quotas: tuple[Quota, ...], now_ms: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._calls += 1
            if self._calls % _PURGE_EVERY == 0:
                self._db.execute("DELETE FROM buckets WHERE full_at_ms <= ?", (now_ms,))
            stored = self._load(client, method, quotas)
            after = _settle(client, method, quotas, now_ms, stored)
            self._store(after, quotas)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()  # a refusal, a database error or an interrupt: nothing is taken
            raise

    def _load(self, client: str, method: str, quotas: tuple[Quota, ...]) -> dict[_Key, _Bucket]:
        stored: dict[_Key, _Bucket] = {}
        for q in quotas:
            key = (q.policy_id, client, method)
            row = self._db.execute(
                "SELECT tokens, last_ms FROM buckets WHERE policy_id = ? AND client = ? AND method = ?", key
            ).fetchone()
            if row is not None:
                stored[key] = _Bucket(float(row[0]), int(row[1]))
        return stored

    def _store(self, after: Mapping[_Key, _Bucket], quotas: tuple[Quota, ...]) -> None:
        by_policy = {q.policy_id: q for q in quotas}
        self._db.executemany(
            "INSERT INTO buckets (policy_id, client, method, tokens, last_ms, full_at_ms) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(policy_id, client, method) DO UPDATE SET "
            "tokens = excluded.tokens, last_ms = excluded.last_ms, full_at_ms = excluded.full_at_ms",
            [
                (*key, bucket.tokens, bucket.last_ms, _full_at_ms(by_policy[key[0]], bucket))
                for key, bucket in after.items()
            ],
        )

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # SQLite rolls back by itself when the connection closes; only worth a note.
            log.warning("shared quota state %s: rollback failed (%s)", self._path, exc)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _open(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """The shared file, created on first use by whichever process comes first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(
            "CREATE TABLE IF NOT EXISTS buckets ("
            "policy_id TEXT NOT NULL, client TEXT NOT NULL, method TEXT NOT NULL, "
            "tokens REAL NOT NULL, last_ms INTEGER NOT NULL, full_at_ms INTEGER NOT NULL, "
            "PRIMARY KEY (policy_id, client, method)) WITHOUT ROWID"
        )
    except sqlite3.Error:
        db.close()
        raise
    return db
