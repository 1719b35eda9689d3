"""Payload archiving end to end: real gateways and NATS archive bodies sealed to the auditors only."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from audit.index import AuditIndexer, open_exchange_payloads, open_store
from audit.trail import ARCHIVE_STREAM, ArchivedPayload, PayloadArchiveInvalid
from crossway.demo.federation import Federation
from crossway.natsclient import connect
from crossway.security.keys import generate_x25519_key, load_private_key, save_pem, save_private_key
from protos.demo.population.v1 import population_pb2 as pb
from protos.demo.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

NATIONAL_ID = "38001010001"


@pytest.fixture(scope="module")
def auditor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An auditor key pair minted for this run (``crossway audit archive-key``); returns PREFIX."""
    prefix = tmp_path_factory.mktemp("auditor") / "auditor"
    done = subprocess.run(
        [sys.executable, "-m", "crossway.cli", "audit", "archive-key", str(prefix)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return prefix


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archiving(tmp_path_factory: pytest.TempPathFactory, auditor: Path) -> AsyncIterator[Federation]:
    workdir = tmp_path_factory.mktemp("archiving")
    async with Federation(workdir, auditor_keys=(Path(f"{auditor}.pub"),)) as fed:
        yield fed


async def _call(fed: Federation) -> tuple[str, bytes, bytes]:
    """One allowed call; returns its message id and the request/response bytes as the caller saw them."""
    request = pb.GetPersonRequest(national_id=NATIONAL_ID)
    async with fed.channel() as channel:
        call = pb_grpc.PersonRegistryStub(channel).GetPerson(
            request,
            metadata=(("authorization", f"Bearer {fed.token()}"), ("crossway-purpose", "tax-assessment")),
            timeout=10,
        )
        response = await call
        message_id = str(dict(await call.trailing_metadata() or ())["crossway-message-id"])
    return message_id, request.SerializeToString(), response.SerializeToString()


async def _archived(fed: Federation, message_id: str, sides: int = 2) -> list[bytes]:
    """The raw archive-stream messages of one exchange (waits for both sides)."""
    nc = await connect(fed.auditor, name="test")
    try:
        js = nc.jetstream(timeout=5.0)
        for _ in range(100):
            try:
                info = await js.stream_info(ARCHIVE_STREAM)
            except Exception:
                info = None
            if info is not None and info.state.messages:
                blobs = []
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    msg = await js.get_msg(ARCHIVE_STREAM, seq)
                    assert msg.data is not None
                    blobs.append(msg.data)
                mine = [b for b in blobs if ArchivedPayload.from_json(b).message_id == message_id]
                if len(mine) >= sides:
                    return mine
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    raise AssertionError(f"archives of {message_id} did not arrive")


async def test_the_stored_archive_is_not_the_plaintext(archiving: Federation) -> None:
    message_id, request, response = await _call(archiving)
    blobs = await _archived(archiving, message_id)
    assert {ArchivedPayload.from_json(b).side for b in blobs} == {"client", "provider"}
    for blob in blobs:
        assert NATIONAL_ID.encode() not in blob
        assert request not in blob and response not in blob
    # Nothing in the gateways' spools or records carries the body either.
    for agency in archiving.agencies:
        for path in (agency.directory / "data").rglob("*.jsonl"):
            assert NATIONAL_ID.encode() not in path.read_bytes()


async def test_an_auditor_opens_both_sides_to_the_exact_bytes_and_another_key_fails(
    archiving: Federation, auditor: Path, tmp_path: Path
) -> None:
    message_id, request, response = await _call(archiving)
    await _archived(archiving, message_id)
    index = str(tmp_path / "index.sqlite")
    store = open_store(index)
    try:
        for _ in range(50):
            await AuditIndexer(archiving.index, store).catch_up()
            if len(store.archives(message_id)) == 2:
                break
        key = load_private_key(f"{auditor}.key")
        opened = open_exchange_payloads(store, message_id, key)  # type: ignore[arg-type]
        assert {p.side for p in opened} == {"client", "provider"}
        for p in opened:
            assert b"".join(p.request) == request
            assert b"".join(p.response) == response
        with pytest.raises(PayloadArchiveInvalid):
            open_exchange_payloads(store, message_id, generate_x25519_key())
    finally:
        store.close()

    # The CLI, as an auditor runs it.
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossway.cli", "audit", "payload", message_id, "--index", index, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    done = cli("--key", f"{auditor}.key", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert base64.b64decode(doc["provider"]["request"][0]) == request
    assert base64.b64decode(doc["client"]["response"][0]) == response
    other = tmp_path / "other"
    save_private_key(f"{other}.key", generate_x25519_key())
    save_pem(f"{other}.pub", generate_x25519_key().public_key())
    done = cli("--key", f"{other}.key")
    assert done.returncode == 1
    assert "error[audit.archive_invalid]" in done.stderr
