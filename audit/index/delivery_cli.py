"""``crossway audit evidence`` and ``verify-evidence`` for registered deliveries (issue 14).

``audit.index.cli`` hands over to these when the message is a delivery (its records are
``delivery`` records; its id is the delivery key, ``SENDER_SUBSYSTEM/MESSAGE_ID``) or the file is
a delivery bundle: the auditor's bundle from the index (``crossway.delivery.evidence/v1``, with
log proofs) or a gateway's timeline (``crossway.delivery.timeline/v1``, signatures and chain).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from audit.index.delivery_evidence import DELIVERY_FORMAT, verify_delivery_evidence
from audit.index.store import Filters, IndexStore
from audit.index.witnesses import TrustedWitnesses
from audit.trail import TIMELINE_FORMAT, SignedEvent, verify_timeline_bundle
from registry import load_anchor

__all__ = ["is_delivery", "verify_delivery_file"]


def is_delivery(store: IndexStore, message_id: str) -> bool:
    rows = store.query(Filters(message_id=message_id), limit=20)
    return bool(rows) and all(r.record().side == "delivery" for r in rows)


def _line(signed: SignedEvent) -> str:
    e = signed.event
    when = dt.datetime.fromtimestamp(e.time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    why = f"  [{e.reason_code}] {e.reason}" if e.reason_code else ""
    return f"  {when}  {e.event:<26} by {e.issuer}{why}"


def verify_delivery_file(data: bytes, args: argparse.Namespace, witnesses: TrustedWitnesses | None) -> int | None:
    """Verify a delivery bundle and print its timeline; None when the file is not one.
    ``witnesses``: the pinned registry and witnesses with their quorum (None: the bundle's own)."""
    if DELIVERY_FORMAT.encode() in data:
        report = verify_delivery_evidence(
            data, None if witnesses is None else witnesses.keys, quorum=1 if witnesses is None else witnesses.quorum
        )
        print(f"delivery evidence intact: message {report.message}, {len(report.events)} event(s)")
        for signed in report.events:
            held = ", ".join(report.holders[signed.event.evidence_id])
            print(_line(signed) + f"  (in the logs of {held})")
        if report.both_sides_hold_everything:
            print("  both gateways' logs hold the whole timeline")
        if report.trusted_embedded_keys:
            print("  note: no --anchor given; the witness keys inside the bundle were trusted")
        return 0
    if TIMELINE_FORMAT.encode() in data:
        pinned = load_anchor(Path(args.anchor)).ca_sha256 if args.anchor else None
        timeline = verify_timeline_bundle(data, pinned)
        print(
            f"delivery timeline intact: message {timeline.sender}/{timeline.message_id}, {len(timeline.events)} event(s)"
        )
        for signed in timeline.events:
            print(_line(signed))
        print("  note: a gateway's timeline carries no log proofs; `crossway audit evidence` from the index does")
        if pinned is None:
            print("  note: no --anchor given; the CA inside the bundle was trusted")
        return 0
    return None
