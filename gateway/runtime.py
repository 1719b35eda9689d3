"""One running gateway: owns its servers, NATS connection(s), configuration source and audit sink.

``start()`` brings everything up in dependency order; ``aclose()`` drains in reverse: stop
accepting calls, let calls in flight finish (grace), then flush the audit pipeline so no record
is lost, then close the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from adapters import Adapter, AdapterHealth, build_adapter
from audit.trail import (
    ARCHIVE_STREAM,
    ArchivedPayload,
    AuditCheckpointer,
    JetStreamAuditSink,
    PayloadArchiver,
    archive_subject,
)
from crossway.core.clock import SystemClock
from crossway.core.errors import ConfigError, CrosswayError, ServiceUnknown
from crossway.core.ids import ServiceId, SubsystemId
from crossway.natsclient import NatsAccess, wait_for_nats
from crossway.natslocal import LocalBackbone
from crossway.natsreplay import NatsReplayGuard
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint, cert_to_pem
from crossway.security.signing import Signer
from gateway.admin import PolicyAdministration
from gateway.admin.status import CertificateInfo, GatewayStatusSnapshot, HealthInfo, NatsInfo
from gateway.backing import nats_access, quotas, replay_guard
from gateway.client.callers import CallerAuthenticator, pem_sha256
from gateway.client.metaservices import MetaServices
from gateway.client.pipeline import ClientPipeline
from gateway.client.reflection import Reflection
from gateway.client.routing import Router
from gateway.health import GatewayHealth
from gateway.messaging import MessageBus
from gateway.observability import GatewayObservability, VitalSources
from gateway.ports import ClientPortHandler, PeerPortHandler
from gateway.provider.authorization import PolicyManager
from gateway.provider.pipeline import ProviderPipeline
from gateway.serving import _cert_subject, _pem_private, _server_options
from gateway.shared.config import GatewayConfig
from gateway.shared.context import GatewayContext
from gateway.shared.verifiers import TokenVerifiers
from gateway.wire.channels import GrpcPeerLink, PeerChannels
from registry import FileConfigurationSource, NatsConfigurationSource, load_anchor
from registry.configuration import VerifiedConfiguration
from registry.source import ConfigurationSource

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_configuration: Callable[[int], None] | None = None,
        client_mtls_port: int = 0,
        audit_checkpoints: bool = True,
        worker: int = 0,
    ) -> None:
        self.config = config
        # A worker process binds the mTLS client port its primary got (SO_REUSEPORT); 0 = any.
        self._client_mtls_bind = client_mtls_port
        self._on_configuration = on_configuration
        self._clock = SystemClock()
        self._backbone: LocalBackbone | None = None
        self._source: ConfigurationSource | None = None
        self._audit: JetStreamAuditSink | None = None
        self._checkpointer: AuditCheckpointer | None = None
        self._archiver: PayloadArchiver | None = None
        # Only the primary process signs checkpoints (workers share its log and data dir).
        self._audit_checkpoints = audit_checkpoints
        self._channels: PeerChannels | None = None
        self._adapters: dict[Any, Adapter] = {}
        self._client_server: grpc.aio.Server | None = None
        self._peer_server: grpc.aio.Server | None = None
        self._peer_handler: PeerPortHandler | None = None
        self.client_port = 0
        self.client_mtls_port = 0
        self.peer_port = 0
        self.admin_port = 0
        self._admin: PolicyAdministration | None = None
        self._health: GatewayHealth | None = None
        self._policies: PolicyManager | None = None
        self._certificates: tuple[CertificateInfo, ...] = ()
        self._last_configuration: VerifiedConfiguration | None = None  # kept after it expires, for status
        self._bus = MessageBus()  # registered delivery and topics, with a [delivery] table
        self.nats_url = ""
        self.nats: NatsAccess | None = None
        self._shared_replay: NatsReplayGuard | None = None
        # Metrics, OTLP export and vital signs (issue 17); worker 0 is the primary.
        self.observability = GatewayObservability(config, self._clock, worker=worker)
        self._verifiers = TokenVerifiers()  # owns the JWKS key sources of caller tokens

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.observability.start_telemetry()  # before anything records a span or a metric
        # NATS: the configured servers as our identity, or our own embedded server.
        nats, self._backbone = await nats_access(cfg)
        self.nats = nats
        self.nats_url = nats.url
        if cfg.nats_url:
            # Wait here, one log line per try and cancellable, rather than inside the first
            # connects of the components below (nats-py retries those forever, with a traceback
            # per try, and a stop signal could not end the wait).
            await wait_for_nats(self.nats_url, who=f"gateway {cfg.gateway_id}")
        # Keys (never logged).
        tls_key = load_private_key(cfg.tls_key, cfg.key_passphrase)
        tls_cert = load_certificate(cfg.tls_certificate)
        signing_cert = load_certificate(cfg.signing_certificate)
        signer = Signer(load_private_key(cfg.signing_key, cfg.key_passphrase), cert_fingerprint(signing_cert))  # type: ignore[arg-type]
        self._certificates = tuple(
            CertificateInfo(kind, _cert_subject(c), int(c.not_valid_after_utc.timestamp() * 1000), cert_fingerprint(c))
            for kind, c in (("tls", tls_cert), ("signing", signing_cert))
        )
        encryption_key = load_private_key(cfg.encryption_key, cfg.key_passphrase) if cfg.encryption_key else None
        # Configuration from the registry, verified against the pinned anchor.
        anchor = load_anchor(cfg.registry_anchor)
        source: ConfigurationSource
        if cfg.registry_source.startswith("file:"):
            source = FileConfigurationSource(
                cfg.source.parent / cfg.registry_source[5:], anchor, self._clock, mark=self._serial_mark
            )
        elif cfg.registry_source == "nats":
            source = NatsConfigurationSource(nats, anchor, self._clock, mark=self._serial_mark)
        else:
            raise ConfigError(
                f"{cfg.source}: [registry] source: unknown {cfg.registry_source!r}", hint='use "nats" or "file:PATH"'
            )
        self._source = source
        source.subscribe(self._configuration_changed)
        await source.start()
        # Audit: acknowledged JetStream publishing with a disk spool.
        if cfg.audit.unsafe_release_before_durable:
            log.warning(
                "gateway %s: [audit] unsafe_release_before_durable = true: answers leave before their audit "
                "record is durable; a crash of this gateway loses the records of the exchanges in flight",
                cfg.gateway_id,
            )
        self._audit = JetStreamAuditSink(
            nats, gateway_id=str(cfg.gateway_id), spool_dir=cfg.audit.spool_dir, stream=cfg.audit.stream
        )
        await self._audit.start()
        archiver = None
        if cfg.audit.archive_payloads and cfg.audit.archive_spool_dir is not None:
            # Sealed bodies go to their own stream with the records' delivery guarantees (issue 4).
            archiver = PayloadArchiver(
                cfg.audit.auditor_keys,
                JetStreamAuditSink(
                    nats,
                    gateway_id=str(cfg.gateway_id),
                    spool_dir=cfg.audit.archive_spool_dir,
                    stream=ARCHIVE_STREAM,
                    subject=archive_subject(str(cfg.gateway_id)),
                    decode=ArchivedPayload.from_json,
                ),
            )
            await archiver.start()
            self._archiver = archiver
        if cfg.audit.checkpoint_interval_s > 0 and self._audit_checkpoints:
            # Signed Merkle checkpoints of this gateway's log (issue 4); off the request path.
            self._checkpointer = AuditCheckpointer(
                nats,
                gateway_id=str(cfg.gateway_id),
                signer=signer,
                certificate_pem=cert_to_pem(signing_cert).decode(),
                state_dir=cfg.data_dir / "audit-log",
                stream=cfg.audit.stream,
                interval_s=cfg.audit.checkpoint_interval_s,
            )
            await self._checkpointer.start()
        ctx = GatewayContext(
            gateway_id=cfg.gateway_id,
            signer=signer,
            configuration=source,
            clock=self._clock,
            audit=self._audit,
            strict_audit=cfg.audit.strict,
            archive=archiver,
            unsafe_release_before_durable=cfg.audit.unsafe_release_before_durable,
            max_skew_ms=cfg.max_clock_skew_s * 1000,
            default_timeout_s=cfg.default_timeout_s,
            limits=cfg.limits,
        )
        ctx.metrics = self.observability.exchange_metrics
        tls_key_pem, tls_cert_pem = _pem_private(tls_key), cert_to_pem(tls_cert)
        self._channels = PeerChannels(
            tls_key_pem,
            tls_cert_pem,
            multiplex=cfg.peer_multiplex,
            connections=cfg.peer_connections,
            max_message_bytes=cfg.limits.grpc_message_bytes,
        )
        callers = self._callers(source)
        await self._verifiers.start()
        client = ClientPipeline(ctx, GrpcPeerLink(self._channels), callers)
        for binding in cfg.services:
            self._adapters[binding.service] = build_adapter(
                binding.adapter,
                binding.address,
                binding.settings,
                self._descriptors(source, binding.service),
                binding.service.grpc_service,
                max_message_bytes=cfg.limits.grpc_message_bytes,
            )
        policies = self._policies = PolicyManager(cfg.policy_dir, [b.service for b in cfg.services])
        replay, self._shared_replay = await replay_guard(cfg, nats)
        provider = ProviderPipeline(ctx, replay, policies, self._adapters, encryption_key, quotas=quotas(cfg))
        # grpc.health.v1 on the client and admin ports (not the peer port: mTLS, for gateways only).
        checkpointer = self._checkpointer
        health = self._health = GatewayHealth(
            str(cfg.gateway_id),
            source,
            self._audit,
            policies if cfg.services else None,
            self._adapters,
            audit_alarm=lambda: checkpointer.alarm if checkpointer is not None else None,
        )
        await health.start()
        # Policy versions pushed over NATS (every replica) and the admin port (when configured).
        self._admin = PolicyAdministration(
            cfg,
            nats,
            ctx,
            signer,
            policies,
            self._audit,
            self._clock,
            (_pem_private(tls_key), cert_to_pem(tls_cert)),
            also_serve=health.add_to,
            status=self.status,
        )
        await self._admin.start()
        self.admin_port = self._admin.port
        # Servers. The CA comes from the configuration we hold at start; see README (CA rotation).
        ca_pem = self._ca_pem(source)
        router = Router()

        def is_streaming(path: str, hint: str) -> bool:
            try:
                return router.resolve(ctx.config(), path, hint).streaming
            except CrosswayError:
                return False  # the unary handler reports the error properly (and audits it)

        # Registered delivery (issue 14): a room of its own, its handlers ahead of the catch-all proxy.
        await self._bus.start(cfg.source, ctx, nats, callers, encryption_key, tls_key_pem, tls_cert_pem)
        self._client_server = grpc.aio.server(options=_server_options(cfg.limits, metadata=True))
        health.add_to(self._client_server)  # before the catch-all handler of the services it routes
        self._client_server.add_generic_rpc_handlers(self._bus.client_handlers())
        meta = MetaServices(ctx, client, callers)
        reflection = Reflection(ctx, callers)  # grpc.reflection from the registry's descriptors (issue 17)
        self._client_server.add_generic_rpc_handlers(
            [ClientPortHandler(client, is_streaming, meta, cfg.limits, reflection)]
        )
        server_pair = [(tls_key_pem, tls_cert_pem)]
        host = cfg.client_listen.rpartition(":")[0]
        self.client_port = self._client_server.add_secure_port(
            cfg.client_listen, grpc.ssl_server_credentials(server_pair)
        )
        if cfg.client_certificates:
            roots = b"".join(c.certificate.read_bytes() for c in cfg.client_certificates)
            self.client_mtls_port = self._client_server.add_secure_port(
                f"{host}:{self._client_mtls_bind}",
                grpc.ssl_server_credentials(server_pair, root_certificates=roots, require_client_auth=True),
            )
        self._peer_server = grpc.aio.server(options=_server_options(cfg.limits))
        self._peer_handler = PeerPortHandler(provider)
        self._peer_server.add_generic_rpc_handlers([self._peer_handler])
        self._peer_server.add_generic_rpc_handlers(self._bus.peer_handlers())
        self.peer_port = self._peer_server.add_secure_port(
            cfg.peer_listen,
            grpc.ssl_server_credentials(server_pair, root_certificates=ca_pem, require_client_auth=True),
        )
        await self._start_observability(policies if cfg.services else None)
        await self._peer_server.start()
        await self._client_server.start()
        log.info("gateway %s ready: client port %d, peer port %d", cfg.gateway_id, self.client_port, self.peer_port)

    @property
    def _serial_mark(self) -> Path:
        # The newest registry configuration serial applied here: survives restarts (no rollback).
        return self.config.data_dir / "registry-serial.mark"

    async def _start_observability(self, policies: PolicyManager | None) -> None:
        cfg, audit, checkpointer = self.config, self._audit, self._checkpointer
        assert audit is not None and self._source is not None
        await self.observability.start(
            VitalSources(
                audit_stats=lambda: audit.stats,
                nats_connected=lambda: audit.nats_state[0] == "connected",
                configuration=self._source,
                checkpoint_lag=(lambda: checkpointer.size - checkpointer.published_size) if checkpointer else None,
                policy_version=(lambda: policies.version) if policies is not None else None,
                certificates={"tls": cfg.tls_certificate, "signing": cfg.signing_certificate},
            )
        )

    def _callers(self, source: ConfigurationSource) -> CallerAuthenticator:
        cfg = self.config
        pinned: dict[str, SubsystemId] = {}
        for entry in cfg.client_certificates:
            pinned[pem_sha256(entry.certificate.read_bytes())] = entry.subsystem
        jwt = None
        if cfg.jwt is not None:
            # PEM files and/or the identity provider's JWKS, fetched in the background (issue 17).
            jwt = self._verifiers.build(
                issuer=cfg.jwt.issuer,
                audience=cfg.jwt.audience,
                public_keys=cfg.jwt.public_keys,
                algorithms=cfg.jwt.algorithms,
                jwks=cfg.jwt.jwks,
            )

        def registered(subsystem: SubsystemId) -> bool:
            member = source.current().member(subsystem.member)
            return member is not None and subsystem in member.subsystems

        return CallerAuthenticator(cfg.gateway_id.member, pinned, jwt, registered, time.time)

    @staticmethod
    def _descriptors(source: ConfigurationSource, service: ServiceId) -> Callable[[], bytes]:
        """The service's descriptor in the current verified configuration (REST/SAP re-encode with it)."""

        def current() -> bytes:
            view = source.current().service(service)
            if view is None:
                raise ServiceUnknown(f"the registry configuration no longer lists {service}")
            return view.file_descriptor_set

        return current

    def adapter_health(self) -> dict[str, AdapterHealth]:
        """Each provided service's backend health, as its adapter sees it (for health checks)."""
        return {str(service): adapter.health() for service, adapter in self._adapters.items()}

    def _ca_pem(self, source: ConfigurationSource) -> bytes:
        try:
            return source.current().ca_pem
        except CrosswayError as exc:
            raise ConfigError(
                f"gateway {self.config.gateway_id} has no verified registry configuration yet: {exc.message}",
                hint="start the registry (it publishes the configuration) before the gateways",
            ) from exc

    def status(self) -> GatewayStatusSnapshot:
        """What an operator sees (``Admin/GetStatus``): health with reasons, registry configuration,
        policy version, audit spool and checkpoint lag, certificates, NATS connections."""
        config = self._last_configuration
        health = self._health.verdicts() if self._health is not None else {}
        stats = self._audit.stats if self._audit is not None else None
        checkpointer = self._checkpointer
        nats: list[NatsInfo] = []
        for name, owner in (
            ("audit", self._audit),
            ("registry", self._source),
            ("policies", self._admin.versions if self._admin is not None else None),
        ):
            state = getattr(owner, "nats_state", None)  # a file-based registry source has no connection
            if state is not None:
                nats.append(NatsInfo(name, *state))
        return GatewayStatusSnapshot(
            gateway=str(self.config.gateway_id),
            now_ms=self._clock.now_ms(),
            health=tuple(
                HealthInfo(name, verdict.status.value, verdict.reason) for name, verdict in sorted(health.items())
            ),
            registry_serial=config.serial if config is not None else 0,
            registry_issued_at_ms=config.issued_at_ms if config is not None else 0,
            registry_expires_at_ms=config.expires_at_ms if config is not None else 0,
            policy_version=self._policies.version if self._policies is not None else -1,
            audit_spooled=stats.spooled if stats is not None else 0,
            audit_pending=stats.pending if stats is not None else 0,
            log_size=checkpointer.size if checkpointer is not None else 0,
            checkpoint_size=checkpointer.published_size if checkpointer is not None else 0,
            checkpoint_at_ms=checkpointer.published_at_ms if checkpointer is not None else 0,
            certificates=self._certificates,
            nats=tuple(nats),
        )

    def _configuration_changed(self, config: VerifiedConfiguration) -> None:
        self._last_configuration = config
        log.info("configuration serial %d applied (expires %d)", config.serial, config.expires_at_ms)
        if self._on_configuration is not None:
            self._on_configuration(config.serial)

    @property
    def audit(self) -> JetStreamAuditSink:
        assert self._audit is not None
        return self._audit

    async def aclose(self, grace_s: float = 5.0) -> None:
        if self._health is not None:
            await self._health.aclose()  # NOT_SERVING first, so balancers stop sending during the grace
        if self._peer_handler is not None:
            self._peer_handler.drain()  # Multiplex streams: finish what runs, refuse new exchanges
        for server in (self._client_server, self._peer_server):
            if server is not None:
                await server.stop(grace_s)
        await self._bus.aclose()
        if self._admin is not None:
            await self._admin.aclose(grace_s)
        for adapter in self._adapters.values():
            await adapter.aclose()
        if self._channels is not None:
            await self._channels.aclose()
        if self._audit is not None:
            await self._audit.aclose()  # drains: every record acknowledged or spooled
        if self._archiver is not None:
            await self._archiver.aclose()
        if self._checkpointer is not None:
            await self._checkpointer.aclose()  # a last checkpoint covering what was stored
        if self._source is not None:
            await self._source.aclose()
        if self._shared_replay is not None:
            await self._shared_replay.aclose()
        if self._backbone is not None:
            await self._backbone.aclose()
        await self._verifiers.aclose()
        await self.observability.aclose()
