"""Message classes of a service, built from the descriptor the registry publishes for it.

The REST and SAP adapters re-encode messages (protobuf ⇄ JSON), so they need the request and
response types of each method. They take them from the service's FileDescriptorSet in the
verified registry configuration — the same contract the callers compiled their stubs from —
and rebuild the classes only when the registry publishes a new descriptor.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from crossway.core.errors import Hop, UpstreamFailed

__all__ = ["DescriptorSource", "MethodTypes", "ServiceSchema", "SchemaCache"]

# Returns the current FileDescriptorSet bytes of the service (from the registry configuration).
DescriptorSource = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class MethodTypes:
    name: str
    input: type[Message]
    output: type[Message]

    def parse_request(self, body: bytes) -> Message:
        message = self.input()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise UpstreamFailed(
                f"{self.name}: the request is not a valid {self.input.DESCRIPTOR.full_name}",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.INVALID_ARGUMENT,
            ) from exc
        return message


def _pool(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    files = {f.name: f for f in fds.file}
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        proto = files.get(name)
        if proto is None:
            # A well-known import (google/protobuf/timestamp.proto) left out of the set.
            proto = descriptor_pb2.FileDescriptorProto()
            descriptor_pool.Default().FindFileByName(name).CopyToProto(proto)
        for dependency in proto.dependency:
            add(dependency)
        pool.Add(proto)
        added.add(name)

    for name in files:
        add(name)
    return pool


class ServiceSchema:
    """The methods of one gRPC service with their message classes."""

    def __init__(self, file_descriptor_set: bytes, grpc_service: str) -> None:
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(file_descriptor_set)
        pool = _pool(fds)
        service = pool.FindServiceByName(grpc_service)
        self.grpc_service = grpc_service
        self.methods: dict[str, MethodTypes] = {
            m.name: MethodTypes(m.name, _class(m.input_type), _class(m.output_type)) for m in service.methods
        }

    def method(self, name: str) -> MethodTypes:
        types = self.methods.get(name)
        if types is None:
            raise UpstreamFailed(
                f"{self.grpc_service} has no method {name} in its registered descriptor",
                hop=Hop.BACKEND,
                status=grpc.StatusCode.UNIMPLEMENTED,
            )
        return types


def _class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


class SchemaCache:
    """The schema of the current descriptor; rebuilt when the registry publishes a new one."""

    def __init__(self, source: DescriptorSource, grpc_service: str) -> None:
        self._source = source
        self._grpc_service = grpc_service
        self._lock = threading.Lock()
        self._digest = b""
        self._schema: ServiceSchema | None = None

    def current(self) -> ServiceSchema:
        fds = self._source()
        digest = hashlib.sha256(fds).digest()
        with self._lock:
            if self._schema is None or digest != self._digest:
                self._schema, self._digest = ServiceSchema(fds, self._grpc_service), digest
            return self._schema
