"""The registry names the witnesses of the audit logs and their quorum, in its signed configuration."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from registry_samples import CLIENT

from audit.trail import Witness
from crossway.cli import main
from crossway.core.errors import ConfigError
from registry import RegistryAuthority, verify_configuration


def test_a_configuration_names_the_witnesses_and_the_quorum(authority: RegistryAuthority) -> None:
    default = verify_configuration(authority.build_configuration(), authority.anchor, 0)
    assert (dict(default.witnesses), default.witness_quorum) == ({}, 1)  # the registry alone
    tax = Witness("witness.tax.example/w1", ed25519.Ed25519PrivateKey.generate().public_key())
    office = Witness("witness.audit.example/w1", ed25519.Ed25519PrivateKey.generate().public_key())
    authority.add_witness(tax.name, _raw(tax), CLIENT)
    authority.add_witness(office.name, _raw(office))
    authority.set_witness_quorum(3)
    config = verify_configuration(authority.build_configuration(), authority.anchor, 0)
    assert {Witness(name, key).vkey for name, key in config.witnesses.items()} == {tax.vkey, office.vkey}
    assert config.witness_quorum == 3


def test_a_quorum_beyond_the_witnesses_or_a_bad_name_is_refused(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="between 1 and 1"):
        authority.set_witness_quorum(2)
    with pytest.raises(ConfigError, match="without spaces"):
        authority.add_witness("a witness", b"\x01" * 32)


def test_registry_witness_add_takes_the_vkey_crossway_audit_witness_key_prints(
    authority: RegistryAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(authority.directory)
    authority.close()
    witness = Witness("witness.tax.example/w1", ed25519.Ed25519PrivateKey.generate().public_key())
    assert main(["registry", "witness", "add", witness.vkey, "--member", str(CLIENT), "--dir", directory]) == 0
    assert main(["registry", "witness", "quorum", "2", "--dir", directory]) == 0
    forged = witness.vkey.replace("witness.tax", "witness.evil", 1)  # another name, the same key ID
    assert main(["registry", "witness", "add", forged, "--dir", directory]) == 1
    assert "error[config.invalid]" in capsys.readouterr().err
    reopened = RegistryAuthority.open(authority.directory)
    try:
        config = verify_configuration(reopened.build_configuration(), reopened.anchor, 0)
    finally:
        reopened.close()
    assert list(config.witnesses) == [witness.name] and config.witness_quorum == 2


def _raw(witness: Witness) -> bytes:
    return witness.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
