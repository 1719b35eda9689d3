"""gRPC server reflection on the client port, answered from the registry's descriptors.

``grpcurl``, Postman, Evans and grpcio-reflection's client ask a server which services it has
and for the protobuf files that define them (``grpc.reflection.v1.ServerReflection`` and its
older twin ``v1alpha``, the same messages on the wire). On a gateway's client port the services
an agency system can call are the federation's: every service in the verified registry
configuration, each registered with its ``FileDescriptorSet``; and ``crossway.v1.MetaService``,
which the client port answers itself. So reflection lists and describes exactly what the caller
can call through this gateway — a peer's service, from the peer's own descriptors — without
asking any peer.

Steps, each failing closed like a call:

1. authenticate the caller as any call (client certificate or bearer JWT, ``callers.py``);
   metadata over the limits is refused after that, as for a call;
2. answer each request of the stream from the configuration held now (one snapshot per stream),
   with the reference servicer of grpcio-reflection over a descriptor pool built once per
   configuration serial;
3. one audit record for the stream (service ``grpc.reflection.v1.ServerReflection``), like the
   metaservices: an auditor sees who enumerated the federation.

When two providers register files of one name with different contents, the first (by service
id) is served and the other is logged once; a caller then names its provider with
``crossway-service`` when it calls, as always.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.reflection import ReflectionServicer

from crossway.core.errors import CrosswayError, Hop, MessageMalformed, MethodUnknown
from gateway.client.callers import CallerAuthenticator
from gateway.client.pipeline import OutgoingCall
from gateway.shared.context import GatewayContext
from gateway.shared.metaservice import META_SERVICE
from protos.crossway.v1 import meta_pb2
from registry.configuration import VerifiedConfiguration

__all__ = ["REFLECTION_PREFIXES", "REFLECTION_SERVICES", "Reflection", "reflected_files"]

log = logging.getLogger(__name__)

REFLECTION_SERVICES: Final = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
REFLECTION_PREFIXES: Final = tuple(f"/{name}/" for name in REFLECTION_SERVICES)
_METHOD: Final = "ServerReflectionInfo"


def _own_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The files of what the client port serves itself (crossway.v1.MetaService), deps first."""
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(file: Any) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        ordered.append(proto)

    visit(meta_pb2.DESCRIPTOR)
    return ordered


def reflected_files(config: VerifiedConfiguration) -> tuple[list[str], list[descriptor_pb2.FileDescriptorProto]]:
    """The gRPC service names to list, and every file that defines them (first by name wins)."""
    names = {META_SERVICE}
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {f.name: f for f in _own_files()}
    for view in sorted(config.services(), key=lambda v: str(v.id)):
        names.add(view.id.grpc_service)
        fds = descriptor_pb2.FileDescriptorSet()
        try:
            fds.ParseFromString(view.file_descriptor_set)
        except DecodeError:  # verified configurations never hold one (describe_service parsed it)
            continue
        for file in fds.file:
            known = files.get(file.name)
            if known is None:
                files[file.name] = file
            elif known != file:
                log.warning(
                    "reflection: %s of %s differs from another provider's; serving the first", file.name, view.id
                )
    return sorted(names), list(files.values())


def _pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A pool of ``files``, each added after its dependencies; a file whose imports are missing
    (a descriptor set built without --include_imports) is left out."""
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in files}
    added: set[str] = set()
    while pending:
        ready = [f for f in pending.values() if all(d in added for d in f.dependency)]
        if not ready:
            log.warning("reflection: %s import files no descriptor set holds", ", ".join(sorted(pending)))
            break
        for file in ready:
            del pending[file.name]
            try:
                pool.AddSerializedFile(file.SerializeToString())
                added.add(file.name)
            except (TypeError, ValueError) as exc:  # e.g. a symbol defined twice in two files
                log.warning("reflection: %s left out: %s", file.name, exc)
    return pool


class Reflection:
    """The client port's handler for both reflection services."""

    def __init__(self, ctx: GatewayContext, callers: CallerAuthenticator) -> None:
        self._ctx = ctx
        self._callers = callers
        self._cached: tuple[int, ReflectionServicer] | None = None

    def _servicer(self, config: VerifiedConfiguration) -> ReflectionServicer:
        cached = self._cached
        if cached is None or cached[0] != config.serial:
            names, files = reflected_files(config)
            servicer = ReflectionServicer(names, _pool(files))  # type: ignore[no-untyped-call]
            cached = self._cached = (config.serial, servicer)
        return cached[1]

    async def stream(self, call: OutgoingCall, requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        ctx = self._ctx
        service, _, method = call.grpc_path.strip("/").partition("/")
        rec = ctx.recorder("client")
        rec.received(call.message_id, call.user_id, call.purpose)
        rec.routed(service, method)
        try:
            # 1. authenticate, as any call
            caller = self._callers.authenticate(call.peer_cert_pem, call.authorization).subsystem
            rec.caller(caller)
            if call.metadata_problem is not None:
                raise call.metadata_problem
            ctx.config().check_client_enabled(caller)
            if method != _METHOD:
                raise MethodUnknown(f"{service} has no method {method}")
            ctx.check_audit_writable()
            # 2. one configuration for the whole stream
            servicer = self._servicer(ctx.config())
            async for raw in requests:
                rec.add_request(raw)
                answer = _answer(servicer, raw)
                rec.add_response(answer)
                yield answer
        except CrosswayError as exc:
            exc.at(Hop.CLIENT)
            rec.failed(exc)
            raise
        finally:
            # 3. one record for the stream
            await ctx.audit_exchange(rec)


def _answer(servicer: Any, raw: bytes) -> bytes:
    # Any: the servicer's stubs type it as a grpc servicer method (a context, no result); here
    # it is called directly, one request in, one response out.
    request = reflection_pb2.ServerReflectionRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise MessageMalformed("the reflection request is not a ServerReflectionRequest") from exc
    # The reference servicer answers a stream of requests; it is handed one at a time.
    response: reflection_pb2.ServerReflectionResponse = next(iter(servicer.ServerReflectionInfo(iter([request]), None)))
    return response.SerializeToString()
