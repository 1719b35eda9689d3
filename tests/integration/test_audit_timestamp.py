"""RFC 3161 timestamps of checkpoints, against a local TSA (`openssl ts -reply`) minted per run.

The index is built directly (signed, cosigned checkpoints over sample records) so no NATS is
needed; the cosigner's stamping step, the real CLI (`audit verify`, `verify-evidence`) and the
offline bundle are exercised against the TSA.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index import (
    Cosigner,
    TimestampAuthority,
    build_evidence,
    load_timestamp_authority,
    load_tsa_roots,
    open_store,
    verify_evidence,
    verify_index,
    verify_timestamp,
)
from audit.trail import (
    Checkpoint,
    EvidenceInvalid,
    MerkleTree,
    TimestampInvalid,
    cosign,
    registry_witness_name,
    sign_checkpoint,
)
from audit.trail.samples import sample_record
from bench.audit_index import _signer
from crossway.core.errors import ConfigError
from crossway.security.keys import load_private_key
from registry import RegistryAuthority, load_anchor
from tests.integration.tsa import LocalTsa

CLIENT, PROVIDER = "EE/GOV/70000001/gw1", "EE/GOV/70000002/gw1"
SERVICE = "EE/GOV/70000002/population/population.v1.PersonRegistry"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timestamp")
    RegistryAuthority.init(path / "registry", "EE").close()
    return path


@pytest.fixture(scope="module")
def tsa(work: Path) -> Iterator[LocalTsa]:
    with LocalTsa(work / "tsa") as server:
        yield server


@pytest.fixture(scope="module")
def other_tsa(work: Path) -> Iterator[LocalTsa]:
    with LocalTsa(work / "other-tsa", "Untrusted TSA") as server:
        yield server


def _cosigner(work: Path, authority: TimestampAuthority, name: str = "c") -> Cosigner:
    key = load_private_key(work / "registry" / "config.key")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return Cosigner(
        "nats://127.0.0.1:1",  # never started: only its stamping step runs here
        key=key,
        name=registry_witness_name("EE"),
        state_path=work / f"{name}-state.json",
        registered=lambda member, key_id: True,
        timestamp=authority,
    )


async def _index(work: Path, name: str, authority: TimestampAuthority | None) -> str:
    """Three exchanges, both sides; each gateway's log under a cosigned checkpoint, stamped when asked."""
    index = str(work / f"{name}.sqlite")
    store = open_store(index)
    items = []
    for n in range(3):
        for gateway, side, peer in ((CLIENT, "client", PROVIDER), (PROVIDER, "provider", CLIENT)):
            record = sample_record(
                n, gateway=gateway, client="EE/GOV/70000001/tax", service=SERVICE, side=side, peer_gateway=peer
            )
            items.append((len(items) + 1, gateway, record.to_json()))
    store.ingest("records", items, {})
    key = load_private_key(work / "registry" / "config.key")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    cosigner = _cosigner(work, authority) if authority is not None else None
    signer, pem = _signer()
    for seq, gateway in enumerate((CLIENT, PROVIDER), start=1):
        tree = MerkleTree(bytes.fromhex(r.leaf_hash) for r in store.leaves(gateway))
        checkpoint = sign_checkpoint(signer, pem, gateway, tree.size, tree.root(), 1_700_000_000_000)
        checkpoint = cosign(checkpoint, key, registry_witness_name("EE"), 1_700_000_000_100)
        if cosigner is not None:
            checkpoint = await cosigner._stamp(checkpoint)
            assert checkpoint.timestamp
        store.add_checkpoint("checkpoints", seq, checkpoint)
    store.close()
    return index


