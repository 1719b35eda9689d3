"""``crossway mail …``: registered delivery for people and scripts, through their own gateway.

Talks to the client port of the caller's own gateway like any agency system: TLS with the
registry CA (``--ca``) and a bearer token of the caller's subsystem (``--token-file``), or a
pinned client certificate (``--cert``/``--key``). ``--profile DIR`` reads all of it from a
directory holding ``client.port`` (or ``gateway``), ``ca.pem`` and ``token.jwt`` — what
``crossway demo`` leaves for each agency.

    crossway mail send EE/COM/70000003/business --id summons-1 --text "…" --purpose summons
    crossway mail receive --save-dir inbox/        # hands over (acknowledges) what it saves
    crossway mail timeline EE/GOV/70000004/court summons-1 --follow
    crossway mail evidence EE/GOV/70000004/court summons-1 -o summons-1.json
    crossway audit verify-evidence summons-1.json --anchor anchor.json

Exit codes: 0 done, 1 refused or failed (printed as ``error[code]: message`` with a hint).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "add_connection_args", "command_adder", "run_with"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_CHUNK = 256 * 1024
DOCUMENT_TYPE = "crossway.v1.Document"


def _seconds(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        from crossway.core.errors import ConfigError

        raise ConfigError(f"duration {text!r} is not like 90s, 15m, 2h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class _Connection:
    """The caller's own gateway: channel, credentials and the Delivery stub."""

    def __init__(self, args: argparse.Namespace) -> None:
        import grpc

        from crossway.core.errors import ConfigError
        from protos.crossway.v1 import delivery_pb2_grpc as dgrpc

        profile = Path(args.profile) if args.profile else None
        address = args.gateway
        ca = Path(args.ca) if args.ca else None
        token_file = Path(args.token_file) if args.token_file else None
        if profile is not None:
            if not address:
                port_file = profile / "client.port"
                address = (
                    f"127.0.0.1:{port_file.read_text().strip()}"
                    if port_file.exists()
                    else (profile / "gateway").read_text().strip()
                )
            ca = ca or profile / "ca.pem"
            token_file = token_file or (profile / "token.jwt" if (profile / "token.jwt").exists() else None)
        if not address or ca is None:
            raise ConfigError(
                "say which gateway to use", hint="pass --gateway HOST:PORT and --ca FILE, or --profile DIR"
            )
        self.metadata: tuple[tuple[str, str], ...] = ()
        key = cert = None
        if args.cert and args.key:
            cert, key = Path(args.cert).read_bytes(), Path(args.key).read_bytes()
        elif token_file is not None:
            self.metadata = (("authorization", f"Bearer {token_file.read_text().strip()}"),)
        else:
            raise ConfigError(
                "no credential", hint="pass --token-file FILE (a JWT of your subsystem) or --cert and --key"
            )
        creds = grpc.ssl_channel_credentials(ca.read_bytes(), key, cert)
        self.channel = grpc.aio.secure_channel(address, creds)
        self.stub = dgrpc.DeliveryStub(self.channel)  # type: ignore[no-untyped-call]
        self.timeout = args.timeout

    async def close(self) -> None:
        await self.channel.close(None)


def _error(exc: Any) -> Any:
    """A gateway's refusal as the error tree (its code and hint), for ``crossway.cli`` to print."""
    from crossway.core.errors import ProviderUnreachable, error_class_for_code
    from gateway.wire.metadata import metadata_text

    trailing = metadata_text(exc.trailing_metadata())
    code = trailing.get("crossway-error")
    if not code:
        return ProviderUnreachable(f"the gateway did not answer: {exc.code().name} {exc.details() or ''}".strip())
    details = (exc.details() or "").split(": ", 2)[-1]
    return error_class_for_code(code)(details, hint=trailing.get("crossway-hint") or None, status=exc.code())


def _run(args: argparse.Namespace, body: Any) -> int:
    return run_with(args, body)


