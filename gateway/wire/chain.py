"""Numbered, hash-chained frames: how a stream proves nothing was dropped, reordered or injected.

Each direction of an exchange is a chain. A frame carries its ``sequence`` and the SHA-256 of
the previous frame's signed header bytes (``previous_hash``); every frame is signed on its own,
so a receiver can verify and forward it before the stream ends — large payloads flow without
being buffered whole. The request chain starts at the REQUEST frame (sequence 0); the response
chain starts from the request's header hash, which binds every response frame to the request.
"""

from __future__ import annotations

from dataclasses import replace

from crossway.core.errors import StreamBroken
from crossway.security.signing import Signer
from gateway.wire.codec import KeyLookup, open_envelope, seal_frame
from gateway.wire.frames import Envelope, FrameKind, Header, SignedFrame

__all__ = ["ChainReader", "ChainWriter"]


class ChainWriter:
    def __init__(self, signer: Signer, template: Header, start_hash: bytes, first_sequence: int) -> None:
        self._signer = signer
        self._template = template  # message id and signer; the rest is per frame
        self._previous = start_hash
        self._next = first_sequence

    def seal(self, header: Header, body: bytes) -> tuple[Envelope, SignedFrame]:
        header = replace(header, sequence=self._next, previous_hash=self._previous)
        env, frame = seal_frame(header, body, self._signer)
        self._previous = frame.header_hash
        self._next += 1
        return env, frame

    def data(self, body: bytes, **fields: object) -> tuple[Envelope, SignedFrame]:
        return self.seal(replace(self._template, kind=FrameKind.STREAM_DATA, **fields), body)  # type: ignore[arg-type]


class ChainReader:
    def __init__(
        self, signer_member: str, lookup: KeyLookup, message_id: str, start_hash: bytes, first_sequence: int
    ) -> None:
        self._member = signer_member
        self._lookup = lookup
        self._message_id = message_id
        self._previous = start_hash
        self._next = first_sequence

    @property
    def last_hash(self) -> bytes:
        return self._previous

    def accept(self, env: Envelope) -> SignedFrame:
        frame = open_envelope(env, self._member, self._lookup)
        h = frame.header
        if h.message_id != self._message_id:
            raise StreamBroken(f"frame of message {h.message_id} injected into stream {self._message_id}")
        if h.sequence != self._next or h.previous_hash != self._previous:
            raise StreamBroken(
                f"stream {self._message_id}: expected frame {self._next}, got {h.sequence}"
                + ("" if h.sequence != self._next else " with a broken chain")
            )
        self._previous = frame.header_hash
        self._next += 1
        return frame