def _authority(tsa: LocalTsa) -> TimestampAuthority:
    return TimestampAuthority(tsa.url, load_tsa_roots(tsa.ca_pem), timeout_s=5.0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crossway.cli", "audit", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _stamped_checkpoint(index: str, gateway: str = CLIENT) -> Checkpoint:
    store = open_store(index)
    try:
        return store.latest_checkpoints()[gateway]
    finally:
        store.close()


async def test_a_stamped_checkpoint_verifies_and_reports_the_tsas_time(work: Path, tsa: LocalTsa) -> None:
    index = await _index(work, "stamped", _authority(tsa))
    checkpoint = _stamped_checkpoint(index)
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
    check = verify_timestamp(checkpoint.timestamp, checkpoint.body(), load_tsa_roots(tsa.ca_pem))
    assert check.time.year >= 2024 and check.hash_hex
    anchor = str(work / "registry" / "anchor.json")
    result = _cli("verify", "--index", index, "--anchor", anchor, "--tsa-ca", str(tsa.ca_pem), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout and f"{CLIENT}: checkpoint timestamped by the TSA at" in result.stdout
    required = _cli("verify", "--index", index, "--anchor", anchor, "--tsa-ca", str(tsa.ca_pem), "--require-timestamp")
    assert required.returncode == 0, required.stdout


async def test_a_token_over_other_bytes_fails(work: Path, tsa: LocalTsa) -> None:
    checkpoint = _stamped_checkpoint(await _index(work, "other-bytes", _authority(tsa)))
    moved = dataclasses.replace(checkpoint, size=checkpoint.size - 1)
    with pytest.raises(TimestampInvalid, match="over other bytes"):
        verify_timestamp(moved.timestamp, moved.body(), load_tsa_roots(tsa.ca_pem))


async def test_a_token_from_an_untrusted_tsa_fails(work: Path, tsa: LocalTsa, other_tsa: LocalTsa) -> None:
    index = await _index(work, "untrusted", _authority(other_tsa))
    anchor = str(work / "registry" / "anchor.json")
    result = _cli("verify", "--index", index, "--anchor", anchor, "--tsa-ca", str(tsa.ca_pem), "--quiet")
    assert result.returncode == 1
    assert "does not verify to a trusted TSA CA" in result.stdout
    # Without any TSA CA a present token cannot be checked: that fails too, it is not skipped.
    store = open_store(index)
    try:
        report = verify_index(store, {registry_witness_name("EE"): load_anchor(Path(anchor)).public_key})
    finally:
        store.close()
    assert not report.ok and all("no TSA CA is trusted" in f.detail for f in report.findings)


async def test_require_timestamp_fails_on_an_unstamped_log_that_otherwise_verifies(work: Path) -> None:
    index = await _index(work, "unstamped", None)
    anchor = str(work / "registry" / "anchor.json")
    assert _cli("verify", "--index", index, "--anchor", anchor, "--quiet").returncode == 0
    result = _cli("verify", "--index", index, "--anchor", anchor, "--quiet", "--require-timestamp")
    assert result.returncode == 1
    assert result.stdout.count("no RFC 3161 timestamp token") == 2


def test_every_single_byte_change_in_a_token_is_caught(tsa: LocalTsa) -> None:
    body = b"crossway.audit.checkpoint/v1\nsize 3\n"
    token = tsa.reply(_query(body))
    roots = load_tsa_roots(tsa.ca_pem)
    verify_timestamp(token, body, roots)
    for at in range(len(token)):
        for flip in (0x01, 0x80):
            changed = bytearray(token)
            changed[at] ^= flip
            with pytest.raises(TimestampInvalid):
                verify_timestamp(bytes(changed), body, roots)


async def test_an_evidence_bundle_with_a_token_verifies_offline_and_fails_after_a_byte_change_in_it(
    work: Path, tsa: LocalTsa, other_tsa: LocalTsa
) -> None:
    index = await _index(work, "evidence", _authority(tsa))
    anchor = load_anchor(work / "registry" / "anchor.json").public_key
    cosigners = {registry_witness_name("EE"): anchor}
    store = open_store(index)
    try:
        data = build_evidence(store, "msg-00000001", cosigners, load_tsa_roots(tsa.ca_pem))
    finally:
        store.close()
    bundle = work / "evidence.json"
    bundle.write_bytes(data)
    report = verify_evidence(data, cosigners, require_timestamp=True)
    assert len(report.timestamps) == 2 and report.trusted_embedded_tsa
    result = _cli("verify-evidence", str(bundle), "--tsa-ca", str(tsa.ca_pem), "--require-timestamp")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "timestamped by the TSA at" in result.stdout
    # Pinning another TSA's CA refuses the bundle's token.
    with pytest.raises(EvidenceInvalid, match="trusted TSA CA"):
        verify_evidence(data, cosigners, tsa_roots=load_tsa_roots(other_tsa.ca_pem))
    # One byte of the token changed (the bundle otherwise canonical): refused.
    doc = json.loads(data)
    token = bytearray(base64.b64decode(doc["entries"][0]["checkpoint"]["timestamp"]))
    token[len(token) // 2] ^= 0x01
    doc["entries"][0]["checkpoint"]["timestamp"] = base64.b64encode(bytes(token)).decode()
    altered = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    with pytest.raises(EvidenceInvalid, match="entry 0: the timestamp token"):
        verify_evidence(altered, cosigners)
    bundle.write_bytes(altered)
    failed = _cli("verify-evidence", str(bundle), "--tsa-ca", str(tsa.ca_pem))
    assert failed.returncode != 0 and "audit.evidence_invalid" in failed.stdout + failed.stderr


async def test_a_tsa_outage_leaves_checkpoints_unstamped_and_pauses_stamping(work: Path, tsa: LocalTsa) -> None:
    cosigner = _cosigner(work, _authority(tsa), "outage")
    signer, pem = _signer()
    checkpoint = sign_checkpoint(signer, pem, CLIENT, 1, b"\x01" * 32, 1_700_000_000_000)
    tsa.fail = True
    try:
        assert (await cosigner._stamp(checkpoint)).timestamp == b""
    finally:
        tsa.fail = False
    # Back up, but the cosigner waits out its pause instead of trying every checkpoint.
    assert (await cosigner._stamp(checkpoint)).timestamp == b"" and cosigner.stamped == 0
    await cosigner.aclose()


def test_a_timestamp_config_names_the_file_and_key(work: Path, tsa: LocalTsa) -> None:
    good = work / "timestamp.toml"
    good.write_text(f'[timestamp]\nurl = "{tsa.url}"\nca_file = "{tsa.ca_pem}"\ntimeout_s = 3\n')
    assert load_timestamp_authority(good).url == tsa.url
    bad = work / "bad-timestamp.toml"
    bad.write_text('[timestamp]\nurl = "ftp://tsa"\nca_file = "ca.pem"\n')
    with pytest.raises(ConfigError, match=r"bad-timestamp.toml: timestamp.url"):
        load_timestamp_authority(bad)
    typo = work / "typo-timestamp.toml"
    typo.write_text(f'[timestamp]\nurl = "{tsa.url}"\nca_file = "{tsa.ca_pem}"\ntimeout = 3\n')
    with pytest.raises(ConfigError, match=r"typo-timestamp.toml: \[timestamp\] timeout: unknown key") as raised:
        load_timestamp_authority(typo)
    assert "did you mean `timeout_s`?" in raised.value.hint


def _query(data: bytes) -> bytes:
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    builder = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
    return builder.cert_request(cert_request=True).build().as_bytes()
