"""A local backbone: NATS server(s) on loopback with their PKI, users and streams, in one directory.

What the embedded default, the tests and the benchmark run. It brings up one node (or a cluster of
``nodes``, routes over TLS 1.3 with a route identity), issues every identity's certificate from a
CSR whose key is made in that identity's own directory, writes the users file from an
:class:`IdentityIssuer` and provisions the streams once with an ``admin`` identity. The registry
is such an issuer too (``registry.backbone``), so the demo federation's NATS users come from the
registry's own records; :class:`LocalIssuer` is the stand-alone twin (a CA and a JSON list of
issued certificates) for a lone gateway or a test.

    async with LocalBackbone(Path("var/nats")) as backbone:
        access = await backbone.grant(NatsIdentity.gateway("EE/GOV/70000001/gw1"))
        nc = await connect(access, name="me")      # TLS 1.3, mapped to that gateway's user
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509
from nats.aio.client import Client as NATS

from crossway.core.errors import ConfigError
from crossway.natsauth import NatsUser, render_authorization, users_for
from crossway.natsbox import ClusterMembership, EmbeddedNats, ServerTls
from crossway.natsclient import NatsAccess, connect
from crossway.natsstreams import provision_backbone
from crossway.security.keys import save_pem, write_text_atomically
from crossway.security.natspki import NatsCA, NatsIdentity, NatsRole, identity_of_certificate, request_identity

__all__ = ["IdentityIssuer", "LocalBackbone", "LocalIssuer", "free_port"]

log = logging.getLogger(__name__)

CLUSTER_NAME = "crossway"
ROUTE = NatsIdentity(NatsRole.ROUTE, CLUSTER_NAME)
ADMIN = NatsIdentity(NatsRole.ADMIN, "local")


class IdentityIssuer(Protocol):
    """Issues NATS certificates from CSRs and says which users the servers must admit."""

    @property
    def ca_file(self) -> Path: ...

    def issue_identity(self, csr_pem: bytes, identity: NatsIdentity) -> x509.Certificate: ...

    def issue_server(self, csr_pem: bytes, *, name: str, route: NatsIdentity | None) -> x509.Certificate: ...

    def users(self) -> list[NatsUser]: ...


class LocalIssuer:
    """A stand-alone issuer: a NATS CA and ``issued.json`` (identity, serial, revoked) in one directory.

    ``members``: the federation's member ids, whose streams and buckets a registry identity it
    issues may create (the registry's own issuer knows them from its records)."""

    def __init__(self, directory: Path, members: Sequence[str] = ()) -> None:
        self._dir = directory
        self._members = tuple(members)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ca = NatsCA.open(directory) if NatsCA.exists(directory) else NatsCA.create(directory, "local")
        self._issued: list[dict[str, object]] = []
        if self._ledger.exists():
            self._issued = json.loads(self._ledger.read_text())

    @property
    def _ledger(self) -> Path:
        return self._dir / "issued.json"

    @property
    def ca_file(self) -> Path:
        return self._dir / NatsCA.CERT

    def _save(self) -> None:
        write_text_atomically(self._ledger, json.dumps(self._issued, indent=1))

    def issue_identity(self, csr_pem: bytes, identity: NatsIdentity) -> x509.Certificate:
        cert = self._ca.issue_identity(csr_pem, identity)
        self._issued.append({"user": identity.user(cert.serial_number), "revoked": False})
        self._save()
        return cert

    def issue_server(self, csr_pem: bytes, *, name: str, route: NatsIdentity | None) -> x509.Certificate:
        return self._ca.issue_server(csr_pem, name=name, route=route)

    def revoke(self, identity: NatsIdentity) -> int:
        """Revoke every certificate of ``identity``; returns how many."""
        count = 0
        for entry in self._issued:
            if NatsIdentity.parse_user(str(entry["user"]))[0] == identity and not entry["revoked"]:
                entry["revoked"] = True
                count += 1
        self._save()
        return count

    def users(self) -> list[NatsUser]:
        live = [NatsIdentity.parse_user(str(e["user"])) for e in self._issued if not e["revoked"]]
        return users_for(live, members=self._members)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (route ports must be known before the nodes start; a race is unlikely)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _holds(cert_path: Path, key_path: Path, identity: NatsIdentity) -> bool:
    """Do these files already hold a certificate of ``identity`` (and its key)?"""
    if not (cert_path.exists() and key_path.exists()):
        return False
    return identity_of_certificate(x509.load_pem_x509_certificate(cert_path.read_bytes()))[0] == identity


class LocalBackbone:
    """``nodes`` nats-server processes of one backbone, their PKI and users, owned by this object."""

    def __init__(
        self,
        directory: Path,
        *,
        issuer: IdentityIssuer | None = None,
        nodes: int = 1,
        replicas: int | None = None,
        members: Sequence[str] = (),
        replay_window_s: float = 0.0,
    ) -> None:
        if nodes < 1:
            raise ConfigError(f"a backbone has at least one node, not {nodes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.issuer: IdentityIssuer = issuer if issuer is not None else LocalIssuer(self.directory / "pki", members)
        self._replicas = replicas if replicas is not None else min(nodes, 3)
        self._members = tuple(members)
        self._replay_window_s = replay_window_s
        self.users_file = self.directory / "users.conf"
        self.nodes: list[EmbeddedNats] = []
        self._count = nodes
        self._provisioned = False

    # -- identities ------------------------------------------------------------------------

    def _identity_dir(self, identity: NatsIdentity) -> Path:
        return self.directory / "identities" / f"{identity.role.value}-{identity.key}"

    def access(self, identity: NatsIdentity, directory: Path | None = None) -> NatsAccess:
        """``identity``'s access (key made in ``directory``, certificate issued on first use).

        A new certificate is a new user: call :meth:`sync` (or use :meth:`grant`) before connecting.
        """
        where = directory if directory is not None else self._identity_dir(identity)
        key, cert = where / "nats.key", where / "nats.crt"
        if not _holds(cert, key, identity):
            key.unlink(missing_ok=True)
            _key, csr = request_identity(where)
            save_pem(cert, self.issuer.issue_identity(csr.read_bytes(), identity))
        return NatsAccess(tuple(self.urls), self.issuer.ca_file, cert, key, identity)

    @staticmethod
    def existing_access(directory: Path, identity: NatsIdentity, servers: str) -> NatsAccess:
        """The access :meth:`access` made earlier in ``directory`` (another process's backbone)."""
        backbone_dir = Path(directory)
        where = backbone_dir / "identities" / f"{identity.role.value}-{identity.key}"
        return NatsAccess.load(
            servers,
            ca_file=backbone_dir / "pki" / NatsCA.CERT,
            cert_file=where / "nats.crt",
            key_file=where / "nats.key",
        )

    async def grant(self, identity: NatsIdentity, directory: Path | None = None) -> NatsAccess:
        """:meth:`access`, then the users file is rewritten and the servers reloaded."""
        access = self.access(identity, directory)
        await self.sync()
        return access

    async def reload(self) -> None:
        """Have every running node re-read the users file (checked first; see EmbeddedNats.reload)."""
        for node in self.nodes:
            await node.reload()
        # SIGHUP is handled asynchronously by the server: give it a moment (measured: ~2 ms).
        await asyncio.sleep(0.05)

    async def sync(self) -> None:
        """Write the users file from the issuer and have every running node reload it."""
        write_text_atomically(self.users_file, render_authorization(self.issuer.users()))
        await self.reload()

    # -- the servers -----------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes if n.running or n._port]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    @property
    def replicas(self) -> int:
        return self._replicas

    def _server_tls(self, index: int, clustered: bool) -> ServerTls:
        where = self.directory / f"node-{index}"
        cert, key = where / "server.crt", where / "server.key"
        if not cert.exists():
            if key.exists():
                key.unlink()
            _key, csr = request_identity(where, "server")
            save_pem(
                cert, self.issuer.issue_server(csr.read_bytes(), name=f"n{index}", route=ROUTE if clustered else None)
            )
        return ServerTls(cert, key, self.issuer.ca_file)

    def _build(self) -> None:
        clustered = self._count > 1
        route_ports = [free_port() for _ in range(self._count)] if clustered else []
        routes = tuple(f"tls://127.0.0.1:{p}" for p in route_ports)
        for index in range(self._count):
            cluster = ClusterMembership(CLUSTER_NAME, route_ports[index], routes, ROUTE.uri) if clustered else None
            self.nodes.append(
                EmbeddedNats(
                    self.directory / f"node-{index}",
                    tls=self._server_tls(index, clustered),
                    authorization=self.users_file,
                    server_name=f"n{index}" if clustered else "crossway-embedded",
                    cluster=cluster,
                )
            )

    async def start(self) -> None:
        if not self.nodes:
            self._build()
        admin = self.access(ADMIN, self.directory / "admin")
        write_text_atomically(self.users_file, render_authorization(self.issuer.users()))
        await asyncio.gather(*(n.start() for n in self.nodes if not n.running))
        if not self._provisioned:
            # Provisioning is the admin's one job here; the admin key is not handed to anyone.
            await provision_backbone(
                admin.with_servers(self.urls),
                replicas=self._replicas,
                members=self._members,
                replay_window_s=self._replay_window_s,
            )
            self._provisioned = True

    async def stop(self) -> None:
        for node in self.nodes:
            await node.aclose()

    aclose = stop

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    # Single-node conveniences, read like EmbeddedNats (tests restart "the server").
    @property
    def server(self) -> EmbeddedNats:
        return self.nodes[0]

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def running(self) -> bool:
        return any(n.running for n in self.nodes)

    def admin_access(self) -> NatsAccess:
        """The operator's admin credential (provisioning; tests that play an attacker who stole it)."""
        return self.access(ADMIN, self.directory / "admin").with_servers(self.urls)

    async def admin_connection(self) -> NATS:
        """A connection with the admin credential — only for tests that play the attacker who has it."""
        return await connect(self.admin_access(), name="crossway-admin")

    async def __aenter__(self) -> LocalBackbone:
        try:
            await self.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
