"""Backup and restore of the registry directory (issue 17; the archive format is ``crossway.backup``).

The archive holds the whole registry directory — ``registry.db`` (copied with SQLite's online
backup, so ``registry serve`` may keep running), the CA and configuration keys as they are stored
(encrypted with ``CROSSWAY_REGISTRY_PASSPHRASE`` when the registry has one), ``anchor.json``, the
key history, the cosigner's and the change log's state — encrypted to the operator's backup key and
signed with the registry's configuration key.

Restoring trusts an archive only when its signer is a key of the anchor the operator holds (the
``anchor.json`` every gateway pins, which survives the loss of the registry host): the current key
or one retired by a rotation. The restore is recorded in the change log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from crossway.backup import BackupHeader, BackupInvalid, BackupSummary, describe, restore_backup, write_backup
from crossway.core.errors import ConfigError
from crossway.security.keys import load_private_key
from crossway.security.signing import Signer
from registry.anchor import Anchor, registry_key_id
from registry.authority import RegistryAuthority

__all__ = ["SERIAL_MARGIN", "backup_registry", "restore_registry"]


def backup_registry(
    directory: Path, output: Path, recipient: x25519.X25519PublicKey, passphrase: bytes | None
) -> BackupSummary:
    authority = RegistryAuthority.open(directory, passphrase=passphrase)  # checks it is a registry
    try:
        instance = authority.instance
        authority.changes.append(f"back up the registry to {output.name}")
    finally:
        authority.close()
    key = load_private_key(directory / "config.key", passphrase)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{directory / 'config.key'} is not an Ed25519 key")
    return write_backup(
        output,
        directory,
        kind="registry",
        subject=instance,
        recipient=recipient,
        signer=Signer(key, registry_key_id(key.public_key())),
        # A half-written archive or a temporary file is not part of the state.
        exclude=lambda path: path.suffix in (".partial", ".tmp"),
    )


def restore_registry(
    archive: Path, key: x25519.X25519PrivateKey, directory: Path, anchor: Anchor, passphrase: bytes | None
) -> BackupHeader:
    def trust(header: BackupHeader, public: Any) -> None:
        if header.subject != anchor.instance:
            raise BackupInvalid(f"the archive is of instance {header.subject}, the anchor of {anchor.instance}")
        if not isinstance(public, ed25519.Ed25519PublicKey) or registry_key_id(public) not in anchor.audit_keys():
            raise BackupInvalid(
                f"the archive is signed by key {header.signer_key_id[:16]}…, not a key of the anchor",
                hint="pass the anchor.json the gateways pin (it lists the keys retired by rotations too)",
            )

    header = restore_backup(archive, key, directory, kind="registry", trust=trust)
    authority = RegistryAuthority.open(directory, passphrase=passphrase)
    try:
        # Gateways accept only newer serials (rollback protection), and the registry published
        # more after the backup: move past them. At most one publication per second happens
        # (the publisher's poll), so the seconds since the backup, plus a margin, suffice.
        elapsed_s = max(0, (authority.clock_now_ms() - header.created_ms) // 1000)
        serial = int(authority.store.get_meta("configuration_serial") or 0) + elapsed_s + SERIAL_MARGIN
        authority.store.set_meta("configuration_serial", str(serial))
        authority.changes.append(f"restore the registry from a backup ({describe(header)}); next serial {serial + 1}")
    finally:
        authority.close()
    return header


# Publications a restore skips beyond one per second since the backup (restarts, `registry publish`).
SERIAL_MARGIN = 1000
