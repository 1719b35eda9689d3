"""`crossway audit verify`, `evidence` and `verify-evidence`: the auditor's checks, against the registry's anchor and the witnesses its configuration names."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from audit.index.delivery_cli import is_delivery, verify_delivery_file
from audit.index.delivery_evidence import build_delivery_evidence
from audit.index.evidence import build_evidence, verify_evidence
from audit.index.store import open_store
from audit.index.timestamp import load_tsa_roots
from audit.index.verify import refine_with_stream, verify_index
from audit.index.witnesses import (
    TrustedWitnesses,
    configured_witnesses,
    load_configuration,
    read_configuration,
    registry_witnesses,
)
from crossway.natsclient import access_from_arguments
from registry import load_anchor


def _progress(label: str) -> Any:
    def show(done: int, total: int) -> None:
        if sys.stderr.isatty() or done == total:
            pct = 100 * done // total if total else 100
            bar = "#" * (pct // 4)
            print(f"\r{label} [{bar:<25}] {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    return show


def _witnesses(args: argparse.Namespace) -> TrustedWitnesses:
    """The registry (its anchor) and the witnesses its configuration names, with their quorum:
    from ``--configuration FILE``, else from NATS when ``--nats`` is given, else the registry alone."""
    anchor = load_anchor(Path(args.anchor))
    if getattr(args, "configuration", ""):
        return configured_witnesses(anchor, load_configuration(Path(args.configuration), anchor))
    if getattr(args, "nats", ""):
        access = access_from_arguments(args)
        assert access is not None
        return configured_witnesses(anchor, asyncio.run(read_configuration(access, anchor)))
    return registry_witnesses(anchor)


def _tsa_roots(path: str) -> tuple[Any, ...]:
    return load_tsa_roots(Path(path)) if path else ()


def _verify(args: argparse.Namespace) -> int:
    from audit.index.backbone import read_backbone, read_stream_messages

    nats = access_from_arguments(args)
    backbone = asyncio.run(read_backbone(nats)) if nats is not None else None
    witnesses = _witnesses(args)
    store = open_store(args.index)
    try:
        report = verify_index(
            store,
            witnesses.keys,
            None if args.quiet else _progress("verify"),
            tsa_roots=_tsa_roots(args.tsa_ca),
            require_timestamp=args.require_timestamp,
            signed_only=args.signed_only,
            grace_ms=int(args.grace * 1000),
            backbone=backbone,
            quorum=witnesses.quorum,
        )
    finally:
        store.close()
    if nats is not None and report.suspects:
        logged = asyncio.run(read_stream_messages(nats, (s.stream_seq for s in report.suspects)))
        report = refine_with_stream(report, logged)
    for finding in report.findings:
        print(finding.line())
    for n, (first, second) in enumerate(report.forks, 1):
        # The proof, as the C2SP signed notes transparency-log tools read.
        print(f"  fork {n}, first checkpoint:\n" + _indent(first.note()))
        print(f"  fork {n}, second checkpoint:\n" + _indent(second.note()))
        if args.fork_evidence:
            directory = Path(args.fork_evidence)
            directory.mkdir(parents=True, exist_ok=True)
            name = f"fork-{first.gateway.replace('/', '_')}-{first.size}.json"
            proof = {"first": first.to_dict(), "second": second.to_dict(), "notes": [first.note(), second.note()]}
            (directory / name).write_text(json.dumps(proof, indent=2, sort_keys=True) + "\n")
            print(f"  fork {n} written to {directory / name}")
    for gateway, count in sorted(report.pending.items()):
        print(f"  {gateway}: {count} record(s) newer than its latest cosigned checkpoint: not yet provable")
    if any(f.kind == "extra" for f in report.findings):
        print(
            "  hint: EXTRA records are not in any cosigned log. On a running system the newest records wait "
            "for the next checkpoint (about a second): run again, or pass --signed-only to verify what is signed "
            "and count the rest as pending"
        )
    if any(f.kind == "uncovered" for f in report.findings):
        print(
            "  hint: records older than the grace period must be cosigned by now; check that `crossway registry "
            "serve --nats` runs and its log for refused checkpoints"
        )
    for gateway, when in sorted(report.timestamped.items()):
        print(f"  {gateway}: checkpoint timestamped by the TSA at {when.isoformat()}")
    if report.status_differs:
        print(
            f"  {report.status_differs} exchange(s) whose two sides recorded different statuses (audit show marks them)"
        )
    if report.unanswered:
        print(f"  {report.unanswered} exchange(s) never reached a provider (no signed answer): no provider record due")
    if len(witnesses.keys) > 1:
        print(f"  witnesses: {', '.join(sorted(witnesses.keys))}; each checkpoint needs {witnesses.quorum} of them")
    sizes = ", ".join(f"{g} {n}" for g, n in sorted(report.covered.items())) or "none"
    if report.ok:
        print(f"audit verify: intact — {report.records} records; cosigned checkpoints: {sizes}")
        return 0
    print(f"audit verify: FAILED — {len(report.findings)} finding(s) over {report.records} records")
    return 1


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def _evidence(args: argparse.Namespace) -> int:
    store = open_store(args.index)
    try:
        witnesses = _witnesses(args)
        if is_delivery(store, args.message_id):  # a registered delivery: its own bundle (issue 14)
            data = build_delivery_evidence(store, args.message_id, witnesses.keys, quorum=witnesses.quorum)
        else:
            data = build_evidence(
                store, args.message_id, witnesses.keys, _tsa_roots(args.tsa_ca), quorum=witnesses.quorum
            )
    finally:
        store.close()
    Path(args.output).write_bytes(data)
    print(f"evidence for message {args.message_id} written to {args.output} ({len(data)} bytes)")
    return 0


def _verify_evidence(args: argparse.Namespace) -> int:
    witnesses = _witnesses(args) if args.anchor else None
    roots = _tsa_roots(args.tsa_ca) if args.tsa_ca else None
    data = Path(args.file).read_bytes()
    delivered = verify_delivery_file(data, args, witnesses)  # a registered delivery's bundle (issue 14)
    if delivered is not None:
        return delivered
    report = verify_evidence(
        data,
        None if witnesses is None else witnesses.keys,
        quorum=1 if witnesses is None else witnesses.quorum,
        tsa_roots=roots,
        require_timestamp=args.require_timestamp,
    )
    sides = ", ".join(sorted(f"{r.side} ({r.gateway})" for r in report.records))
    print(f"evidence intact: message {report.message_id}: {sides}")
    for when in sorted(set(report.timestamps)):
        print(f"  checkpoint timestamped by the TSA at {when.isoformat()}")
    if report.trusted_embedded_keys:
        print("  note: no --anchor given; the cosigner keys inside the bundle were trusted")
    if report.trusted_embedded_tsa:
        print("  note: no --tsa-ca given; the TSA CA inside the bundle was trusted")
    return 0
