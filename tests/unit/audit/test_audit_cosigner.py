"""The cosigner's decision: append-only against what *it* last cosigned, whatever the gateway believes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.index.cosigner import Cosigner
from audit.trail import MerkleTree, leaf_hash, sign_checkpoint
from bench.audit_index import _signer

GATEWAY = "EE/GOV/70000001/gw1"


def _tree(n: int, salt: str = "") -> MerkleTree:
    return MerkleTree(leaf_hash(f"record {i}{salt if i >= 5 else ''}".encode()) for i in range(n))


def _message(tree: MerkleTree, size: int, proofs_from: list[int], previous: int | None = None) -> bytes:
    signer, pem = _signer()
    checkpoint = sign_checkpoint(signer, pem, GATEWAY, size, tree.root(size), 1_700_000_000_000 + size)
    doc: dict[str, Any] = {
        "checkpoint": checkpoint.to_dict(),
        "proofs": {str(m): [h.hex() for h in tree.consistency_proof(m, size)] for m in proofs_from},
    }
    if previous is not None:
        doc["previous_size"] = previous
        doc["consistency"] = [h.hex() for h in tree.consistency_proof(previous, size)]
    return json.dumps(doc).encode()


@pytest.fixture
def cosigner(tmp_path: Path) -> Cosigner:
    return Cosigner(
        "nats://127.0.0.1:1",
        key=ed25519.Ed25519PrivateKey.generate(),
        name="crossway.registry/EE",
        state_path=tmp_path / "state.json",
        registered=lambda member, key_id: True,
    )


def _cosign(cosigner: Cosigner, data: bytes) -> int | None:
    signed = cosigner._consider(data)
    if signed is None:
        return None
    cosigner._commit(signed)
    return signed.size


def test_a_checkpoint_whose_publish_timed_out_but_was_stored_does_not_fork_the_cosigner(cosigner: Cosigner) -> None:
    tree = _tree(30)
    assert _cosign(cosigner, _message(tree, 10, [], previous=0)) == 10
    # The gateway's publish of size 20 timed out, yet was stored and cosigned here ...
    assert _cosign(cosigner, _message(tree, 20, [], previous=10)) == 20
    # ... so the gateway still believes 10 was its last; it offers proofs from every size it sent.
    assert _cosign(cosigner, _message(tree, 30, [10, 20], previous=10)) == 30


def test_without_a_proof_from_its_own_last_size_the_cosigner_waits_and_then_resumes(cosigner: Cosigner) -> None:
    tree = _tree(30)
    assert _cosign(cosigner, _message(tree, 20, [], previous=0)) == 20
    assert _cosign(cosigner, _message(tree, 25, [10], previous=10)) is None  # no proof from 20
    assert _cosign(cosigner, _message(tree, 30, [10, 20], previous=10)) == 30


def test_the_same_size_with_another_root_is_a_fork_and_is_refused(
    cosigner: Cosigner, caplog: pytest.LogCaptureFixture
) -> None:
    assert _cosign(cosigner, _message(_tree(10), 10, [], previous=0)) == 10
    assert _cosign(cosigner, _message(_tree(10, salt="x"), 10, [], previous=0)) is None
    assert "a fork" in caplog.text


def test_an_extension_of_another_history_is_refused(cosigner: Cosigner) -> None:
    assert _cosign(cosigner, _message(_tree(4), 4, [], previous=0)) == 4
    forked = _tree(20, salt="x")  # agrees with the first 5 leaves only
    assert _cosign(cosigner, _message(forked, 20, [4])) == 20  # 4 is a prefix of the fork: fine
    assert _cosign(cosigner, _message(_tree(30), 30, [20])) is None  # not an extension of the fork


def test_the_same_checkpoint_again_is_cosigned_again_its_first_cosignature_may_be_lost(cosigner: Cosigner) -> None:
    tree = _tree(10)
    assert _cosign(cosigner, _message(tree, 10, [], previous=0)) == 10
    assert _cosign(cosigner, _message(tree, 10, [], previous=0)) == 10
    assert _cosign(cosigner, _message(tree, 8, [], previous=0)) is None  # older: nothing to add


def test_what_it_cosigned_survives_a_restart(cosigner: Cosigner, tmp_path: Path) -> None:
    tree = _tree(20)
    assert _cosign(cosigner, _message(tree, 10, [], previous=0)) == 10
    again = Cosigner(
        "nats://127.0.0.1:1",
        key=ed25519.Ed25519PrivateKey.generate(),
        name="crossway.registry/EE",
        state_path=tmp_path / "state.json",
        registered=lambda member, key_id: True,
    )
    assert again._consider(_message(_tree(10, salt="x"), 10, [], previous=0)) is None
    assert _cosign(again, _message(tree, 20, [10])) == 20
