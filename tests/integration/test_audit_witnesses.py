"""Issue 12 acceptance: witnesses — the registry and members cosign, verify requires the quorum.

The demo federation with witnesses: each agency runs ``crossway audit witness`` for the other's
log, an audit office runs an independent one, and the registry's configuration names all three
with a quorum of 2 (the registry counted). Real processes throughout; the fork at the end is shown
to two witnesses by feeding each its own branch through the same code their processes run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index import AuditIndexer, open_store
from audit.index.cosigner import Cosigner
from audit.trail import (
    CHECKPOINT_STREAM,
    MerkleTree,
    cosignature_subject,
    leaf_hash,
    sign_checkpoint,
)
from crossway.backbone import NatsIdentity, NatsRole
from crossway.demo.federation import Federation
from crossway.natsclient import NatsAccess, connect
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint, cert_to_pem
from crossway.security.signing import Signer
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

AUDIT_OFFICE = "crossway.witness/audit-office"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with Federation(tmp_path_factory.mktemp("witnesses"), require_encryption=False, witnesses=True) as fed:
        yield fed


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", *args], capture_output=True, text=True, timeout=60
    )


async def _exchanges(fed: Federation, n: int) -> list[str]:
    ids = []
    async with fed.channel() as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        for _ in range(n):
            md = (("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment"))
            call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=10)
            await call
            ids.append(str(dict(await call.trailing_metadata() or ())["crossway-message-id"]))
    return ids


async def _quorum_covered(fed: Federation, index: str, within: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Index until ``audit verify --nats`` (the configuration's witnesses and quorum) passes."""
    store = open_store(index)
    indexer = AuditIndexer(fed.index, store)
    anchor = str(fed.workdir / "registry" / "anchor.json")
    deadline = time.monotonic() + within
    try:
        while True:
            await indexer.catch_up()
            result = _cli("verify", "--index", index, "--anchor", anchor, *fed.nats_arguments(fed.index), "--quiet")
            if result.returncode == 0:
                return result
            assert time.monotonic() < deadline, result.stdout
            await asyncio.sleep(1.0)
    finally:
        store.close()


def _witnesses_of_latest(index: str, gateway: str) -> set[str]:
    store = open_store(index)
    try:
        return {c.name for c in store.latest_checkpoints(cosigned=True)[gateway].cosignatures}
    finally:
        store.close()


async def test_with_the_quorum_met_verify_and_evidence_pass(federation: Federation, tmp_path: Path) -> None:
    ids = await _exchanges(federation, 8)
    index = str(tmp_path / "audit.sqlite")
    result = await _quorum_covered(federation, index)
    assert "intact" in result.stdout and "each checkpoint needs 2 of them" in result.stdout
    # Each log was witnessed by members too, never by its own agency's witness.
    tax, population = str(federation.tax.gateway), str(federation.population.gateway)
    await asyncio.sleep(3)  # a few more checkpoints, cosigned by every witness that is up
    store = open_store(index)
    await AuditIndexer(federation.index, store).catch_up()
    store.close()
    assert f"crossway.witness/{tax}" not in _witnesses_of_latest(index, tax)
    assert {f"crossway.witness/{population}", AUDIT_OFFICE} & _witnesses_of_latest(index, tax)
    # An evidence bundle carries the witnesses and the quorum, and verifies pinned to the configuration.
    anchor = str(federation.workdir / "registry" / "anchor.json")
    bundle = tmp_path / "bundle.json"
    made = _cli("evidence", ids[2], "--index", index, "--anchor", anchor, *federation.nats_arguments(federation.index),
                "-o", str(bundle))  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    configuration = tmp_path / "configuration.bin"
    assert federation.authority is not None
    configuration.write_bytes(federation.authority.build_configuration())
    checked = _cli("verify-evidence", str(bundle), "--anchor", anchor, "--configuration", str(configuration))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(bundle.read_text())["quorum"] == 2


async def test_a_quorum_the_witnesses_cannot_meet_fails_verify(federation: Federation, tmp_path: Path) -> None:
    assert federation.authority is not None
    index = str(tmp_path / "audit.sqlite")
    await _quorum_covered(federation, index)
    federation.authority.set_witness_quorum(4)  # the registry and all three: no log has four (never its own)
    configuration = tmp_path / "configuration.bin"
    configuration.write_bytes(federation.authority.build_configuration())
    federation.authority.set_witness_quorum(2)
    anchor = str(federation.workdir / "registry" / "anchor.json")
    result = _cli("verify", "--index", index, "--anchor", anchor, "--configuration", str(configuration), "--quiet")
    assert result.returncode == 1
    assert "of the 4 trusted witnesses required" in result.stdout


