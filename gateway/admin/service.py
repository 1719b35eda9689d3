"""What one gateway runs for policy administration: the version store and the admin port.

The version store runs on every replica (each must follow the pushed versions); the admin port
only when ``[admin]`` is configured. ``start()``/``aclose()`` like every other owner of tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc

from audit.trail import AuditSink
from crossway.core.clock import Clock
from crossway.core.errors import CrosswayError
from crossway.natsclient import NatsAccess
from crossway.security.signing import Signer
from gateway.admin.auth import AdminAuthenticator
from gateway.admin.server import AdminService
from gateway.admin.status import StatusSource
from gateway.admin.versions import KeyLookup, NatsPolicyVersions, PolicyVersion
from gateway.provider.authorization import PolicyManager
from gateway.shared.config import GatewayConfig
from gateway.shared.context import GatewayContext
from gateway.shared.verifiers import TokenVerifiers
from protos.crossway.v1 import admin_pb2_grpc

__all__ = ["PolicyAdministration"]

log = logging.getLogger(__name__)


class PolicyAdministration:
    def __init__(
        self,
        config: GatewayConfig,
        nats: NatsAccess,
        ctx: GatewayContext,
        signer: Signer,
        policies: PolicyManager,
        audit: AuditSink,
        clock: Clock,
        tls_pair: tuple[bytes, bytes],
        also_serve: Callable[[grpc.aio.Server], None] | None = None,
        status: StatusSource | None = None,
    ) -> None:
        self._config, self._ctx, self._policies = config, ctx, policies
        self._audit, self._clock, self._tls_pair = audit, clock, tls_pair
        self._status = status  # the runtime's snapshot of the gateway, for GetStatus
        # More services on the admin port (the health check), unauthenticated: see README (operators).
        self._also_serve = also_serve

        def keys() -> KeyLookup:
            lookup: KeyLookup = ctx.key_lookup(ctx.config())
            return lookup

        # The newest version number ever applied is kept in the data dir (no rollback by replay).
        self.versions = NatsPolicyVersions(
            nats,
            str(config.gateway_id),
            config.member,
            signer,
            keys,
            self._install,
            mark=config.data_dir / "policy-version.mark",
            on_rollback=policies.block,
        )
        self._server: grpc.aio.Server | None = None
        self._verifiers = TokenVerifiers()
        self.port = 0

    async def _install(self, version: PolicyVersion) -> None:
        # 4. validate against the methods served here, off the event loop, then swap atomically.
        try:
            bundle = await asyncio.to_thread(self._policies.build, version.files, version.number)
        except CrosswayError as exc:
            log.error("policy version %d not installed, keeping the previous one: %s", version.number, exc.message)
            return
        self._policies.install(bundle, version.files, version.number)

    async def start(self) -> None:
        try:
            self._policies.refresh(self._ctx.config())  # the served methods, before any version
        except CrosswayError as exc:
            log.warning("policies not loaded at start: %s", exc.message)
        await self.versions.start()
        admin = self._config.admin
        if admin is None:
            return
        # PEM files and/or the admins' identity provider's JWKS (issue 17).
        verifier = self._verifiers.build(
            issuer=admin.issuer,
            audience=admin.audience,
            public_keys=admin.public_keys,
            algorithms=admin.algorithms,
            jwks=admin.jwks,
        )
        await self._verifiers.start()
        service = AdminService(
            str(self._config.gateway_id),
            AdminAuthenticator(verifier, admin.roles_claim),
            self._policies,
            self.versions,
            self._audit,
            self._clock,
            status=self._status,
            groups_of=lambda client: self._ctx.config().groups_of(client),
        )
        server: Any = grpc.aio.server()
        admin_pb2_grpc.add_AdminServicer_to_server(service, server)  # type: ignore[no-untyped-call]
        if self._also_serve is not None:
            self._also_serve(server)
        self.port = server.add_secure_port(admin.listen, grpc.ssl_server_credentials([self._tls_pair]))
        await server.start()
        self._server = server
        host = admin.listen.rpartition(":")[0] or "127.0.0.1"
        log.info("admin API of %s listening on %s:%d", self._config.gateway_id, host, self.port)

    async def aclose(self, grace_s: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
        await self.versions.aclose()
        await self._verifiers.aclose()
