"""Payload archives: sealed to the auditors only, bound to their record, off by default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from audit.trail import (
    ArchivedPayload,
    MemoryArchiveDelivery,
    PayloadArchiveInvalid,
    PayloadArchiver,
    open_payload,
    seal_payload,
)
from audit.trail.samples import sample_record
from crossway.core.errors import ConfigError
from crossway.security.keys import generate_signing_key, generate_x25519_key, save_pem, x25519_public_raw
from gateway.shared.config import load_config

REQUEST, RESPONSE = (b"national id 38001010001", b"second part"), (b"Mari Maasikas",)


def test_an_auditor_opens_the_exact_parts_and_the_blob_is_not_the_plaintext() -> None:
    auditor, other_auditor = generate_x25519_key(), generate_x25519_key()
    record = sample_record(1)
    archived = seal_payload(record, REQUEST, RESPONSE, [x25519_public_raw(auditor), x25519_public_raw(other_auditor)])
    blob = archived.to_json()
    assert b"38001010001" not in blob and b"Maasikas" not in blob
    for key in (auditor, other_auditor):
        opened = open_payload(ArchivedPayload.from_json(blob), key)
        assert (opened.request, opened.response) == (REQUEST, RESPONSE)


def test_another_key_cannot_open_an_archive() -> None:
    archived = seal_payload(sample_record(1), REQUEST, RESPONSE, [x25519_public_raw(generate_x25519_key())])
    with pytest.raises(PayloadArchiveInvalid, match="not encrypted to this key"):
        open_payload(archived, generate_x25519_key())


def test_an_archive_moved_to_another_record_or_altered_does_not_open() -> None:
    auditor = generate_x25519_key()
    archived = seal_payload(sample_record(1), REQUEST, RESPONSE, [x25519_public_raw(auditor)])
    with pytest.raises(PayloadArchiveInvalid, match="does not authenticate"):
        open_payload(replace(archived, record_id=sample_record(2).record_id), auditor)
    flipped = archived.ciphertext[:-6] + ("A" if archived.ciphertext[-6] != "A" else "B") + archived.ciphertext[-5:]
    with pytest.raises(PayloadArchiveInvalid):
        open_payload(replace(archived, ciphertext=flipped), auditor)


def test_the_archiver_hands_on_only_sealed_archives() -> None:
    delivery = MemoryArchiveDelivery()
    archiver = PayloadArchiver([x25519_public_raw(generate_x25519_key())], delivery)
    archiver.submit(sample_record(1), list(REQUEST), list(RESPONSE))
    (only,) = delivery.archived
    assert isinstance(only, ArchivedPayload) and b"38001010001" not in only.to_json()


def _config(tmp_path: Path, audit: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""[gateway]
id = "EE/GOV/70000001/gw1"
data_dir = "data"
[listen]
[registry]
anchor = "anchor.json"
[keys]
tls_key = "k"
tls_certificate = "c"
signing_key = "k"
signing_certificate = "c"
[audit]
{audit}
"""
    )
    return path


def test_archiving_is_off_by_default_and_on_with_an_auditor_key(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, ""), {}).audit.archive_payloads is False
    auditor = generate_x25519_key()
    save_pem(tmp_path / "auditor.pub", auditor.public_key())
    cfg = load_config(_config(tmp_path, 'archive_payloads = true\nauditor_keys = ["auditor.pub"]'), {})
    assert cfg.audit.auditor_keys == (x25519_public_raw(auditor),)


def test_a_bad_auditor_key_is_named_with_its_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[audit\] auditor_keys: must list"):
        load_config(_config(tmp_path, "archive_payloads = true"), {})
    save_pem(tmp_path / "signing.pub", generate_signing_key().public_key())
    with pytest.raises(ConfigError, match=r"auditor_keys: .*signing.pub holds a .*not an X25519 key"):
        load_config(_config(tmp_path, 'archive_payloads = true\nauditor_keys = ["signing.pub"]'), {})
    with pytest.raises(ConfigError, match=r"auditor_keys: cannot read .*missing.pub"):
        load_config(_config(tmp_path, 'archive_payloads = true\nauditor_keys = ["missing.pub"]'), {})
