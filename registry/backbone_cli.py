"""``crossway registry nats issue | server-cert | users``: the registry's side of the NATS backbone.

The registry is the backbone's CA (``registry.backbone``): it issues the NATS identities (gateways,
the registry, the index, cosigners, auditors, admins) and the NATS servers' certificates, and
writes the servers' users file from what it knows; ``registry serve --nats-users`` keeps that file
current (``backbone_sync``). Kept beside ``registry.cli``, which only hooks these in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossway.security.keys import save_pem

if TYPE_CHECKING:
    from registry.authority import RegistryAuthority
    from registry.backbone import BackboneSync

__all__ = ["add_backbone_commands", "backbone_sync"]

Leaf = Callable[[Any, str, Any, str], argparse.ArgumentParser]
Opener = Callable[[argparse.Namespace], "RegistryAuthority"]
Reader = Callable[[str, str], bytes]


def _issue(args: argparse.Namespace, open_authority: Opener, read: Reader) -> int:
    from crossway.security.natspki import NatsIdentity, NatsRole
    from registry.backbone import RegistryBackbone

    authority = open_authority(args)
    backbone = RegistryBackbone(authority, passphrase=_passphrase())
    identity = NatsIdentity(NatsRole(args.role), args.name)
    cert = backbone.issue_identity(read(args.csr, "CSR"), identity, days=args.days)
    save_pem(args.output, cert)
    print(f"NATS identity {identity} issued: serial {cert.serial_number}, written to {args.output}")
    print(f"  the NATS servers' CA is {backbone.ca_file}; run `registry nats users` (or serve) to admit it")
    return 0


def _server_cert(args: argparse.Namespace, open_authority: Opener, read: Reader) -> int:
    from crossway.security.natspki import NatsIdentity, NatsRole
    from registry.backbone import RegistryBackbone

    backbone = RegistryBackbone(open_authority(args), passphrase=_passphrase())
    route = NatsIdentity(NatsRole.ROUTE, args.cluster) if args.cluster else None
    cert = backbone.issue_server(
        read(args.csr, "CSR"), name=args.name, route=route, dns_names=tuple(args.dns), ip_addresses=tuple(args.ip)
    )
    save_pem(args.output, cert)
    print(f"NATS server certificate for {args.name} written to {args.output}")
    return 0


def _users(args: argparse.Namespace, open_authority: Opener) -> int:
    from crossway.security.keys import write_text_atomically
    from registry.backbone import RegistryBackbone

    text = RegistryBackbone(open_authority(args), passphrase=_passphrase()).authorization()
    write_text_atomically(args.output, text)
    print(f"NATS users ({text.count('user:') - 1} identities) written to {args.output}")
    return 0


def _passphrase() -> bytes | None:
    from registry.authority import passphrase_from_env

    return passphrase_from_env()


def _signal_reload(pid_files: list[str]) -> Any:
    """Reload the NATS servers whose pid files are given: check nothing here (the server keeps
    its old users when the file is bad, and says so in its log)."""

    def send() -> None:
        for pid_file in pid_files:
            os.kill(int(Path(pid_file).read_text().strip()), signal.SIGHUP)

    async def reload() -> None:
        await asyncio.to_thread(send)

    return reload


def backbone_sync(authority: RegistryAuthority, users_file: str, pid_files: list[str]) -> BackboneSync | None:
    """What keeps the NATS users file current beside ``registry serve`` (``--nats-users``), if asked."""
    if not users_file:
        return None
    from registry.backbone import BackboneSync, RegistryBackbone

    return BackboneSync(
        RegistryBackbone(authority, passphrase=_passphrase()),
        Path(users_file),
        _signal_reload(pid_files),
    )


def add_backbone_commands(nats: Any, leaf: Leaf, open_authority: Opener, read: Reader) -> None:
    """Register ``issue``, ``server-cert`` and ``users`` under ``crossway registry nats``."""
    p = leaf(
        nats,
        "issue",
        lambda a: _issue(a, open_authority, read),
        "issue a NATS identity certificate from a CSR (crossway nats request)",
    )
    p.add_argument("--csr", required=True, help="PEM or DER PKCS#10 request")
    p.add_argument("--role", required=True, choices=["gateway", "registry", "index", "cosigner", "auditor", "admin"])
    p.add_argument("--name", required=True, help="the gateway id, the registry's instance, or a label")
    p.add_argument("-o", "--output", required=True, help="where to write the PEM certificate")
    p.add_argument("--days", type=int, default=365)
    p = leaf(
        nats,
        "server-cert",
        lambda a: _server_cert(a, open_authority, read),
        "issue a NATS server node's certificate from a CSR",
    )
    p.add_argument("--csr", required=True)
    p.add_argument("--name", required=True, help="the node's name (n1, n2, …)")
    p.add_argument("--cluster", default="", help="the cluster's name: adds the route identity")
    p.add_argument("--dns", action="append", default=["localhost"], help="DNS name clients use")
    p.add_argument("--ip", action="append", default=["127.0.0.1"], help="IP address clients use")
    p.add_argument("-o", "--output", required=True)
    p = leaf(
        nats,
        "users",
        lambda a: _users(a, open_authority),
        "write the NATS servers' users file (include it in nats-server.conf)",
    )
    p.add_argument("-o", "--output", required=True)
