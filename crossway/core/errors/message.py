"""The envelope between gateways: its size, time window, signature, chain and encryption."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = [
    "DeadlineTooFar",
    "DecryptionFailed",
    "MessageError",
    "MessageExpired",
    "MessageMalformed",
    "MessageReplayed",
    "MessageTampered",
    "MessageTooLarge",
    "SignatureInvalid",
    "StreamBroken",
]


class MessageError(CrosswayError):
    code = "message.malformed"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class MessageMalformed(MessageError):
    code = "message.malformed"
    default_hint = "the peer sent an envelope this gateway cannot read; check both gateways' versions"


class MessageTooLarge(MessageError):
    code = "message.too_large"
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_hint = (
        "send large payloads through a streaming method (they travel in signed chunks), "
        "or ask the operators of both gateways to raise [limits] max_message_bytes"
    )


class DeadlineTooFar(MessageError):
    code = "message.deadline_too_far"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "use a shorter deadline: the provider gateway bounds it ([limits] max_deadline_s)"


class MessageTampered(MessageError):
    code = "message.tampered"
    default_hint = "the body does not match its signed digest; the message was altered in transit"


class SignatureInvalid(MessageError):
    code = "message.signature_invalid"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_hint = "the signature does not verify with the member's registered signing certificate"


class MessageReplayed(MessageError):
    code = "message.replayed"
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    default_hint = "every request needs a fresh message id; this one was already seen"


class MessageExpired(MessageError):
    code = "message.expired"
    grpc_status = grpc.StatusCode.DEADLINE_EXCEEDED
    default_hint = "the message is outside the allowed time window; check both clocks (NTP)"


class StreamBroken(MessageError):
    code = "message.stream_broken"
    grpc_status = grpc.StatusCode.DATA_LOSS
    default_hint = "a stream message was dropped, reordered or injected; retry the call"


class DecryptionFailed(MessageError):
    code = "message.decryption_failed"
    default_hint = "the body was not encrypted to this provider's current key; refresh configuration"
