"""``crossway demo``: bring up a multi-agency federation on this machine and show an exchange."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from crossway.core.errors import ConfigError, CrosswayError
from crossway.demo.console import ConsoleFederation, ConsoleStack
from crossway.demo.delivery import COURT_AGENCY, MAILBOX, run_delivery_scenario, write_mail_profiles
from crossway.demo.federation import Federation
from crossway.demo.population import serve_population
from crossway.demo.sapcap import DEFAULT_TOOLS, CapServer
from crossway.demo.scenario import run_scenario
from crossway.demo.topics import customize_gateway as topics_gateway
from crossway.demo.topics import customize_registry as topics_registry
from crossway.demo.topics import run_topics_scenario
from crossway.natsclient import try_anonymous

__all__ = ["add_commands"]


def _fresh(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)  # demo state only: every run starts a fresh federation


async def _demo(workdir: Path, once: bool, verbose: bool, tools: Path, nats_nodes: int = 1) -> int:
    _fresh(workdir)
    nats = "NATS" if nats_nodes == 1 else f"a {nats_nodes}-node NATS cluster"
    print(
        f"Starting a demo federation in {workdir} ({nats}, registry, 4 gateways, a gRPC backend, SAP CAP)…", flush=True
    )

    def say(line: str) -> None:
        print(line, flush=True)

    # The business register's SAP system first: its URL goes into that agency's gateway.
    # Registered delivery (issue 14): a court with its own gateway, mailboxes at the business register.
    async with (
        CapServer(echo=verbose, tools=tools, say=say) as sap,
        # Kept up (make run): admin ports for the web console, which starts after the scenario.
        (Federation if once else ConsoleFederation)(
            workdir,
            echo=verbose,
            sap_service_url=sap.service_url,
            extra_agencies=(COURT_AGENCY,),
            customize_registry=topics_registry,  # delivery's mailboxes and topics (issues 14, 15)
            customize_gateway=topics_gateway,
            nats_nodes=nats_nodes,
        ) as fed,
    ):
        print(
            f"  NATS {fed.nats.url} · tax gateway client port {fed.tax.client_port} · "
            f"population gateway peer port {fed.population.peer_port} · backend port {fed.backend_port} · "
            f"SAP OData {sap.service_url}",
            flush=True,
        )
        for agency in fed.agencies:
            print(f"  metrics of gateway {agency.gateway}: {agency.metrics_url}", flush=True)
        # Nobody gets in anonymously: really knock, and show how the backbone answered.
        refusals = await try_anonymous(fed.nats.url)
        print(f"  NATS {fed.nats.url} refused an anonymous client ({'; '.join(refusals)})", flush=True)
        result = await run_scenario(fed, lambda line: print(line, flush=True))
        delivery = await run_delivery_scenario(fed, fed.extra[0], lambda line: print(line, flush=True))
        result.failures.extend(delivery.failures)
        topics = await run_topics_scenario(fed, lambda line: print(line, flush=True))
        result.failures.extend(topics.failures)
        if not once:
            token_file = workdir / "tax" / "token.jwt"
            token_file.write_text(fed.token(ttl_s=3600))
            (workdir / "tax" / "client.port").write_text(str(fed.tax.client_port))
            (workdir / "tax" / "ca.pem").write_bytes(fed.ca_pem)
            write_mail_profiles(fed, workdir)
            print("\nThe federation stays up. From another terminal, call it with the backend's own stubs, e.g.:")
            print(f"  .venv/bin/python -m crossway.cli demo call --workdir {workdir} 38001010001")
            print("or send registered mail as the court, and receive it as the business register:")
            print(f"  .venv/bin/crossway mail --profile {workdir}/court/profile send {MAILBOX} --id s-1 --text hello")
            print(f"  .venv/bin/crossway mail --profile {workdir}/business/profile receive")
            print("or index the audit trail, as the audit index's NATS identity (nobody reads NATS anonymously):")
            print(f"  .venv/bin/crossway audit index {' '.join(fed.nats_arguments(fed.index))} --once")
            console = await _start_console(fed, workdir / "console", verbose)
            print("Press Ctrl-C to stop.", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            if console is not None:
                await console.aclose()
    for failure in result.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(delivery.summary(), flush=True)
    print(topics.summary(), flush=True)
    print(result.summary(), flush=True)
    return 0 if result.ok else 1


async def _start_console(fed: Federation, directory: Path, verbose: bool) -> ConsoleStack | None:
    """The audit API and the web console beside the federation; the demo goes on without them."""
    assert isinstance(fed, ConsoleFederation)
    stack = ConsoleStack(fed, directory, echo=verbose)
    try:
        await stack.start()
    except CrosswayError as exc:
        await stack.aclose()
        print(f"\n(the web console did not start: {exc.message}; pip install 'crossway[console]')", flush=True)
        return None
    print("\n" + "\n".join(stack.sign_in_lines()), flush=True)
    return stack


async def _call(workdir: Path, national_id: str) -> int:
    import grpc

    from gateway.wire.metadata import metadata_text
    from protos.demo.population.v1 import population_pb2 as pb
    from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

    try:
        ports = (workdir / "tax" / "client.port").read_text().strip()
        ca = (workdir / "tax" / "ca.pem").read_bytes()
        token = (workdir / "tax" / "token.jwt").read_text().strip()
    except OSError as exc:
        # The usual cause: run from another folder than `crossway demo` (the default is relative).
        raise ConfigError(
            f"no running demo in {workdir}: cannot read {exc.filename} ({exc.strerror})",
            hint="start the demo with `crossway demo` and keep it running; from another folder, pass "
            "--workdir with the folder it printed",
        ) from exc
    async with grpc.aio.secure_channel(f"127.0.0.1:{ports}", grpc.ssl_channel_credentials(ca)) as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        try:
            call = stub.GetPerson(
                pb.GetPersonRequest(national_id=national_id),
                metadata=(("authorization", f"Bearer {token}"), ("crossway-purpose", "tax-assessment")),
                timeout=10,
            )
            person = await call
        except grpc.aio.AioRpcError as exc:
            md = metadata_text(exc.trailing_metadata())
            print(f"{exc.code().name} [{md.get('crossway-error', '')}] {exc.details()}", file=sys.stderr)
            return 1
    print(person)
    print(f"crossway-message-id: {metadata_text(await call.trailing_metadata()).get('crossway-message-id')}")
    return 0


async def _backend(listen: str, calls_log: Path | None) -> int:
    server, port = await serve_population(listen, calls_log)
    print(f"backend listening on {listen.rpartition(':')[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(2)
    return 0


def add_commands(sub: Any) -> None:
    group = sub.add_parser("demo", help="run a demo federation of three agencies on this machine")
    group.add_argument("--once", action="store_true", help="run the scenario, then stop (exit 0 when as expected)")
    group.add_argument("--workdir", default="var/demo", help="where the demo keeps its state (wiped at start)")
    group.add_argument("--verbose", action="store_true", help="show the processes' own output")
    group.add_argument(
        "--tools-dir",
        type=Path,
        default=DEFAULT_TOOLS,
        help="where Node 22 and the SAP CAP project are installed on first use (default: ~/.cache/crossway/tools)",
    )
    group.add_argument(
        "--nats-cluster",
        type=int,
        default=1,
        metavar="N",
        help="run NATS as a cluster of N nodes (routes over TLS, streams at up to 3 replicas); default 1",
    )
    group.set_defaults(
        handler=lambda a: asyncio.run(_demo(Path(a.workdir), a.once, a.verbose, a.tools_dir, a.nats_cluster))
    )
    leaves = group.add_subparsers(dest="demo_command", metavar="COMMAND")
    p = leaves.add_parser("backend", help="run the sample population-register backend")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--calls-log", type=Path, default=None)
    p.set_defaults(handler=lambda a: asyncio.run(_backend(a.listen, a.calls_log)))
    p = leaves.add_parser("call", help="call the running demo's population register as agency 'tax'")
    p.add_argument("national_id")
    p.add_argument("--workdir", default="var/demo")
    p.set_defaults(handler=lambda a: asyncio.run(_call(Path(a.workdir), a.national_id)))
