"""Registry changes are in the audit trail: `crossway audit query` lists them, `audit verify`
proves them like a gateway's log (issue 17)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from audit.trail import fetch_records
from crossway.backbone import NatsIdentity, NatsRole
from crossway.demo.federation import TAX_SUBSYSTEM, Federation
from crossway.demo.processes import ManagedProcess
from crossway.natslocal import LocalBackbone
from registry import verify_changes

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("registry-log"), registry_log=True) as fed:
        yield fed


async def crossway(*args: str) -> tuple[int, str]:
    """The CLI as a subprocess, without blocking the loop the in-process registry runs on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crossway.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_registry_changes_show_in_audit_query_and_verify(federation: Federation, tmp_path: Path) -> None:
    authority, publisher = federation.authority, federation.registry_log
    assert authority is not None and publisher is not None
    authority.lifecycle.disable("subsystem", str(TAX_SUBSYSTEM), "suspected misuse")
    authority.lifecycle.enable("subsystem", str(TAX_SUBSYSTEM))
    last = authority.changes.entries()[-1].seq
    anchor = authority.anchor
    assert verify_changes(authority.changes.entries(), {anchor.key_id: anchor.public_key}) == []
    index = str(tmp_path / "index.sqlite")
    registry_dir = str(federation.workdir / "registry")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        # Indexed, checkpointed and cosigned: the registry's log is a log like the gateways'.
        code, out = await crossway(
            "audit", "index", *federation.nats_arguments(federation.index), "--index", index, "--once"
        )
        assert code == 0, out
        verified, report = await crossway(
            "audit", "verify", "--index", index, "--anchor", f"{registry_dir}/anchor.json", "--quiet", "--signed-only"
        )
        if (verified == 0 and publisher.published >= last) or loop.time() > deadline:
            break
        await asyncio.sleep(1)
    assert verified == 0, report
    code, out = await crossway("audit", "query", "--index", index, "--service", "crossway.v1.Registry", "--json")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    purposes = [r["purpose"] for r in records]
    assert f"disable subsystem {TAX_SUBSYSTEM} (suspected misuse)" in purposes
    assert f"enable subsystem {TAX_SUBSYSTEM}" in purposes
    assert any(p.startswith("add member EE/GOV/70000001") for p in purposes)
    assert {r["gateway"] for r in records} == {"EE/REGISTRY/registry/registry"}
    assert all(r["side"] == "admin" and r["request_signature"] for r in records)
    # The table form names who did it and what.
    code, table = await crossway("audit", "query", "--index", index, "--service", "crossway.v1.Registry")
    assert code == 0 and "disable" in table


async def test_the_registry_log_command_publishes_changes_made_before_it_ran(tmp_path: Path) -> None:
    nats = LocalBackbone(tmp_path / "nats")
    await nats.start()
    registry = tmp_path / "registry"
    # The registry's NATS identity (its grant covers the registry log's subjects) and a reader.
    as_registry = await nats.grant(NatsIdentity(NatsRole.REGISTRY, "EE"))
    auditor = await nats.grant(NatsIdentity(NatsRole.AUDITOR, "tests"))
    try:
        for argv in (
            ("registry", "init", "--dir", str(registry), "--instance", "EE"),
            ("registry", "member", "add", "EE/GOV/70000009", "--name", "Land Board", "--dir", str(registry)),
            ("registry", "member", "disable", "EE/GOV/70000009", "--reason", "unpaid fees", "--dir", str(registry)),
        ):
            code, out = await crossway(*argv)
            assert code == 0, out
        process = ManagedProcess(
            "registry-log",
            [
                *(sys.executable, "-m", "crossway.cli", "audit", "registry-log", "--dir", str(registry)),
                *Federation.nats_arguments(as_registry),
            ],
        )
        await process.start()
        try:
            await process.wait_for("published to the audit trail", 30)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while True:
                records = [r for r in await fetch_records(auditor) if r.service == "crossway.v1.Registry"]
                if len(records) >= 2 or loop.time() > deadline:
                    break
                await asyncio.sleep(0.3)
            assert [r.purpose for r in records] == [
                "add member EE/GOV/70000009",
                "disable member EE/GOV/70000009 (unpaid fees)",
            ]
        finally:
            await process.stop()
    finally:
        await nats.aclose()
