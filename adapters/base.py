"""The adapter seam: how the provider gateway reaches a backend.

An adapter gets opaque request bytes (the serialized protobuf message the client sent) and
returns response bytes, within the remaining deadline. It raises only ``upstream.*`` errors so
the gateway can tell the caller that the backend, not a gateway, failed. Each adapter keeps its
own health (``health()``), which the gateway logs and exposes in its health check.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc

from crossway.core.errors import Hop, UpstreamFailed

__all__ = ["Adapter", "AdapterHealth", "BackendCall", "HealthStatus", "method_mapping"]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class BackendCall:
    grpc_path: str  # "/population.v1.PersonRegistry/GetPerson"
    timeout_s: float
    # Metadata for the backend: the verified client id, message id, user, purpose, traceparent.
    metadata: Sequence[tuple[str, str]] = ()

    @property
    def method_name(self) -> str:
        return self.grpc_path.rsplit("/", 1)[-1]


def method_mapping(methods: Mapping[str, M], call: BackendCall, kind: str, table: str) -> M:
    """The configured mapping of the called method; UNIMPLEMENTED naming the table to add if none."""
    mapping = methods.get(call.method_name)
    if mapping is None:
        raise UpstreamFailed(
            f"method {call.method_name} has no {kind} mapping on this gateway",
            hint=f"add a [services.{table}.methods.NAME] table to the gateway configuration",
            hop=Hop.BACKEND,
            status=grpc.StatusCode.UNIMPLEMENTED,
        )
    return mapping


class HealthStatus(enum.Enum):
    """The states of grpc.health.v1, so the gateway can publish them unchanged."""

    UNKNOWN = "UNKNOWN"  # no call has reached the backend yet
    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    status: HealthStatus
    detail: str = ""  # why, when not serving (never a payload or a secret)
    since_ms: int = 0  # wall-clock time of the last change


class Adapter(Protocol):
    async def unary(self, call: BackendCall, body: bytes) -> bytes: ...

    def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]: ...

    def health(self) -> AdapterHealth: ...

    async def aclose(self) -> None: ...
