"""How a client gateway reaches a provider gateway: the :class:`PeerLink` seam.

The client pipeline sends a signed REQUEST envelope (unary) or opens a stream of chained frames
(the three streaming kinds) to one of the provider's gateways, a :class:`PeerTarget`; the
provider pipeline, a :class:`PeerEndpoint`, answers. Two implementations of the seam:

- :class:`gateway.wire.channels.GrpcPeerLink` — production: pooled mTLS channels,
  ``PeerExchange.Multiplex`` / ``Call`` for unary exchanges and ``Stream`` for streams;
- :class:`gateway.wire.loopback.LoopbackLink` — the in-process twin: the provider pipeline is
  called directly, with the client gateway's certificate as its TLS identity, so both pipelines
  run together in one process without a socket (unit tests, ``bench.pipeline``).

Either way the link speaks in domain values (:class:`~gateway.wire.frames.Envelope`) and fails
with the error tree: the provider's refusal comes back as the provider's error (hop
``provider gateway``), an unreachable peer as ``peer.unavailable`` (the client fails over to the
provider's next gateway), an exhausted deadline as ``deadline.exceeded``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.wire.frames import Envelope

__all__ = ["AuthContext", "PeerEndpoint", "PeerLink", "PeerStream", "PeerTarget"]

# What the provider learns of the connection: gRPC's auth context (``x509_pem_cert``,
# ``ssl_tls_version``, …), or the loopback twin's stand-in for it.
AuthContext = Mapping[str, Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class PeerTarget:
    """One gateway of the provider, as the verified configuration names it."""

    address: str  # host:port of its peer port
    gateway: str  # its gateway id (recorded as the peer of the exchange)
    provider: str  # the provider member (for messages)
    trust: bytes  # PEM of the registry CA(s) its TLS certificate must chain to


class PeerStream(Protocol):
    """One open streaming exchange: request frames out, response frames in."""

    async def write(self, envelope: Envelope) -> None:
        """Send one request frame; raises a ``CrosswayError`` when the stream is gone."""

    async def done_writing(self) -> None:
        """No more request frames."""

    def responses(self) -> AsyncIterator[Envelope]:
        """The provider's frames, in order; raises a ``CrosswayError`` when the stream fails."""

    def cancel(self) -> None:
        """Give up on the exchange (idempotent); the provider sees a cancellation."""


class PeerLink(Protocol):
    """The client side of the hop between gateways."""

    async def exchange(self, target: PeerTarget, envelope: Envelope, timeout: float) -> Envelope:
        """One unary exchange: the provider's signed response envelope."""

    def open_stream(self, target: PeerTarget, timeout: float) -> PeerStream:
        """Open a streaming exchange (nothing is sent until the first write)."""

    async def aclose(self) -> None:
        """Close every connection; exchanges in flight fail."""


class PeerEndpoint(Protocol):
    """The provider side of the hop: what a peer port (or the loopback twin) hands envelopes to."""

    async def call(self, envelope: Envelope, auth_context: AuthContext) -> Envelope:
        """Answer one unary exchange; raises a ``CrosswayError`` when refused before signing."""

    def stream(self, frames: AsyncIterator[Envelope], auth_context: AuthContext) -> AsyncIterator[Envelope]:
        """Answer one streaming exchange, frame by frame."""
