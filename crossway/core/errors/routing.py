"""Finding the service and method a call names, and the provider's gateway that serves it."""

from __future__ import annotations

import grpc

from crossway.core.errors.base import CrosswayError

__all__ = [
    "MethodUnknown",
    "ProviderUnreachable",
    "RoutingError",
    "ServiceAmbiguous",
    "ServiceDisabled",
    "ServiceUnknown",
]


class RoutingError(CrosswayError):
    code = "service.unknown"
    grpc_status = grpc.StatusCode.NOT_FOUND


class ServiceUnknown(RoutingError):
    code = "service.unknown"
    default_hint = "check the service name; `crossway registry services` lists what is published"


class ServiceAmbiguous(RoutingError):
    code = "service.ambiguous"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "name the provider subsystem in the `crossway-service` metadata"


class MethodUnknown(RoutingError):
    code = "method.unknown"
    grpc_status = grpc.StatusCode.UNIMPLEMENTED
    default_hint = "the service's registered descriptor has no such method; regenerate your stubs"


class ProviderUnreachable(RoutingError):
    code = "peer.unavailable"
    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_hint = "the provider's gateway did not answer; retry later or ask its operator"


class ServiceDisabled(RoutingError):
    """The registry operator disabled the service, its subsystem or its member (issue 17)."""

    code = "service.disabled"
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_hint = "the registry operator disabled this service; ask its provider or the registry operator"
