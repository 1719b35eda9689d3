"""Audit index figures (not tests): records indexed per second, a client + time-window query,
and ``audit verify``, over N synthetic records (default 1,000,000) in a SQLite (or PostgreSQL) index.

    python -m bench.audit_index [--records N] [--index URL]

Records are made up (``audit.trail.samples``) for two gateways; their logs are checkpointed
with a fresh ES256 key and cosigned with a fresh Ed25519 "registry" key, exactly as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from audit.index.store import Filters, open_store
from audit.index.verify import verify_index
from audit.trail import MerkleTree, cosign, sign_checkpoint
from audit.trail.samples import sample_record
from crossway.security.pki import cert_fingerprint, cert_to_pem, self_signed
from crossway.security.signing import Signer

__all__ = ["main", "run"]

GATEWAYS = ("EE/GOV/70000001/gw1", "EE/GOV/70000002/gw1")


def _signer() -> tuple[Signer, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "bench", valid_for=dt.timedelta(days=1))
    return Signer(key, cert_fingerprint(cert)), cert_to_pem(cert).decode()


def run(records: int, index: str) -> dict[str, float]:
    store = open_store(index)
    next_leaf = store.next_leaf()
    figures: dict[str, float] = {}
    # 1. Ingest in batches of 1,000 (what the indexer does per fetch).
    started = time.perf_counter()
    batch: list[tuple[int, str, bytes]] = []
    for i in range(records):
        gateway = GATEWAYS[i % 2]
        client = f"EE/GOV/{70000100 + i % 100}/app"
        batch.append((i + 1, gateway, sample_record(i, gateway=gateway, client=client).to_json()))
        if len(batch) == 1000:
            store.ingest("records", batch, next_leaf)
            batch = []
    if batch:
        store.ingest("records", batch, next_leaf)
    figures["indexed_per_s"] = records / (time.perf_counter() - started)
    # 2. Checkpoint and cosign both logs.
    signer, pem = _signer()
    registry = ed25519.Ed25519PrivateKey.generate()
    for seq, gateway in enumerate(GATEWAYS):
        tree = MerkleTree(bytes.fromhex(r.leaf_hash) for r in store.leaves(gateway))
        checkpoint = sign_checkpoint(signer, pem, gateway, tree.size, tree.root(), int(time.time() * 1000))
        store.add_checkpoint("checkpoints", seq + 1, cosign(checkpoint, registry, "crossway.registry/EE", 0))
    # 3. A query by client and a one-hour time window.
    first = store.query(Filters(), limit=1)[0].record().request_in_ms
    started = time.perf_counter()
    rows = store.query(Filters(client="EE/GOV/70000142/app", since_ms=first, until_ms=first + 3_600_000))
    figures["query_ms"] = (time.perf_counter() - started) * 1000
    figures["query_rows"] = len(rows)
    # 4. audit verify over everything.
    started = time.perf_counter()
    report = verify_index(store, {"crossway.registry/EE": registry.public_key()})
    figures["verify_s"] = time.perf_counter() - started
    figures["verify_ok"] = float(report.ok)
    store.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--index", default="", help="index URL (default: a fresh SQLite file in a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or str(Path(tmp) / "bench.sqlite")
        f = run(args.records, index)
    print(
        f"audit index bench over {args.records:,} records ({'PostgreSQL' if index.startswith('postgres') else 'SQLite'})"
    )
    print(f"  indexed:              {f['indexed_per_s']:,.0f} records/s")
    print(f"  query client+window:  {f['query_ms']:.1f} ms ({f['query_rows']:.0f} rows)")
    print(f"  audit verify:         {f['verify_s']:.1f} s ({'intact' if f['verify_ok'] else 'FAILED'})")
    return 0 if f["verify_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
