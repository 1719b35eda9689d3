"""Backup archives: one file, encrypted to an operator's key, signed by the registry or gateway (issue 17).

Format (``.cwbak``), every integer big-endian::

    "CROSSWAY-BACKUP\\0v1\\n"  u32 header length  header (UTF-8 JSON)
    chunks: u32 length + AES-256-GCM ciphertext of up to 1 MiB of a gzipped tar, each
    u32 signature length  signature

- Encryption, age-like: an ephemeral X25519 key agrees a secret with the operator's backup key
  (``recipient``); HKDF-SHA256 (salt = both public keys, info ``crossway backup v1``) makes the
  AES-256 key. Chunks are sealed one by one (nonce = 7 random bytes, a 4-byte counter and a final
  flag, the header as associated data), so neither dropping, reordering nor truncating chunks
  goes unnoticed, and no archive is held in memory whole.
- Signature: by the registry's configuration key (Ed25519) or the gateway's member signing key
  (ES256 or EdDSA), over SHA-256 of the header and every chunk as written. The header names the
  signer (its public key, and the gateway's certificate) and the plaintext's SHA-256.

Restoring (:func:`restore_backup`) checks before it writes anything, in order, failing closed:
1. the format and the kind (registry or gateway archive);
2. the signer is trusted (the caller's check: the registry anchor's keys, or a certificate issued
   by the registry CA to the gateway's member);
3. the signature over the whole archive verifies (one pass over the file, nothing decrypted yet);
4. the archive was encrypted to the key given;
5. every chunk decrypts (tag, order, final chunk present) and the plaintext's SHA-256 matches;
6. every tar entry is a plain file or directory with a relative path inside the target;
then it unpacks into a fresh directory beside the target and renames it into place: a target
that exists and is not empty is refused, never merged into or overwritten.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crossway.core.errors import ConfigError, CrosswayError
from crossway.security.keys import x25519_public_raw
from crossway.security.signing import PublicSigningKey, Signer, algorithm_for_key, verify_signature

__all__ = [
    "BackupHeader",
    "BackupInvalid",
    "BackupSummary",
    "describe",
    "load_backup_private_key",
    "load_backup_public_key",
    "make_backup_key",
    "read_header",
    "recipient_key_id",
    "restore_backup",
    "write_backup",
]

MAGIC = b"CROSSWAY-BACKUP\x00v1\n"
_INFO = b"crossway backup v1"
_CHUNK = 1024 * 1024
# SQLite files are copied with SQLite's online backup (a consistent copy while a process writes).
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class BackupInvalid(CrosswayError):
    """A backup archive that does not verify: nothing was restored."""

    code = "backup.invalid"
    default_hint = "nothing was written; check that the archive is intact and that the key and trust anchor are right"


@dataclass(frozen=True, slots=True)
class BackupHeader:
    kind: str  # "registry" | "gateway"
    subject: str  # the registry's instance, or the gateway's id
    created_ms: int
    files: int
    plaintext_sha256: str
    recipient_key_id: str  # SHA-256 of the operator's raw X25519 public key
    ephemeral_public: str  # base64
    nonce_prefix: str  # base64, 7 bytes
    signer_algorithm: str
    signer_key_id: str
    signer_public_key: str  # PEM
    signer_certificate: str = ""  # PEM (a gateway's member signing certificate)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class BackupSummary:
    header: BackupHeader
    path: Path
    size: int


def recipient_key_id(key: x25519.X25519PublicKey) -> str:
    return hashlib.sha256(x25519_public_raw(key)).hexdigest()


def _content_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_INFO).derive(shared)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def _copy_tree(source: Path, staging: Path, exclude: Callable[[Path], bool]) -> int:
    """A consistent copy of ``source`` (SQLite files through their backup API); returns the file count."""
    count = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if exclude(relative) or path.is_symlink():
            continue
        target = staging / relative
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
            continue
        if not path.is_file():
            continue  # sockets, fifos
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.suffix in _SQLITE_SUFFIXES:
            src, dst = sqlite3.connect(f"file:{path}?mode=ro", uri=True), sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        else:
            shutil.copy2(path, target)
        os.chmod(target, path.stat().st_mode & 0o777)
        count += 1
    return count


def write_backup(
    output: Path,
    source: Path,
    *,
    kind: str,
    subject: str,
    recipient: x25519.X25519PublicKey,
    signer: Signer,
    certificate_pem: str = "",
    exclude: Callable[[Path], bool] = lambda path: False,
    now_ms: int | None = None,
) -> BackupSummary:
    """Archive ``source`` (a directory) into ``output``: copied, tarred, encrypted, signed."""
    if not source.is_dir():
        raise ConfigError(f"{source} is not a directory to back up")
    with tempfile.TemporaryDirectory(prefix="crossway-backup-") as scratch:
        staging = Path(scratch) / "tree"
        staging.mkdir(mode=0o700)
        files = _copy_tree(source, staging, exclude)
        tar_path = Path(scratch) / "tree.tar.gz"
        with tarfile.open(tar_path, "w:gz") as tar:
            tar.add(staging, arcname=".")
        digest = hashlib.sha256()
        with tar_path.open("rb") as plain:
            for block in iter(lambda: plain.read(_CHUNK), b""):
                digest.update(block)
        ephemeral = x25519.X25519PrivateKey.generate()
        ephemeral_raw, recipient_raw = x25519_public_raw(ephemeral), x25519_public_raw(recipient)
        aead = AESGCM(_content_key(ephemeral.exchange(recipient), ephemeral_raw, recipient_raw))
        prefix = os.urandom(7)
        public = signer.public_key()
        header = BackupHeader(
            kind=kind,
            subject=subject,
            created_ms=now_ms if now_ms is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000),
            files=files,
            plaintext_sha256=digest.hexdigest(),
            recipient_key_id=recipient_key_id(recipient),
            ephemeral_public=base64.b64encode(ephemeral_raw).decode(),
            nonce_prefix=base64.b64encode(prefix).decode(),
            signer_algorithm=algorithm_for_key(public),
            signer_key_id=signer.key_id,
            signer_public_key=public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            signer_certificate=certificate_pem,
        ).to_bytes()
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        signed = hashlib.sha256(header)
        with tar_path.open("rb") as plain, partial.open("wb") as out:
            os.chmod(partial, 0o600)
            out.write(MAGIC + struct.pack(">I", len(header)) + header)
            counter, block = 0, plain.read(_CHUNK)
            while True:
                following = plain.read(_CHUNK)
                sealed = aead.encrypt(_nonce(prefix, counter, not following), block, header)
                framed = struct.pack(">I", len(sealed)) + sealed
                signed.update(framed)
                out.write(framed)
                if not following:
                    break
                counter, block = counter + 1, following
            signature = signer.sign(signed.digest())
            out.write(struct.pack(">I", len(signature)) + signature)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(output)
    return BackupSummary(BackupHeader(**json.loads(header)), output, output.stat().st_size)


def _read_exact(stream: IO[bytes], size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BackupInvalid(f"the archive ends inside its {what} (truncated)")
    return data


def _frames(stream: IO[bytes]) -> Iterator[bytes]:
    """The chunks, then the signature as the last frame."""
    while True:
        size_bytes = stream.read(4)
        if not size_bytes:
            return
        if len(size_bytes) != 4:
            raise BackupInvalid("the archive ends inside a frame length (truncated)")
        (size,) = struct.unpack(">I", size_bytes)
        if size > _CHUNK + 64:
            raise BackupInvalid(f"a frame of {size} bytes is larger than any this format writes")
        yield _read_exact(stream, size, "a chunk")


def _header(stream: IO[bytes]) -> tuple[bytes, BackupHeader]:
    if stream.read(len(MAGIC)) != MAGIC:
        raise BackupInvalid("not a Crossway backup archive (v1)")
    (size,) = struct.unpack(">I", _read_exact(stream, 4, "header length"))
    if size > 1 << 20:
        raise BackupInvalid("the archive's header is implausibly large")
    raw = _read_exact(stream, size, "header")
    try:
        return raw, BackupHeader(**json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise BackupInvalid("the archive's header is not a backup header") from exc


def read_header(path: Path) -> BackupHeader:
    """The archive's header, unverified (to show what an archive claims to be)."""
    with path.open("rb") as stream:
        return _header(stream)[1]


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise BackupInvalid(f"archive entry {member.name!r} is not a plain file or directory inside it")
    return members


