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

from google.protobuf.message import DecodeError

from crossway.core.errors import (
    InvalidIdentifier,
    MessageMalformed,
    ServiceAmbiguous,
    ServiceUnknown,
)
from crossway.core.ids import ServiceId
from protos.crossway.v1 import meta_pb2
from registry.configuration import MethodShape, ServiceView, VerifiedConfiguration

__all__ = [
    "ALLOWED_METHODS",
    "ALLOWED_METHODS_PATH",
    "META_PREFIX",
    "META_SERVICE",
    "encode_allowed_methods",
    "method_info",
    "requested_service",
    "find_service",
]

META_SERVICE = "crossway.v1.MetaService"
META_PREFIX = f"/{META_SERVICE}/"
ALLOWED_METHODS_PATH = f"{META_PREFIX}AllowedMethods"
# The header's method for the forwarded AllowedMethods exchange (reserved: contains "/").
ALLOWED_METHODS = ALLOWED_METHODS_PATH[1:]


def method_info(shape: MethodShape) -> meta_pb2.MethodInfo:
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
        service=str(service), methods=[method_info(m) for m in methods], policy_version=policy_version
    ).SerializeToString()


def requested_service(body: bytes) -> str:
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
