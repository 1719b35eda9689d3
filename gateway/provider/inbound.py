"""The request side of a provider stream: chained frames in, verified request bodies out.

Each frame is checked by the chain reader (signature, sequence, previous hash) before its body
is decrypted and handed on, so the backend only ever sees bodies that were verified one by one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from crossway.core.errors import CrosswayError, StreamBroken
from crossway.security.encryption import ProviderSession
from gateway.shared.recorder import ExchangeRecorder
from gateway.wire.chain import ChainReader
from gateway.wire.frames import Envelope, FrameKind, frame_aad

__all__ = ["verified_request_bodies"]


async def verified_request_bodies(
    frames: AsyncIterator[Envelope],
    reader: ChainReader,
    session: ProviderSession | None,
    rec: ExchangeRecorder,
    broken: list[CrosswayError],
) -> AsyncIterator[bytes]:
    """Verified request bodies, in order; a broken chain stops the backend call."""
    try:
        async for env in frames:
            frame = reader.accept(env)
            h = frame.header
            if h.kind == FrameKind.STREAM_END:
                return
            if h.kind != FrameKind.STREAM_DATA:
                raise StreamBroken(f"stream {rec.message_id}: unexpected {h.kind.name} frame")
            body = frame.body
            if session is not None:
                body = session.open_request(
                    h.encryption.nonce if h.encryption else b"",
                    body,
                    frame_aad(rec.message_id, h.sequence, "request"),
                )
            rec.add_request(body)
            yield body
        raise StreamBroken(f"stream {rec.message_id} ended without its signed STREAM_END frame")
    except CrosswayError as exc:
        # Remember why: the backend library only sees that its request iterator failed.
        broken.append(exc)
        raise