def restore_backup(
    archive: Path,
    key: x25519.X25519PrivateKey,
    target: Path,
    *,
    kind: str,
    trust: Callable[[BackupHeader, PublicSigningKey], None],
) -> BackupHeader:
    """Verify ``archive`` completely, then unpack it as ``target`` (which must not hold anything)."""
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty", hint="restore into a new or empty directory")
    with archive.open("rb") as stream:
        # 1. format and kind
        raw_header, header = _header(stream)
        if header.kind != kind:
            raise BackupInvalid(f"this is a {header.kind} backup, not a {kind} backup")
        # 2. the signer is one the caller trusts
        try:
            public: Any = serialization.load_pem_public_key(header.signer_public_key.encode())
        except ValueError as exc:
            raise BackupInvalid("the archive's signer key does not parse") from exc
        trust(header, public)
        # 3. the signature over the header and every chunk, before anything is decrypted
        signed = hashlib.sha256(raw_header)
        previous: bytes | None = None
        chunks = 0
        for frame in _frames(stream):
            if previous is not None:
                signed.update(struct.pack(">I", len(previous)) + previous)
                chunks += 1
            previous = frame
        if previous is None or not chunks:
            raise BackupInvalid("the archive holds no data or no signature")
        try:
            verify_signature(public, header.signer_algorithm, signed.digest(), previous, key_id=header.signer_key_id)
        except CrosswayError as exc:
            raise BackupInvalid(f"the archive's signature does not verify: {exc.message}") from exc
    # 4. encrypted to this key
    if recipient_key_id(key.public_key()) != header.recipient_key_id:
        raise BackupInvalid("the archive was encrypted to another backup key", hint="use the key it was made for")
    ephemeral = base64.b64decode(header.ephemeral_public)
    shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(ephemeral))
    aead = AESGCM(_content_key(shared, ephemeral, x25519_public_raw(key)))
    prefix = base64.b64decode(header.nonce_prefix)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".crossway-restore-", dir=target.parent) as scratch:
        tar_path = Path(scratch) / "tree.tar.gz"
        plain_digest = hashlib.sha256()
        # 5. every chunk, in order, with the final one marked (a second pass over the same file)
        with archive.open("rb") as stream, tar_path.open("wb") as plain:
            _header(stream)
            frames = _frames(stream)
            for counter in range(chunks):
                chunk = next(frames)
                try:
                    block = aead.decrypt(_nonce(prefix, counter, counter == chunks - 1), chunk, raw_header)
                except InvalidTag as exc:
                    raise BackupInvalid(f"chunk {counter} does not decrypt (altered, reordered or cut)") from exc
                plain_digest.update(block)
                plain.write(block)
        if plain_digest.hexdigest() != header.plaintext_sha256:
            raise BackupInvalid("the decrypted content does not match the digest its header names")
        # 6. plain files and directories only, inside the target
        unpacked = Path(scratch) / "tree"
        with tarfile.open(tar_path, "r:gz") as tar:
            members = _safe_members(tar)
            tar.extractall(unpacked, members=members, filter="data")
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(unpacked, target)
    return header


