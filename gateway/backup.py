"""Backup and restore of a gateway's state (issue 17; the archive format is ``crossway.backup``).

A gateway's state is the directory of its ``gateway.toml``: the file itself, the keys (as stored,
encrypted when ``[keys] passphrase_env`` is set), the pinned client certificates, the policy
directory and the data directory — the audit log's Merkle state and its spool (records not yet
in JetStream), the replay window, the quota buckets, and an embedded nats-server's store (stop
the gateway first for a consistent copy of that one; SQLite files are copied consistently while
it runs). Metrics files are left out: a start recreates them.

The archive is signed with the member's signing key and carries its certificate. Restoring trusts
it only when that certificate was issued by the registry CA the operator holds (``ca.pem``) to the
member whose gateway the archive says it is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from crossway.backup import BackupHeader, BackupInvalid, BackupSummary, restore_backup, write_backup
from crossway.core.errors import ConfigError, CrosswayError
from crossway.core.ids import GatewayId
from crossway.security.keys import load_certificate, load_private_key
from crossway.security.pki import cert_fingerprint, cert_to_pem, inspect_certificate, verify_issued_by
from crossway.security.signing import Signer
from gateway.shared.config import GatewayConfig

__all__ = ["add_backup_commands", "backup_gateway", "restore_gateway"]


def backup_gateway(config: GatewayConfig, output: Path, recipient: x25519.X25519PublicKey) -> BackupSummary:
    home = config.source.parent
    try:
        metrics = (config.data_dir / "metrics").relative_to(home)
    except ValueError:
        raise ConfigError(
            f"the data directory {config.data_dir} is outside {home}, the directory of {config.source.name}",
            hint="keep data_dir under the gateway's directory to back it up in one archive",
        ) from None
    certificate = load_certificate(config.signing_certificate)
    signer = Signer(load_private_key(config.signing_key, config.key_passphrase), cert_fingerprint(certificate))  # type: ignore[arg-type]

    def exclude(path: Path) -> bool:
        return path == metrics or metrics in path.parents or path.suffix in (".partial", ".tmp")

    return write_backup(
        output,
        home,
        kind="gateway",
        subject=str(config.gateway_id),
        recipient=recipient,
        signer=signer,
        certificate_pem=cert_to_pem(certificate).decode(),
        exclude=exclude,
    )


def restore_gateway(archive: Path, key: x25519.X25519PrivateKey, directory: Path, ca_pem: bytes) -> BackupHeader:
    from cryptography import x509

    cas = x509.load_pem_x509_certificates(ca_pem)

    def trust(header: BackupHeader, public: Any) -> None:
        # The signer is the member's signing certificate, issued by the registry CA, to the
        # member of the gateway the archive names, and the key in the header is that certificate's.
        try:
            gateway = GatewayId.parse(header.subject)
            certificate = load_certificate(header.signer_certificate.encode())
            verify_issued_by(certificate, cas, int(time.time() * 1000))
        except CrosswayError as exc:
            raise BackupInvalid(f"the archive's signing certificate is not trusted: {exc.message}") from exc
        info = inspect_certificate(header.signer_certificate.encode())
        if info.member != gateway.member:
            raise BackupInvalid(f"the archive is signed by {info.member}, not by the member of {gateway}")
        if certificate.public_key() != public or cert_fingerprint(certificate) != header.signer_key_id:
            raise BackupInvalid("the archive's signer key is not its certificate's")

    return restore_backup(archive, key, directory, kind="gateway", trust=trust)


def _backup(args: argparse.Namespace) -> int:
    from crossway.backup import describe, load_backup_public_key
    from gateway.shared.config import load_config

    summary = backup_gateway(
        load_config(Path(args.config)), Path(args.to), load_backup_public_key(Path(args.recipient))
    )
    print(f"{describe(summary.header)}: {summary.path} ({summary.size} bytes), encrypted to {args.recipient}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from crossway.backup import describe, load_backup_private_key

    try:
        ca_pem = Path(args.ca).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.ca}: {exc.strerror}", hint="--ca names the registry CA's PEM") from exc
    header = restore_gateway(Path(args.archive), load_backup_private_key(Path(args.key)), Path(args.dir), ca_pem)
    print(f"restored {describe(header)} into {args.dir}; verified before anything was written")
    return 0


def _backup_key(args: argparse.Namespace) -> int:
    from crossway.backup import make_backup_key

    private, public = make_backup_key(args.prefix)
    print(f"backup key written: {private} (keep it offline, apart from the backups) and {public} (to encrypt to)")
    return 0


def add_backup_commands(leaves: Any) -> None:
    """``crossway gateway backup|restore|backup-key``."""
    p = leaves.add_parser("backup", help="back up the gateway's directory and state: one signed, encrypted file")
    p.add_argument("--config", required=True, help="gateway.toml (its directory is what is backed up)")
    p.add_argument("--to", required=True, help="the archive to write")
    p.add_argument("--recipient", required=True, help="the operator's backup public key (from `backup-key`)")
    p.set_defaults(handler=_backup)
    p = leaves.add_parser("restore", help="verify a gateway backup, then restore it into an empty directory")
    p.add_argument("archive")
    p.add_argument("--key", required=True, help="the operator's backup private key")
    p.add_argument("--ca", required=True, help="the registry CA (PEM): it must have issued the signing certificate")
    p.add_argument("--dir", required=True, help="where the gateway's directory is restored (new or empty)")
    p.set_defaults(handler=_restore)
    p = leaves.add_parser("backup-key", help="make an operator's backup key pair (X25519)")
    p.add_argument("prefix", help="writes PREFIX.key (private, 0600) and PREFIX.pub")
    p.set_defaults(handler=_backup_key)
