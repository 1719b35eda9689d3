"""Backup archives: encrypted to the operator, signed, and verified completely before a restore writes (issue 17)."""

from __future__ import annotations

import io
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from crossway.backup import BackupHeader, BackupInvalid, _safe_members, read_header, restore_backup, write_backup
from crossway.core.errors import ConfigError
from crossway.security.signing import Signer


def _tree(root: Path) -> Path:
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "signing.key").write_text("not really a key\n")
    (root / "gateway.toml").write_text('[gateway]\nid = "EE/GOV/1/gw1"\n')
    (root / "big.bin").write_bytes(bytes(range(256)) * 12_000)  # more than one 1 MiB chunk, compressed less
    with sqlite3.connect(root / "replay.sqlite") as db:
        db.execute("CREATE TABLE seen (id TEXT)")
        db.execute("INSERT INTO seen VALUES ('m1')")
    return root


@pytest.fixture
def keys() -> tuple[x25519.X25519PrivateKey, ed25519.Ed25519PrivateKey]:
    return x25519.X25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()


def _trusting(signer: ed25519.Ed25519PrivateKey) -> Any:
    def trust(header: BackupHeader, public: Any) -> None:
        if public != signer.public_key():
            raise BackupInvalid("not the expected signer")

    return trust


def _archive(tmp_path: Path, keys: tuple[x25519.X25519PrivateKey, ed25519.Ed25519PrivateKey]) -> Path:
    operator, signer = keys
    archive = tmp_path / "gw.cwbak"
    write_backup(
        archive,
        _tree(tmp_path / "source"),
        kind="gateway",
        subject="EE/GOV/1/gw1",
        recipient=operator.public_key(),
        signer=Signer(signer, "k1"),
    )
    return archive


def test_an_archive_restores_byte_for_byte_after_it_verified(tmp_path: Path, keys: Any) -> None:
    archive = _archive(tmp_path, keys)
    assert b"not really a key" not in archive.read_bytes()  # encrypted
    header = restore_backup(archive, keys[0], tmp_path / "restored", kind="gateway", trust=_trusting(keys[1]))
    assert header.subject == "EE/GOV/1/gw1" and header.files == 4 and read_header(archive) == header
    for name in ("gateway.toml", "keys/signing.key", "big.bin"):
        assert (tmp_path / "restored" / name).read_bytes() == (tmp_path / "source" / name).read_bytes()
    with sqlite3.connect(tmp_path / "restored" / "replay.sqlite") as db:
        assert db.execute("SELECT id FROM seen").fetchall() == [("m1",)]


def test_any_changed_byte_is_refused_and_nothing_is_written(tmp_path: Path, keys: Any) -> None:
    archive = _archive(tmp_path, keys)
    data = archive.read_bytes()
    for position in (30, len(data) // 2, len(data) - 10):
        altered = bytearray(data)
        altered[position] ^= 0x01
        broken = tmp_path / f"broken-{position}.cwbak"
        broken.write_bytes(bytes(altered))
        with pytest.raises(BackupInvalid):
            restore_backup(broken, keys[0], tmp_path / f"out-{position}", kind="gateway", trust=_trusting(keys[1]))
        assert not (tmp_path / f"out-{position}").exists()
    cut = tmp_path / "cut.cwbak"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupInvalid):
        restore_backup(cut, keys[0], tmp_path / "out-cut", kind="gateway", trust=_trusting(keys[1]))


def test_another_signer_another_key_or_another_kind_is_refused(tmp_path: Path, keys: Any) -> None:
    archive = _archive(tmp_path, keys)
    with pytest.raises(BackupInvalid, match="expected signer"):
        restore_backup(
            archive, keys[0], tmp_path / "a", kind="gateway", trust=_trusting(ed25519.Ed25519PrivateKey.generate())
        )
    with pytest.raises(BackupInvalid, match="another backup key"):
        restore_backup(
            archive, x25519.X25519PrivateKey.generate(), tmp_path / "b", kind="gateway", trust=_trusting(keys[1])
        )
    with pytest.raises(BackupInvalid, match="not a registry backup"):
        restore_backup(archive, keys[0], tmp_path / "c", kind="registry", trust=_trusting(keys[1]))


def test_a_restore_never_writes_into_a_directory_that_holds_something(tmp_path: Path, keys: Any) -> None:
    archive = _archive(tmp_path, keys)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        restore_backup(archive, keys[0], tmp_path / "busy", kind="gateway", trust=_trusting(keys[1]))
    assert (tmp_path / "busy" / "x").read_text() == "mine"


def test_tar_entries_outside_the_target_or_not_plain_files_are_refused() -> None:
    for name, kind in (("../escape", tarfile.REGTYPE), ("/etc/passwd", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info, io.BytesIO(b""))
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar, pytest.raises(BackupInvalid, match="not a plain file"):
            _safe_members(tar)
