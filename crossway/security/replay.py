"""The message-id replay window.

A provider gateway accepts each message id once while the message could still be accepted at all
(its issued-at window or deadline); after that, the time checks reject it on their own, so the id
can be forgotten. That keeps the store bounded by (request rate x window), not by history.

:class:`ReplayGuard` is the seam. :class:`MemoryReplayGuard` is its in-memory twin (unit tests,
the in-process demo, benchmarks); a running gateway keeps its window on disk
(:class:`~crossway.security.shared_replay.SharedReplayGuard`), because a window that forgets
everything on restart lets a captured envelope through again right after one. A NATS KV store for
members that run several gateway replicas can implement the same one-method Protocol (an atomic
"create if absent" with a per-key TTL maps onto it directly).
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

__all__ = ["MemoryReplayGuard", "ReplayGuard"]


class ReplayGuard(Protocol):
    def seen_before(self, message_id: str, expires_at_ms: int, now_ms: int) -> bool:
        """Record ``message_id`` until ``expires_at_ms``; True when it is already recorded.

        False means "first sight, now remembered": the caller may proceed. True means reject —
        a replay, or (implementation-specific) the guard cannot vouch for the id.
        """
        ...


class MemoryReplayGuard:
    """An in-process replay window with bounded memory.

    Layout: a dict ``id -> expiry`` for the membership test and a min-heap of ``(expiry, id)`` so
    expired ids are dropped oldest first. Each id is pushed once and popped once, so a call costs
    O(1) amortized dict work plus O(log n) heap work in C (``heapq``) — about a microsecond at a
    million entries.

    Failing closed:
    - when ``max_entries`` unexpired ids are held, a new id is reported as seen (rejected). Evicting
      a live id instead would let that very message be replayed, so a flood of fresh ids could be
      used to open a replay window; refusing new messages under overload degrades availability
      only. Size ``max_entries`` above (peak requests/s x window seconds).
    - an id whose ``expires_at_ms`` is already past is reported as seen: the message is outside its
      window and must not be accepted, and remembering it would serve no purpose. Callers check the
      time window first (``MessageExpired``) so the person gets the more precise error.

    Concurrency: one call never yields to the event loop, so it is atomic under asyncio; a lock
    (uncontended: ~0.1 µs) also makes it safe from a sync gRPC server's thread pool.
    """

    __slots__ = ("_expiry", "_heap", "_lock", "_max")

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._expiry: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    @property
    def max_entries(self) -> int:
        return self._max

    def seen_before(self, message_id: str, expires_at_ms: int, now_ms: int) -> bool:
        with self._lock:
            self._evict_expired(now_ms)
            # After eviction every stored id is unexpired, so presence alone means "replay".
            if message_id in self._expiry:
                return True
            if expires_at_ms <= now_ms:
                return True
            if len(self._expiry) >= self._max:
                return True
            self._expiry[message_id] = expires_at_ms
            heapq.heappush(self._heap, (expires_at_ms, message_id))
            return False

    def _evict_expired(self, now_ms: int) -> None:
        heap = self._heap
        expiry = self._expiry
        while heap and heap[0][0] <= now_ms:
            expires_at, message_id = heapq.heappop(heap)
            # Defensive: drop the dict entry only if it is the one this heap item was pushed for.
            if expiry.get(message_id) == expires_at:
                del expiry[message_id]