def describe(header: BackupHeader) -> str:
    when = dt.datetime.fromtimestamp(header.created_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{header.kind} backup of {header.subject}, {header.files} file(s), made {when}"


def make_backup_key(prefix: str) -> tuple[Path, Path]:
    """An operator's backup key pair: PREFIX.key (X25519, PEM, 0600; keep it offline) and PREFIX.pub."""
    from crossway.security.keys import generate_x25519_key, save_pem, save_private_key

    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    if private.exists():
        raise ConfigError(f"{private} exists", hint="choose another prefix; a backup key is never overwritten")
    key = generate_x25519_key()
    save_private_key(private, key)
    save_pem(public, key.public_key())
    return private, public


def load_backup_public_key(path: Path) -> x25519.X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the backup public key {path}", hint="make one with `… backup-key`") from exc
    if not isinstance(key, x25519.X25519PublicKey):
        raise ConfigError(f"{path} is not an X25519 public key", hint="make one with `… backup-key`")
    return key


def load_backup_private_key(path: Path) -> x25519.X25519PrivateKey:
    from crossway.security.keys import load_private_key

    key = load_private_key(path)
    if not isinstance(key, x25519.X25519PrivateKey):
        raise ConfigError(f"{path} is not an X25519 private key", hint="the .key file `… backup-key` wrote")
    return key
