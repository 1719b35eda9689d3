"""Registered delivery's errors, as leaves of Crossway's one error tree (``crossway.core.errors``).

    CrosswayError
    └── DeliveryError
        ├── MailboxUnknown          mailbox.unknown            NOT_FOUND
        ├── MessageTypeRefused      message.type_refused       INVALID_ARGUMENT
        ├── EncryptionRequired      message.encryption_required FAILED_PRECONDITION
        ├── DeliveryExpired         delivery.expired           DEADLINE_EXCEEDED
        ├── DeliveryUnknown         delivery.unknown           NOT_FOUND
        ├── DeliveryBusy            delivery.busy              UNAVAILABLE
        ├── DeliveryConflict        delivery.conflict          FAILED_PRECONDITION
        ├── DeliveryUnavailable     delivery.unavailable       UNAVAILABLE
        └── AttachmentUnknown       attachment.unknown         NOT_FOUND

The other codes a delivery may carry come from the tree as they are (``message.too_large``, ``message.tampered``,
``message.signature_invalid``, ``message.replayed``, ``peer.untrusted``, ``policy.denied``, …).
Codes are part of the public contract: never rename one; add new ones.
"""

from __future__ import annotations

import grpc

from crossway.core.errors import CrosswayError

__all__ = [
    "AttachmentUnknown",
    "DeliveryBusy",
    "DeliveryConflict",
    "DeliveryError",
    "DeliveryExpired",
    "DeliveryUnavailable",
    "DeliveryUnknown",
    "EncryptionRequired",
    "MailboxUnknown",
    "MessageTypeRefused",
]


class DeliveryError(CrosswayError):
    code = "delivery.error"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class MailboxUnknown(DeliveryError):
    code = "mailbox.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = "the recipient has no mailbox in the registry; `crossway registry mailbox list` shows them"


class MessageTypeRefused(DeliveryError):
    code = "message.type_refused"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "send a type the mailbox accepts (its registry entry lists them)"


class EncryptionRequired(DeliveryError):
    code = "message.encryption_required"
    default_hint = "the mailbox requires encryption and the recipient member has no encryption key registered"


class DeliveryExpired(DeliveryError):
    code = "delivery.expired"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "send it again with a later expires_at"


class DeliveryUnknown(DeliveryError):
    code = "delivery.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = "check the sender and message id; only the sender and the recipient see a message"


class DeliveryBusy(DeliveryError):
    code = "delivery.busy"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the same message is being handled right now; retry in a moment"


class DeliveryConflict(DeliveryError):
    code = "delivery.conflict"
    default_hint = "the message is not in a state that allows this (see its timeline)"


class AttachmentUnknown(DeliveryError):
    code = "attachment.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND
    default_hint = "upload it with SendAttachment first and name the attachment id it returned"


class DeliveryUnavailable(DeliveryError):
    code = "delivery.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the gateway's message store (NATS JetStream) is not reachable right now; retry shortly"
