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
    p = leaf(registry, "changes", _changes(open_registry), "the registry's signed, hash-chained change log")
    p.add_argument("--after", type=int, default=0, help="only changes after this sequence number")
    p.add_argument("--verify", action="store_true", help="check every hash, link and signature (exit 1 if not)")
