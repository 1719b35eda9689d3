"""Domain values for what travels between gateways: headers and signed frames.

Plain frozen dataclasses; the protobuf mapping lives in :mod:`gateway.wire.codec` only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "frame_aad",
    "Encryption",
    "Envelope",
    "ExchangeStatus",
    "FrameKind",
    "FrameSignature",
    "Header",
    "SignedFrame",
]


class FrameKind(enum.IntEnum):
    # Values match crossway.v1.MessageKind on the wire.
    REQUEST = 1
    RESPONSE = 2
    STREAM_DATA = 3
    STREAM_END = 4
    # Registered delivery (issue 14): a stored message, and one relay attempt of it.
    DELIVERY = 5
    RELAY = 6
    # Topics (issue 15): an event as published, or a subscriber's minimized copy of one.
    TOPIC_EVENT = 7


@dataclass(frozen=True, slots=True)
class Encryption:
    ephemeral_public_key: bytes
    recipient_key_id: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class ExchangeStatus:
    grpc_code: int = 0
    error_code: str = ""
    message: str = ""
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.grpc_code == 0


OK_STATUS = ExchangeStatus()


@dataclass(frozen=True, slots=True)
class Header:
    message_id: str
    kind: FrameKind
    client: str = ""
    service: str = ""
    method: str = ""
    user_id: str = ""
    purpose: str = ""
    issued_at_ms: int = 0
    deadline_ms: int = 0
    traceparent: str = ""
    body_sha256: bytes = b""
    request_hash: bytes = b""
    sequence: int = 0
    previous_hash: bytes = b""
    encryption: Encryption | None = None
    status: ExchangeStatus | None = None
    signer: str = ""
    client_streaming: bool = False
    server_streaming: bool = False
    withheld_fields: tuple[str, ...] = ()
    # Topic events (issue 15): the key field's value and the event's position among that key's events.
    event_key: str = ""
    key_sequence: int = 0
    # The end user's JWT (requests only); a credential, so never in a repr or a log line.
    user_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class FrameSignature:
    algorithm: str  # "ES256" | "EdDSA"
    key_id: str  # SHA-256 hex of the signer's signing certificate
    value: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """One frame as it travels between gateways, not yet verified: the signed header bytes, the
    body and the signature. ``crossway.v1.Envelope`` on the wire (:mod:`gateway.wire.codec`)."""

    header: bytes
    body: bytes
    algorithm: str  # "ES256" | "EdDSA"; anything else is refused when the envelope is opened
    key_id: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedFrame:
    """A frame whose signature was made (outgoing) or verified (incoming)."""

    header: Header
    # The exact signed bytes, and their SHA-256: responses and chained frames refer to it.
    header_bytes: bytes
    header_hash: bytes
    body: bytes
    signature: FrameSignature


def frame_aad(message_id: str, sequence: int, direction: str) -> bytes:
    """The AES-GCM associated data of an encrypted frame body: binds each ciphertext to its
    exchange, its position and its direction, so frames cannot be swapped or reflected."""
    return f"{message_id}/{direction}/{sequence}".encode()
