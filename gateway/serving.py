"""The gateway's gRPC servers' options, and the key and certificate forms the composition root hands to the ports and the status API."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization

from gateway.shared.config import Limits
from gateway.wire.flow import FLOW_CONTROL


def _server_options(limits: Limits, *, metadata: bool = False) -> list[tuple[str, Any]]:
    """Options of the client and peer ports' servers: gRPC's message cap from [limits] (memory
    per call is proportional to it), and on the client port room for metadata over the limit to
    be refused with a reason instead of by gRPC without one."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", limits.grpc_message_bytes),
        ("grpc.max_receive_message_length", limits.grpc_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        *FLOW_CONTROL,
    ]
    if metadata:
        options += [
            ("grpc.max_metadata_size", limits.grpc_metadata_bytes),
            ("grpc.absolute_max_metadata_size", limits.grpc_metadata_bytes),
        ]
    return options


def _pem_private(key: Any) -> bytes:
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _cert_subject(cert: Any) -> str:
    """The Crossway identity in the certificate (its URI SAN), else its subject DN."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    return str(uris[0]) if uris else str(cert.subject.rfc4514_string())