async def test_one_witness_down_does_not_stop_cosigning(federation: Federation, tmp_path: Path) -> None:
    office = federation.witness_processes[AUDIT_OFFICE]
    office.kill()
    await office.stop()
    try:
        await _exchanges(federation, 6)
        index = str(tmp_path / "audit.sqlite")
        result = await _quorum_covered(federation, index)
        assert "intact" in result.stdout
        # The newest checkpoints were cosigned without the office: the registry and the other agency.
        tax = str(federation.tax.gateway)
        assert {"crossway.registry/EE", f"crossway.witness/{federation.population.gateway}"} <= _witnesses_of_latest(
            index, tax
        )
    finally:
        await federation.start_witness(AUDIT_OFFICE)


def _signer_of(fed: Federation) -> tuple[Signer, str]:
    keys = fed.tax.directory / "keys"
    certificate = load_certificate(keys / "signing.crt")
    key = load_private_key(keys / "signing.key")
    return Signer(key, cert_fingerprint(certificate)), cert_to_pem(certificate).decode()  # type: ignore[arg-type]


def _witness(fed: Federation, name: str, state: Path, access: NatsAccess) -> Cosigner:
    key = load_private_key(fed.witness_keys[name])
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return Cosigner(access, key=key, name=name, state_path=state, registered=lambda member, key_id: True)


async def test_a_fork_shown_to_two_witnesses_is_caught_and_reported_with_both_checkpoints(
    federation: Federation, tmp_path: Path
) -> None:
    """The tax gateway (its signing key) extends its real log two ways to the same size and shows
    one branch to the audit office's witness, the other to the population agency's."""
    index = str(tmp_path / "audit.sqlite")
    await _quorum_covered(federation, index)
    tax = str(federation.tax.gateway)
    store = open_store(index)
    try:
        real = [bytes.fromhex(r.leaf_hash) for r in store.leaves(tax)]
    finally:
        store.close()
    signer, pem = _signer_of(federation)
    messages = []
    for branch in (b"branch A", b"branch B"):
        tree = MerkleTree([*real, *(leaf_hash(branch + bytes([i])) for i in range(5))])
        size = tree.size
        checkpoint = sign_checkpoint(signer, pem, tax, size, tree.root(), int(time.time() * 1000))
        proofs = {str(m): [h.hex() for h in tree.consistency_proof(m, size)] for m in range(1, len(real) + 1)}
        messages.append(json.dumps({"checkpoint": checkpoint.to_dict(), "proofs": proofs}).encode())
    population_witness = f"crossway.witness/{federation.population.gateway}"
    # Publishing a cosignature takes a cosigner's NATS identity (crossway.natsauth).
    access = await federation.nats.grant(NatsIdentity(NatsRole.COSIGNER, "fork-test"))
    nc = await connect(access, name="test")
    try:
        js = nc.jetstream()
        for name, message in ((AUDIT_OFFICE, messages[0]), (population_witness, messages[1])):
            witness = _witness(federation, name, tmp_path / f"{name.rsplit('/', 1)[-1]}.json", access)
            signed = witness._consider(message)
            assert signed is not None, f"{name} refused its branch"
            await js.publish(cosignature_subject(tax, witness._key_id), signed.to_json(), stream=CHECKPOINT_STREAM)
    finally:
        await nc.close()

    store = open_store(index)
    try:
        await AuditIndexer(federation.index, store).catch_up()
    finally:
        store.close()
    anchor = str(federation.workdir / "registry" / "anchor.json")
    evidence = tmp_path / "forks"
    result = _cli("verify", "--index", index, "--anchor", anchor, *federation.nats_arguments(federation.index), "--quiet",
                  "--fork-evidence", str(evidence))  # fmt: skip
    assert result.returncode == 1
    assert f"FORK: {tax}: two checkpoints of size {len(real) + 5}, both signed by the gateway" in result.stdout
    assert "it showed two histories" in result.stdout
    # Both signed checkpoints, as C2SP notes, are in the report.
    assert result.stdout.count(f"    crossway.audit/{tax}\n") == 2 and "fork 1, second checkpoint:" in result.stdout
    (proof,) = evidence.glob("fork-*.json")
    doc = json.loads(proof.read_text())
    assert doc["first"]["root"] != doc["second"]["root"] and len(doc["notes"]) == 2
    assert {AUDIT_OFFICE, population_witness} == {
        c["name"] for side in ("first", "second") for c in doc[side]["cosignatures"]
    }
