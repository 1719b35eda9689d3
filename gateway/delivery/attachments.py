"""Attachments: large content in chunks on JetStream, each chunk's SHA-256 in the signed message.

An upload (``SendAttachment``) is streamed chunk by chunk into the CHUNKS stream — no chunk is
bigger than ``chunk_bytes`` and no component ever holds a whole attachment — and described by
an index in the state bucket: owner, name, content type, size, and each chunk's digest and
stream sequence. The message that names the attachment carries the digests (inside its signed
body), so the recipient's gateway checks every chunk it receives against what the sender signed.
Reading back is one chunk at a time by stream sequence (a direct get: the stored bytes, no JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.js.errors

from crossway.bus import Names, tokens
from crossway.core.errors import MessageTampered, MessageTooLarge
from crossway.core.ids import SubsystemId
from gateway.delivery.errors import AttachmentUnknown
from gateway.delivery.message import AttachmentInfo
from gateway.delivery.store import DeliveryStore

__all__ = ["AttachmentStore", "StoredAttachment"]


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    info: AttachmentInfo
    owner: str  # the subsystem that uploaded it, or the delivery key it arrived with
    sequences: tuple[int, ...]

    def to_json(self) -> bytes:
        i = self.info
        return json.dumps(
            {
                "id": i.attachment_id,
                "name": i.name,
                "content_type": i.content_type,
                "size": i.size,
                "chunks": [c.hex() for c in i.chunk_sha256],
                "owner": self.owner,
                "seqs": list(self.sequences),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredAttachment:
        d = json.loads(data)
        info = AttachmentInfo(
            d["id"], d["name"], d["content_type"], d["size"], tuple(bytes.fromhex(c) for c in d["chunks"])
        )
        return cls(info, d["owner"], tuple(d["seqs"]))


class AttachmentStore:
    def __init__(self, store: DeliveryStore, names: Names, chunk_bytes: int, max_bytes: int) -> None:
        self._store = store
        self._names = names
        self._chunk = chunk_bytes
        self._max = max_bytes

    def _key(self, scope: str, attachment_id: str) -> str:
        return f"{tokens(self._names.gateway)}.att.{scope}.{attachment_id}"

    @staticmethod
    def _scope_of(owner: SubsystemId | str) -> str:
        return hashlib.sha256(str(owner).encode()).hexdigest()[:32]

    async def upload(
        self,
        owner: SubsystemId | str,
        name: str,
        content_type: str,
        chunks: AsyncIterator[bytes],
        attachment_id: str = "",
    ) -> AttachmentInfo:
        """Store chunks as they come (re-cut to at most ``chunk_bytes``); returns the description."""
        attachment_id = attachment_id or os.urandom(16).hex()
        subject = self._names.chunks(attachment_id)
        digests: list[bytes] = []
        sequences: list[int] = []
        size = 0
        js = self._store.js
        assert js is not None
        buffer = bytearray()

        async def flush(piece: bytes) -> None:
            ack = await js.publish(subject, piece, stream=self._names.chunks_stream)
            digests.append(hashlib.sha256(piece).digest())
            sequences.append(ack.seq)

        async for data in chunks:
            size += len(data)
            if size > self._max:
                raise MessageTooLarge(f"attachment {name!r} is larger than {self._max} bytes")
            buffer += data
            while len(buffer) >= self._chunk:
                await flush(bytes(buffer[: self._chunk]))
                del buffer[: self._chunk]
        if buffer or not digests:
            await flush(bytes(buffer))
        info = AttachmentInfo(attachment_id, name, content_type, size, tuple(digests))
        await self._put(self._scope_of(owner), StoredAttachment(info, str(owner), tuple(sequences)))
        return info

    async def receive(self, delivery: str, expected: AttachmentInfo, chunks: AsyncIterator[bytes]) -> int:
        """A relayed attachment: every chunk must be the next one the sender signed."""
        js = self._store.js
        assert js is not None
        subject = self._names.chunks(f"{self._scope_of(delivery)[:16]}-{expected.attachment_id}")
        sequences: list[int] = []
        size = 0
        async for data in chunks:
            n = len(sequences)
            if n >= len(expected.chunk_sha256) or hashlib.sha256(data).digest() != expected.chunk_sha256[n]:
                raise MessageTampered(
                    f"chunk {n} of attachment {expected.attachment_id} is not the one the sender signed"
                )
            ack = await js.publish(subject, data, stream=self._names.chunks_stream)
            sequences.append(ack.seq)
            size += len(data)
        if len(sequences) != len(expected.chunk_sha256) or size != expected.size:
            raise MessageTampered(f"attachment {expected.attachment_id} arrived incomplete")
        await self._put(self._scope_of(delivery), StoredAttachment(expected, delivery, tuple(sequences)))
        return size

    async def _put(self, scope: str, stored: StoredAttachment) -> None:
        assert self._store.states is not None
        kv = self._store.states.kv  # the same bucket: one place holds a gateway's delivery state
        await kv.put(self._key(scope, stored.info.attachment_id), stored.to_json())

    async def stored(self, owner: SubsystemId | str, attachment_id: str) -> StoredAttachment | None:
        if not attachment_id or not all(c.isalnum() or c in "-_" for c in attachment_id):
            return None
        assert self._store.states is not None
        try:
            entry = await self._store.states.kv.get(self._key(self._scope_of(owner), attachment_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        return None if entry.value is None else StoredAttachment.from_json(entry.value)

    async def info(self, owner: SubsystemId, attachment_id: str) -> AttachmentInfo:
        stored = await self.stored(owner, attachment_id)
        if stored is None or stored.owner != str(owner):
            raise AttachmentUnknown(f"no attachment {attachment_id[:40]!r} uploaded by {owner}")
        return stored.info

    async def read(self, stored: StoredAttachment) -> AsyncIterator[bytes]:
        """The chunks, one at a time, each checked against its digest."""
        js = self._store.js
        assert js is not None
        for n, seq in enumerate(stored.sequences):
            msg = await js.get_msg(self._names.chunks_stream, seq, direct=True)
            data = msg.data or b""
            if hashlib.sha256(data).digest() != stored.info.chunk_sha256[n]:
                raise MessageTampered(f"chunk {n} of attachment {stored.info.attachment_id} changed in storage")
            yield data
