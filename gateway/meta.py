"""Metaservices like X-Road's (``crossway.v1.MetaService``), called on a gateway's client port.

Who answers what:

- ``ListClients``, ``ListMethods``, ``GetServiceDescription``: this gateway, from the verified
  registry configuration — the same data every gateway holds, so no peer is asked;
- ``AllowedMethods``: only the provider can say, since its policies decide. The client pipeline
  sends it like any exchange (authenticated caller, signed request, signed response bound to it,
  audited on both sides) to the provider of the named service, with the reserved method
  :data:`ALLOWED_METHODS`, which no real gRPC method can be named (it holds a ``/``). The
  provider pipeline answers it itself, with a decision per method, instead of calling a backend.

The caller is authenticated like any call (step 1 of the client pipeline), and local answers are
audited too (service ``crossway.v1.MetaService``): an auditor sees who enumerated the federation.
Protobuf stops here: this module is the meta API's wire edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from crossway.core.errors import (
    CrosswayError,
    Hop,
    InvalidIdentifier,
    MessageMalformed,
    MethodUnknown,
    ServiceAmbiguous,
    ServiceUnknown,
)
from crossway.core.ids import ServiceId
from protos.crossway.v1 import meta_pb2
from registry.configuration import MethodShape, ServiceView, VerifiedConfiguration

if TYPE_CHECKING:
    from gateway.callers import CallerAuthenticator
    from gateway.client import ClientPipeline, OutgoingCall
    from gateway.context import GatewayContext

__all__ = [
    "ALLOWED_METHODS",
    "ALLOWED_METHODS_PATH",
    "META_PREFIX",
    "META_SERVICE",
    "MetaServices",
    "encode_allowed_methods",
    "find_service",
]

META_SERVICE = "crossway.v1.MetaService"
META_PREFIX = f"/{META_SERVICE}/"
ALLOWED_METHODS_PATH = f"{META_PREFIX}AllowedMethods"
# The header's method for the forwarded AllowedMethods exchange (reserved: contains "/").
ALLOWED_METHODS = ALLOWED_METHODS_PATH[1:]


def _method_info(shape: MethodShape) -> meta_pb2.MethodInfo:
    return meta_pb2.MethodInfo(
        name=shape.name,
        client_streaming=shape.client_streaming,
        server_streaming=shape.server_streaming,
        input_type=shape.input_type,
        output_type=shape.output_type,
    )


def encode_allowed_methods(service: ServiceId, methods: Iterable[MethodShape], policy_version: str) -> bytes:
    """The provider's answer to AllowedMethods (the body of its signed response)."""
    return meta_pb2.AllowedMethodsResponse(
        service=str(service), methods=[_method_info(m) for m in methods], policy_version=policy_version
    ).SerializeToString()


def _requested_service(body: bytes) -> str:
    try:
        return meta_pb2.ServiceRequest.FromString(body).service.strip()
    except DecodeError as exc:
        raise MessageMalformed("the metaservice request is not a crossway.v1.ServiceRequest") from exc


def find_service(config: VerifiedConfiguration, text: str) -> ServiceView:
    """A service by its full id, or by its gRPC name when exactly one subsystem offers it."""
    if not text:
        raise ServiceUnknown("the request names no service", hint="set `service` to a service id or gRPC name")
    try:
        service: ServiceId | None = ServiceId.parse(text)
    except InvalidIdentifier:
        service = None
    if service is not None:
        view = config.service(service)
        if view is None:
            raise ServiceUnknown(f"the registry lists no service {text}")
        return view
    candidates = config.providers_of(text)
    if not candidates:
        raise ServiceUnknown(f"no member offers gRPC service {text}")
    if len(candidates) > 1:
        names = ", ".join(str(v.id) for v in candidates)
        raise ServiceAmbiguous(f"{text} is offered by several subsystems: {names}", hint="name the full service id")
    return candidates[0]


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
            view = find_service(self._ctx.config(), _requested_service(body))
            return await self._pipeline.unary(replace(call, provider_hint=str(view.id)), b"")
        return self._local(call, body)

    def _local(self, call: OutgoingCall, body: bytes) -> bytes:
        ctx = self._ctx
        ex = ctx.new_exchange("client")
        ex.message_id, ex.service = call.message_id, META_SERVICE
        ex.method = call.grpc_path.rsplit("/", 1)[-1]
        ex.request_in_ms = ctx.clock.now_ms()
        ex.user_id, ex.purpose = call.user_id, call.purpose
        ex.add_request(body)
        try:
            # 1. authenticate, as any call
            ex.client = str(self._callers.authenticate(call.peer_cert_pem, call.authorization).subsystem)
            ctx.check_audit_writable()
            # 2. answer from the verified configuration
            answer = self._answer(ex.method, ctx.config(), body)
            ex.add_response(answer)
            return answer
        except CrosswayError as exc:
            exc.at(Hop.CLIENT)
            ex.fail(exc)
            raise
        finally:
            ex.response_out_ms = ctx.clock.now_ms()
            ctx.audit_exchange(ex)

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
            view = find_service(config, _requested_service(body))
            methods = [_method_info(view.methods[name]) for name in sorted(view.methods)]
            return meta_pb2.ListMethodsResponse(service=str(view.id), methods=methods).SerializeToString()
        if method == "GetServiceDescription":
            view = find_service(config, _requested_service(body))
            return meta_pb2.ServiceDescription(
                service=str(view.id), file_descriptor_set=view.file_descriptor_set
            ).SerializeToString()
        raise MethodUnknown(f"{META_SERVICE} has no method {method}")
