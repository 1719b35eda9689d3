"""Disaster recovery: back up the registry and both gateways, lose them, restore, serve again, and
`crossway audit verify` still proves the whole audit trail (issue 17; docs/operations.md).

NATS is the federation's backbone and outlives the loss here (a NATS cluster is backed up on its
own); what is lost is the registry's host and the two gateways' directories — keys, configuration,
audit-log state, spools, replay windows. Everything is done with the CLI, as an operator would.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from audit.index import RegistryCosigner
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc
from registry import RegistryAuthority, RegistryServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("disaster")) as fed:
        yield fed


async def crossway(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crossway.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def _call(fed: Federation) -> str:
    async with fed.channel() as channel:
        try:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"),
                metadata=(("authorization", f"Bearer {fed.token()}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return str(dict(exc.trailing_metadata() or ()).get("crossway-error", exc.code().name))
    return "ok"


async def _verified(fed: Federation, index: str, anchor: str, timeout: float = 60) -> str:
    """Index what is in the streams and verify it, until the newest checkpoints cover it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        code, out = await crossway("audit", "index", *fed.nats_arguments(fed.index), "--index", index, "--once")
        assert code == 0, out
        code, report = await crossway("audit", "verify", "--index", index, "--anchor", anchor, "--quiet")
        if code == 0 or loop.time() > deadline:
            assert code == 0, report
            return report
        await asyncio.sleep(1)


async def test_backup_wipe_restore_then_the_federation_serves_and_its_audit_trail_verifies(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    assert fed.authority is not None and fed.registry is not None and fed.cosigner is not None
    registry_dir, work = fed.workdir / "registry", tmp_path
    anchor = work / "anchor.json"  # what every agency holds, apart from the registry's host
    shutil.copy(registry_dir / "anchor.json", anchor)
    shutil.copy(registry_dir / "ca.pem", work / "ca.pem")
    for _ in range(3):
        assert await _call(fed) == "ok"
    # 1. Backups, while everything runs, encrypted to the operator's key.
    code, out = await crossway("registry", "backup-key", str(work / "operator"))
    assert code == 0, out
    code, out = await crossway(
        "registry", "backup", "--dir", str(registry_dir), "--to", str(work / "registry.cwbak"),
        "--recipient", str(work / "operator.pub"),
    )  # fmt: skip
    assert code == 0, out
    for agency in fed.agencies:
        assert agency.config_path is not None
        code, out = await crossway(
            "gateway", "backup", "--config", str(agency.config_path),
            "--to", str(work / f"{agency.member.code}.cwbak"), "--recipient", str(work / "operator.pub"),
        )  # fmt: skip
        assert code == 0, out
    assert await _call(fed) == "ok"  # one more exchange after the backups: in the streams only
    # 2. The disaster: the registry's host and both gateways' directories are gone.
    for agency in fed.agencies:
        assert agency.process is not None
        await agency.process.stop()
    await fed.cosigner.aclose()
    await fed.registry.aclose()
    fed.authority.close()
    shutil.rmtree(registry_dir)
    for agency in fed.agencies:
        shutil.rmtree(agency.directory)
    # 3. Restore, each verified before a byte is written.
    code, out = await crossway(
        "registry", "restore", str(work / "registry.cwbak"), "--key", str(work / "operator.key"),
        "--anchor", str(anchor), "--dir", str(registry_dir),
    )  # fmt: skip
    assert code == 0, out
    for agency in fed.agencies:
        code, out = await crossway(
            "gateway", "restore", str(work / f"{agency.member.code}.cwbak"), "--key", str(work / "operator.key"),
            "--ca", str(work / "ca.pem"), "--dir", str(agency.directory),
        )  # fmt: skip
        assert code == 0, out
    # A backup restored with another anchor's trust is refused (nothing written).
    code, out = await crossway(
        "gateway", "restore", str(work / "registry.cwbak"), "--key", str(work / "operator.key"),
        "--ca", str(work / "ca.pem"), "--dir", str(work / "wrong"),
    )  # fmt: skip
    assert code == 1 and "backup.invalid" in out and not (work / "wrong").exists()
    # 4. Start again from the restored state: the registry, its cosigner, the gateways.
    fed.authority = RegistryAuthority.open(registry_dir)
    fed.registry = RegistryServer(fed.authority, "127.0.0.1:0", fed.registry_nats, validity_s=fed.config_validity_s)
    await fed.registry.start()
    assert fed.cosigner_nats is not None
    fed.cosigner = RegistryCosigner(fed.cosigner_nats, registry_dir)
    await fed.cosigner.start()
    # Both gateways first, then one publication with their new peer addresses (what
    # Federation.start does; restart_gateway would wait on the other, still stopped, gateway).
    await asyncio.gather(*(fed._start_gateway(agency) for agency in fed.agencies))
    for agency in fed.agencies:
        fed.authority.set_gateway_address(agency.gateway, f"127.0.0.1:{agency.peer_port}")
    await fed.publish_and_wait()
    assert (outcome := await _call(fed)) == "ok", outcome
    # 5. The audit trail, before and after the disaster, verifies.
    report = await _verified(fed, str(work / "index.sqlite"), str(anchor))
    assert "intact" in report
    code, changes = await crossway("registry", "changes", "--verify", "--dir", str(registry_dir))
    assert code == 0 and "restore the registry from a backup" in changes, changes
