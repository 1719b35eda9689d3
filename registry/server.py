"""The registry's gRPC API: ``crossway.v1.Registry/GetConfiguration`` for gateways that pull.

Pull complements the NATS push: a gateway without NATS (or bootstrapping) asks the registry directly.
The answer is the same signed document either way, so the channel itself needs no trust.
"""

from __future__ import annotations

import logging

import grpc

from crossway.core.errors import RegistryUnavailable
from crossway.natsclient import NatsAccess
from protos.crossway.v1 import registry_pb2, registry_pb2_grpc
from registry.authority import RegistryAuthority
from registry.backbone import BackboneSync
from registry.publisher import ConfigurationPublisher

__all__ = ["RegistryServer"]

log = logging.getLogger(__name__)


class _RegistryService(registry_pb2_grpc.RegistryServicer):
    def __init__(self, publisher: ConfigurationPublisher) -> None:
        self._publisher = publisher

    async def GetConfiguration(
        self, request: registry_pb2.GetConfigurationRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> registry_pb2.SignedConfiguration:
        latest = self._publisher.latest
        if latest is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "registry.unavailable: no configuration published yet")
            raise AssertionError("unreachable")  # abort raises
        signed = registry_pb2.SignedConfiguration.FromString(latest)
        if request.known_serial:
            serial = registry_pb2.ConfigurationDocument.FromString(signed.document).serial
            if serial == request.known_serial:
                return registry_pb2.SignedConfiguration()  # "not modified": the caller's copy is current
        return signed


class RegistryServer:
    """The registry's gRPC listener plus its publisher (NATS when ``nats`` is given) and, when the
    registry manages the NATS servers' users, the job that keeps them current (``backbone``)."""

    def __init__(
        self,
        authority: RegistryAuthority,
        listen: str = "127.0.0.1:0",
        nats: NatsAccess | None = None,
        *,
        validity_s: int = 600,
        republish_every_s: float | None = None,
        replicas: int = 1,
        backbone: BackboneSync | None = None,
        replay_window_s: float = 0.0,
    ) -> None:
        self._listen = listen
        self.backbone = backbone
        self.publisher = ConfigurationPublisher(
            authority, nats, validity_s, republish_every_s, replicas=replicas, replay_window_s=replay_window_s
        )
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        if self.backbone is not None:
            await self.backbone.start()
        await self.publisher.start()
        server = grpc.aio.server()
        registry_pb2_grpc.add_RegistryServicer_to_server(_RegistryService(self.publisher), server)  # type: ignore[no-untyped-call]
        # Plaintext on purpose: the payload is signed and public (no secrets); put TLS in front if wanted.
        self.port = server.add_insecure_port(self._listen)
        if self.port == 0:
            await self.publisher.aclose()
            raise RegistryUnavailable(f"cannot listen on {self._listen}", hint="choose a free HOST:PORT")
        await server.start()
        self._server = server
        log.info("registry listening on %s", self.address)

    @property
    def address(self) -> str:
        host = self._listen.rpartition(":")[0] or "127.0.0.1"
        return f"{host}:{self.port}"

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def aclose(self, grace_s: float = 2.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
        await self.publisher.aclose()
        if self.backbone is not None:
            await self.backbone.aclose()
