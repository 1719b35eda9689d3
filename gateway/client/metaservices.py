"""The client port's answers to ``crossway.v1.MetaService`` (see :mod:`gateway.shared.metaservice`).

``ListClients``, ``ListMethods`` and ``GetServiceDescription`` are answered here from the
verified configuration; ``AllowedMethods`` goes to the provider through the client pipeline.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

from crossway.core.errors import AuditUnavailable, CrosswayError, Hop, MethodUnknown
from gateway.client.callers import CallerAuthenticator
from gateway.client.pipeline import ClientPipeline, OutgoingCall
from gateway.shared.context import GatewayContext
from gateway.shared.metaservice import (
    ALLOWED_METHODS_PATH,
    META_SERVICE,
    find_service,
    method_info,
    requested_service,
)
from protos.crossway.v1 import meta_pb2
from registry.configuration import VerifiedConfiguration

__all__ = ["MetaServices"]


class MetaServices:
    """The client port's handler for ``/crossway.v1.MetaService/*``."""

    def __init__(self, ctx: GatewayContext, pipeline: ClientPipeline, callers: CallerAuthenticator) -> None:
        self._ctx = ctx
        self._pipeline = pipeline
        self._callers = callers

    async def unary(self, call: OutgoingCall, body: bytes) -> bytes:
        if call.grpc_path == ALLOWED_METHODS_PATH:
            # Authenticate before looking anything up for the caller; the pipeline then does
            # every step of a normal exchange (it authenticates again from its cache).
            self._callers.authenticate(call.peer_cert_pem, call.authorization)
            view = find_service(self._ctx.config(), requested_service(body))
            return await self._pipeline.unary(replace(call, provider_hint=str(view.id)), b"")
        return await self._local(call, body)

    async def _local(self, call: OutgoingCall, body: bytes) -> bytes:
        ctx = self._ctx
        rec = ctx.recorder("client")
        rec.received(call.message_id, call.user_id, call.purpose)
        method = call.grpc_path.rsplit("/", 1)[-1]
        rec.routed(META_SERVICE, method)
        rec.add_request(body)
        try:
            # 1. authenticate, as any call
            rec.caller(self._callers.authenticate(call.peer_cert_pem, call.authorization).subsystem)
            if call.metadata_problem is not None:
                raise call.metadata_problem
            rec.check_bounds()
            ctx.check_audit_writable()
            # 2. answer from the verified configuration
            answer = self._answer(method, ctx.config(), body)
            rec.add_response(answer)
        except CrosswayError as exc:
            exc.at(Hop.CLIENT)
            rec.failed(exc)
            # The error goes out as it is; a record that cannot be made durable then is the
            # audit pipeline's to log, not a second error for the caller.
            with contextlib.suppress(AuditUnavailable):
                await ctx.audit_exchange(rec)
            raise
        # Durable before the answer leaves (issue 12).
        await ctx.audit_exchange(rec)
        return answer

    @staticmethod
    def _answer(method: str, config: VerifiedConfiguration, body: bytes) -> bytes:
        if method == "ListClients":
            clients = [
                meta_pb2.ClientInfo(id=str(subsystem), member=str(member.id), member_name=member.name)
                for member in sorted(config.members(), key=lambda m: str(m.id))
                for subsystem in sorted(member.subsystems, key=str)
            ]
            return meta_pb2.ListClientsResponse(clients=clients).SerializeToString()
        if method == "ListMethods":
            view = find_service(config, requested_service(body))
            methods = [method_info(view.methods[name]) for name in sorted(view.methods)]
            return meta_pb2.ListMethodsResponse(service=str(view.id), methods=methods).SerializeToString()
        if method == "GetServiceDescription":
            view = find_service(config, requested_service(body))
            return meta_pb2.ServiceDescription(
                service=str(view.id), file_descriptor_set=view.file_descriptor_set
            ).SerializeToString()
        raise MethodUnknown(f"{META_SERVICE} has no method {method}")
