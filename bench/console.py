"""The console's search, paged through every exchange (not a test): each page's serve time.

    python -m bench.console [--exchanges 10000] [--size 50] [--output bench/results/console.json]

What runs: a SQLite index with N made-up exchanges (both sides: 2N records), ``crossway audit
serve`` over it and ``crossway console`` in front, as processes on loopback, the console signed
into through its demo identity provider. A client follows the results' "Next page" link from the
first page to the last, timing each GET end to end (HTTP, the console, its gRPC call to the audit
API with the user's token, the index's keyset query, the page's HTML). Reads are not recorded
here (no gateway runs); recording adds one admin-port call per page.

Beside it, the baseline the cursor replaced, at the index itself: the same page by OFFSET, which
makes the database walk every row before the page, against the keyset query.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import html
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from audit.index.store import Filters, open_store
from audit.trail.samples import sample_record
from console.config import DEMO_ISSUER
from crossway.demo.console import ADMIN_AUDIENCE, AUDIT_AUDIENCE
from crossway.demo.processes import ManagedProcess
from crossway.security.keys import generate_signing_key, generate_tls_key, save_pem, save_private_key
from crossway.security.pki import self_signed
from registry import RegistryAuthority

__all__ = ["ConsoleOverIndex", "main", "seed_index", "sign_in", "walk"]

CLIENT_GW, PROVIDER_GW = "EE/GOV/70000001/gw1", "EE/GOV/70000002/gw1"
SERVICE = "EE/GOV/70000002/population/population.v1.PersonRegistry"


def seed_index(path: Path, exchanges: int) -> int:
    """Both sides of ``exchanges`` made-up exchanges, one millisecond apart; returns the records."""
    store = open_store(str(path))
    next_leaf = store.next_leaf()
    batch: list[tuple[int, str, bytes]] = []
    seq = 0
    try:
        for n in range(exchanges):
            client = f"EE/GOV/7000000{1 + n % 3}/app"
            for gateway, side in ((CLIENT_GW, "client"), (PROVIDER_GW, "provider")):
                seq += 1
                record = sample_record(n, gateway=gateway, side=side, client=client, service=SERVICE)
                batch.append((seq, gateway, record.to_json()))
            if len(batch) >= 2000:
                store.ingest("records", batch, next_leaf)
                batch = []
        if batch:
            store.ingest("records", batch, next_leaf)
    finally:
        store.close()
    return seq


class ConsoleOverIndex:
    """``crossway audit serve`` over an index and ``crossway console`` (demo sign-in) in front."""

    def __init__(self, directory: Path, index: Path) -> None:
        self.directory, self.index = directory, index
        self.processes: list[ManagedProcess] = []
        self.url = ""

    async def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        RegistryAuthority.init(d / "registry", "EE").close()  # an anchor for the API (nothing is verified here)
        idp = generate_signing_key("ES256")
        save_private_key(d / "demo-idp.key", idp)
        save_pem(d / "demo-idp.pub", idp.public_key())
        tls = generate_tls_key()
        save_private_key(d / "api.key", tls)
        save_pem(
            d / "api.crt",
            self_signed(tls, "api", valid_for=dt.timedelta(days=1), ip_addresses=("127.0.0.1",), anchor=True),
        )
        api = ManagedProcess(
            "audit api",
            [
                *(sys.executable, "-m", "crossway.cli", "audit", "serve", "--index", str(self.index)),
                *("--listen", "127.0.0.1:0", "--tls-key", str(d / "api.key"), "--tls-cert", str(d / "api.crt")),
                *("--issuer", DEMO_ISSUER, "--audience", AUDIT_AUDIENCE, "--public-key", str(d / "demo-idp.pub")),
                *("--anchor", str(d / "registry" / "anchor.json")),
            ],
        )
        self.processes.append(api)
        await api.start()
        port = (await api.wait_for(r"audit API listening on 127\.0\.0\.1:(\d+)", 30)).group(1)
        (d / "console.toml").write_text(
            '[console]\nlisten = "127.0.0.1:0"\n\n'
            f'[demo_provider]\nkey = "demo-idp.key"\naudiences = ["{ADMIN_AUDIENCE}", "{AUDIT_AUDIENCE}"]\n\n'
            f'[audit]\naddress = "127.0.0.1:{port}"\nca = "api.crt"\n'
        )
        console = ManagedProcess(
            "console", [sys.executable, "-m", "crossway.cli", "console", "--config", str(d / "console.toml")]
        )
        self.processes.append(console)
        await console.start()
        self.url = (await console.wait_for(r"console listening on (http://\S+?)/? ", 30)).group(1)

    async def aclose(self) -> None:
        for process in reversed(self.processes):
            await process.stop()


def sign_in(client: httpx.Client, role: str = "auditor") -> None:
    """The OIDC round trip a browser makes, through the console's demo provider."""
    page = client.get("/login", follow_redirects=True)
    form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
    users = re.findall(r'name="user" value="([^"]+)"', page.text)
    form["user"] = next(u for u in users if u.startswith(role))
    done = client.post(
        "/demo-idp/authorize", data={k: html.unescape(v) for k, v in form.items()}, follow_redirects=True
    )
    assert done.status_code == 200 and "Signed in" in done.text, done.text[:300]