def run_with(args: argparse.Namespace, body: Any, stub: Any = None) -> int:
    """Run ``body(connection, args)`` against the caller's gateway; ``stub``: a stub class other
    than Delivery's for ``connection.stub`` (the topics CLI passes ``TopicsStub``)."""
    import grpc

    async def main() -> int:
        connection = _Connection(args)
        if stub is not None:
            connection.stub = stub(connection.channel)
        try:
            result: int = await body(connection, args)
            return result
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        finally:
            await connection.close()

    return asyncio.run(main())


def _event_line(signed: Any) -> str:
    e = signed.event
    why = f"  [{e.reason_code}] {e.reason}" if e.reason_code else ""
    return f"{_iso(e.time_ms)}  {e.event:<26} by {e.issuer}{why}"


# -- send ---------------------------------------------------------------------------------------


async def _upload(c: _Connection, path: Path, content_type: str) -> str:
    from protos.crossway.v1 import delivery_pb2 as dpb

    async def chunks() -> AsyncIterator[dpb.AttachmentChunk]:
        with path.open("rb") as f:
            first = True
            while True:
                data = f.read(_CHUNK)
                if not data and not first:
                    return
                yield dpb.AttachmentChunk(
                    name=path.name if first else "", content_type=content_type if first else "", data=data
                )
                first = False
                if not data:
                    return

    info = await c.stub.SendAttachment(chunks(), metadata=c.metadata, timeout=max(c.timeout, 600))
    print(f"attachment {path.name}: {info.size} bytes in {len(info.chunk_sha256)} chunk(s), id {info.attachment_id}")
    return str(info.attachment_id)


async def _send(c: _Connection, args: argparse.Namespace) -> int:
    from crossway.core.errors import error_class_for_code
    from gateway.delivery.convert import event_from_pb
    from protos.crossway.v1 import delivery_pb2 as dpb

    payload = await asyncio.to_thread(Path(args.file).read_bytes) if args.file else (args.text or "").encode()
    attachments = [await _upload(c, Path(p), args.attachment_type) for p in args.attach or ()]
    request = dpb.SendRequest(
        recipient=args.recipient,
        message_id=args.id,
        type=args.type,
        payload=payload,
        content_type=args.content_type if args.type == DOCUMENT_TYPE else "",
        attachment_ids=attachments,
        expires_at_ms=int((time.time() + _seconds(args.expires_in)) * 1000),
        purpose=args.purpose,
        correlation_id=args.correlation_id,
    )
    response = await c.stub.Send(request, metadata=c.metadata, timeout=c.timeout)
    signed = event_from_pb(response.evidence)
    if response.HasField("refusal"):
        r = response.refusal
        print(_event_line(signed))
        raise error_class_for_code(r.error_code)(r.message, hint=r.hint or None)
    note = " (a duplicate: the original evidence)" if response.duplicate else ""
    print(f"{args.id} submitted to {args.recipient}{note}")
    print(_event_line(signed))
    if args.wait:
        return await _follow(c, signed.event.sender, args.id)
    return 0


# -- the mailbox --------------------------------------------------------------------------------


async def _receive(c: _Connection, args: argparse.Namespace) -> int:
    from gateway.delivery.convert import event_from_pb
    from protos.crossway.v1 import delivery_pb2 as dpb

    save = Path(args.save_dir) if args.save_dir else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    request = dpb.ReceiveRequest(max_messages=args.max, wait_ms=int(_seconds(args.wait) * 1000))
    count = 0
    async for message in c.stub.Receive(request, metadata=c.metadata, timeout=c.timeout + _seconds(args.wait)):
        ref = message.ref
        count += 1
        what = f"{message.type} ({message.content_type})" if message.content_type else message.type
        print(f"{ref.sender} {ref.message_id}: {what}, {len(message.payload)} bytes, purpose {message.purpose!r}")
        if save is not None:
            target = save / f"{ref.sender.replace('/', '_')}__{ref.message_id}"
            target.write_bytes(message.payload)
            for attachment in message.attachments:
                part = save / f"{target.name}__{Path(attachment.name).name or attachment.attachment_id}"
                with part.open("wb") as out:
                    fetch = dpb.AttachmentRequest(message=ref, attachment_id=attachment.attachment_id)
                    async for chunk in c.stub.FetchAttachment(fetch, metadata=c.metadata, timeout=max(c.timeout, 600)):
                        out.write(chunk.data)
                print(f"  attachment {attachment.name}: {attachment.size} bytes → {part}")
            print(f"  saved to {target}")
        elif not args.no_ack:
            print(message.payload.decode(errors="replace")[:400])
        if not args.no_ack:
            reply = await c.stub.Ack(ref, metadata=c.metadata, timeout=c.timeout)
            print("  " + _event_line(event_from_pb(reply.evidence)))
    print(f"{count} message(s)")
    return 0


