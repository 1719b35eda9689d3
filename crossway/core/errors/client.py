"""The caller's own errors at its gateway: who it is, and the metadata it sent."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = [
    "ClientAuthError",
    "ClientDisabled",
    "ClientMetadataInvalid",
    "ClientUnknown",
    "TokenInvalid",
    "Unauthenticated",
]


class ClientAuthError(CrosswayError):
    code = "client.unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class Unauthenticated(ClientAuthError):
    code = "client.unauthenticated"
    default_hint = "present a client certificate registered for your subsystem, or a bearer JWT"


class TokenInvalid(ClientAuthError):
    code = "client.token_invalid"
    default_hint = "get a fresh token from your identity provider; check iss, aud and exp"


class ClientUnknown(ClientAuthError):
    code = "client.unknown"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "register the subsystem with this gateway and the registry first"


class ClientMetadataInvalid(CrosswayError):
    """The caller's gRPC metadata is unusable: too many entries, too large, or a Crossway key
    given twice or with a value that cannot be right. Refused before anything is sent."""

    code = "client.metadata_invalid"
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    default_hint = "send each crossway-* metadata key at most once, with a short printable value, and few other entries"


class ClientDisabled(ClientAuthError):
    """The registry operator disabled the calling subsystem or its member (issue 17)."""

    code = "client.disabled"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "the registry operator disabled this client; ask them to enable it (crossway registry … enable)"
