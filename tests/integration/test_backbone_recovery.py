"""Issue 11, after a break-in with the admin credential: what was destroyed is recreated or named,
never silently skipped — the registry's bucket, a rewound audit stream — and an older policy
version replayed into a rebuilt stream is refused, after a restart too."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats.js.errors
import pytest
import pytest_asyncio

from audit.index import AuditIndexer, open_store, verify_index
from audit.index.witnesses import registry_witnesses
from crossway.backbone import AUDIT_STREAM, POLICY_STREAM, REGISTRY_BUCKET, kv_stream, policy_version_subject
from crossway.demo.federation import Federation
from crossway.natsclient import connect
from crossway.natsstreams import provision_backbone
from gateway.health import probe_health
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc
from registry import load_anchor
from tests.integration.test_audit_trail import _exchanges
from tests.integration.test_policy_admin import BASE, SERVICE, AdminFederation, _cli, _code, _online, _policy_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("recovery")) as federation:
        yield federation


async def _eventually(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        await asyncio.sleep(0.2)


async def test_the_registry_bucket_deleted_with_the_admin_credential_is_recreated_and_logged(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    assert fed.registry is not None
    caplog.set_level(logging.ERROR, logger="registry.publisher")
    nc = await fed.nats.admin_connection()
    try:
        assert await nc.jetstream().delete_stream(kv_stream(REGISTRY_BUCKET))

        async def recreated() -> bool:
            try:
                info = await nc.jetstream().stream_info(kv_stream(REGISTRY_BUCKET))
            except Exception:
                return False
            return bool(info.state.messages)  # and the configuration published into it again

        await _eventually(recreated, 10, "the registry recreates its bucket and republishes")
    finally:
        await nc.close()
    assert fed.registry.publisher.recreated >= 1
    assert any("was missing" in r.getMessage() and REGISTRY_BUCKET in r.getMessage() for r in caplog.records)
    # The gateways follow the configurations published into the new bucket.
    await fed.publish_and_wait()


async def test_a_stream_rewound_under_running_gateways_turns_audit_not_serving_and_verify_names_the_gap(
    fed: Federation, tmp_path: Path
) -> None:
    await _exchanges(fed, 3)
    index = str(tmp_path / "audit.sqlite")
    store = open_store(index)
    indexer = AuditIndexer(fed.index, store)
    anchor = load_anchor(fed.workdir / "registry" / "anchor.json")
    cosigners = registry_witnesses(anchor).keys

    async def signed_and_indexed() -> bool:
        await indexer.catch_up()
        report = verify_index(store, cosigners)
        return report.ok and report.records >= 8

    await _eventually(signed_and_indexed, 30, "the first exchanges are indexed and cosigned")

    # The attacker (who has the admin credential) deletes the audit stream and creates it again:
    # its sequences start over at 1, under gateways that keep running.
    nc = await fed.nats.admin_connection()
    try:
        await nc.jetstream().delete_stream(AUDIT_STREAM)
    finally:
        await nc.close()
    await provision_backbone(fed.nats.admin_access(), replicas=fed.nats.replicas)
    await _exchanges(fed, 2)

    async def audit_alarmed() -> bool:
        statuses = []
        for agency in (fed.tax, fed.population):
            report = await asyncio.to_thread(
                probe_health, f"127.0.0.1:{agency.client_port}", fed.ca_pem, "crossway.audit"
            )
            statuses.append(report.status)
        return statuses == ["NOT_SERVING", "NOT_SERVING"]

    await _eventually(audit_alarmed, 20, "crossway.audit NOT_SERVING on both gateways")
    for agency in (fed.tax, fed.population):
        assert agency.process is not None
        assert any(
            "audit ALARM" in line and "deleted and recreated, or rewound" in line for line in agency.process.lines
        )

    # The index reads on: the new stream from its start, and the gap is named, not skipped.
    await indexer.catch_up()
    report = verify_index(store, cosigners)
    gaps = [f for f in report.findings if f.kind == "gap"]
    assert gaps and gaps[0].gateway == AUDIT_STREAM and "went back" in gaps[0].detail
    assert any(f.kind == "extra" for f in report.findings)  # the new records are in no signed log
    store.close()
    anchor_file = str(fed.workdir / "registry" / "anchor.json")
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "crossway.cli", "audit", "verify", "--index", index, "--quiet", "--anchor", anchor_file],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 1
    assert f"GAP: {AUDIT_STREAM}: stream {AUDIT_STREAM} went back" in verify.stdout


# -- no rollback by replay ---------------------------------------------------------------------------------

MARKETING = (
    BASE
    + f"""
