"""The gRPC edge of the delivery room: ``crossway.v1.Delivery`` on the client port and
``crossway.v1.PeerDelivery`` on the peer port, as generic handlers the runtime adds to its servers
ahead of the catch-all proxy.

Every client-port call is authenticated like a call through the gateway (pinned client
certificate or bearer JWT of a subsystem of this gateway's member); a peer-port call is
identified by its mTLS certificate inside the room. Errors leave as one gRPC status with the
stable code in ``crossway-error`` and the hint in ``crossway-hint``, as for exchanges.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import grpc

from crossway.core.errors import CrosswayError, Hop, InternalError
from crossway.core.ids import SubsystemId
from gateway.delivery.attachments import AttachmentStore
from gateway.delivery.convert import event_to_pb, events_from_pb
from gateway.delivery.errors import DeliveryUnavailable
from gateway.delivery.handover import Delivered, Mailboxes
from gateway.delivery.query import Queries
from gateway.delivery.recipient import RelayDesk
from gateway.delivery.sender import Submission, SubmissionDesk
from gateway.delivery.store import NATS_ERRORS
from gateway.wire.codec import envelope_from_pb
from gateway.wire.metadata import metadata_text
from protos.crossway.v1 import delivery_pb2 as dpb

if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    _GenericHandler = grpc.GenericRpcHandler

__all__ = [
    "CallerCheck",
    "ClientHandler",
    "DeliveryClientHandler",
    "DeliveryParts",
    "DeliveryPeerHandler",
    "abort",
    "translate",
]

log = logging.getLogger(__name__)

CLIENT_PREFIX = "/crossway.v1.Delivery/"
PEER_PREFIX = "/crossway.v1.PeerDelivery/"


class _HasSubsystem(Protocol):
    @property
    def subsystem(self) -> SubsystemId: ...


class DeliveryParts(Protocol):
    """What the handlers use of :class:`gateway.delivery.service.DeliveryService`."""

    submissions: SubmissionDesk
    attachments: AttachmentStore
    mailboxes: Mailboxes
    queries: Queries
    relays: RelayDesk

    async def wait_ready(self) -> None: ...

    def fetch_attachment(
        self, caller: SubsystemId, sender: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]: ...


class CallerCheck(Protocol):
    """Client-side step 1 (``gateway.client.callers.CallerAuthenticator``), injected by the runtime."""

    def authenticate(self, peer_cert_pem: bytes | None, authorization: str | None) -> _HasSubsystem: ...


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: CrosswayError, hop: Hop) -> NoReturn:
    error.at(hop)
    trailing = (("crossway-error", error.code), ("crossway-hint", _ascii(error.hint)))
    await context.abort(error.status, error.details(), trailing_metadata=trailing)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def translate(exc: BaseException) -> CrosswayError:
    if isinstance(exc, CrosswayError):
        return exc
    if isinstance(exc, NATS_ERRORS):
        return DeliveryUnavailable(f"the message store is unavailable ({type(exc).__name__})")
    log.exception("internal error in a delivery call", exc_info=exc)
    return InternalError(f"unexpected {type(exc).__name__} in a delivery call")


def _delivered_pb(d: Delivered) -> dpb.DeliveredMessage:
    return dpb.DeliveredMessage(
        ref=dpb.MessageRef(sender=d.sender, message_id=d.message_id),
        recipient=d.recipient,
        type=d.message_type,
        payload=d.payload,
        content_type=d.content_type,
        correlation_id=d.correlation_id,
        purpose=d.purpose,
        submitted_at_ms=d.submitted_at_ms,
        expires_at_ms=d.expires_at_ms,
        attachments=[
            dpb.Attachment(
                attachment_id=a.attachment_id,
                name=a.name,
                content_type=a.content_type,
                size=a.size,
                chunk_sha256=list(a.chunk_sha256),
            )
            for a in d.attachments
        ],
        decide_by_ms=d.decide_by_ms,
    )


Unary = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


class _Ready(Protocol):
    async def wait_ready(self) -> None: ...


class ClientHandler(_GenericHandler):
    """A client-port service's methods behind the caller's authentication (shared with topics):
    subclasses fill ``_methods`` with handlers wrapped in ``_guard``/``_guard_stream``."""

    prefix = CLIENT_PREFIX

    def __init__(self, service: _Ready, callers: CallerCheck) -> None:
        self._ready = service
        self._callers = callers
        self._methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        path: str = handler_call_details.method
        if not path.startswith(self.prefix):
            return None
        return self._methods.get(path[len(self.prefix) :])

    def _caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> SubsystemId:
        md = metadata_text(context.invocation_metadata())
        pems = list(context.auth_context().get("x509_pem_cert", ()))
        return self._callers.authenticate(pems[0] if pems else None, md.get("authorization")).subsystem

    def _guard(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                caller = self._caller(context)
                await self._ready.wait_ready()
                return await fn(caller, request, context)
            except Exception as exc:
                await abort(context, translate(exc), Hop.CLIENT)

        return handle

    def _guard_stream(self, fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                caller = self._caller(context)
                await self._ready.wait_ready()
                async for item in fn(caller, request, context):
                    yield item
            except Exception as exc:
                await abort(context, translate(exc), Hop.CLIENT)

        return handle


class DeliveryClientHandler(ClientHandler):
    """``/crossway.v1.Delivery/*`` on the client port."""

    def __init__(self, service: DeliveryParts, callers: CallerCheck) -> None:
        super().__init__(service, callers)
        self._s = service
        u, ss = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
        self._methods = {
            "Send": u(self._guard(self._send), dpb.SendRequest.FromString, dpb.SendResponse.SerializeToString),
            "SendAttachment": grpc.stream_unary_rpc_method_handler(
                self._guard(self._send_attachment), dpb.AttachmentChunk.FromString, dpb.Attachment.SerializeToString
            ),
            "Receive": ss(
                self._guard_stream(self._receive), dpb.ReceiveRequest.FromString, dpb.DeliveredMessage.SerializeToString
            ),
            "FetchAttachment": ss(
                self._guard_stream(self._fetch), dpb.AttachmentRequest.FromString, dpb.AttachmentChunk.SerializeToString
            ),
            "Ack": u(self._guard(self._ack), dpb.MessageRef.FromString, dpb.EvidenceReply.SerializeToString),
            "Accept": u(self._guard(self._accept), dpb.ConsentRequest.FromString, dpb.EvidenceReply.SerializeToString),
            "Reject": u(self._guard(self._reject), dpb.ConsentRequest.FromString, dpb.EvidenceReply.SerializeToString),
            "Timeline": ss(
                self._guard_stream(self._timeline), dpb.TimelineRequest.FromString, dpb.TimelineEvent.SerializeToString
            ),
            "Evidence": u(self._guard(self._evidence), dpb.MessageRef.FromString, dpb.EvidenceBundle.SerializeToString),
            "Report": u(self._guard(self._report), dpb.ReportRequest.FromString, dpb.DeliveryReport.SerializeToString),
        }

    # -- the methods ---------------------------------------------------------------------------

    async def _send(self, caller: SubsystemId, r: dpb.SendRequest, context: Any) -> dpb.SendResponse:
        md = metadata_text(context.invocation_metadata())
        outcome = await self._s.submissions.send(
            caller,
            Submission(
                recipient=r.recipient,
                message_id=r.message_id,
                message_type=r.type,
                payload=r.payload,
                expires_at_ms=r.expires_at_ms,
                content_type=r.content_type,
                attachment_ids=tuple(r.attachment_ids),
                purpose=r.purpose,
                correlation_id=r.correlation_id,
            ),
            traceparent=md.get("traceparent", ""),
        )
        response = dpb.SendResponse(evidence=event_to_pb(outcome.evidence), duplicate=outcome.duplicate)
        if outcome.refusal is not None:
            e = outcome.refusal
            response.refusal.CopyFrom(
                dpb.Refusal(grpc_code=e.status.value[0], error_code=e.code, message=e.message, hint=e.hint)
            )
        return response

    async def _send_attachment(
        self, caller: SubsystemId, chunks: AsyncIterator[dpb.AttachmentChunk], _: Any
    ) -> dpb.Attachment:
        first = await anext(chunks, None)
        if first is None:
            from crossway.core.errors import MessageMalformed

            raise MessageMalformed("an attachment upload without a first chunk")

        async def data() -> AsyncIterator[bytes]:
            yield first.data
            async for chunk in chunks:
                yield chunk.data

        info = await self._s.attachments.upload(caller, first.name, first.content_type, data())
        return dpb.Attachment(
            attachment_id=info.attachment_id,
            name=info.name,
            content_type=info.content_type,
            size=info.size,
            chunk_sha256=list(info.chunk_sha256),
        )

    async def _receive(self, caller: SubsystemId, r: dpb.ReceiveRequest, _: Any) -> AsyncIterator[dpb.DeliveredMessage]:
        async for delivered in self._s.mailboxes.receive(caller, r.max_messages, r.wait_ms):
            yield _delivered_pb(delivered)

    async def _fetch(self, caller: SubsystemId, r: dpb.AttachmentRequest, _: Any) -> AsyncIterator[dpb.AttachmentChunk]:
        async for data in self._s.fetch_attachment(caller, r.message.sender, r.message.message_id, r.attachment_id):
            yield dpb.AttachmentChunk(data=data)

    async def _ack(self, caller: SubsystemId, r: dpb.MessageRef, _: Any) -> dpb.EvidenceReply:
        signed = await self._s.mailboxes.ack(caller, r.sender, r.message_id)
        return dpb.EvidenceReply(evidence=event_to_pb(signed))

    async def _accept(self, caller: SubsystemId, r: dpb.ConsentRequest, _: Any) -> dpb.EvidenceReply:
        signed = await self._s.mailboxes.decide(caller, r.message.sender, r.message.message_id, True, r.reason)
        return dpb.EvidenceReply(evidence=event_to_pb(signed))

    async def _reject(self, caller: SubsystemId, r: dpb.ConsentRequest, _: Any) -> dpb.EvidenceReply:
        signed = await self._s.mailboxes.decide(
            caller, r.message.sender, r.message.message_id, False, r.reason or "rejected by the recipient"
        )
        return dpb.EvidenceReply(evidence=event_to_pb(signed))

    async def _timeline(self, caller: SubsystemId, r: dpb.TimelineRequest, _: Any) -> AsyncIterator[dpb.TimelineEvent]:
        async for signed in self._s.queries.timeline(caller, r.message.sender, r.message.message_id, r.follow):
            e = signed.event
            yield dpb.TimelineEvent(
                evidence=event_to_pb(signed),
                event=e.event,
                issuer=e.issuer,
                time_ms=e.time_ms,
                reason_code=e.reason_code,
                reason=e.reason,
            )

    async def _evidence(self, caller: SubsystemId, r: dpb.MessageRef, _: Any) -> dpb.EvidenceBundle:
        return dpb.EvidenceBundle(bundle=await self._s.queries.bundle(caller, r.sender, r.message_id))

    async def _report(self, caller: SubsystemId, r: dpb.ReportRequest, _: Any) -> dpb.DeliveryReport:
        rows = await self._s.queries.report(caller, r.overdue_before_ms)
        return dpb.DeliveryReport(
            rows=[
                dpb.ReportRow(
                    role=row.role,
                    subsystem=row.subsystem,
                    total=row.total,
                    pending=row.pending,
                    handed_over=row.handed_over,
                    refused=row.refused,
                    expired=row.expired,
                    overdue=len(row.overdue),
                    overdue_messages=[dpb.MessageRef(sender=s, message_id=m) for s, m in row.overdue],
                    expired_messages=[dpb.MessageRef(sender=s, message_id=m) for s, m in row.expired_messages],
                )
                for row in rows
            ]
        )


class DeliveryPeerHandler(_GenericHandler):
    """``/crossway.v1.PeerDelivery/*`` on the peer port (mTLS; the room identifies the peer)."""

    def __init__(self, service: DeliveryParts) -> None:
        self._s = service
        self._methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Relay": grpc.unary_unary_rpc_method_handler(
                self._relay, dpb.RelayRequest.FromString, dpb.RelayReply.SerializeToString
            ),
            "RelayAttachment": grpc.stream_unary_rpc_method_handler(
                self._attachment, dpb.AttachmentUpload.FromString, dpb.AttachmentUploadReply.SerializeToString
            ),
            "Evidence": grpc.unary_unary_rpc_method_handler(
                self._evidence, dpb.EvidenceTransfer.FromString, dpb.EvidenceTransferReply.SerializeToString
            ),
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        path: str = handler_call_details.method
        if not path.startswith(PEER_PREFIX):
            return None
        return self._methods.get(path[len(PEER_PREFIX) :])

    async def _relay(self, r: dpb.RelayRequest, context: grpc.aio.ServicerContext[Any, Any]) -> dpb.RelayReply:
        try:
            await self._s.wait_ready()
            events = await self._s.relays.relay(
                envelope_from_pb(r.attempt),
                envelope_from_pb(r.message),
                events_from_pb(r.events),
                context.auth_context(),
            )
            return dpb.RelayReply(events=[event_to_pb(e) for e in events])
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)

    async def _attachment(
        self, frames: AsyncIterator[dpb.AttachmentUpload], context: grpc.aio.ServicerContext[Any, Any]
    ) -> dpb.AttachmentUploadReply:
        try:
            await self._s.wait_ready()
            first = await anext(frames, None)
            if first is None:
                from crossway.core.errors import MessageMalformed

                raise MessageMalformed("an attachment relay without its first frame")

            async def data() -> AsyncIterator[bytes]:
                async for frame in frames:
                    yield frame.data

            size = await self._s.relays.attachment(
                envelope_from_pb(first.message), first.attachment_id, data(), context.auth_context()
            )
            return dpb.AttachmentUploadReply(size=size)
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)

    async def _evidence(
        self, r: dpb.EvidenceTransfer, context: grpc.aio.ServicerContext[Any, Any]
    ) -> dpb.EvidenceTransferReply:
        try:
            await self._s.wait_ready()
            await self._s.relays.evidence(
                r.message.sender, r.message.message_id, events_from_pb(r.events), context.auth_context()
            )
            return dpb.EvidenceTransferReply()
        except Exception as exc:
            await abort(context, translate(exc), Hop.PROVIDER)
