"""Backends behind the provider gateway: gRPC (bytes through), REST/JSON and SAP OData V2."""

from adapters.base import Adapter, AdapterHealth, BackendCall, HealthStatus
from adapters.factory import build_adapter
from adapters.grpc_backend import GrpcAdapter
from adapters.memory import MemoryAdapter
from adapters.rest import RestAdapter
from adapters.sap import SapODataAdapter
from adapters.settings import ADAPTER_KINDS, RestMethod, RestSettings, SapMethod, SapSettings, TlsSettings

__all__ = [
    "ADAPTER_KINDS",
    "Adapter",
    "AdapterHealth",
    "BackendCall",
    "GrpcAdapter",
    "HealthStatus",
    "MemoryAdapter",
    "RestAdapter",
    "RestMethod",
    "RestSettings",
    "SapMethod",
    "SapODataAdapter",
    "SapSettings",
    "TlsSettings",
    "build_adapter",
]
