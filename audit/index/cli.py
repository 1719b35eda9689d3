"""``crossway audit …``: run the index (and its gRPC API), query it, show one exchange, verify, export, evidence.

Every command reads the index at ``--index`` (a SQLite path — the default — or ``postgresql://…``).
Exit codes: 0 success / intact, 1 a finding or an error (printed as ``error[code]``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from audit.index.payloads import add_payload_commands
from audit.index.registry_log import add_registry_log_command
from audit.index.store import Filters, IndexStore, open_store
from audit.index.verify import DEFAULT_GRACE_MS, SHARED_FIELDS, STATUS_FIELDS
from audit.index.verify_cli import _evidence, _progress, _verify, _verify_evidence, _witnesses
from audit.index.witness_cli import _witness, _witness_key
from audit.trail import AuditRecord
from crossway.core.errors import ConfigError
from crossway.natsclient import access_from_arguments, add_nats_arguments

__all__ = ["add_commands"]

DEFAULT_INDEX = "var/audit-index.sqlite"
_TABLE = ("time", "side", "gateway", "message_id", "client", "method", "user", "status", "decision")


def _time(text: str) -> int:
    """Epoch milliseconds from digits, or an ISO 8601 time (UTC when no zone is given)."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"time {text!r} is neither epoch ms nor ISO 8601", hint="e.g. 2025-01-31T12:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(
        since_ms=_time(args.since) if args.since else None,
        until_ms=_time(args.until) if args.until else None,
        client=args.client,
        service=args.service,
        method=args.method,
        user_id=args.user,
        status=args.status,
        decision=args.decision,
        message_id=args.message_id,
    )


def _row(record: AuditRecord) -> tuple[str, ...]:
    method = record.method.rsplit("/", 1)[-1]
    return (
        _iso(record.request_in_ms),
        record.side,
        record.gateway,
        record.message_id,
        record.client,
        method,
        record.user_id,
        record.status,
        record.decision or "-",
    )


def _print_table(rows: list[tuple[str, ...]], out: TextIO = sys.stdout) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(_TABLE)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(_TABLE, widths, strict=True)), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), file=out)


# -- handlers ------------------------------------------------------------------------------