async def _consent(c: _Connection, args: argparse.Namespace, accept: bool) -> int:
    from gateway.delivery.convert import event_from_pb
    from protos.crossway.v1 import delivery_pb2 as dpb

    request = dpb.ConsentRequest(message=dpb.MessageRef(sender=args.sender, message_id=args.id), reason=args.reason)
    call = c.stub.Accept if accept else c.stub.Reject
    reply = await call(request, metadata=c.metadata, timeout=c.timeout)
    print(_event_line(event_from_pb(reply.evidence)))
    return 0


async def _accept(c: _Connection, args: argparse.Namespace) -> int:
    return await _consent(c, args, True)


async def _reject(c: _Connection, args: argparse.Namespace) -> int:
    return await _consent(c, args, False)


# -- following a message ------------------------------------------------------------------------


async def _follow(c: _Connection, sender: str, message_id: str, follow: bool = True) -> int:
    from gateway.delivery.convert import event_from_pb
    from protos.crossway.v1 import delivery_pb2 as dpb

    request = dpb.TimelineRequest(message=dpb.MessageRef(sender=sender, message_id=message_id), follow=follow)
    async for item in c.stub.Timeline(request, metadata=c.metadata, timeout=None if follow else c.timeout):
        print(_event_line(event_from_pb(item.evidence)), flush=True)
    return 0


async def _timeline(c: _Connection, args: argparse.Namespace) -> int:
    return await _follow(c, args.sender, args.id, args.follow)


async def _evidence(c: _Connection, args: argparse.Namespace) -> int:
    from audit.trail import verify_timeline_bundle
    from protos.crossway.v1 import delivery_pb2 as dpb

    reply = await c.stub.Evidence(
        dpb.MessageRef(sender=args.sender, message_id=args.id), metadata=c.metadata, timeout=c.timeout
    )
    report = verify_timeline_bundle(reply.bundle)  # checked before it is written
    await asyncio.to_thread(Path(args.output).write_bytes, reply.bundle)
    print(f"evidence of {args.sender}/{args.id}: {len(report.events)} event(s) written to {args.output}")
    return 0


async def _report(c: _Connection, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import delivery_pb2 as dpb

    before = int((time.time() - _seconds(args.overdue_after)) * 1000)
    report = await c.stub.Report(dpb.ReportRequest(overdue_before_ms=before), metadata=c.metadata, timeout=c.timeout)
    for row in report.rows:
        print(
            f"{row.role:<7} {row.subsystem}: {row.total} message(s), {row.pending} pending, "
            f"{row.handed_over} handed over, {row.refused} refused, {row.expired} expired, {row.overdue} overdue"
        )
        for ref in row.overdue_messages:
            print(f"  overdue  {ref.sender} {ref.message_id}")
        for ref in row.expired_messages:
            print(f"  expired  {ref.sender} {ref.message_id}")
    return 0


async def _inbox(c: _Connection, args: argparse.Namespace) -> int:
    from protos.crossway.v1 import delivery_pb2 as dpb

    report = await c.stub.Report(dpb.ReportRequest(), metadata=c.metadata, timeout=c.timeout)
    for row in report.rows:
        if row.role == "mailbox":
            print(
                f"mailbox {row.subsystem}: {row.pending} waiting, {row.handed_over} handed over, "
                f"{row.refused} refused, {row.expired} expired"
            )
    return 0


# -- registration -------------------------------------------------------------------------------


def add_connection_args(group: argparse.ArgumentParser) -> None:
    """How a command reaches the caller's own gateway (shared with ``crossway topic``)."""
    group.add_argument("--profile", help="a directory with client.port (or gateway), ca.pem and token.jwt")
    group.add_argument("--gateway", help="HOST:PORT of your gateway's client port")
    group.add_argument("--ca", help="the registry CA (PEM) your gateway's TLS certificate chains to")
    group.add_argument("--token-file", help="a bearer JWT of your subsystem")
    group.add_argument("--cert", help="your pinned client certificate (PEM), instead of a token")
    group.add_argument("--key", help="its private key (PEM)")
    group.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default: %(default)s)")


