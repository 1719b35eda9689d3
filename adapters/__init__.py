"""Backends behind the provider gateway: gRPC today; REST/JSON and SAP OData come next."""

from adapters.base import Adapter, BackendCall
from adapters.grpc_backend import GrpcAdapter

__all__ = ["Adapter", "BackendCall", "GrpcAdapter"]
