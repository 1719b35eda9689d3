"""One gateway's registered delivery: its parts built and owned in one place.

The runtime builds a :class:`DeliveryService` when ``[delivery] enabled`` (the default), hands it
the pieces it shares with the pipelines (the gateway context, the caller authenticator, the peer
verifier, the encryption key, the TLS identity), adds its two gRPC handlers to the client and
peer servers, and owns its ``start()``/``aclose()``. Start-up never blocks on NATS: the store
connects in the background and calls wait (briefly) until it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from crossway.bus import Names
from crossway.core.ids import SubsystemId
from crossway.natsclient import NatsAccess
from crossway.security.replay import MemoryReplayGuard
from gateway.delivery.attachments import AttachmentStore
from gateway.delivery.config import DeliveryConfig
from gateway.delivery.edge import CallerCheck, DeliveryClientHandler, DeliveryPeerHandler
from gateway.delivery.errors import AttachmentUnknown, DeliveryUnavailable, DeliveryUnknown
from gateway.delivery.evidence import EvidenceBook
from gateway.delivery.forwarder import EvidenceForwarder
from gateway.delivery.handover import ExpiryWorker, Mailboxes
from gateway.delivery.message import delivery_key
from gateway.delivery.peerlink import DeliveryLink, GrpcDeliveryLink
from gateway.delivery.policies import PolicyHolder
from gateway.delivery.push import PushWorker
from gateway.delivery.query import Queries
from gateway.delivery.recipient import PeerCheck, RelayDesk
from gateway.delivery.relay import RelayWorker
from gateway.delivery.sender import SubmissionDesk
from gateway.delivery.store import DeliveryStore
from gateway.shared.context import GatewayContext

__all__ = ["DeliveryService"]

log = logging.getLogger(__name__)

_READY_WAIT_S = 5.0


class DeliveryService:
    def __init__(
        self,
        ctx: GatewayContext,
        config: DeliveryConfig,
        nats: NatsAccess,
        *,
        callers: CallerCheck,
        peers: PeerCheck,
        encryption_key: object | None,
        tls_key_pem: bytes = b"",
        tls_cert_pem: bytes = b"",
        link: DeliveryLink | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.names = names = Names(ctx.gateway_id)
        self.store = store = DeliveryStore(nats, names, config.retention_s)
        self.book = book = EvidenceBook(ctx, store, names)
        self.attachments = AttachmentStore(store, names, config.chunk_bytes, config.max_attachment_bytes)
        self._own_link = link is None
        self.link: DeliveryLink = link or GrpcDeliveryLink(tls_key_pem, tls_cert_pem, lambda: ctx.config().ca_pem)
        self.submissions = SubmissionDesk(ctx, store, names, book, config, self.attachments)
        self.relays = RelayDesk(
            ctx,
            store,
            names,
            book,
            config,
            PolicyHolder(config.policy_dir, ctx.gateway_id.member),
            MemoryReplayGuard(),
            peers,
            encryption_key,
            self.attachments,
        )
        self.mailboxes = Mailboxes(
            ctx, store, names, book, config, encryption_key, pushed=frozenset(t.mailbox for t in config.push)
        )
        self.queries = Queries(ctx, store, names)
        self.pushes = [PushWorker(ctx, store, names, book, config, t, encryption_key) for t in config.push]
        self._workers = [
            RelayWorker(ctx, store, names, book, config, self.link, self.attachments).worker,
            ExpiryWorker(ctx, store, names, book, config).worker,
            EvidenceForwarder(ctx, store, names, config, self.link).worker,
            *(p.worker for p in self.pushes),
        ]
        self.client_handler = DeliveryClientHandler(self, callers)
        self.peer_handler = DeliveryPeerHandler(self)
        self._boot: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._boot = asyncio.create_task(self.store.start(), name=f"delivery store {self.ctx.gateway_id}")
        for worker in self._workers:
            worker.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._boot), _READY_WAIT_S)

    async def wait_ready(self) -> None:
        if self.store.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.store.ready.wait(), _READY_WAIT_S)
        except TimeoutError:
            raise DeliveryUnavailable("registered delivery is still starting (no NATS connection yet)") from None

    async def fetch_attachment(
        self, caller: SubsystemId, sender: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        """A received message's attachment, for its recipient only."""
        _, state = await self.queries.state(caller, sender, message_id)
        if state.role != "in" or "RelayAcceptance" not in state.names:
            raise DeliveryUnknown(f"{caller} received no message {sender}/{message_id}")
        stored = await self.attachments.stored(delivery_key(sender, message_id), attachment_id)
        if stored is None:
            raise AttachmentUnknown(f"message {sender}/{message_id} has no attachment {attachment_id[:40]!r}")
        async for chunk in self.attachments.read(stored):
            yield chunk

    async def aclose(self, grace_s: float = 2.0) -> None:
        for worker in self._workers:
            await worker.aclose(grace_s)
        for push in self.pushes:
            await push.aclose()
        if self._boot is not None and not self._boot.done():
            self._boot.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._boot
        if self._own_link and isinstance(self.link, GrpcDeliveryLink):
            await self.link.aclose()
        await self.store.aclose()