def command_adder(cmds: Any, run: Any) -> Any:
    """``command(name, help, body)``: a subcommand whose handler is ``run(args, body)``."""

    def command(name: str, help_text: str, body: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=lambda a: run(a, body))
        return p

    return command


def add_commands(sub: Any) -> None:
    group = sub.add_parser("mail", help="registered delivery through your own gateway: send, receive, evidence")
    add_connection_args(group)
    cmds = group.add_subparsers(dest="mail_command", metavar="COMMAND")
    cmds.required = True
    command = command_adder(cmds, _run)

    p = command("send", "send a message to a subsystem's mailbox; prints its SubmissionAcceptance", _send)
    p.add_argument("recipient", help="INSTANCE/CLASS/CODE/SUBSYSTEM")
    p.add_argument("--id", required=True, help="your message id (your idempotency key: the same id is one message)")
    p.add_argument("--type", default=DOCUMENT_TYPE, help="a message type the mailbox accepts (default: a document)")
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--file", help="the payload, from a file")
    body.add_argument("--text", help="the payload, as text")
    p.add_argument("--content-type", default="text/plain", help="of a document (default: %(default)s)")
    p.add_argument("--attach", action="append", help="a file to attach, streamed in chunks (repeatable)")
    p.add_argument("--attachment-type", default="application/octet-stream")
    p.add_argument("--expires-in", default="1d", help="no relay or handover after this (default: %(default)s)")
    p.add_argument("--purpose", default="")
    p.add_argument("--correlation-id", default="")
    p.add_argument("--wait", action="store_true", help="then follow the message's timeline")
    p = command("inbox", "what waits in your mailbox", _inbox)
    p = command("receive", "receive your mailbox's messages and hand them over (ContentHandover)", _receive)
    p.add_argument("--max", type=int, default=100)
    p.add_argument("--wait", default="2s", help="how long to wait for a first message (default: %(default)s)")
    p.add_argument("--save-dir", help="write each payload and attachment here")
    p.add_argument("--no-ack", action="store_true", help="look only: the messages come back later")
    for name, body_fn, text in (
        ("accept", _accept, "accept a message you received (accept/reject mailboxes)"),
        ("reject", _reject, "reject a message you received, with a reason"),
    ):
        p = command(name, text, body_fn)
        p.add_argument("sender")
        p.add_argument("id")
        p.add_argument("--reason", default="", required=name == "reject")
    p = command("timeline", "a message's evidence events, in order", _timeline)
    p.add_argument("sender")
    p.add_argument("id")
    p.add_argument("--follow", action="store_true", help="keep printing events as they happen")
    p = command("evidence", "write a message's signed timeline to a file that verifies offline", _evidence)
    p.add_argument("sender")
    p.add_argument("id")
    p.add_argument("-o", "--output", required=True)
    p = command("report", "overdue and expired messages, as sender and as mailbox", _report)
    p.add_argument("--overdue-after", default="1h", help="pending longer than this is overdue (default: %(default)s)")
