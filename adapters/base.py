"""The adapter seam: how the provider gateway reaches a backend.

An adapter gets opaque request bytes (the serialized protobuf message the client sent) and
returns response bytes, within the remaining deadline. It raises only ``upstream.*`` errors so
the gateway can tell the caller that the backend, not a gateway, failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Adapter", "BackendCall"]


@dataclass(frozen=True, slots=True)
class BackendCall:
    grpc_path: str  # "/population.v1.PersonRegistry/GetPerson"
    timeout_s: float
    # Metadata for the backend: the verified client id, message id, user, purpose, traceparent.
    metadata: Sequence[tuple[str, str]] = ()


class Adapter(Protocol):
    async def unary(self, call: BackendCall, body: bytes) -> bytes: ...

    def stream(self, call: BackendCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...
