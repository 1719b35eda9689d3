"""Issue 12 acceptance: ``audit verify`` checks everything, and each tampering is named.

One demo federation; its trail indexed and cosigned in two rounds (so each gateway has several
cosigned checkpoints); then copies of the index are tampered with, the way an operator with
write access to the database could, and ``crossway audit verify`` runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from audit.index import AuditIndexer, open_store
from audit.trail import count_stream_records
from crossway.demo.federation import Federation
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", *args], capture_output=True, text=True, timeout=60
    )


async def _exchanges(fed: Federation, n: int) -> list[str]:
    ids: list[str] = []
    async with fed.channel() as channel:
        stub = pb_grpc.PersonRegistryStub(channel)
        for i in range(n):
            md = (
                ("authorization", f"Bearer {fed.token()}"),
                ("crossway-purpose", "tax-assessment"),
                ("crossway-user-id", f"EE3800101{i:04d}"),
            )
            call = stub.GetPerson(pb.GetPersonRequest(national_id="38001010001"), metadata=md, timeout=10)
            await call
            ids.append(str(dict(await call.trailing_metadata() or ())["crossway-message-id"]))
    return ids


async def _covered(fed: Federation, index: str, timeout: float = 30.0) -> None:
    """Index everything the stream holds, until every gateway's rows are all cosigned."""
    expected = await count_stream_records(fed.auditor)
    store = open_store(index)
    indexer = AuditIndexer(fed.index, store)
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            await indexer.catch_up()
            sizes = {g: c.size for g, c in store.latest_checkpoints(cosigned=True).items()}
            counts = {g: store.count(g) for g in store.gateways()}
            if store.count() >= expected and sizes == counts:
                return
            assert asyncio.get_running_loop().time() < deadline, f"not cosigned: {counts} vs {sizes}"
            await asyncio.sleep(0.3)
    finally:
        store.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:  # type: ignore[misc]
    async with Federation(tmp_path_factory.mktemp("verify"), require_encryption=False) as fed:
        yield fed


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trail(federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> str:
    index = str(tmp_path_factory.mktemp("index") / "audit.sqlite")
    # Two rounds, each cosigned: every gateway's log has several cosigned checkpoints.
    await _exchanges(federation, 6)
    await _covered(federation, index)
    await _exchanges(federation, 6)
    await _covered(federation, index)
    return index


@pytest.fixture(scope="module")
def anchor(federation: Federation) -> str:
    return str(federation.workdir / "registry" / "anchor.json")


def _copy(index: str, tmp_path: Path, *statements: tuple[str, tuple[object, ...]]) -> str:
    copy = str(tmp_path / "tampered.sqlite")
    open_store(index).close()
    shutil.copy(index, copy)
    store = open_store(copy)
    for sql, params in statements:
        store.execute(sql, params)
    store.close()
    return copy


def _rows(index: str, gateway: str) -> list[tuple[int, int, str, str]]:
    """(leaf index, stream sequence, record id, body) of a gateway's rows."""
    store = open_store(index)
    try:
        return [(r.leaf_index, r.stream_seq, r.record().record_id, r.body) for r in store.leaves(gateway)]
    finally:
        store.close()


def _verify(index: str, anchor: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli("verify", "--index", index, "--anchor", anchor, "--quiet", *extra)


async def test_the_untouched_index_verifies_also_against_nats(trail: str, anchor: str, federation: Federation) -> None:
    result = _verify(trail, anchor, *federation.nats_arguments(federation.index))
    assert result.returncode == 0, result.stdout
    assert "intact" in result.stdout


async def test_columns_edited_without_the_bytes_are_named(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    gateway = str(federation.population.gateway)
    leaf, _, record_id, _ = _rows(trail, gateway)[5]
    # Hide the record from `audit query --user …`: only the searchable column changes.
    copy = _copy(trail, tmp_path, ("UPDATE records SET user_id = ? WHERE record_id = ?", ("someone-else", record_id)))
    query = _cli("query", "--index", copy, "--user", "someone-else", "--json")
    assert record_id in query.stdout  # the edit works on queries …
    result = _verify(copy, anchor)
    assert result.returncode == 1  # … and verify names it
    assert f"ALTERED: {gateway} leaf {leaf} record {record_id}: the index's column(s) user_id differ" in result.stdout


async def test_bytes_and_leaf_hash_rewritten_together_are_named(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    gateway = str(federation.tax.gateway)
    leaf, seq, record_id, body = _rows(trail, gateway)[4]
    doc = json.loads(body)
    doc["trace_id"] = "0" * 32  # a field no other check compares: only the Merkle roots can tell
    forged = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    forged_hash = hashlib.sha256(b"\x00" + forged.encode()).hexdigest()  # RFC 9162 leaf hash
    copy = _copy(
        trail,
        tmp_path,
        ("UPDATE records SET body = ?, leaf_hash = ? WHERE record_id = ?", (forged, forged_hash, record_id)),
    )
    offline = _verify(copy, anchor)
    assert offline.returncode == 1
    assert f"ALTERED: {gateway}" in offline.stdout and record_id in offline.stdout, offline.stdout
    with_nats = _verify(copy, anchor, *federation.nats_arguments(federation.index))
    assert with_nats.returncode == 1
    assert (
        f"ALTERED: {gateway} leaf {leaf} record {record_id}: its bytes and its leaf hash were both rewritten"
        in with_nats.stdout
    ), with_nats.stdout
    assert f"differ from the audit stream's message {seq}" in with_nats.stdout


async def test_one_gateways_rows_gone_are_named(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    provider = str(federation.population.gateway)
    rows_only = _copy(trail, tmp_path, ("DELETE FROM records WHERE gateway = ?", (provider,)))
    result = _verify(rows_only, anchor)
    assert result.returncode == 1
    count = len(_rows(trail, provider))
    assert f"MISSING: {provider} leaf 0: leaves 0..{count - 1} ({count} records) are in the signed log" in result.stdout
    # Rows and checkpoints gone: the other gateway's records still name it.
    everything = _copy(
        trail,
        tmp_path,
        ("DELETE FROM records WHERE gateway = ?", (provider,)),
        ("DELETE FROM checkpoints WHERE gateway = ?", (provider,)),
    )
    result = _verify(everything, anchor)
    assert result.returncode == 1
    assert f"MISSING: {provider}: named as the other side of" in result.stdout, result.stdout


async def test_both_sides_truncated_with_their_checkpoints_are_named_against_nats(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    store = open_store(trail)
    try:
        cut = {g: store.checkpoints(g)[0].size for g in store.gateways()}  # each log back to an early checkpoint
    finally:
        store.close()
    statements: list[tuple[str, tuple[object, ...]]] = []
    for gateway, size in cut.items():
        statements.append(("DELETE FROM records WHERE gateway = ? AND leaf_index >= ?", (gateway, size)))
        statements.append(("DELETE FROM checkpoints WHERE gateway = ? AND size > ?", (gateway, size)))
    statements.append(("UPDATE cursors SET seq = (SELECT MAX(stream_seq) FROM records) WHERE name = ?", ("records",)))
    copy = _copy(trail, tmp_path, *statements)
    result = _verify(copy, anchor, *federation.nats_arguments(federation.index))
    assert result.returncode == 1, result.stdout
    for gateway, size in cut.items():
        assert f"MISSING: {gateway} leaf {size}: NATS holds its cosigned checkpoint at size" in result.stdout


async def test_a_provider_record_gone_is_missed_from_the_client_side_too(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    provider = str(federation.population.gateway)
    _, _, record_id, body = _rows(trail, provider)[3]
    message_id = json.loads(body)["message_id"]
    copy = _copy(trail, tmp_path, ("DELETE FROM records WHERE record_id = ?", (record_id,)))
    result = _verify(copy, anchor, "--grace", "0")
    assert result.returncode == 1
    assert f"MISSING: {provider}: provider record of message {message_id} (the client gateway holds" in result.stdout


async def test_records_older_than_the_grace_period_without_a_cosigned_checkpoint_fail_signed_only(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    gateway = str(federation.tax.gateway)
    store = open_store(trail)
    try:
        first = store.checkpoints(gateway)[0].size
    finally:
        store.close()
    # As if cosigning had stopped after the first checkpoint.
    copy = _copy(trail, tmp_path, ("DELETE FROM checkpoints WHERE gateway = ? AND size > ?", (gateway, first)))
    fresh = _verify(copy, anchor, "--signed-only")  # within the grace period: pending
    assert fresh.returncode == 0 and "not yet provable" in fresh.stdout, fresh.stdout
    stale = _verify(copy, anchor, "--signed-only", "--grace", "0")
    assert stale.returncode == 1
    assert f"UNCOVERED: {gateway}:" in stale.stdout and "covered by no cosigned checkpoint" in stale.stdout


async def test_an_exchange_that_never_reached_the_provider_needs_no_provider_record(
    trail: str, anchor: str, federation: Federation, tmp_path: Path
) -> None:
    assert federation.authority is not None
    population = federation.population
    federation.authority.set_gateway_address(population.gateway, "127.0.0.1:9")  # nobody listens
    await federation.publish_and_wait()
    try:
        with pytest.raises(Exception):  # noqa: B017 (peer.unavailable)
            await _exchanges(federation, 1)
    finally:
        federation.authority.set_gateway_address(population.gateway, f"127.0.0.1:{population.peer_port}")
        await federation.publish_and_wait()
    index = str(tmp_path / "fresh.sqlite")
    shutil.copy(trail, index)
    await _covered(federation, index)
    result = _verify(index, anchor, "--grace", "0")
    assert result.returncode == 0, result.stdout
    assert "1 exchange(s) never reached a provider" in result.stdout
