"""The gateway's message bus: registered delivery (issue 14) and topics (issue 15) on top of it.

Both run when the gateway's file has a ``[delivery]`` table; their handlers go on the client and
peer ports ahead of the catch-all proxy. Delivery gets what it shares with the pipelines (caller
authentication, the peer verifier) injected here, as Protocols of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from crossway.natsclient import NatsAccess
from gateway.client.callers import CallerAuthenticator
from gateway.delivery import DeliveryService, load_delivery_config
from gateway.provider.peers import PeerVerifier
from gateway.shared.context import GatewayContext
from gateway.topics import TopicService

__all__ = ["MessageBus"]


class MessageBus:
    def __init__(self) -> None:
        self.delivery: DeliveryService | None = None
        self.topics: TopicService | None = None

    async def start(
        self,
        source: Path,
        ctx: GatewayContext,
        nats: NatsAccess,
        callers: CallerAuthenticator,
        encryption_key: Any,
        tls_key_pem: bytes,
        tls_cert_pem: bytes,
    ) -> None:
        config = load_delivery_config(source)
        if not config.enabled:
            return
        delivery = self.delivery = DeliveryService(
            ctx,
            config,
            nats,
            callers=callers,
            peers=PeerVerifier(),
            encryption_key=encryption_key,
            tls_key_pem=tls_key_pem,
            tls_cert_pem=tls_cert_pem,
        )
        await delivery.start()
        self.topics = TopicService(delivery, callers=callers, peers=PeerVerifier())  # on delivery's machinery
        await self.topics.start()

    def client_handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        if self.delivery is None or self.topics is None:
            return []
        return [self.delivery.client_handler, self.topics.client_handler]

    def peer_handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        if self.delivery is None or self.topics is None:
            return []
        return [self.delivery.peer_handler, self.topics.peer_handler]

    async def aclose(self) -> None:
        if self.topics is not None:
            await self.topics.aclose()
        if self.delivery is not None:
            await self.delivery.aclose()  # its workers stop; what they held comes back after the ack wait