@id("marketing-may-read")
permit (
  principal == Crossway::Subsystem::"EE/GOV/70000001/marketing",
  action == Crossway::Action::"population.v1.PersonRegistry/GetPerson",
  resource == Crossway::Service::"{SERVICE}"
);
"""
)


async def _marketing_reads(fed: Federation) -> str:
    """OK, or the crossway-error code of the refusal."""
    async with fed.marketing_channel() as channel:
        try:
            await pb_grpc.PersonRegistryStub(channel).GetPerson(
                pb.GetPersonRequest(national_id="38001010001"), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return _code(exc) or exc.code().name
    return "OK"


async def test_an_older_policy_version_replayed_into_a_rebuilt_stream_is_refused_after_a_restart(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    async with AdminFederation(tmp_path_factory.mktemp("rollback")) as fed:
        assert fed.population.process is not None and fed.authority is not None
        match = await fed.population.process.wait_for(r"admin API of \S+ listening on 127\.0\.0\.1:(\d+)")
        admin = _online(fed, int(match.group(1)), fed.admin_token("alice@pop", "policy-admin"), tmp_path)
        # v1 lets marketing read; v2 takes that back.
        for name, text in (("v1", MARKETING), ("v2", BASE)):
            applied = await asyncio.to_thread(_cli, "apply", str(_policy_dir(tmp_path, name, text)), *admin)
            assert applied.returncode == 0, applied.stderr
            await asyncio.sleep(0.5)
            assert await _marketing_reads(fed) == ("OK" if name == "v1" else "policy.denied")

        population = str(fed.population.gateway)
        nc = await fed.nats.admin_connection()
        try:
            js = nc.jetstream(timeout=5)
            v1 = (await js.get_last_msg(POLICY_STREAM, policy_version_subject(population, 1))).data
            # Purging, the attack, is refused by the stream itself now...
            with pytest.raises(nats.js.errors.APIError) as refused:
                await js.purge_stream(POLICY_STREAM)
            assert refused.value.err_code == 10110  # stream purge not permitted
            # ...so the attacker deletes the stream with the admin credential and builds a new one.
            await js.delete_stream(POLICY_STREAM)
        finally:
            await nc.close()
        await provision_backbone(fed.nats.admin_access(), replicas=fed.nats.replicas)
        # Replaying v1 takes the gateway's own NATS identity (only it may publish there): stolen too.
        thief = await connect(fed.gateway_nats(fed.population), name="thief")
        try:
            await thief.jetstream().publish(policy_version_subject(population, 1), v1, stream=POLICY_STREAM)
        finally:
            await thief.close()

        # A routine restart: the history on NATS now ends at v1, but v2 was applied here before.
        await fed.population.process.stop()
        await fed._start_gateway(fed.population)
        fed.authority.set_gateway_address(fed.population.gateway, f"127.0.0.1:{fed.population.peer_port}")
        await fed.publish_and_wait()
        assert fed.population.process is not None
        await fed.population.process.wait_for(r"policy ROLLBACK refused", 10)
        assert await _marketing_reads(fed) == "policy.unavailable"  # not OK: the revoked permit stays revoked
        report = await asyncio.to_thread(
            probe_health, f"127.0.0.1:{fed.population.client_port}", fed.ca_pem, "crossway.policy"
        )
        assert report.status == "NOT_SERVING"
