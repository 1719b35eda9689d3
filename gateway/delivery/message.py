"""A registered-delivery message as a signed envelope: sealing, opening and its content.

A message is signed once, at submission, by the sender's gateway with its member signing key —
the exchange envelope's format and rules (``gateway.wire.codec``) with its own frame kind
(``DELIVERY``) so it can never pass for an exchange request, nor the reverse. Header fields:

    message_id   the id the sender chose (with ``client``, the delivery key)
    client       sender subsystem            service   recipient subsystem (the mailbox)
    method       message type                purpose   the sender's purpose
    issued_at    submission time             deadline  expires-at (no relay, no handover after it)
    body_sha256  binds the body: a ``DeliveryBody`` (payload, content type, correlation id and
                 each attachment's chunk digests), encrypted end to end to the recipient member
                 (X25519 + AES-256-GCM, as exchanges) when the mailbox requires it.

Each relay attempt is a second, fresh envelope (kind ``RELAY``: new id and issued-at, so the
recipient's replay window applies) whose ``request_hash`` binds the message's header bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from crossway.core.errors import DecryptionFailed, MessageMalformed
from crossway.security.encryption import ClientSession, ProviderSession
from crossway.security.signing import Signer
from gateway.wire.codec import seal_frame
from gateway.wire.frames import Encryption, Envelope, FrameKind, Header, SignedFrame
from protos.crossway.v1 import delivery_pb2 as dpb

__all__ = [
    "STORED",
    "AttachmentInfo",
    "StoredHeaders",
    "stored_headers",
    "MessageContent",
    "check_message_id",
    "delivery_key",
    "open_content",
    "seal_message",
    "seal_relay_attempt",
]

_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_message_id(message_id: str) -> bool:
    """Sender-chosen ids end up in keys, logs and evidence: a strict charset, at most 128 characters."""
    return bool(_MESSAGE_ID.fullmatch(message_id))


def delivery_key(sender: str, message_id: str) -> str:
    """What names a message across the federation: the sender subsystem and its id."""
    return f"{sender}/{message_id}"


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    attachment_id: str
    name: str
    content_type: str
    size: int
    chunk_sha256: tuple[bytes, ...]

    @property
    def sha256(self) -> str:
        """One digest for the attachment: SHA-256 over its chunks' digests, in order."""
        return hashlib.sha256(b"".join(self.chunk_sha256)).hexdigest()


@dataclass(frozen=True, slots=True)
class MessageContent:
    payload: bytes
    content_type: str = ""
    correlation_id: str = ""
    attachments: tuple[AttachmentInfo, ...] = ()

    @property
    def size(self) -> int:
        return len(self.payload) + sum(a.size for a in self.attachments)

    def encode(self) -> bytes:
        return dpb.DeliveryBody(
            payload=self.payload,
            content_type=self.content_type,
            correlation_id=self.correlation_id,
            attachments=[
                dpb.Attachment(
                    attachment_id=a.attachment_id,
                    name=a.name,
                    content_type=a.content_type,
                    size=a.size,
                    chunk_sha256=list(a.chunk_sha256),
                )
                for a in self.attachments
            ],
        ).SerializeToString()

    @classmethod
    def decode(cls, data: bytes) -> MessageContent:
        try:
            body = dpb.DeliveryBody.FromString(data)
        except DecodeError as exc:
            raise MessageMalformed("the message body is not a crossway.v1.DeliveryBody") from exc
        return cls(
            body.payload,
            body.content_type,
            body.correlation_id,
            tuple(
                AttachmentInfo(a.attachment_id, a.name, a.content_type, a.size, tuple(a.chunk_sha256))
                for a in body.attachments
            ),
        )


# Headers of a stored message (OUTBOX, INBOX): what workers need before verifying it again.
STORED = ("Crossway-Signer", "Crossway-Sender", "Crossway-Message-Id", "Crossway-Recipient", "Crossway-Expires")


@dataclass(frozen=True, slots=True)
class StoredHeaders:
    signer: str
    sender: str
    message_id: str
    recipient: str
    expires_at_ms: int

    @classmethod
    def of(cls, headers: dict[str, str] | None) -> StoredHeaders:
        h = headers or {}
        try:
            signer, sender, message_id, recipient, expires = (h[n] for n in STORED)
            return cls(signer, sender, message_id, recipient, int(expires))
        except (KeyError, ValueError) as exc:
            raise MessageMalformed("a stored delivery message lacks its headers") from exc


def stored_headers(frame: SignedFrame) -> dict[str, str]:
    h = frame.header
    return dict(zip(STORED, (h.signer, h.client, h.message_id, h.service, str(h.deadline_ms)), strict=True))


def _aad(sender: str, message_id: str) -> bytes:
    # Binds the ciphertext to this message: it cannot be moved into another one.
    return f"{delivery_key(sender, message_id)}/delivery".encode()


def seal_message(
    signer: Signer,
    member: str,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    message_type: str,
    purpose: str,
    submitted_at_ms: int,
    expires_at_ms: int,
    content: MessageContent,
    encrypt_to: bytes | None,
    traceparent: str = "",
) -> tuple[Envelope, SignedFrame]:
    """Sign a message (encrypting its body to ``encrypt_to``, the recipient member's X25519 key)."""
    body = content.encode()
    encryption = None
    if encrypt_to is not None:
        session = ClientSession.start(encrypt_to)
        nonce, body = session.seal_request(body, _aad(sender, message_id))
        encryption = Encryption(session.ephemeral_public, session.recipient_key_id, nonce)
    header = Header(
        message_id=message_id,
        kind=FrameKind.DELIVERY,
        client=sender,
        service=recipient,
        method=message_type,
        purpose=purpose,
        issued_at_ms=submitted_at_ms,
        deadline_ms=expires_at_ms,
        traceparent=traceparent,
        encryption=encryption,
        signer=member,
    )
    return seal_frame(header, body, signer)


def open_content(frame: SignedFrame, encryption_key: object | None) -> MessageContent:
    """The verified message's content, decrypted with our X25519 key when it was encrypted."""
    h = frame.header
    body = frame.body
    if h.encryption is not None:
        if encryption_key is None:
            raise DecryptionFailed("this gateway has no encryption key configured")
        session = ProviderSession.accept(
            encryption_key,  # type: ignore[arg-type]
            h.encryption.ephemeral_public_key,
            h.encryption.recipient_key_id,
        )
        body = session.open_request(h.encryption.nonce, body, _aad(h.client, h.message_id))
    return MessageContent.decode(body)


def seal_relay_attempt(signer: Signer, member: str, message: SignedFrame, now_ms: int, deadline_ms: int) -> Envelope:
    """A fresh envelope for one relay attempt, bound to the message's header bytes."""
    h = message.header
    header = Header(
        message_id=os.urandom(16).hex(),
        kind=FrameKind.RELAY,
        client=h.client,
        service=h.service,
        method=h.method,
        issued_at_ms=now_ms,
        deadline_ms=deadline_ms,
        request_hash=message.header_hash,
        signer=member,
    )
    envelope, _ = seal_frame(header, b"", signer)
    return envelope
