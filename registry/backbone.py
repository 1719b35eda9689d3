"""The registry's side of the backbone: it issues NATS identities and generates the NATS users.

The registry holds a CA dedicated to NATS (``nats-ca.pem``/``nats-ca.key`` in its directory; see
``crossway.security.natspki`` for why it must not be the gateways' CA) and records every NATS
certificate it issues. The NATS servers' users file is a function of those records and of the
registry's members (``crossway.natsauth``): one user per live certificate — issued here, not
revoked, not expired and, for a gateway, of a gateway still registered — with exactly its role's
permissions. :class:`BackboneSync` keeps the file current: when the registry's content changes
(a gateway added, a certificate revoked) the file is rewritten and the servers reload it, so
access is gained or lost within ``poll_s`` plus milliseconds (notes/nats-security.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId
from crossway.natsauth import NatsUser, render_authorization, users_for
from crossway.security.keys import write_text_atomically
from crossway.security.natspki import NatsCA, NatsIdentity, NatsRole
from crossway.security.pki import CertificateRequestInvalid
from registry.authority import RegistryAuthority
from registry.store import NatsCertificateRecord

__all__ = ["BackboneSync", "RegistryBackbone"]

log = logging.getLogger(__name__)


class RegistryBackbone:
    """NATS identities issued by one registry (an ``IdentityIssuer`` for ``crossway.natslocal``)."""

    def __init__(self, authority: RegistryAuthority, *, passphrase: bytes | None = None) -> None:
        self._authority = authority
        directory = authority.directory
        # Registries made before the backbone had identities get their NATS CA on first use.
        self._ca = (
            NatsCA.open(directory, passphrase=passphrase)
            if NatsCA.exists(directory)
            else NatsCA.create(directory, authority.instance, passphrase=passphrase)
        )

    @property
    def ca_file(self) -> Path:
        return self._authority.directory / NatsCA.CERT

    def issue_identity(self, csr_pem: bytes, identity: NatsIdentity, *, days: int = 365) -> x509.Certificate:
        """Issue (and record) a certificate naming ``identity``; a gateway must be registered first."""
        store = self._authority.store
        if identity.role is NatsRole.GATEWAY and not store.has_gateway(GatewayId.parse(identity.name)):
            raise CertificateRequestInvalid(
                f"NATS identities are issued to registered gateways; {identity.name} is not one",
                hint="`registry gateway add` it first",
            )
        if identity.role is NatsRole.REGISTRY and identity.name != self._authority.instance:
            raise CertificateRequestInvalid(f"this registry is {self._authority.instance}, not {identity.name}")
        cert = self._ca.issue_identity(csr_pem, identity, days=days)
        der = cert.public_bytes(serialization.Encoding.DER)
        store.record_nats_certificate(
            NatsCertificateRecord(
                serial=str(cert.serial_number),
                role=identity.role.value,
                name=identity.name,
                sha256=hashlib.sha256(der).hexdigest(),
                issued_at_ms=int(cert.not_valid_before_utc.timestamp() * 1000),
                not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
                revoked_at_ms=None,
                revoke_reason=None,
            ),
            der,
        )
        log.info("NATS identity %s issued (serial %s)", identity, cert.serial_number)
        return cert

    def issue_server(
        self,
        csr_pem: bytes,
        *,
        name: str,
        route: NatsIdentity | None,
        dns_names: tuple[str, ...] = ("localhost",),
        ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> x509.Certificate:
        """A NATS server node's certificate (not a user: servers authenticate to clients and routes)."""
        return self._ca.issue_server(csr_pem, name=name, dns_names=dns_names, ip_addresses=ip_addresses, route=route)

    def live(self, now_ms: int | None = None) -> list[tuple[NatsIdentity, int]]:
        """(identity, serial) of every certificate that may connect now."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        store = self._authority.store
        live: list[tuple[NatsIdentity, int]] = []
        for record in store.nats_certificates():
            if record.revoked or record.not_after_ms <= now:
                continue
            identity = NatsIdentity(NatsRole(record.role), record.name)
            if identity.role is NatsRole.GATEWAY and not store.has_gateway(GatewayId.parse(identity.name)):
                continue
            live.append((identity, int(record.serial)))
        return live

    def users(self) -> list[NatsUser]:
        members = [str(m.id) for m in self._authority.store.members()]
        return users_for(self.live(), members=members)

    def authorization(self) -> str:
        return render_authorization(self.users())


class BackboneSync:
    """Keeps the NATS servers' users file equal to what the registry says, reloading them on change."""

    def __init__(
        self,
        backbone: RegistryBackbone,
        users_file: Path,
        reload: Callable[[], Awaitable[None]],
        *,
        poll_s: float = 1.0,
    ) -> None:
        self._backbone = backbone
        self._file = users_file
        self._reload = reload
        self._poll_s = poll_s
        self._written = ""
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0

    async def sync(self) -> bool:
        """Rewrite and reload when the users changed; True when it did."""
        text = self._backbone.authorization()
        if text == self._written:
            return False
        write_text_atomically(self._file, text)
        await self._reload()
        self._written = text
        self.reloads += 1
        log.info("NATS users regenerated (%d identities) and the servers reloaded", text.count("user:") - 1)
        return True

    async def start(self) -> None:
        await self.sync()
        self._task = asyncio.create_task(self._run(), name="registry-backbone-sync")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.sync()
            except ConfigError as exc:  # the server refused the file: it keeps the previous users
                log.error("NATS users not reloaded: %s", exc.message)
            except Exception:
                log.exception("NATS users sync failed; retrying")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