def _index(args: argparse.Namespace) -> int:
    from audit.index.indexer import AuditIndexer

    nats = access_from_arguments(args)
    assert nats is not None  # --nats is required
    store = open_store(args.index)

    async def run() -> int:
        indexer = AuditIndexer(nats, store, stream=args.stream)
        if args.once:
            return await indexer.catch_up()
        await indexer.start()
        print(f"audit index consuming {args.nats} into {args.index}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await indexer.aclose()
        return 0

    try:
        n = asyncio.run(run())
        if args.once:
            print(f"indexed {n} records")
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from audit.index.auth import AuditAuthenticator
    from audit.index.server import serve
    from crossway.security.keys import load_public_key
    from crossway.security.tokens import JwtVerifier

    verifier = JwtVerifier(
        issuer=args.issuer,
        audience=args.audience,
        public_keys=[load_public_key(p) for p in args.public_key],  # type: ignore[misc]
    )
    auth = AuditAuthenticator(verifier, roles_claim=args.roles_claim, member_claim=args.member_claim)
    host = args.listen.rpartition(":")[0] or "127.0.0.1"
    reads = None
    if args.record_reads_to:
        from audit.index.reads import GatewayReadRecorder

        if not args.record_reads_ca:
            raise ConfigError("--record-reads-to needs --record-reads-ca", hint="the registry CA's PEM")
        reads = GatewayReadRecorder(
            args.record_reads_to,
            Path(args.record_reads_ca).read_bytes(),
            source=args.name,
            server_name=args.record_reads_server_name,
        )

    def ready(port: int) -> None:
        also = f", indexing {args.nats}" if args.nats else ""
        recorded = f"; reads recorded at {args.record_reads_to}" if reads is not None else "; reads NOT recorded"
        print(f"audit API listening on {host}:{port} (index {args.index}{also}{recorded})", flush=True)

    witnesses = _witnesses(args)
    asyncio.run(
        serve(
            args.index,
            args.listen,
            Path(args.tls_key).read_bytes(),
            Path(args.tls_cert).read_bytes(),
            auth,
            witnesses.keys,
            nats=access_from_arguments(args),
            reads=reads,
            ready=ready,
            quorum=witnesses.quorum,
        )
    )
    return 0


def _query(args: argparse.Namespace) -> int:
    store = open_store(args.index)
    try:
        rows = store.query(_filters(args), limit=args.limit)
    finally:
        store.close()
    if args.json:
        for row in rows:
            print(row.body)
    else:
        _print_table([_row(r.record()) for r in rows])
        print(f"{len(rows)} record(s)")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = open_store(args.index)
    try:
        records = {r.record().side: r.record() for r in store.query(Filters(message_id=args.message_id))}
    finally:
        store.close()
    if not records:
        print(f"no audit record of message {args.message_id}", file=sys.stderr)
        return 1
    client, provider = records.get("client"), records.get("provider")
    if args.json:
        print(json.dumps({side: json.loads(r.to_json()) for side, r in records.items()}, indent=2, sort_keys=True))
        return 0
    single = records.get("admin") or records.get("auditor")
    if single is not None:  # a policy change, or an auditor's read: one record, no sides
        kind = "administrative event" if single.side == "admin" else "auditor's read recorded by"
        print(f"message {args.message_id}: {kind} {single.gateway}")
        for name in AuditRecord.__dataclass_fields__:
            print(f"  {name:<20}{getattr(single, name)}")
        return 0
    names = [f.name for f in AuditRecord.__dataclass_fields__.values()]
    print(f"message {args.message_id}")
    print(f"  {'FIELD':<20}{'CLIENT SIDE':<48}PROVIDER SIDE")
    disagreements = 0
    both = client is not None and provider is not None
    for name in names:
        left = "" if client is None else str(getattr(client, name))
        right = "" if provider is None else str(getattr(provider, name))
        mark = ""
        if both and name in (*SHARED_FIELDS, *STATUS_FIELDS) and left != right:
            mark, disagreements = "  <-- DISAGREE", disagreements + 1
        print(f"  {name:<20}{left[:46]:<48}{right[:46]}{mark}")
    for side, record in (("client", client), ("provider", provider)):
        if record is None:
            print(f"  (no {side} record in the index)")
    if disagreements:
        print(f"{disagreements} disagreement(s) between the two sides")
    if client is not None and provider is not None and client.status != provider.status:
        # Not tampering in itself (the client side can fail after the provider answered), but the
        # caller was told the client side's status: an auditor must see that the two differ.
        print(
            f"status differs: the provider recorded {provider.status}, the client side {client.status} "
            f"(what the caller was told)"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    store = open_store(args.index)
    filters = _filters(args)
    total = store.count_matching(filters)
    progress = None if args.quiet else _progress("export")
    out = open(args.output, "w", newline="") if args.output != "-" else sys.stdout  # noqa: SIM115
    try:
        written = 0
        writer = csv.writer(out) if args.format == "csv" else None
        names = [f for f in AuditRecord.__dataclass_fields__]
        if writer is not None:
            writer.writerow(names)
        for row in _pages(store, filters):
            if writer is None:
                out.write(row + "\n")
            else:
                record = AuditRecord.from_json(row)
                writer.writerow(
                    [";".join(v) if isinstance(v, tuple) else v for v in (getattr(record, n) for n in names)]
                )
            written += 1
            if progress is not None and written % 10_000 == 0:
                progress(written, total)
        if progress is not None:
            progress(written, total)
    finally:
        if out is not sys.stdout:
            out.close()
        store.close()
    if args.output != "-":
        print(f"exported {written} records to {args.output}", file=sys.stderr)
    return 0


def _pages(store: IndexStore, filters: Filters, page: int = 10_000) -> Iterator[str]:
    # Keyset pages: each starts where the last ended, so a long export does not slow down with depth.
    after = None
    while True:
        rows = store.query(filters, limit=page, after=after)
        yield from (r.body for r in rows)
        if len(rows) < page:
            return
        after = rows[-1].position


# -- registration --------------------------------------------------------------------------


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="", help="from this time (ISO 8601 or epoch ms), inclusive")
    p.add_argument("--until", default="", help="up to this time, exclusive")
    p.add_argument("--client", default="", help="calling subsystem, e.g. EE/GOV/70000001/tax")
    p.add_argument("--service", default="", help="full service id")
    p.add_argument("--method", default="", help="full method id (…/Service/Method)")
    p.add_argument("--user", default="", help="end-user id")
    p.add_argument("--status", default="", help="gRPC status name, e.g. OK, PERMISSION_DENIED")
    p.add_argument("--decision", default="", choices=["", "allow", "deny"])
    p.add_argument("--message-id", default="", dest="message_id")


def _add_timestamp_options(p: argparse.ArgumentParser, pin: bool = False) -> None:
    what = "pin the RFC 3161 TSA's CA (PEM) instead of trusting the bundle's" if pin else "the RFC 3161 TSA's CA (PEM)"
    p.add_argument("--tsa-ca", default="", help=f"{what}; checks checkpoints' timestamp tokens")
    p.add_argument(
        "--require-timestamp", action="store_true", help="a checkpoint without a timestamp token is a failure"
    )


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit index: query, show, verify, export, evidence")
    cmds = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    cmds.required = True

    def command(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=help_text)
        p.add_argument("--index", default=DEFAULT_INDEX, help="SQLite path or postgresql://… URL")
        p.set_defaults(handler=handler)
        return p

    p = command("index", "consume the audit streams into the index (durable; catches up)", _index)
    add_nats_arguments(p, required=True)
    p.add_argument("--stream", default="CROSSWAY_AUDIT")
    p.add_argument("--once", action="store_true", help="catch up and exit")
    p = command("serve", "the audit gRPC API (crossway.v1.Audit) over TLS, for auditor JWTs", _serve)
    p.add_argument("--listen", default="127.0.0.1:7443", help="host:port (port 0: any free port)")
    p.add_argument("--tls-key", required=True, help="the server's TLS private key (PEM)")
    p.add_argument("--tls-cert", required=True, help="the server's TLS certificate chain (PEM)")
    p.add_argument("--issuer", required=True, help="the auditors' identity provider (token iss)")
    p.add_argument("--audience", required=True, help="this API's audience (token aud)")
    p.add_argument("--public-key", action="append", required=True, help="identity provider key (PEM); repeat")
    p.add_argument("--anchor", required=True, help="the registry anchor.json (trusted cosigner key)")
    add_nats_arguments(p, what="also consume the audit streams into the index: NATS")
    p.add_argument("--roles-claim", default="roles")
    p.add_argument("--member-claim", default="member", help="claim naming the agency a token is scoped to")
    p.add_argument(
        "--record-reads-to",
        default="",
        metavar="HOST:PORT",
        help="record every auditor's read in the audit log, through this gateway's admin port (a read "
        "that cannot be recorded is refused)",
    )
    p.add_argument(
        "--record-reads-ca", default="", help="PEM of the registry CA (that gateway's certificate chains to it)"
    )
    p.add_argument("--record-reads-server-name", default="", help="TLS name of that gateway, when not its address")
    p.add_argument("--name", default="crossway audit serve", help="this API's name in the records of reads")
    p = command("query", "search records (table; --json for JSON lines)", _query)
    _add_filters(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=1000)
    p = command("show", "both sides of one exchange, joined, disagreements marked", _show)
    p.add_argument("message_id")
    p.add_argument("--json", action="store_true")
    p = command("verify", "check checkpoints, Merkle roots and both-side agreement", _verify)
    p.add_argument("--anchor", required=True, help="the registry anchor.json (trusted cosigner key)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--signed-only",
        action="store_true",
        help="verify what the latest cosigned checkpoints cover; count newer records as pending (a live system)"
        " — only within the grace period: older ones must be covered",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_MS / 1000,
        help="seconds a record may wait for its cosigned checkpoint and for its other side (default %(default)s)",
    )
    p.add_argument("--fork-evidence", default="", help="write each fork's two signed checkpoints to this directory")
    add_nats_arguments(
        p,
        what="also compare with what NATS holds: each gateway's latest cosigned checkpoint, and the audit stream "
        "(names a record rewritten together with its leaf hash; catches an index truncated with its checkpoints):",
    )
    _add_timestamp_options(p)
    p.add_argument(
        "--configuration", default="", help="a signed registry configuration naming the witnesses and their quorum"
    )
    p = command("export", "export records as JSON lines or CSV", _export)
    _add_filters(p)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", default="-")
    p.add_argument("--quiet", action="store_true")
    p = command("evidence", "write a self-contained, offline-verifiable bundle for one exchange", _evidence)
    p.add_argument("message_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--anchor", required=True, help="the registry anchor.json (its key goes into the bundle)")
    p.add_argument("--tsa-ca", default="", help="the RFC 3161 TSA's CA (PEM); it goes into the bundle")
    p.add_argument("--configuration", default="", help="a signed registry configuration naming the witnesses")
    add_nats_arguments(p, what="read the witnesses and their quorum from the registry in this")
    add_payload_commands(command)
    p = cmds.add_parser("witness-key", help="make a witness's Ed25519 key and print its verifier key (vkey)")
    p.add_argument("--name", required=True, help="the witness's key name, e.g. witness.tax.example/w1")
    p.add_argument("-o", "--output", required=True, help="where to write the private key (0600)")
    p.set_defaults(handler=_witness_key)
    p = cmds.add_parser("witness", help="cosign the gateways' audit checkpoints as a witness the registry names")
    add_nats_arguments(p, required=True)
    p.add_argument("--anchor", required=True, help="the registry anchor.json")
    p.add_argument("--key", required=True, help="the witness's Ed25519 key (crossway audit witness-key)")
    p.add_argument("--name", required=True, help="the witness's key name, as registered")
    p.add_argument("--state", default="", help="what it cosigned last, per gateway (default: KEY.state.json)")
    p.add_argument(
        "--skip-gateway", action="append", default=[], help="a gateway whose log it does not witness (its own); repeat"
    )
    p.set_defaults(handler=_witness)
    add_registry_log_command(cmds)  # the registry's change log into the audit trail (issue 17)
    p = cmds.add_parser("verify-evidence", help="check an evidence bundle offline")
    p.add_argument("file")
    p.add_argument("--anchor", default="", help="pin the registry anchor instead of trusting the bundle's key")
    p.add_argument(
        "--configuration", default="", help="with --anchor: pin the witnesses and quorum a signed configuration names"
    )
    _add_timestamp_options(p, pin=True)
    p.set_defaults(handler=_verify_evidence)
