"""Build the adapter a service binding names (``adapter = "grpc" | "rest" | "sap_odata"``)."""

from __future__ import annotations

from adapters.base import Adapter
from adapters.grpc_backend import GrpcAdapter
from adapters.rest import RestAdapter
from adapters.sap import SapODataAdapter
from adapters.schema import DescriptorSource
from adapters.settings import RestSettings, SapSettings
from crossway.core.errors import ConfigError

__all__ = ["build_adapter"]


def build_adapter(
    kind: str,
    address: str,
    settings: RestSettings | SapSettings | None,
    descriptors: DescriptorSource,
    grpc_service: str,
    *,
    max_message_bytes: int | None = None,
) -> Adapter:
    """``descriptors`` returns the service's current FileDescriptorSet (REST and SAP re-encode);
    ``max_message_bytes`` bounds one gRPC message to or from the backend (the gateway's [limits])."""
    if kind == "grpc":
        return (
            GrpcAdapter(address)
            if max_message_bytes is None
            else GrpcAdapter(address, max_message_bytes=max_message_bytes)
        )
    if kind == "rest" and isinstance(settings, RestSettings):
        return RestAdapter(settings, descriptors, grpc_service)
    if kind == "sap_odata" and isinstance(settings, SapSettings):
        return SapODataAdapter(settings, descriptors, grpc_service)
    raise ConfigError(f"adapter {kind!r} has no settings", hint="add its [services.rest] or [services.sap] table")
