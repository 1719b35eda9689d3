"""The in-process twin of :class:`~gateway.delivery.peerlink.GrpcDeliveryLink`: one room calls
another's peer handlers directly, with its gateway's TLS certificate as the stand-in TLS identity,
so the recipient's checks (step 1 included) run unchanged. For tests and demos in one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from audit.trail import SignedEvent
from crossway.core.errors import ProviderUnreachable
from gateway.delivery.recipient import RelayDesk
from gateway.wire.frames import Envelope

__all__ = ["LoopbackDeliveryLink", "LoopbackPeers"]


class _Served(Protocol):
    relays: RelayDesk


class LoopbackPeers:
    """The address book the loopback links share: peer address → the room serving it (or down)."""

    def __init__(self) -> None:
        self.rooms: dict[str, _Served] = {}
        self.down: set[str] = set()

    def serve(self, address: str, room: _Served) -> None:
        self.rooms[address] = room


class LoopbackDeliveryLink:
    def __init__(self, peers: LoopbackPeers, tls_cert_pem: bytes) -> None:
        self._peers = peers
        self._auth: Mapping[str, list[bytes]] = {"ssl_tls_version": [b"TLSv1.3"], "x509_pem_cert": [tls_cert_pem]}

    def _room(self, address: str) -> _Served:
        room = self._peers.rooms.get(address)
        if room is None or address in self._peers.down:
            raise ProviderUnreachable(f"the gateway at {address} did not answer: UNAVAILABLE")
        return room

    async def relay(
        self, address: str, attempt: Envelope, message: Envelope, events: list[SignedEvent], timeout: float
    ) -> list[SignedEvent]:
        room = self._room(address)
        return await asyncio.wait_for(room.relays.relay(attempt, message, events, self._auth), timeout)

    async def send_evidence(
        self, address: str, sender: str, message_id: str, events: list[SignedEvent], timeout: float
    ) -> None:
        room = self._room(address)
        await asyncio.wait_for(room.relays.evidence(sender, message_id, events, self._auth), timeout)

    async def upload(
        self, address: str, message: Envelope, attachment_id: str, chunks: AsyncIterator[bytes], timeout: float
    ) -> int:
        room = self._room(address)
        return await asyncio.wait_for(room.relays.attachment(message, attachment_id, chunks, self._auth), timeout)
