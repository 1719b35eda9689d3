"""``crossway gateway …``: provision a gateway's keys, and run a gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from crossway import eventloop
from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId
from gateway.provisioning import provision_gateway
from gateway.runtime import Gateway
from gateway.shared.config import GatewayConfig, load_config
from gateway.workers import WorkerPool, WorkerRole

__all__ = ["add_commands"]


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # grpc and nats are chatty at INFO about reconnects; keep their warnings.
    for noisy in ("nats", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _init(args: argparse.Namespace) -> int:
    paths = provision_gateway(
        Path(args.dir),
        GatewayId.parse(args.id),
        dns_names=tuple(args.dns),
        ip_addresses=tuple(args.ip),
    )
    print(f"keys and certificate requests for {args.id} written to {paths.directory}")
    print(f"  send {paths.tls_csr.name}, {paths.signing_csr.name} and {paths.nats_csr.name} to the registry operator:")
    print(f"    crossway registry cert issue --csr {paths.tls_csr} --kind tls --gateway {args.id} -o tls.crt")
    print(
        f"    crossway registry cert issue --csr {paths.signing_csr} --kind sign --member "
        f"{GatewayId.parse(args.id).member} -o signing.crt"
    )
    print(
        f"    crossway registry nats issue --csr {paths.nats_csr} --role gateway --name {args.id} -o nats.crt"
        "   (its identity on NATS)"
    )
    print(f"  and register {paths.encryption_public.name} with `crossway registry member encryption-key`")
    return 0


async def _serve(config_path: Path, config: GatewayConfig, role: WorkerRole | None = None) -> int:
    if role is not None:
        config = role.apply(config)
    gateway = Gateway(
        config,
        on_configuration=lambda serial: print(f"configuration serial {serial}", flush=True),
        client_mtls_port=role.client_mtls_port if role is not None else 0,
        audit_checkpoints=role is None,
    )
    pool: WorkerPool | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        if role is not None:
            print(f"worker {role.index} ready", flush=True)
        elif config.workers > 1:
            pool = WorkerPool(config_path, config, gateway.nats_url)
            ports = WorkerRole(0, gateway.client_port, gateway.client_mtls_port, gateway.peer_port, gateway.admin_port)
            await pool.start(ports)
        host = config.client_listen.rpartition(":")[0] or "127.0.0.1"
        peer_host = config.peer_listen.rpartition(":")[0] or "127.0.0.1"
        print(
            f"gateway {config.gateway_id} ready: client={host}:{gateway.client_port} "
            f"client_mtls={host}:{gateway.client_mtls_port} peer={peer_host}:{gateway.peer_port}",
            flush=True,
        )
        await stop.wait()
        print(f"gateway {config.gateway_id} stopping: draining calls and audit records", flush=True)
    finally:
        if pool is not None:
            await pool.aclose()
        await gateway.aclose()
    stats: Any = gateway.audit.stats if gateway._audit is not None else None
    if stats is not None:
        print(f"gateway {config.gateway_id} stopped: audit {stats}", flush=True)
    return 0


def _health(args: argparse.Namespace) -> int:
    """Like grpc_health_probe: exit 0 when the asked entry ("" = the gateway) is SERVING, else 1."""
    from gateway.health import probe_health

    try:
        ca = Path(args.ca).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {exc.filename}: {exc.strerror}", hint="--ca names the registry CA's PEM"
        ) from exc
    report = probe_health(args.address, ca, args.service, timeout_s=args.timeout, server_name=args.server_name)
    entries = report.entries if report.entries and not args.service else ((report.service, report.status),)
    for name, status in entries:
        print(f"{status:<16}{name or '(gateway)'}")
    if report.status == "SERVICE_UNKNOWN":
        print(f"  hint: {args.address} has no health entry {args.service!r}; run without --service to list them")
    return 0 if report.serving else 1


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    role = WorkerRole.parse(args.worker) if args.worker else None
    config_path = Path(args.config)
    config = load_config(config_path)
    return eventloop.run(_serve(config_path, config, role), config.event_loop)


def add_commands(sub: Any) -> None:
    group = sub.add_parser("gateway", help="provision and run a gateway (security server)")
    leaves = group.add_subparsers(dest="gateway_command", metavar="COMMAND")
    leaves.required = True
    p = leaves.add_parser("init", help="generate a gateway's keys and certificate requests")
    p.add_argument("--id", required=True, help="gateway id INSTANCE/CLASS/CODE/NAME")
    p.add_argument("--dir", required=True, help="key directory (created 0700)")
    p.add_argument("--dns", action="append", default=["localhost"], help="DNS name of the peer listener")
    p.add_argument("--ip", action="append", default=["127.0.0.1"], help="IP address of the peer listener")
    p.set_defaults(handler=_init)
    p = leaves.add_parser("run", help="run a gateway from its TOML configuration")
    p.add_argument("--config", required=True, help="gateway.toml")
    p.add_argument("--verbose", action="store_true")
    # Internal: how a primary starts its worker processes ([gateway] workers).
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.set_defaults(handler=_run)
    p = leaves.add_parser(
        "health",
        help="ask a running gateway for its health (grpc.health.v1); exit 0 when SERVING, 1 otherwise",
    )
    p.add_argument("--address", required=True, help="HOST:PORT of the gateway's client or admin port")
    p.add_argument("--ca", required=True, help="PEM of the registry CA (the gateway's certificate chains to it)")
    p.add_argument(
        "--service", default="", help='one entry (a service id, "crossway.registry", …); default: the gateway'
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    p.add_argument("--server-name", default="", help="TLS name to expect when HOST is not in the certificate")
    p.set_defaults(handler=_health)
