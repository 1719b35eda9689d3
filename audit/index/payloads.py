"""Archived payloads for auditors: open one exchange's bodies with an auditor's private key.

Opening is checked in numbered steps, failing closed (``audit.archive_invalid``):

1. the archive is encrypted to this key (a recipient entry with the key's id);
2. it authenticates under its record id, message id, gateway and side (AEAD associated data);
3. the opened bodies hash to the ``request_sha256`` / ``response_sha256`` of the indexed record
   with that record id — the record the signed Merkle checkpoints cover.

Also: ``crossway audit payload`` and ``crossway audit archive-key`` (a new auditor key pair).
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from audit.index.store import Filters, IndexStore, open_store
from audit.trail import AuditNotFound, OpenedPayload, PayloadArchiveInvalid, open_payload
from crossway.core.errors import ConfigError
from crossway.security.keys import generate_x25519_key, load_private_key, save_pem, save_private_key

__all__ = ["add_payload_commands", "open_exchange_payloads"]


def open_exchange_payloads(store: IndexStore, message_id: str, key: X25519PrivateKey) -> list[OpenedPayload]:
    """Both sides' bodies of one exchange, opened and checked against their records."""
    records = {r.record().record_id: r.record() for r in store.query(Filters(message_id=message_id))}
    archives = store.archives(message_id)
    if not archives:
        raise AuditNotFound(
            f"no archived payload of message {message_id} in the index",
            hint="payloads are archived only by gateways with [audit] archive_payloads = true",
        )
    opened = []
    for archived in archives:
        payload = open_payload(archived, key)  # steps 1 and 2
        record = records.get(archived.record_id)
        if record is None:
            raise PayloadArchiveInvalid(f"archived payload of record {archived.record_id} has no record in the index")
        if (payload.request_sha256, payload.response_sha256) != (record.request_sha256, record.response_sha256):
            raise PayloadArchiveInvalid(  # step 3
                f"archived payload of record {archived.record_id} does not match the record's digests"
            )
        opened.append(payload)
    return sorted(opened, key=lambda p: p.side)


def _auditor_key(path: str) -> X25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, X25519PrivateKey):
        raise ConfigError(
            f"{path} is not an X25519 private key", hint="use the key made by `crossway audit archive-key`"
        )
    return key


def _payload(args: argparse.Namespace) -> int:
    store = open_store(args.index)
    try:
        opened = open_exchange_payloads(store, args.message_id, _auditor_key(args.key))
    finally:
        store.close()
    if args.json:
        doc: dict[str, Any] = {
            p.side: {
                "record_id": p.record_id,
                "request": [base64.b64encode(b).decode() for b in p.request],
                "response": [base64.b64encode(b).decode() for b in p.response],
            }
            for p in opened
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    print(f"message {args.message_id}: payloads open and match their records")
    for p in opened:
        for what, parts in (("request", p.request), ("response", p.response)):
            size = sum(len(b) for b in parts)
            where = ""
            if out is not None:
                target = out / f"{p.side}.{what}"
                target.write_bytes(b"".join(parts))
                where = f" -> {target}"
            print(f"  {p.side:<9}{what:<9}{len(parts)} part(s) {size} bytes{where}")
    return 0


def _archive_key(args: argparse.Namespace) -> int:
    key = generate_x25519_key()
    private, public = Path(f"{args.prefix}.key"), Path(f"{args.prefix}.pub")
    save_private_key(private, key)
    save_pem(public, key.public_key())
    print(f"auditor archive key written: {private} (keep it offline) and {public} (for [audit] auditor_keys)")
    return 0


def add_payload_commands(command: Any) -> None:
    """Register on ``crossway audit`` (``command`` is cli.add_commands' helper)."""
    p = command("payload", "open one exchange's archived payloads with an auditor private key", _payload)
    p.add_argument("message_id")
    p.add_argument("--key", required=True, help="the auditor's X25519 private key (PEM)")
    p.add_argument("--out", default="", help="write each side's request/response bytes into this directory")
    p.add_argument("--json", action="store_true", help="the parts as base64 JSON")
    p = command("archive-key", "make an auditor X25519 key pair for payload archiving", _archive_key)
    p.add_argument("prefix", help="writes PREFIX.key (private, 0600) and PREFIX.pub")
