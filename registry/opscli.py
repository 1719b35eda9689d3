"""``crossway registry …`` commands of the operators' kit (issue 17).

- ``registry member|subsystem|gateway|service|group disable|enable|remove ID [--reason TEXT]``;
- ``registry changes [--verify] [--after N]``: the signed, hash-chained change log;
- ``registry key announce|rotate``: a new configuration-signing key (``registry.keyrotation``).

Handlers take the registry directory like every ``registry`` command (``--dir``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError
from registry.changes import verify_changes

__all__ = ["add_lifecycle_commands"]

Leaf = Callable[[Any, str, Any, str], argparse.ArgumentParser]
Opener = Callable[[argparse.Namespace], Any]

_VERBS = {
    "disable": "disable it: still listed, refused everywhere with its own code (enable undoes it)",
    "enable": "enable it again after disable",
    "remove": "remove it from the published configuration; final, its id stays reserved",
}


def _lifecycle(kind: str, verb: str, open_registry: Opener) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        authority = open_registry(args)
        try:
            if verb == "enable":
                ident = authority.lifecycle.enable(kind, args.id)
            elif verb == "disable":
                ident = authority.lifecycle.disable(kind, args.id, args.reason)
            else:
                ident = authority.lifecycle.remove(kind, args.id, args.reason)
        finally:
            authority.close()
        print(f"{kind} {ident}: {verb}d; gateways apply it with the next configuration `registry serve` publishes")
        return 0

    return handler


def _changes(open_registry: Opener) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        authority = open_registry(args)
        try:
            entries = authority.changes.entries(after=args.after)
            anchor = authority.anchor
        finally:
            authority.close()
        for e in entries:
            at = dt.datetime.fromtimestamp(e.at_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"{e.seq:>6}  {at}  {e.actor:<12}  {e.what}")
        if args.verify:
            if args.after:
                raise ConfigError("--verify checks the whole log", hint="leave out --after")
            problems = verify_changes(entries, anchor.audit_keys())
            for problem in problems:
                print(f"FAILED: {problem}")
            print(f"change log: {'intact' if not problems else 'NOT intact'} ({len(entries)} entries)")
            return 1 if problems else 0
        return 0

    return handler


def _key(verb: str, open_registry: Opener) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from registry.authority import passphrase_from_env

        authority = open_registry(args)
        try:
            if verb == "announce":
                key_id = authority.announce_next_key(passphrase_from_env())
                print(f"next configuration key {key_id} announced; every configuration published from now on")
                print("  carries it, endorsed by the current key. Once every gateway has applied one of them:")
                print("  crossway registry key rotate")
            else:
                key_id = authority.rotate_key(passphrase_from_env())
                print(f"configuration key {key_id} in use; anchor.json names it (and lists the retired keys).")
                print("  restart `registry serve` and the registry's audit-log process so they sign with it;")
                print("  gateways pinning the old anchor keep accepting it; hand agencies the new anchor.json")
        finally:
            authority.close()
        return 0

    return handler


def _backup(open_registry: Opener) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from crossway.backup import describe, load_backup_public_key
        from registry.authority import passphrase_from_env
        from registry.backup import backup_registry

        summary = backup_registry(
            Path(args.dir), Path(args.to), load_backup_public_key(Path(args.recipient)), passphrase_from_env()
        )
        print(f"{describe(summary.header)}: {summary.path} ({summary.size} bytes), encrypted to {args.recipient}")
        return 0

    return handler


def _restore(args: argparse.Namespace) -> int:
    from crossway.backup import describe, load_backup_private_key
    from registry.anchor import load_anchor
    from registry.authority import passphrase_from_env
    from registry.backup import restore_registry

    header = restore_registry(
        Path(args.archive),
        load_backup_private_key(Path(args.key)),
        Path(args.dir),
        load_anchor(Path(args.anchor)),
        passphrase_from_env(),
    )
    print(f"restored {describe(header)} into {args.dir}; verified before anything was written")
    print("  start `registry serve` again: it publishes the next configuration serial")
    return 0


def _backup_key(args: argparse.Namespace) -> int:
    from crossway.backup import make_backup_key

    private, public = make_backup_key(args.prefix)
    print(f"backup key written: {private} (keep it offline, apart from the backups) and {public} (to encrypt to)")
    return 0


def add_lifecycle_commands(groups: Mapping[str, Any], registry: Any, leaf: Leaf, open_registry: Opener) -> None:
    """Add disable/enable/remove to each kind's command group, and ``registry changes``."""
    for kind, group in groups.items():
        for verb, text in _VERBS.items():
            p = leaf(group, verb, _lifecycle(kind, verb, open_registry), f"{verb} a {kind}: {text}")
            p.add_argument("id", help=f"the {kind}'s id" if kind != "group" else "the group's code")
            if verb != "enable":
                p.add_argument("--reason", default="", help="why (goes into the signed change log)")
    keys = registry.add_parser("key", help="rotate the configuration-signing key without a flag day")
    nested = keys.add_subparsers(dest="key_command", metavar="COMMAND")
    nested.required = True
    leaf(nested, "announce", _key("announce", open_registry), "make the next key and announce it, endorsed")
    leaf(nested, "rotate", _key("rotate", open_registry), "sign with the announced key from now on")
    p = leaf(registry, "backup", _backup(open_registry), "back up the registry directory: one signed, encrypted file")
    p.add_argument("--to", required=True, help="the archive to write")
    p.add_argument("--recipient", required=True, help="the operator's backup public key (from `backup-key`)")
    p = leaf(registry, "restore", _restore, "verify a registry backup, then restore it into an empty --dir")
    p.add_argument("archive")
    p.add_argument("--key", required=True, help="the operator's backup private key")
    p.add_argument("--anchor", required=True, help="the anchor.json the gateways pin (who may have signed it)")
    p = registry.add_parser("backup-key", help="make an operator's backup key pair (X25519)")
    p.add_argument("prefix", help="writes PREFIX.key (private, 0600) and PREFIX.pub")
    p.set_defaults(handler=_backup_key)
    p = leaf(registry, "changes", _changes(open_registry), "the registry's signed, hash-chained change log")
    p.add_argument("--after", type=int, default=0, help="only changes after this sequence number")
    p.add_argument("--verify", action="store_true", help="check every hash, link and signature (exit 1 if not)")
