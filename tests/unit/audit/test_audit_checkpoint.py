"""Checkpoints: signed by the gateway, cosigned by the registry, every field covered."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail import Checkpoint, CheckpointInvalid, cosign, sign_checkpoint, verify_checkpoint
from bench.audit_index import _signer


def _cosigned() -> tuple[Checkpoint, dict[str, ed25519.Ed25519PublicKey]]:
    signer, pem = _signer()
    registry = ed25519.Ed25519PrivateKey.generate()
    checkpoint = sign_checkpoint(signer, pem, "EE/GOV/70000001/gw1", 42, b"\x01" * 32, 1_700_000_000_000)
    name = "crossway.registry/EE"
    return cosign(checkpoint, registry, name, 1_700_000_000_500), {name: registry.public_key()}


def test_a_cosigned_checkpoint_verifies_and_survives_json() -> None:
    checkpoint, trusted = _cosigned()
    verify_checkpoint(checkpoint, trusted)
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


def test_without_a_trusted_cosignature_it_is_refused() -> None:
    checkpoint, _ = _cosigned()
    with pytest.raises(CheckpointInvalid, match="no cosignature"):
        verify_checkpoint(checkpoint, {})
    verify_checkpoint(checkpoint, {}, require_cosignature=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [("size", 43), ("root", b"\x02" * 32), ("time_ms", 1), ("gateway", "EE/GOV/70000001/gw2"), ("key_id", "00" * 32)],
)
def test_changing_any_signed_field_breaks_it(field: str, value: object) -> None:
    checkpoint, trusted = _cosigned()
    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(dataclasses.replace(checkpoint, **{field: value}), trusted)


def test_a_changed_cosigner_name_breaks_the_cosignature() -> None:
    checkpoint, trusted = _cosigned()
    renamed = dataclasses.replace(checkpoint.cosignatures[0], name="someone else")
    with pytest.raises(CheckpointInvalid, match="cosignature"):
        verify_checkpoint(dataclasses.replace(checkpoint, cosignatures=(renamed,)), trusted)


def test_an_unstamped_checkpoint_keeps_its_old_json_and_a_token_survives_json() -> None:
    checkpoint, trusted = _cosigned()
    assert "timestamp" not in checkpoint.to_dict()  # checkpoints from before tokens read back unchanged
    stamped = dataclasses.replace(checkpoint, timestamp=b"\x30\x03\x02\x01\x00")
    assert Checkpoint.from_json(stamped.to_json()) == stamped
    verify_checkpoint(stamped, trusted)  # the token is outside the gateway's and cosigner's signatures
    with pytest.raises(CheckpointInvalid, match="timestamp"):
        Checkpoint.from_dict({**checkpoint.to_dict(), "timestamp": ""})
