"""The registry's change log in the audit trail: published, checkpointed, cosigned, indexed (issue 17).

The registry signs and chains every change in ``registry.db`` (``registry.changes``); this
publisher makes that log one of the federation's audit logs, like a gateway's:

1. each change becomes an audit record (side ``admin``, gateway ``INSTANCE/REGISTRY/registry/
   registry``, ``client`` and ``user_id`` = who, ``method`` = the verb, ``purpose`` = the whole
   change, ``request_sha256``/``response_sha256`` = the entry's and the previous entry's hash,
   ``request_signature`` = the registry's signature of the entry), with a record id made from the
   entry's hash, so a republished entry is dropped by JetStream's de-duplication;
2. it goes to the audit stream through the same acknowledged, spooled sink the gateways use;
   the last published sequence number is kept only once the sink holds every record durably
   (acknowledged or spooled), so a crash republishes rather than skips;
3. an ``AuditCheckpointer`` signs Merkle checkpoints of that log with the registry log's own key
   (``registry-log.key``, made on first start; its self-issued certificate ``registry-log.crt``),
   which the registry's cosigner accepts for this log only (``registry_log_key_id``) — so
   ``crossway audit verify`` proves the registry's history like any gateway's, and
   ``crossway audit query --gateway INSTANCE/REGISTRY/registry/registry`` lists the changes.

Runs beside the registry's cosigner (it needs the registry directory and NATS), in the demo and
with ``crossway audit registry-log``, connected as the registry's NATS identity (whose grant
covers this log's subjects and consumer, ``crossway.natsauth``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
from pathlib import Path
from typing import Any

from audit.trail import DEFAULT_STREAM, AuditCheckpointer, AuditRecord, JetStreamAuditSink
from crossway.core.errors import ConfigError
from crossway.natsclient import NatsAccess, access_from_arguments, add_nats_arguments
from crossway.security.keys import generate_signing_key, load_certificate, load_private_key, save_pem, save_private_key
from crossway.security.pki import cert_fingerprint, cert_to_pem, self_signed
from crossway.security.signing import Signer
from registry import REGISTRY_LOG_CERTIFICATE, RegistryChange, load_anchor, read_changes, registry_log_id

__all__ = ["RegistryChangePublisher", "add_registry_log_command", "change_record"]

log = logging.getLogger(__name__)

_KEY, _CERT, _STATE = "registry-log.key", REGISTRY_LOG_CERTIFICATE, "registry-log-state.json"


def _log_identity(registry_dir: Path, instance: str) -> tuple[Signer, str]:
    """The log's signing key and certificate, made once (0600) and kept in the registry directory."""
    key_path, cert_path = registry_dir / _KEY, registry_dir / _CERT
    if not key_path.exists():
        key = generate_signing_key("ES256")
        save_private_key(key_path, key)
        cert = self_signed(key, f"{registry_log_id(instance)} audit log", valid_for=dt.timedelta(days=3650))  # type: ignore[arg-type]
        save_pem(cert_path, cert)
    certificate = load_certificate(cert_path)
    signer = Signer(load_private_key(key_path), cert_fingerprint(certificate))  # type: ignore[arg-type]
    return signer, cert_to_pem(certificate).decode()


def change_record(instance: str, change: RegistryChange) -> AuditRecord:
    """The audit record of one registry change."""
    return AuditRecord(
        record_id=change.hash[:32],
        gateway=str(registry_log_id(instance)),
        side="admin",
        message_id=f"registry-change:{instance}:{change.seq}",
        client=change.actor,
        service="crossway.v1.Registry",
        method=change.what.split(" ", 1)[0],
        user_id=change.actor,
        purpose=change.what,
        request_in_ms=change.at_ms,
        request_out_ms=change.at_ms,
        response_in_ms=change.at_ms,
        response_out_ms=change.at_ms,
        request_size=0,
        response_size=0,
        request_sha256=change.hash,
        response_sha256=change.prev_hash,
        status="OK",
        error_code="",
        decision="allow",
        policy_ids=(),
        withheld_fields=(),
        peer_gateway="",
        trace_id="",
        request_signature=change.signature,
        response_signature="",
    )


