"""Disabling and removing what the registry admitted, and the signed change log (issue 17)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from registry_samples import CLIENT, GW1, POPULATION, PROVIDER, SERVICE, TAX

from crossway.core.clock import ManualClock
from crossway.core.errors import ClientDisabled, ConfigError, PeerDisabled, RegistryUntrusted, ServiceDisabled
from crossway.security.keys import generate_tls_key
from crossway.security.pki import CertKind, build_csr
from protos.crossway.v1.registry_pb2 import SignedConfiguration
from registry import RegistryAuthority, load_anchor, verify_configuration
from registry.anchor import registry_key_id
from registry.changes import verify_changes
from registry.configuration import VerifiedConfiguration
from registry.keyrotation import endorse


def _published(authority: RegistryAuthority, clock: ManualClock) -> VerifiedConfiguration:
    return verify_configuration(authority.build_configuration(), authority.anchor, clock.now_ms())


def test_a_disabled_subsystem_stays_listed_and_is_refused_with_its_own_code(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    authority.lifecycle.disable("subsystem", str(TAX), "audit finding")
    config = _published(authority, clock)
    member = config.member(CLIENT)
    assert member is not None and TAX in member.subsystems  # still known: refused, not unknown
    with pytest.raises(ClientDisabled, match="disabled subsystem EE/GOV/70000002/tax"):
        config.check_client_enabled(TAX)
    config.check_service_enabled(SERVICE)  # nothing else is touched
    authority.lifecycle.enable("subsystem", str(TAX))
    _published(authority, clock).check_client_enabled(TAX)


def test_disabling_a_member_disables_its_subsystems_services_and_gateways(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    authority.lifecycle.disable("member", str(PROVIDER))
    config = _published(authority, clock)
    with pytest.raises(ServiceDisabled):
        config.check_service_enabled(SERVICE)
    with pytest.raises(ClientDisabled):
        config.check_client_enabled(POPULATION)
    with pytest.raises(PeerDisabled):
        config.check_gateway_enabled(GW1)


def test_a_disabled_group_no_longer_counts_for_its_members(authority: RegistryAuthority, clock: ManualClock) -> None:
    assert _published(authority, clock).groups_of(TAX) == {"EE/tax-readers"}
    authority.lifecycle.disable("group", "EE/tax-readers")
    assert _published(authority, clock).groups_of(TAX) == frozenset()


def test_a_removed_member_leaves_the_configuration_with_its_parts_and_its_certificates_revoked(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    csr = build_csr(generate_tls_key(), subject_uri="crossway://x", dns_names=["localhost"])
    cert = authority.issue(csr.public_bytes(serialization.Encoding.PEM), kind=CertKind.TLS, gateway=GW1)
    authority.lifecycle.remove("member", str(PROVIDER), "left the federation")
    config = _published(authority, clock)
    assert config.member(PROVIDER) is None and config.service(SERVICE) is None
    assert config.is_revoked(str(cert.serial_number))
    assert config.member(CLIENT) is not None  # the others stay
    with pytest.raises(ConfigError, match="removal is final"):
        authority.lifecycle.enable("member", str(PROVIDER))


def test_a_removed_subsystem_takes_its_services_and_group_memberships(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    authority.lifecycle.remove("subsystem", str(TAX))
    config = _published(authority, clock)
    member = config.member(CLIENT)
    assert member is not None and TAX not in member.subsystems
    assert config.groups_of(TAX) == frozenset()


def test_an_unknown_id_or_kind_is_refused(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="not registered"):
        authority.lifecycle.disable("service", "EE/GOV/70000001/population/population.v1.Nope")
    with pytest.raises(ConfigError, match="cannot disable"):
        authority.lifecycle.disable("certificate", "1")


def test_every_change_is_in_the_signed_change_log_and_tampering_shows(authority: RegistryAuthority) -> None:
    authority.lifecycle.disable("subsystem", str(TAX), "audit finding")
    entries = authority.changes.entries()
    whats = [e.what for e in entries]
    assert whats[:2] == ["add member EE/GOV/70000001", "add member EE/GOV/70000002"]
    assert whats[-1] == "disable subsystem EE/GOV/70000002/tax (audit finding)"
    keys = {authority.anchor.key_id: authority.anchor.public_key}
    assert verify_changes(entries, keys) == []
    altered = [*entries[:2], replace(entries[2], what="add subsystem EE/GOV/70000001/evil"), *entries[3:]]
    assert any("altered" in p for p in verify_changes(altered, keys))
    assert any("missing" in p for p in verify_changes([entries[0], *entries[2:]], keys))


def test_a_change_and_its_log_entry_commit_together(authority: RegistryAuthority) -> None:
    before = len(authority.changes.entries())

    def broken(db: sqlite3.Connection, what: str) -> None:
        raise RuntimeError("the log cannot be written")

    authority.store.on_change = broken
    with pytest.raises(RuntimeError):
        authority.add_subsystem(SERVICE.subsystem.member.subsystem("archive"))
    assert all(str(s) != "EE/GOV/70000001/archive" for s in authority.store.subsystems_of(PROVIDER))
    assert len(authority.changes.entries()) == before


# -- configuration key rotation (registry.keyrotation) ---------------------------------------


def test_a_gateway_pinning_the_old_key_follows_an_announced_rotation(
    authority: RegistryAuthority, clock: ManualClock
) -> None:
    pinned = authority.anchor
    authority.announce_next_key()
    assert verify_configuration(authority.build_configuration(), pinned, clock.now_ms()).serial  # still the old key
    new_id = authority.rotate_key()
    signed = authority.build_configuration()
    assert SignedConfiguration.FromString(signed).key_id == new_id != pinned.key_id
    assert verify_configuration(signed, pinned, clock.now_ms())  # the old anchor follows the endorsement
    assert verify_configuration(signed, authority.anchor, clock.now_ms())  # and the new anchor.json works
    assert load_anchor(authority.anchor_path).previous_keys[0].public_bytes_raw() == (
        pinned.public_key.public_bytes_raw()
    )
    # A second rotation: the old anchor still reaches the newest key through the chain.
    authority.announce_next_key()
    authority.rotate_key()
    assert verify_configuration(authority.build_configuration(), pinned, clock.now_ms())
    assert verify_changes(authority.changes.entries(), authority.anchor.audit_keys()) == []


def test_a_key_nobody_trusted_endorsed_is_refused(authority: RegistryAuthority, clock: ManualClock) -> None:
    pinned = authority.anchor
    stranger = ed25519.Ed25519PrivateKey.generate()
    envelope = SignedConfiguration.FromString(authority.build_configuration())
    forged = SignedConfiguration(
        document=envelope.document,
        signature=stranger.sign(envelope.document),
        key_id=registry_key_id(stranger.public_key()),
    )
    # Endorsed by itself, or by another stranger: neither is reachable from the pinned key.
    forged.key_endorsements.append(endorse(stranger, "EE", stranger.public_key()))
    with pytest.raises(RegistryUntrusted, match="no endorsement"):
        verify_configuration(forged.SerializeToString(), pinned, clock.now_ms())


def test_rotating_needs_an_announced_key(authority: RegistryAuthority) -> None:
    with pytest.raises(ConfigError, match="announce"):
        authority.rotate_key()
    authority.announce_next_key()
    with pytest.raises(ConfigError, match="already announced"):
        authority.announce_next_key()
