"""The wire edge of the peer protocol: frames ⇄ ``crossway.v1.Envelope``, signing and verifying.

Order of checks when opening an envelope (fail closed, each with its own code):
1. the envelope has a header, a signature and a known algorithm      → message.malformed
2. the signature verifies over the header bytes *as received*         → message.signature_invalid
   (we verify before parsing, JWS-style, so a forged header is never interpreted)
3. the header parses                                                  → message.malformed
4. the body matches the signed SHA-256 digest                         → message.tampered
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from google.protobuf.message import DecodeError

from crossway.core.errors import MessageMalformed, MessageTampered, SignatureInvalid
from crossway.security.signing import Signer, verify_signature
from gateway.wire.frames import Encryption, Envelope, ExchangeStatus, FrameKind, FrameSignature, Header, SignedFrame
from protos.crossway.v1 import envelope_pb2 as pb

__all__ = [
    "KeyLookup",
    "decode_envelope",
    "encode_envelope",
    "envelope_from_pb",
    "envelope_to_pb",
    "open_envelope",
    "open_header",
    "seal_frame",
]

# (signer member id, key id) → public key, or None when the registry knows no such key.
KeyLookup = Callable[[str, str], Any]

_ALG_TO_PB = {"ES256": pb.SIGNATURE_ALGORITHM_ES256, "EdDSA": pb.SIGNATURE_ALGORITHM_EDDSA}
_PB_TO_ALG = {v: k for k, v in _ALG_TO_PB.items()}
_KINDS = frozenset(int(k) for k in FrameKind)


def envelope_to_pb(env: Envelope) -> pb.Envelope:
    out = pb.Envelope(header=env.header, body=env.body)
    if env.signature or env.key_id:
        out.signature.CopyFrom(
            pb.Signature(
                algorithm=_ALG_TO_PB.get(env.algorithm, pb.SIGNATURE_ALGORITHM_UNSPECIFIED),
                key_id=env.key_id,
                value=env.signature,
            )
        )
    return out


def envelope_from_pb(p: pb.Envelope) -> Envelope:
    # An unknown algorithm is kept visible (refused, by number, when the envelope is opened).
    sig = p.signature
    return Envelope(p.header, p.body, _PB_TO_ALG.get(sig.algorithm, f"#{sig.algorithm}"), sig.key_id, sig.value)


def encode_envelope(env: Envelope) -> bytes:
    """The gRPC serializer of the peer port and the peer channels."""
    return envelope_to_pb(env).SerializeToString()


def decode_envelope(data: bytes) -> Envelope:
    """The gRPC deserializer of the peer port and the peer channels; garbage is malformed."""
    try:
        return envelope_from_pb(pb.Envelope.FromString(data))
    except DecodeError as exc:
        raise MessageMalformed("the peer sent bytes that are not a crossway.v1.Envelope") from exc


def _header_to_pb(h: Header) -> pb.Header:
    out = pb.Header(
        message_id=h.message_id,
        kind=int(h.kind),  # type: ignore[arg-type]
        client=h.client,
        service=h.service,
        method=h.method,
        user_id=h.user_id,
        purpose=h.purpose,
        issued_at_ms=h.issued_at_ms,
        deadline_ms=h.deadline_ms,
        traceparent=h.traceparent,
        body_sha256=h.body_sha256,
        request_hash=h.request_hash,
        sequence=h.sequence,
        previous_hash=h.previous_hash,
        signer=h.signer,
        client_streaming=h.client_streaming,
        server_streaming=h.server_streaming,
        withheld_fields=h.withheld_fields,
        user_token=h.user_token,
        event_key=h.event_key,
        key_sequence=h.key_sequence,
    )
    if h.encryption is not None:
        e = h.encryption
        out.encryption.CopyFrom(
            pb.EncryptionInfo(
                ephemeral_public_key=e.ephemeral_public_key, recipient_key_id=e.recipient_key_id, nonce=e.nonce
            )
        )
    if h.status is not None:
        s = h.status
        out.status.CopyFrom(pb.Status(grpc_code=s.grpc_code, error_code=s.error_code, message=s.message, hint=s.hint))
    return out


def _header_from_pb(p: pb.Header) -> Header:
    if p.kind not in _KINDS:
        raise MessageMalformed(f"header of message {p.message_id!r} has unknown kind {p.kind}")
    enc = None
    if p.HasField("encryption"):
        e = p.encryption
        enc = Encryption(e.ephemeral_public_key, e.recipient_key_id, e.nonce)
    status = None
    if p.HasField("status"):
        s = p.status
        status = ExchangeStatus(s.grpc_code, s.error_code, s.message, s.hint)
    return Header(
        message_id=p.message_id,
        kind=FrameKind(p.kind),
        client=p.client,
        service=p.service,
        method=p.method,
        user_id=p.user_id,
        purpose=p.purpose,
        issued_at_ms=p.issued_at_ms,
        deadline_ms=p.deadline_ms,
        traceparent=p.traceparent,
        body_sha256=p.body_sha256,
        request_hash=p.request_hash,
        sequence=p.sequence,
        previous_hash=p.previous_hash,
        encryption=enc,
        status=status,
        signer=p.signer,
        client_streaming=p.client_streaming,
        server_streaming=p.server_streaming,
        withheld_fields=tuple(p.withheld_fields),
        user_token=p.user_token,
        event_key=p.event_key,
        key_sequence=p.key_sequence,
    )


def seal_frame(header: Header, body: bytes, signer: Signer) -> tuple[Envelope, SignedFrame]:
    """Bind the body by its digest, then sign the header bytes."""
    header = replace(header, body_sha256=hashlib.sha256(body).digest())
    header_bytes = _header_to_pb(header).SerializeToString()
    value = signer.sign(header_bytes)
    sig = FrameSignature(signer.algorithm, signer.key_id, value)
    env = Envelope(header_bytes, body, signer.algorithm, signer.key_id, value)
    return env, SignedFrame(header, header_bytes, hashlib.sha256(header_bytes).digest(), body, sig)


def open_envelope(env: Envelope, signer_member: str, lookup: KeyLookup) -> SignedFrame:
    """Verify and parse an envelope signed by ``signer_member`` (known from the peer's TLS identity)."""
    frame = open_header(env, signer_member, lookup)
    # 4. body digest
    if hashlib.sha256(env.body).digest() != frame.header.body_sha256:
        raise MessageTampered(f"body of message {frame.header.message_id} does not match its signed digest")
    return frame


def open_header(env: Envelope, signer_member: str, lookup: KeyLookup) -> SignedFrame:
    """Steps 1-3 only: the signed header, for a frame whose body is not shown (a topic event a
    subscriber received minimized: the copy it got carries the body, bound to this header)."""
    # 1. structure
    if not env.header or not env.signature:
        raise MessageMalformed("envelope without header or signature")
    algorithm = env.algorithm
    if algorithm not in _ALG_TO_PB:
        raise MessageMalformed(f"envelope signed with unknown algorithm {algorithm.lstrip('#')}")
    key_id = env.key_id
    # 2. signature over the bytes as received
    public_key = lookup(signer_member, key_id)
    if public_key is None:
        raise SignatureInvalid(f"member {signer_member} has no registered signing key {key_id[:16]}…")
    verify_signature(public_key, algorithm, env.header, env.signature)
    # 3. parse
    try:
        parsed = pb.Header.FromString(env.header)
    except DecodeError as exc:
        raise MessageMalformed("signed header does not parse") from exc
    header = _header_from_pb(parsed)
    if header.signer != signer_member:
        raise SignatureInvalid(f"message {header.message_id} names signer {header.signer}, peer is {signer_member}")
    return SignedFrame(
        header,
        env.header,
        hashlib.sha256(env.header).digest(),
        env.body,
        FrameSignature(algorithm, key_id, env.signature),
    )
