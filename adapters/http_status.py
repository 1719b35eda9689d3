"""HTTP status → gRPC status, for adapters that reach HTTP backends (REST, SAP OData).

The table is the one of google/rpc/code.proto (each gRPC code names its HTTP equivalent), read
backwards, so a REST caller and a gRPC caller of the same backend see the same meaning.
"""

from __future__ import annotations

import grpc

__all__ = ["grpc_status_for_http"]

_TABLE: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ABORTED,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    416: grpc.StatusCode.OUT_OF_RANGE,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    428: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_status_for_http(status: int) -> grpc.StatusCode:
    found = _TABLE.get(status)
    if found is not None:
        return found
    if 400 <= status < 500:
        return grpc.StatusCode.FAILED_PRECONDITION
    if status >= 500:
        return grpc.StatusCode.INTERNAL
    return grpc.StatusCode.UNKNOWN
