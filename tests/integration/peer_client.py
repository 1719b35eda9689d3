"""A hand-driven peer gateway for tests: builds envelopes itself, so tests can tamper with them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from crossway.demo.federation import Federation
from crossway.security.keys import generate_tls_key, load_certificate, load_private_key
from crossway.security.pki import CertKind, build_csr, cert_fingerprint, cert_to_pem, gateway_uri
from crossway.security.signing import Signer
from gateway.wire.codec import envelope_to_pb, seal_frame
from gateway.wire.frames import FrameKind, Header
from protos.crossway.v1 import envelope_pb2 as pb
from protos.crossway.v1 import peer_pb2 as mux_pb

CALL = "/crossway.v1.PeerExchange/Call"
STREAM = "/crossway.v1.PeerExchange/Stream"
MULTIPLEX = "/crossway.v1.PeerExchange/Multiplex"


def pem_key(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class PeerClient:
    address: str
    ca_pem: bytes
    tls_key_pem: bytes
    tls_cert_pem: bytes
    signer: Signer
    member: str

    @classmethod
    def from_gateway_keys(cls, keys: Path, address: str, ca_pem: bytes, member: str) -> PeerClient:
        signing_cert = load_certificate(keys / "signing.crt")
        signer = Signer(load_private_key(keys / "signing.key"), cert_fingerprint(signing_cert))  # type: ignore[arg-type]
        return cls(
            address,
            ca_pem,
            pem_key(load_private_key(keys / "tls.key")),
            (keys / "tls.crt").read_bytes(),
            signer,
            member,
        )

    def channel(self) -> grpc.aio.Channel:
        creds = grpc.ssl_channel_credentials(self.ca_pem, self.tls_key_pem, self.tls_cert_pem)
        return grpc.aio.secure_channel(self.address, creds)

    def request_header(self, client: str, service: str, method: str, **fields: object) -> Header:
        now = int(time.time() * 1000)
        header = Header(
            message_id=uuid.uuid4().hex,
            kind=FrameKind.REQUEST,
            client=client,
            service=service,
            method=method,
            issued_at_ms=now,
            deadline_ms=now + 10_000,
            signer=self.member,
        )
        return replace(header, **fields)  # type: ignore[arg-type]

    def seal(self, header: Header, body: bytes, signer: Signer | None = None) -> pb.Envelope:
        env, _ = seal_frame(header, body, signer or self.signer)
        return envelope_to_pb(env)

    async def call(self, env: pb.Envelope) -> pb.Envelope:
        async with self.channel() as channel:
            method = channel.unary_unary(
                CALL, request_serializer=pb.Envelope.SerializeToString, response_deserializer=pb.Envelope.FromString
            )
            return await method(env, timeout=10)

    async def multiplex(self, envelopes: list[pb.Envelope]) -> dict[int, mux_pb.MuxReply]:
        """Send the envelopes on one Multiplex stream, tagged 1..n; the replies by tag."""
        async with self.channel() as channel:
            method = channel.stream_stream(
                MULTIPLEX,
                request_serializer=mux_pb.MuxRequests.SerializeToString,
                response_deserializer=mux_pb.MuxReplies.FromString,
            )
            # Odd tags one message each, even ones batched together: both shapes are served.
            tagged = [mux_pb.MuxRequest(tag=i, envelope=env) for i, env in enumerate(envelopes, 1)]
            batches = [mux_pb.MuxRequests(requests=[r]) for r in tagged if r.tag % 2]
            batches.append(mux_pb.MuxRequests(requests=[r for r in tagged if not r.tag % 2]))
            return {
                reply.tag: reply async for replies in method(iter(batches), timeout=10) for reply in replies.replies
            }


def outcome(env_or_exc: pb.Envelope | grpc.aio.AioRpcError | mux_pb.MuxReply) -> str:
    """The stable error code the provider answered with: from a signed status, from trailing
    metadata, or from a Multiplex refusal."""
    if isinstance(env_or_exc, mux_pb.MuxReply):
        if env_or_exc.HasField("refusal"):
            return env_or_exc.refusal.error_code
        return outcome(env_or_exc.response)
    if isinstance(env_or_exc, grpc.aio.AioRpcError):
        return str(dict(env_or_exc.trailing_metadata() or ()).get("crossway-error", env_or_exc.code().name))
    header = pb.Header.FromString(env_or_exc.header)
    return header.status.error_code or "ok"


class EncryptedExchange:
    """Encrypts frames to the provider the way a client gateway does (AAD = message/direction/sequence)."""

    def __init__(self, recipient_public_raw: bytes, message_id: str) -> None:
        from crossway.security.encryption import ClientSession

        self.session = ClientSession.start(recipient_public_raw)
        self.message_id = message_id

    def opening(self, header: Header, body: bytes = b"") -> tuple[Header, bytes]:
        from gateway.wire.frames import Encryption

        nonce, sealed = self.session.seal_request(body, f"{self.message_id}/request/0".encode())
        info = Encryption(self.session.ephemeral_public, self.session.recipient_key_id, nonce if body else b"")
        return replace(header, encryption=info), sealed if body else b""

    def frame(self, body: bytes, sequence: int) -> tuple[bytes, object]:
        from gateway.wire.frames import Encryption

        nonce, sealed = self.session.seal_request(body, f"{self.message_id}/request/{sequence}".encode())
        return sealed, Encryption(b"", b"", nonce)


async def with_new_tls_certificate(peer: PeerClient, federation: Federation) -> tuple[PeerClient, str]:
    """``peer`` with a fresh TLS certificate issued to the tax gateway and published; its serial."""
    assert federation.authority is not None
    key = generate_tls_key()
    csr = build_csr(key, subject_uri=gateway_uri(federation.tax.gateway), ip_addresses=("127.0.0.1",))
    cert = federation.authority.issue(csr.public_bytes(Encoding.PEM), kind=CertKind.TLS, gateway=federation.tax.gateway)
    await federation.publish_and_wait()
    return replace(peer, tls_key_pem=pem_key(key), tls_cert_pem=cert_to_pem(cert)), str(cert.serial_number)


def mux_handler(behaviour: Any) -> grpc.RpcMethodHandler[Any, Any]:
    """A ``Multiplex`` method handler for a stand-in provider (a stream-stream ``behaviour``)."""
    return grpc.stream_stream_rpc_method_handler(
        behaviour,
        request_deserializer=mux_pb.MuxRequests.FromString,
        response_serializer=mux_pb.MuxReplies.SerializeToString,
    )
