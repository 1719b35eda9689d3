"""``crossway gateway …``: provision a gateway's keys, and run a gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import logging
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from crossway import eventloop
from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId
from crossway.logs import LOG_FORMATS, json_handler
from gateway.backup import add_backup_commands
from gateway.provisioning import provision_gateway
from gateway.runtime import Gateway
from gateway.shared.config import GatewayConfig, load_config
from gateway.workers import WorkerPool, WorkerRole

__all__ = ["add_commands"]


class _OneLine(logging.Filter):
    """nats-py's default error callback logs a whole traceback for every failed (re)connect
    attempt — one every 2 s while NATS is away, 300 in ten minutes. The exception's type and
    message say all an operator can act on: one line each."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg, record.args = "%s (%s: %s)", (record.getMessage(), type(exc).__name__, exc)
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(
    verbose: bool = False, log_format: str = "text", static: dict[str, str | int] | None = None
) -> None:
    # "json" (issue 17): one object per line, with the exchange's message and trace ids (crossway.logs).
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[json_handler(static)] if log_format == "json" else None,
    )
    # grpc and nats are chatty at INFO about reconnects; keep their warnings.
    for noisy in ("nats", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("nats.aio.client").addFilter(_OneLine())


_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _hosts(values: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--host`` values split into DNS names and IP addresses (each checked)."""
    dns: list[str] = []
    ips: list[str] = []
    for value in values:
        host = value.strip().lower()
        try:
            ips.append(str(ipaddress.ip_address(host.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _DNS_NAME.match(host):
            raise ConfigError(
                f"--host {value!r} is neither a DNS name nor an IP address",
                hint="give the name or address other gateways use to reach this one, e.g. --host gw1.agency.example",
            )
        dns.append(host)
    return tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips))


def _init(args: argparse.Namespace) -> int:
    hosts = [*args.host, *args.dns, *args.ip]
    if not hosts:
        hosts = ["localhost", "127.0.0.1"]
        print(
            "note: no --host given; the TLS certificate will name only localhost and 127.0.0.1, so only a gateway "
            "on this machine can reach this one. Give --host NAME for each name or address other gateways use.",
            file=sys.stderr,
        )
    dns_names, ip_addresses = _hosts(hosts)
    paths = provision_gateway(
        Path(args.dir),
        GatewayId.parse(args.id),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    print(f"keys and certificate requests for {args.id} written to {paths.directory}")
    print(f"  the TLS request names {', '.join((*dns_names, *ip_addresses))}")
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
        worker=role.index if role is not None else 0,
    )
    pool: WorkerPool | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if not await _started(gateway, stop):
            print(f"gateway {config.gateway_id} stopped before it was ready", flush=True)
            return 0
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
            f"client_mtls={host}:{gateway.client_mtls_port} peer={peer_host}:{gateway.peer_port}"
            + (f" metrics={gateway.observability.metrics_url}" if gateway.observability.metrics_url else ""),
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


async def _started(gateway: Gateway, stop: asyncio.Event) -> bool:
    """Start ``gateway`` unless told to stop first: False when SIGTERM/SIGINT came during the
    start (waiting for NATS, say) — the start is cancelled then, not waited out."""
    starting = asyncio.ensure_future(gateway.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if starting.done():
        starting.result()  # a failed start raises here (e.g. config.invalid)
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


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


def _return_large_buffers_to_the_os() -> None:
    """Have glibc serve every buffer of 256 KiB or more with its own mapping, freed to the OS.

    By default glibc raises its mmap threshold after the first large buffer is freed (up to
    32 MiB), and from then on a message's 4 MiB buffers come from the heap, which a process does
    not give back: after eight concurrent 4 MiB calls a gateway stayed ~220 MiB larger for good.
    A fixed threshold keeps RSS settling back after large calls (``python -m bench.memory``); the
    cost is a mapping per large buffer, small beside moving its megabytes. Linux with glibc only.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
    except (OSError, AttributeError):
        return  # another C library: its own policy applies


_M_MMAP_THRESHOLD = -3  # <malloc.h>


def _run(args: argparse.Namespace) -> int:
    _return_large_buffers_to_the_os()
    role = WorkerRole.parse(args.worker) if args.worker else None
    config_path = Path(args.config)
    config = load_config(config_path)
    if args.log_format:  # the flag wins over the file, and the primary hands it to its workers
        config = replace(config, log_format=args.log_format)
    static: dict[str, str | int] = {"gateway": str(config.gateway_id), "worker": role.index if role else 0}
    configure_logging(args.verbose, config.log_format, static)
    return eventloop.run(_serve(config_path, config, role), config.event_loop)


def add_commands(sub: Any) -> None:
    group = sub.add_parser("gateway", help="provision and run a gateway (security server)")
    leaves = group.add_subparsers(dest="gateway_command", metavar="COMMAND")
    leaves.required = True
    p = leaves.add_parser("init", help="generate a gateway's keys and certificate requests")
    p.add_argument("--id", required=True, help="gateway id INSTANCE/CLASS/CODE/NAME")
    p.add_argument("--dir", required=True, help="key directory (created 0700)")
    p.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "a DNS name or IP address other gateways use to reach this one (repeat for each); it goes into the "
            "TLS certificate, which must name the address the registry lists. Default: localhost and 127.0.0.1"
        ),
    )
    # Earlier spellings of --host, kept so that existing scripts still work.
    p.add_argument("--dns", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--ip", action="append", default=[], help=argparse.SUPPRESS)
    p.set_defaults(handler=_init)
    p = leaves.add_parser("run", help="run a gateway from its TOML configuration")
    p.add_argument("--config", required=True, help="gateway.toml")
    p.add_argument("--verbose", action="store_true")
    p.add_argument(
        "--log-format", choices=LOG_FORMATS, help='log lines as "text" or "json" (default: [logging] format, else text)'
    )
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
    add_backup_commands(leaves)  # backup | restore | backup-key (issue 17)