class RegistryChangePublisher:
    def __init__(
        self,
        nats: NatsAccess,
        registry_dir: Path,
        *,
        stream: str = DEFAULT_STREAM,
        poll_s: float = 0.5,
        checkpoint_interval_s: float = 1.0,
    ) -> None:
        if not (registry_dir / "registry.db").exists():
            raise ConfigError(f"no registry in {str(registry_dir)!r}", hint="--dir names the registry directory")
        self._dir = registry_dir
        self._instance = load_anchor(registry_dir / "anchor.json").instance
        self._poll_s = poll_s
        log_id = str(registry_log_id(self._instance))
        signer, certificate_pem = _log_identity(registry_dir, self._instance)
        self._sink = JetStreamAuditSink(
            nats, gateway_id=log_id, spool_dir=registry_dir / "registry-log" / "spool", stream=stream
        )
        self._checkpointer = AuditCheckpointer(
            nats,
            gateway_id=log_id,
            signer=signer,
            certificate_pem=certificate_pem,
            state_dir=registry_dir / "registry-log",
            stream=stream,
            interval_s=checkpoint_interval_s,
        )
        self.published = self._load_cursor()
        self._task: asyncio.Task[None] | None = None

    def _load_cursor(self) -> int:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads((self._dir / _STATE).read_text())["published_seq"])
        return 0

    def _save_cursor(self) -> None:
        path = self._dir / _STATE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"published_seq": self.published}) + "\n")
        temporary.replace(path)

    async def start(self) -> None:
        await self._sink.start()
        await self._checkpointer.start()
        self._task = asyncio.create_task(self._run(), name="registry change log")

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_pending()
            except Exception:  # the next round tries again; the changes stay in registry.db
                log.exception("publishing registry changes failed")
            await asyncio.sleep(self._poll_s)

    async def publish_pending(self) -> int:
        """Hand every unpublished change to the sink; advance the cursor once all are durable."""
        changes = await asyncio.to_thread(read_changes, self._dir / "registry.db", self.published)
        if not changes:
            return 0
        for change in changes:
            self._sink.submit(change_record(self._instance, change))
        # 2. acknowledged by JetStream, or fsync'd to the spool. The sink offers no completion
        # event on this branch (issue 12 adds commit()), so its counter is polled.
        while self._sink.stats.pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.published = changes[-1].seq
        await asyncio.to_thread(self._save_cursor)
        log.info("registry changes up to %d published to the audit trail", self.published)
        return len(changes)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._sink.aclose()
        await self._checkpointer.aclose()


def _run_cli(args: argparse.Namespace) -> int:
    from audit.index.cosigner import RegistryCosigner

    async def run() -> None:
        nats = access_from_arguments(args)
        assert nats is not None  # --nats is required
        publisher = RegistryChangePublisher(nats, Path(args.dir))
        cosigner = RegistryCosigner(nats, Path(args.dir)) if args.cosign else None
        await publisher.start()
        if cosigner is not None:
            await cosigner.start()
        print(f"registry change log of {args.dir} published to the audit trail", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            if cosigner is not None:
                await cosigner.aclose()
            await publisher.aclose()

    asyncio.run(run())
    return 0


def add_registry_log_command(commands: Any) -> None:
    """``crossway audit registry-log``: run beside ``registry serve``, on the registry's host."""
    p = commands.add_parser(
        "registry-log",
        help="publish the registry's signed change log into the audit trail (and, with --cosign, cosign checkpoints)",
    )
    p.add_argument("--dir", default="var/registry", help="the registry directory (default: %(default)s)")
    add_nats_arguments(p, required=True, what="the registry's identity on")
    p.add_argument("--cosign", action="store_true", help="also cosign every gateway's audit checkpoints")
    p.set_defaults(handler=_run_cli)
