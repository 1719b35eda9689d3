"""``crossway registry …``: the registry operator's commands.

Each leaf command takes ``--dir`` (default ``./var/registry``) and returns an exit code; user
mistakes raise CrosswayError subclasses, which ``crossway.cli`` prints as code, message and hint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import x25519

from crossway.core.clock import SystemClock
from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from crossway.natsclient import access_from_arguments, add_nats_arguments
from crossway.security.keys import load_public_key, save_pem, x25519_public_raw
from crossway.security.pki import CertKind

if TYPE_CHECKING:
    from registry.authority import RegistryAuthority

__all__ = ["add_commands"]

DEFAULT_DIR = Path("var/registry")


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path!r}: {exc.strerror or exc}", hint="check the path") from exc


def _open(args: argparse.Namespace) -> RegistryAuthority:
    from registry.authority import RegistryAuthority, passphrase_from_env  # lazy: keeps `crossway --help` fast

    return RegistryAuthority.open(Path(args.dir), passphrase=passphrase_from_env())


def _init(args: argparse.Namespace) -> int:
    from registry.authority import PASSPHRASE_ENV, RegistryAuthority, passphrase_from_env

    passphrase = passphrase_from_env()
    authority = RegistryAuthority.init(Path(args.dir), args.instance, passphrase=passphrase)
    print(f"registry for instance {authority.instance} created in {args.dir}")
    if passphrase is None:
        print(f"  its private keys are not encrypted; set {PASSPHRASE_ENV} at init to encrypt them")
    print(f"anchor for gateways: {authority.anchor_path}")
    authority.close()
    return 0


def _member_add(args: argparse.Namespace) -> int:
    _open(args).add_member(MemberId.parse(args.id), args.name)
    print(f"member {args.id} added")
    return 0


def _member_encryption_key(args: argparse.Namespace) -> int:
    data = _read(args.public_key, "public key file")
    if data.lstrip().startswith(b"-----"):
        key = load_public_key(data)
        if not isinstance(key, x25519.X25519PublicKey):
            raise ConfigError(f"{args.public_key!r} holds a {type(key).__name__}, not an X25519 public key")
        data = x25519_public_raw(key)
    _open(args).set_encryption_key(MemberId.parse(args.id), data)
    print(f"encryption key of {args.id} set")
    return 0


def _member_user_token_key(args: argparse.Namespace) -> int:
    member = MemberId.parse(args.id)
    if not (args.public_key or args.remove or args.issuer):
        raise ConfigError("nothing to do", hint="pass --public-key FILE, --remove KEY_ID and/or --issuer ISS")
    authority = _open(args)
    if args.public_key:
        key_id = authority.add_user_token_key(member, _read(args.public_key, "public key file"))
        print(f"user-token key {key_id} of {member} registered")
    if args.remove:
        authority.remove_user_token_key(member, args.remove)
        print(f"user-token key {args.remove} of {member} removed")
    if args.issuer:
        authority.set_user_token_issuer(member, args.issuer)
        print(f"end-user tokens of {member} must carry iss {args.issuer!r}")
    return 0


def _subsystem_add(args: argparse.Namespace) -> int:
    _open(args).add_subsystem(SubsystemId.parse(args.id))
    print(f"subsystem {args.id} added")
    return 0


def _gateway_add(args: argparse.Namespace) -> int:
    _open(args).add_gateway(GatewayId.parse(args.id), args.address)
    print(f"gateway {args.id} added at {args.address}")
    return 0


def _gateway_set_address(args: argparse.Namespace) -> int:
    _open(args).set_gateway_address(GatewayId.parse(args.id), args.address)
    print(f"gateway {args.id} now at {args.address}")
    return 0


def _service_add(args: argparse.Namespace) -> int:
    fds = _read(args.descriptor_set, "descriptor set")
    _open(args).add_service(ServiceId.parse(args.id), fds, require_encryption=args.require_encryption)
    print(f"service {args.id} added")
    return 0


def _witness_add(args: argparse.Namespace) -> int:
    name, raw = _witness_vkey(args.vkey)
    member = MemberId.parse(args.member) if args.member else None
    authority = _open(args)
    try:
        authority.add_witness(name, raw, member)
    finally:
        authority.close()
    print(f"witness {name} added; it is in the next configuration")
    return 0


def _witness_quorum(args: argparse.Namespace) -> int:
    authority = _open(args)
    try:
        authority.set_witness_quorum(args.quorum)
    finally:
        authority.close()
    print(f"witness quorum {args.quorum}: checkpoints need that many distinct witnesses, the registry counted")
    return 0


def _witness_vkey(vkey: str) -> tuple[str, bytes]:
    """A witness's C2SP verifier key, ``<name>+<hex key ID>+base64(0x04 || Ed25519 key)``: its
    name and raw key, once the key ID is checked (SHA-256(name || 0x0A || 0x04 || key)[:4])."""
    import base64
    import binascii
    import hashlib

    try:
        name, key_hex, encoded = vkey.strip().split("+", 2)
        material = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"{vkey!r} is not a witness verifier key", hint="NAME+KEYID+BASE64, as printed "
                          "by `crossway audit witness-key`") from exc  # fmt: skip
    digest = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    if len(material) != 33 or material[0] != 0x04 or digest.hex() != key_hex.lower():
        raise ConfigError(f"{vkey!r} is not an Ed25519 cosignature key whose ID matches its name and key")
    return name, material[1:]


def _group_add(args: argparse.Namespace) -> int:
    _open(args).add_group(args.code, [SubsystemId.parse(s) for s in args.subsystems])
    print(f"group {args.code} now includes {len(args.subsystems)} more subsystem(s)")
    return 0


def _cert_issue(args: argparse.Namespace) -> int:
    kind = CertKind(args.kind)
    if kind is CertKind.TLS and args.gateway is None:
        raise ConfigError("a TLS certificate needs --gateway", hint="pass --gateway INSTANCE/CLASS/CODE/NAME")
    if kind is CertKind.SIGNING and args.member is None:
        raise ConfigError("a signing certificate needs --member", hint="pass --member INSTANCE/CLASS/CODE")
    cert = _open(args).issue(
        _read(args.csr, "CSR"),
        kind=kind,
        gateway=GatewayId.parse(args.gateway) if args.gateway else None,
        member=MemberId.parse(args.member) if args.member else None,
        days=args.days,
    )
    save_pem(args.output, cert)
    print(f"certificate serial {cert.serial_number} written to {args.output}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    _open(args).revoke(args.serial, args.reason)
    print(f"certificate {args.serial} revoked; it disappears from the next published configuration")
    return 0


def _publish(args: argparse.Namespace) -> int:
    authority = _open(args)
    nats = access_from_arguments(args)
    output = Path(args.output) if args.output else (None if nats else Path(args.dir) / "configuration.bin")
    if nats is not None:
        from registry.publisher import ConfigurationPublisher

        async def push() -> bytes:
            publisher = ConfigurationPublisher(authority, nats, args.validity)
            await publisher.start()
            await publisher.aclose()
            assert publisher.latest is not None
            return publisher.latest

        signed = asyncio.run(push())
    else:
        signed = authority.build_configuration(validity_s=args.validity)
    if output is not None:
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_bytes(signed)
        os.replace(tmp, output)
    from registry.configuration import verify_configuration

    config = verify_configuration(signed, authority.anchor, SystemClock().now_ms())
    where = ", ".join(x for x in (str(output) if output else "", f"NATS {args.nats}" if args.nats else "") if x)
    print(f"configuration serial {config.serial} published to {where}, valid {args.validity}s")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _open(args).store
    for member in store.members():
        print(f"member {member.id}  {member.name}")
        for subsystem in store.subsystems_of(member.id):
            print(f"  subsystem {subsystem}")
        for gateway in store.gateways_of(member.id):
            print(f"  gateway {gateway.id}  {gateway.peer_address}")
        for key in store.user_token_keys(member.id):
            print(f"  user-token key {key.key_id}")
    for service in store.services():
        flag = "  (encrypted)" if service.require_encryption else ""
        print(f"service {service.id}{flag}")
    for code, subsystems in store.groups().items():
        print(f"group {code}  {len(subsystems)} subsystem(s)")
    for cert in store.certificates():
        state = f"revoked: {cert.revoke_reason}" if cert.revoked else "valid"
        print(f"cert {cert.serial}  {cert.kind}  {cert.gateway or cert.member}  {state}")
    for nats_cert in store.nats_certificates():
        state = f"revoked: {nats_cert.revoke_reason}" if nats_cert.revoked else "valid"
        print(f"cert {nats_cert.serial}  nats  {nats_cert.role} {nats_cert.name}  {state}")
    return 0


# What runs beside `registry serve` but lives in a higher layer (the audit checkpoint cosigner is in
# audit.index): the top-level CLI hands in factories, so this package never imports them. A
# factory returns an object with start()/aclose() and a ``description``, or None when not wanted.
Companion = Callable[[argparse.Namespace], Any]


def _serve(args: argparse.Namespace) -> int:
    from registry.backbone_cli import backbone_sync
    from registry.server import RegistryServer

    async def run() -> None:
        authority = _open(args)
        backbone = backbone_sync(authority, args.nats_users, args.nats_pid_file)
        server = RegistryServer(
            authority,
            args.listen,
            access_from_arguments(args),
            validity_s=args.validity,
            replicas=args.replicas,
            backbone=backbone,
        )
        await server.start()
        print(f"registry listening on {server.address}", flush=True)
        started: list[Any] = []
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            for factory in args.companions:
                companion = factory(args)
                if companion is not None:
                    await companion.start()
                    started.append(companion)
                    print(f"registry {companion.description}", flush=True)
            await stop.wait()
        finally:
            for companion in reversed(started):
                await companion.aclose()
            await server.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    print("registry stopped", file=sys.stderr)
    return 0


def _leaf(sub: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="registry directory (default: %(default)s)")
    parser.set_defaults(handler=handler)
    return parser


def _group(sub: Any, name: str, help_text: str) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    nested = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    nested.required = True
    return nested


def add_commands(sub: Any, *, companions: Sequence[Companion] = ()) -> None:
    """Register ``crossway registry …`` on the top-level subparsers; ``companions`` run beside
    ``registry serve`` (the CLI passes the audit checkpoint cosigner)."""
    reg = _group(sub, "registry", "run the central registry: members, certificates, configuration")

    p = _leaf(reg, "init", _init, "create a new registry (CA, signing key, anchor.json)")
    p.add_argument("--instance", required=True, help="instance code, e.g. EE")

    members = _group(reg, "member", "admit members")
    p = _leaf(members, "add", _member_add, "add a member")
    p.add_argument("id", help="INSTANCE/CLASS/CODE")
    p.add_argument("--name", required=True)
    p = _leaf(members, "encryption-key", _member_encryption_key, "set the X25519 key clients encrypt to")
    p.add_argument("id", help="INSTANCE/CLASS/CODE")
    p.add_argument("--public-key", required=True, help="raw 32-byte or PEM X25519 public key file")

    p = _leaf(
        members,
        "user-token-key",
        _member_user_token_key,
        "register (or remove) a key the member signs end-user tokens with; providers verify them",
    )
    p.add_argument("id", help="INSTANCE/CLASS/CODE")
    p.add_argument("--public-key", help="PEM or DER public key file (EC P-256/P-384, Ed25519, RSA)")
    p.add_argument("--remove", metavar="KEY_ID", help="withdraw the key with this id (see `registry list`)")
    p.add_argument("--issuer", help="the tokens' iss when it is not the member id")

    subsystems = _group(reg, "subsystem", "manage subsystems")
    p = _leaf(subsystems, "add", _subsystem_add, "add a subsystem")
    p.add_argument("id", help="INSTANCE/CLASS/CODE/SUBSYSTEM")

    gateways = _group(reg, "gateway", "manage gateways")
    p = _leaf(gateways, "add", _gateway_add, "add a member's gateway")
    p.add_argument("id", help="INSTANCE/CLASS/CODE/NAME")
    p.add_argument("--address", required=True, help="HOST:PORT of the gateway's peer listener")
    p = _leaf(gateways, "set-address", _gateway_set_address, "move a gateway to a new peer address")
    p.add_argument("id", help="INSTANCE/CLASS/CODE/NAME")
    p.add_argument("--address", required=True, help="HOST:PORT of the gateway's peer listener")

    services = _group(reg, "service", "manage services")
    p = _leaf(services, "add", _service_add, "register a gRPC service")
    p.add_argument("id", help="INSTANCE/CLASS/CODE/SUBSYSTEM/package.Service")
    p.add_argument("--descriptor-set", required=True, help="FileDescriptorSet file (protoc --descriptor_set_out)")
    p.add_argument("--require-encryption", action="store_true", help="bodies must be encrypted end to end")

    witnesses = _group(reg, "witness", "witnesses of the gateways' audit logs, besides the registry")
    p = _leaf(witnesses, "add", _witness_add, "name a witness (its C2SP verifier key) in the configuration")
    p.add_argument("vkey", help="the witness's verifier key NAME+KEYID+BASE64 (crossway audit witness-key)")
    p.add_argument("--member", help="the member that runs it (INSTANCE/CLASS/CODE)")
    p = _leaf(witnesses, "quorum", _witness_quorum, "how many distinct witnesses must cosign (registry counted)")
    p.add_argument("quorum", type=int)

    groups = _group(reg, "group", "manage global groups")
    p = _leaf(groups, "add", _group_add, "add subsystems to a group")
    p.add_argument("code")
    p.add_argument("subsystems", nargs="+", metavar="SUBSYSTEM")

    p = _leaf(_group(reg, "cert", "issue certificates"), "issue", _cert_issue, "issue a certificate from a CSR")
    p.add_argument("--csr", required=True, help="PEM or DER PKCS#10 request")
    p.add_argument("--kind", required=True, choices=[k.value for k in CertKind])
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--gateway", help="gateway id (for --kind tls)")
    who.add_argument("--member", help="member id (for --kind sign)")
    p.add_argument("-o", "--output", required=True, help="where to write the PEM certificate")
    p.add_argument("--days", type=int, default=365)

    p = _leaf(reg, "revoke", _revoke, "revoke a certificate by serial")
    p.add_argument("serial")
    p.add_argument("--reason", required=True)

    p = _leaf(reg, "publish", _publish, "sign and publish a configuration")
    p.add_argument("--validity", type=int, default=600, help="seconds the configuration stays valid")
    p.add_argument("-o", "--output", help="write the signed configuration here (default: DIR/configuration.bin)")
    add_nats_arguments(p, what="also put it into JetStream KV at this")

    from registry.backbone_cli import add_backbone_commands  # the NATS backbone (issue 11)

    nats = _group(reg, "nats", "identities on the NATS backbone and the servers' users")
    add_backbone_commands(nats, _leaf, _open, _read)

    _leaf(reg, "list", _list, "list members, services, groups and certificates")

    # Operators' kit (issue 17): disable/enable/remove, the change log (registry/opscli.py).
    from registry.opscli import add_lifecycle_commands

    lifecycle = {"member": members, "subsystem": subsystems, "gateway": gateways, "service": services, "group": groups}
    add_lifecycle_commands(lifecycle, reg, _leaf, _open)

    from registry.mailbox_cli import add_mailbox_commands, add_topic_commands  # issues 14, 15

    add_mailbox_commands(reg, _leaf, _open)
    add_topic_commands(reg, _leaf, _open)

    p = _leaf(
        reg,
        "serve",
        _serve,
        "serve GetConfiguration, keep the configuration published and (with --nats) cosign audit checkpoints",
    )
    p.add_argument("--listen", default="127.0.0.1:7400", help="HOST:PORT (default: %(default)s)")
    add_nats_arguments(p, what="publish to JetStream KV at this")
    p.add_argument("--validity", type=int, default=600)
    p.add_argument("--replicas", type=int, default=1, help="replicas of the bucket when it must be recreated")
    p.add_argument("--nats-users", default="", help="keep this NATS users file current (regenerated on change)")
    p.add_argument(
        "--nats-pid-file", action="append", default=[], help="a NATS server's pid file: SIGHUP it after a change"
    )
    p.add_argument(
        "--no-cosign",
        action="store_true",
        help="do not cosign the gateways' audit checkpoints here (another process of the registry does)",
    )
    p.set_defaults(companions=tuple(companions))
