"""``crossway nats …``: the backbone operator's commands (the registry issues; this requests and checks).

- ``request``: make a NATS key and its CSR where the identity will run (the key never leaves);
- ``provision``: create and check the streams and buckets, as the ``admin`` identity — the one
  credential that may; no running component holds it;
- ``knock``: try to get in anonymously (plain, and TLS without a certificate); exit 0 when refused.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError

__all__ = ["add_commands"]


def _request(args: argparse.Namespace) -> int:
    from crossway.security.natspki import request_identity

    key, csr = request_identity(Path(args.dir), args.stem)
    print(f"NATS key {key} (stays here) and request {csr} written")
    print(f"  have the registry issue it: crossway registry nats issue --csr {csr} --role ROLE --name NAME -o CERT")
    return 0


def _provision(args: argparse.Namespace) -> int:
    from crossway.natsclient import access_from_arguments
    from crossway.natsstreams import provision_backbone
    from crossway.security.natspki import NatsRole

    admin = access_from_arguments(args)
    assert admin is not None  # --nats is required
    if admin.identity.role is not NatsRole.ADMIN:
        raise ConfigError(f"provisioning takes the admin identity, not {admin.identity}")
    created = asyncio.run(
        provision_backbone(
            admin, replicas=args.replicas, members=args.member, replay_window_s=float(args.replay_window)
        )
    )
    print(f"backbone provisioned and checked; created: {', '.join(created) or 'nothing (all were there)'}")
    return 0


def _knock(args: argparse.Namespace) -> int:
    from crossway.natsclient import try_anonymous

    try:
        refusals = asyncio.run(try_anonymous(args.url))
    except RuntimeError as exc:
        print(f"OPEN: {exc}")
        return 1
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach NATS at {args.url}: {exc}", hint="check the URL") from exc
    for line in refusals:
        print(f"refused {line}")
    return 0


def add_commands(sub: Any) -> None:
    from crossway.natsclient import add_nats_arguments

    group = sub.add_parser("nats", help="the NATS backbone: identities, provisioning, checks")
    leaves = group.add_subparsers(dest="nats_command", metavar="COMMAND")
    leaves.required = True
    p = leaves.add_parser("request", help="make a NATS key and CSR here (send only the CSR to the registry)")
    p.add_argument("--dir", required=True, help="where the key and CSR go (created 0700)")
    p.add_argument("--stem", default="nats", help="file names: STEM.key and STEM.csr")
    p.set_defaults(handler=_request)
    p = leaves.add_parser("provision", help="create and check the streams and buckets (admin identity)")
    add_nats_arguments(p, required=True)
    p.add_argument("--replicas", type=int, default=1, help="stream replicas (3 on a 3-node cluster)")
    p.add_argument(
        "--member",
        action="append",
        default=[],
        help="a member whose delivery streams and state bucket (and, with --replay-window, shared replay bucket) to create; repeat it",
    )
    p.add_argument("--replay-window", default="0", help="seconds a replay bucket keeps a message id")
    p.set_defaults(handler=_provision)
    p = leaves.add_parser("knock", help="try to connect anonymously; exit 0 when every attempt is refused")
    p.add_argument("url")
    p.set_defaults(handler=_knock)
