"""The Merkle tree against the RFC 6962 / 9162 test vectors (certificate-transparency corpus)."""

from __future__ import annotations

import random

import pytest

from audit.trail.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, root_of, verify_consistency, verify_inclusion

LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def _tree(n: int = 8) -> MerkleTree:
    tree = MerkleTree()
    for data in LEAVES[:n]:
        tree.append(data)
    return tree


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_rfc_6962_vectors_for_every_size(size: int) -> None:
    tree = _tree()
    assert tree.root(size).hex() == ROOTS[size]
    assert root_of([leaf_hash(d) for d in LEAVES[:size]]).hex() == ROOTS[size]


def test_the_empty_tree_has_the_hash_of_the_empty_string() -> None:
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_match_and_verify_against_the_vectors(index: int, size: int) -> None:
    tree = _tree()
    proof = tree.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    assert verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_match_and_verify_against_the_vectors(old: int, new: int) -> None:
    tree = _tree()
    proof = tree.consistency_proof(old, new)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


def test_every_proof_of_a_random_tree_verifies_and_a_flipped_bit_fails() -> None:
    rng = random.Random(7)
    tree = MerkleTree(leaf_hash(rng.randbytes(8)) for _ in range(37))
    for size in range(1, 38):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(index, size, tree.leaf(index), proof, root)
            assert not verify_inclusion(index, size, leaf_hash(b"other"), proof, root)
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            assert verify_consistency(old, size, tree.root(old), root, proof)
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not verify_consistency(old, size, tree.root(old), root, bad)


def test_a_proof_for_the_wrong_index_or_size_is_rejected() -> None:
    tree = _tree()
    proof = tree.inclusion_proof(5, 8)
    root = tree.root(8)
    assert not verify_inclusion(4, 8, tree.leaf(5), proof, root)
    assert not verify_inclusion(8, 8, tree.leaf(5), proof, root)
    assert not verify_consistency(6, 8, tree.root(5), root, tree.consistency_proof(6, 8))
    assert not verify_consistency(3, 2, tree.root(3), tree.root(2), [])
