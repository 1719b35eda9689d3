"""The gateway at the other end, as its TLS identity shows it."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = ["PeerDisabled", "PeerError", "PeerRevoked", "PeerUntrusted"]


class PeerError(CrosswayError):
    code = "peer.untrusted"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PeerUntrusted(PeerError):
    code = "peer.untrusted"
    default_hint = "the peer's certificate is not one the registry issued to a gateway of that member"


class PeerRevoked(PeerError):
    code = "peer.revoked"
    default_hint = "the certificate was revoked by the registry; the member must get a new one"


class PeerDisabled(PeerError):
    """The registry operator disabled the gateway (or its member) at the other end (issue 17)."""

    code = "peer.disabled"
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_hint = "the registry operator disabled that gateway; ask them, or use another gateway of the member"
