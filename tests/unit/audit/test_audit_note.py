"""C2SP signed notes, checkpoints and cosignatures, checked against the specifications' own examples."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail import (
    CheckpointInvalid,
    Witness,
    cosign,
    merge_cosignatures,
    note_key_id,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from audit.trail.note import cosignature_message
from bench.audit_index import _signer

# c2sp.org/signed-note, "Example": this verifier key verifies this note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_signed_note_examples_key_id_and_signature_check_out() -> None:
    name, key_hex, material = SPEC_VKEY.split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == 0x01  # an Ed25519 note key
    key = ed25519.Ed25519PublicKey.from_public_bytes(raw[1:])
    assert note_key_id(name, key).hex() == key_hex
    text, (signature,) = parse_note(SPEC_NOTE)
    assert text == b"This is an example message.\n"
    assert (signature.name, signature.key_id.hex()) == (name, key_hex)
    key.verify(signature.signature, text)


def test_the_cosignature_message_is_the_specs() -> None:
    text = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosignature_message(text, 1679315147) == b"cosignature/v1\ntime 1679315147\n" + text


def _checkpoint_and_witnesses() -> tuple[object, list[ed25519.Ed25519PrivateKey], list[Witness]]:
    signer, pem = _signer()
    checkpoint = sign_checkpoint(signer, pem, "EE/GOV/70000001/gw1", 42, b"\x01" * 32, 1_700_000_000_123)
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(3)]
    names = ["crossway.registry/EE", "witness.tax.example/w1", "witness.population.example/w1"]
    return checkpoint, keys, [Witness(n, k.public_key()) for n, k in zip(names, keys, strict=True)]


def test_a_checkpoint_is_a_c2sp_note_its_cosignatures_verify_as_tlog_cosignatures() -> None:
    checkpoint, keys, witnesses = _checkpoint_and_witnesses()
    for key, witness in zip(keys, witnesses, strict=True):
        checkpoint = cosign(checkpoint, key, witness.name, 1_700_000_001_999)  # type: ignore[arg-type]
    note = checkpoint.note()  # type: ignore[attr-defined]
    text, signatures = parse_note(note)
    origin, size, root, extension = text.decode().splitlines()
    assert (origin, size, root) == ("crossway.audit/EE/GOV/70000001/gw1", "42", base64.b64encode(b"\x01" * 32).decode())
    assert extension == "time_ms 1700000000123"
    assert [s.name for s in signatures] == [origin, *(w.name for w in witnesses)]
    # Each witness line checks out as the spec says, with nothing of Crossway's code.
    for signature, witness in zip(signatures[1:], witnesses, strict=True):
        assert signature.key_id == witness.key_id
        seconds = int.from_bytes(signature.signature[:8], "big")
        assert seconds == 1_700_000_001
        witness.public_key.verify(signature.signature[8:], b"cosignature/v1\ntime 1700000001\n" + text)


def test_a_vkey_round_trips_and_its_key_id_must_match() -> None:
    _, _, witnesses = _checkpoint_and_witnesses()
    vkey = witnesses[1].vkey
    assert Witness.from_vkey(vkey) == witnesses[1]
    _, key_hex, material = vkey.split("+", 2)
    with pytest.raises(ValueError, match="ID"):
        Witness.from_vkey(f"other.example/w+{key_hex}+{material}")


def test_a_quorum_of_distinct_trusted_witnesses_is_required() -> None:
    checkpoint, keys, witnesses = _checkpoint_and_witnesses()
    trusted = {w.name: w.public_key for w in witnesses}
    one = cosign(checkpoint, keys[0], witnesses[0].name, 1_700_000_002_000)  # type: ignore[arg-type]
    assert verify_checkpoint(one, trusted, quorum=1) == 1
    with pytest.raises(CheckpointInvalid, match="1 of the 2 trusted witnesses"):
        verify_checkpoint(one, trusted, quorum=2)
    # Each witness publishes its own copy; the index merges them into one checkpoint.
    two = merge_cosignatures(one, cosign(checkpoint, keys[2], witnesses[2].name, 1_700_000_003_000))  # type: ignore[arg-type]
    assert verify_checkpoint(two, trusted, quorum=2) == 2
    # An untrusted witness does not count, and one trusted twice counts once.
    stranger = cosign(checkpoint, ed25519.Ed25519PrivateKey.generate(), "witness.evil.example/w", 0)  # type: ignore[arg-type]
    twice = merge_cosignatures(one, stranger)
    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(twice, trusted, quorum=2)


def test_a_trusted_witness_line_that_does_not_verify_fails_the_checkpoint() -> None:
    checkpoint, keys, witnesses = _checkpoint_and_witnesses()
    signed = cosign(checkpoint, keys[0], witnesses[0].name, 1_700_000_002_000)  # type: ignore[arg-type]
    bad = dataclasses.replace(signed.cosignatures[0], time_ms=1_700_000_003_000)  # not the time it signed
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(
            dataclasses.replace(signed, cosignatures=(bad,)), {witnesses[0].name: witnesses[0].public_key}
        )
