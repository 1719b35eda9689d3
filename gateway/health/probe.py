"""Asking a gateway for its health, as a load balancer or ``grpc_health_probe`` would (over TLS).

``Check`` answers for one entry; ``List`` adds every entry when the server offers it (a plain
grpc.health.v1 server may not: then only the asked entry is reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crossway.core.errors import HealthUnavailable

__all__ = ["HealthReport", "probe_health"]


@dataclass(frozen=True, slots=True)
class HealthReport:
    address: str
    service: str  # the entry asked about; "" = the gateway as a whole
    status: str  # SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN
    entries: tuple[tuple[str, str], ...] = ()  # (entry, status) of every entry, when listed

    @property
    def serving(self) -> bool:
        return self.status == "SERVING"


def _status_name(response: Any) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def _unavailable(address: str, exc: grpc.RpcError) -> HealthUnavailable:
    err: Any = exc  # grpc's call errors carry code() and details(); RpcError's stub does not say so
    return HealthUnavailable(f"cannot ask {address} for its health: {err.code().name}: {err.details()}")


def probe_health(
    address: str, ca_pem: bytes, service: str = "", *, timeout_s: float = 5.0, server_name: str = ""
) -> HealthReport:
    """Check ``service`` (and list every entry) at ``address``; raises HealthUnavailable when unreachable."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(ca_pem), options=options) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        try:
            status = _status_name(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s))
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise _unavailable(address, exc) from exc
            status = "SERVICE_UNKNOWN"  # the protocol's answer for a name the server does not know
        try:
            listed = stub.List(health_pb2.HealthListRequest(), timeout=timeout_s)
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
                raise _unavailable(address, exc) from exc
            return HealthReport(address, service, status)
        entries = tuple(sorted((name, _status_name(r)) for name, r in listed.statuses.items()))
        return HealthReport(address, service, status, entries)
