"""The topics room's NATS plumbing, on the delivery room's connection and its member's state bucket,
and the records kept there (a subscription at the publisher's gateway, and at the subscriber's).

The gateway creates nothing: the member's topic streams are provisioned with its delivery streams
(``crossway.bus``, ``crossway.natsstreams``). Records change only by compare-and-set (``update``),
so the fan-out worker, Subscribe, Receive and Ack never overwrite one another's changes. The
bucket keeps a key for the retention period after its last write (delivery's TTL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import nats.js.errors
from nats.js.kv import KeyValue

from gateway.delivery.errors import DeliveryBusy
from gateway.delivery.store import DeliveryStore

__all__ = ["Mine", "Subscription", "TopicStore"]

_CAS_ATTEMPTS = 50

R = TypeVar("R", "Subscription", "Mine")


@dataclass(frozen=True, slots=True)
class Subscription:
    """At the publisher's gateway: who subscribed, and how far its delivery got."""

    id: str
    topic: str
    subscriber: str
    purpose: str
    start: int
    created_ms: int
    state: str = "active"  # | "refused" | "failed"
    relayed: int = 0  # last sequence the subscriber's gateway accepted
    handed_over: int = 0  # last sequence it reported handed over
    failures: int = 0  # relay attempts that failed (retried)
    refusals: int = 0
    stopped_at: int = 0  # the sequence refused (nothing from it on is delivered)
    reason: str = ""
    policy_version: str = ""
    stream_start: int = 0  # the events stream sequence its fan-out consumer starts at (0: the first)
    notified: bool = False  # the subscriber's gateway holds the refusal


@dataclass(frozen=True, slots=True)
class Mine:
    """At the subscriber's gateway: a subscription its system asked for."""

    id: str
    topic: str
    publisher: str
    subscriber: str
    purpose: str
    start: int
    next: int  # the sequence expected next
    last_hash: str = ""  # hex SHA-256 of the last accepted event's header
    handed_over: int = 0
    state: str = "active"
    stopped_at: int = 0
    reason: str = ""
    push: bool = False  # handed to the subsystem's [[delivery.push]] method, not pulled


class TopicStore:
    def __init__(self, delivery: DeliveryStore, retention_s: float, bucket: str) -> None:
        self.delivery = delivery
        self._bucket = bucket  # the member's delivery state bucket (crossway.bus)
        self._retention_s = retention_s
        self.kv: KeyValue | None = None

    @property
    def js(self) -> Any:
        assert self.delivery.js is not None
        return self.delivery.js

    async def ensure(self) -> None:
        """Once delivery's store is ready: its member's bucket holds the topic records too."""
        states = self.delivery.states
        assert states is not None
        self.kv = states.kv

    async def read(self, key: str) -> tuple[bytes, int] | None:
        """A key's value and revision, read through the stream's leader.

        Not the KV's direct get: on a cluster a replica may answer that, and one that is catching
        up (a node just restarted) answers with an older value — a subscription's position gone
        back, events offered again or refused as a gap. The leader's answer is the latest.
        """
        name = self._bucket
        try:
            raw = await self.js.get_last_msg(f"KV_{name}", f"$KV.{name}.{key}", direct=False)
        except nats.js.errors.NotFoundError:
            return None
        if (raw.headers or {}).get("KV-Operation") in ("DEL", "PURGE") or not raw.data:
            return None
        return bytes(raw.data), int(raw.seq or 0)

    async def get(self, key: str, cls: type[R]) -> tuple[R, int] | None:
        found = await self.read(key)
        if found is None:
            return None
        return cls(**json.loads(found[0])), found[1]

    async def create(self, key: str, record: Subscription | Mine) -> bool:
        assert self.kv is not None
        try:
            await self.kv.create(key, json.dumps(asdict(record)).encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def update(self, key: str, cls: type[R], change: Callable[[R], R | None]) -> R | None:
        """Apply ``change`` by compare-and-set; None when the record is gone or ``change`` declined."""
        assert self.kv is not None
        for _ in range(_CAS_ATTEMPTS):
            current = await self.get(key, cls)
            if current is None:
                return None
            record, revision = current
            after = change(record)
            if after is None or after == record:
                return record if after is not None else None
            try:
                await self.kv.update(key, json.dumps(asdict(after)).encode(), last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            return after
        raise DeliveryBusy(f"topic record {key} keeps changing; retry")

    async def index(self, key: str) -> list[str]:
        """An id list kept in one key (listing keys would need an unnamed consumer: not granted)."""
        assert self.kv is not None
        found = await self.read(key)
        return [] if found is None else list(json.loads(found[0]))

    async def add_to_index(self, key: str, item: str) -> None:
        assert self.kv is not None
        for _ in range(_CAS_ATTEMPTS):
            found = await self.read(key)
            items, revision = ([], 0) if found is None else (list(json.loads(found[0])), found[1])
            if item in items:
                return
            data = json.dumps([*items, item]).encode()
            try:
                if revision:
                    await self.kv.update(key, data, last=revision)
                else:
                    await self.kv.create(key, data)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            return
        raise DeliveryBusy(f"topic index {key} keeps changing; retry")

    async def counter(self, key: str) -> int:
        assert self.kv is not None
        found = await self.read(key)
        return 0 if found is None else int(found[0] or b"0")

    async def set_counter(self, key: str, value: int) -> None:
        assert self.kv is not None
        await self.kv.put(key, str(value).encode())


def stopped(record: R, sequence: int, reason: str, state: str = "refused") -> R:
    return replace(record, state=state, stopped_at=sequence, reason=reason[:300])