def walk(client: httpx.Client, size: int, query: str = "") -> tuple[list[float], list[str]]:
    """Every page from the first, by its "Next page" link: (each page's ms, every row's message id)."""
    times: list[float] = []
    ids: list[str] = []
    url: str | None = f"/audit?size={size}{query}"
    while url is not None:
        started = time.perf_counter()
        page = client.get(url)
        times.append(1000 * (time.perf_counter() - started))
        assert page.status_code == 200, page.text[:300]
        ids += re.findall(r'<a class="mid" href="[^"]*">([^<]+)</a>', page.text)
        link = re.search(r'id="next-page" href="([^"]+)"', page.text)
        url = html.unescape(link.group(1)) if link else None
    return times, ids


def _offset_vs_keyset(index: Path, size: int, pages: list[int]) -> list[dict[str, float]]:
    store = open_store(str(index))
    try:
        rows: list[dict[str, float]] = []
        for page in pages:
            after = store.query(Filters(), limit=1, offset=page * size - 1)[0].position if page else None
            started = time.perf_counter()
            by_offset = store.query(Filters(), limit=size, offset=page * size)
            offset_ms = 1000 * (time.perf_counter() - started)
            started = time.perf_counter()
            by_keyset = store.query(Filters(), limit=size, after=after)
            keyset_ms = 1000 * (time.perf_counter() - started)
            assert [r.body for r in by_offset] == [r.body for r in by_keyset]
            rows.append({"page": page + 1, "offset_ms": round(offset_ms, 2), "keyset_ms": round(keyset_ms, 2)})
        return rows
    finally:
        store.close()


async def run(exchanges: int, size: int, work: Path) -> dict[str, Any]:
    index = work / "index.sqlite"
    records = seed_index(index, exchanges)
    servers = ConsoleOverIndex(work / "servers", index)
    await servers.start()
    try:

        def measure() -> tuple[list[float], list[str]]:
            with httpx.Client(base_url=servers.url, timeout=30) as client:
                sign_in(client)
                walk(client, size)  # warm-up: the OS page cache, the console's templates
                return walk(client, size)

        times, ids = await asyncio.to_thread(measure)
    finally:
        await servers.aclose()
    assert len(ids) == records, (len(ids), records)
    pages = len(times)
    ordered = sorted(times)
    return {
        "exchanges": exchanges,
        "records": records,
        "page_size": size,
        "pages": pages,
        "serve_ms": {
            "first_page": round(times[0], 2),
            "last_page": round(times[-1], 2),
            "min": round(ordered[0], 2),
            "median": round(statistics.median(times), 2),
            "p95": round(ordered[int(0.95 * (pages - 1))], 2),
            "max": round(ordered[-1], 2),
            "slowest_page": times.index(ordered[-1]) + 1,
        },
        "per_page_ms": [round(t, 2) for t in times],
        "index_offset_vs_keyset": _offset_vs_keyset(index, size, sorted({0, pages // 4, pages // 2, pages - 1})),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=50, choices=[20, 50, 100, 200])
    parser.add_argument("--output", default="bench/results/console.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        figures = asyncio.run(run(args.exchanges, args.size, Path(tmp)))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    s = figures["serve_ms"]
    print(
        f"console search: {figures['exchanges']:,} exchanges ({figures['records']:,} records), "
        f"{figures['pages']} pages of {figures['page_size']}, every page followed by its Next link"
    )
    print(
        f"  page serve time (ms, end to end): first {s['first_page']}, last {s['last_page']}, "
        f"median {s['median']}, p95 {s['p95']}, max {s['max']} (page {s['slowest_page']})"
    )
    every = max(1, figures["pages"] // 10)
    sample = ", ".join(
        f"p{n + 1} {ms}" for n, ms in enumerate(figures["per_page_ms"]) if n % every == 0 or n == figures["pages"] - 1
    )
    print(f"  every {every}th page (ms): {sample}")
    print("  the index alone, same page by OFFSET vs by keyset (ms):")
    for row in figures["index_offset_vs_keyset"]:
        print(f"    page {row['page']:>4}: offset {row['offset_ms']:>7}  keyset {row['keyset_ms']:>7}")
    print(f"  every page's time: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
