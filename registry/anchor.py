"""The trust anchor gateways pin: the registry's configuration key and its CA fingerprint.

Distributed out of band (``anchor.json``, like X-Road's configuration anchor). Everything a gateway
believes about the federation is checked against this file, so loading it is strict.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from crossway.core.errors import ConfigError

__all__ = ["Anchor", "load_anchor", "registry_key_id"]


def registry_key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw Ed25519 public key (``SignedConfiguration.key_id``)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Anchor:
    instance: str
    key_id: str
    public_key: ed25519.Ed25519PublicKey
    ca_sha256: str
    # Keys the registry signed with before a rotation (registry.keyrotation, issue 17): auditors
    # verify older cosignatures and change-log entries with them; gateways never accept them.
    previous_keys: tuple[ed25519.Ed25519PublicKey, ...] = ()

    def audit_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        """key id → key of every key the registry cosigned or signed its log with, current first."""
        keys = {self.key_id: self.public_key}
        keys.update((registry_key_id(k), k) for k in self.previous_keys)
        return keys

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "anchor") -> Anchor:
        try:
            obj = json.loads(data)
            raw = base64.b64decode(obj["public_key"], validate=True)
            public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            previous = tuple(
                ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(k, validate=True))
                for k in obj.get("previous_keys", [])
            )
            anchor = cls(str(obj["instance"]), str(obj["key_id"]), public, str(obj["ca_sha256"]).lower(), previous)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ConfigError(
                f"{source} is not a valid registry anchor ({type(exc).__name__})",
                hint="copy anchor.json from the registry again",
            ) from exc
        # The key id is derivable; a mismatch means the file was edited or corrupted.
        if anchor.key_id != registry_key_id(public):
            raise ConfigError(f"{source}: key_id does not match public_key", hint="copy anchor.json again")
        return anchor

    def to_json(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        obj: dict[str, object] = {
            "instance": self.instance,
            "key_id": self.key_id,
            "public_key": base64.b64encode(raw).decode("ascii"),
            "ca_sha256": self.ca_sha256,
        }
        if self.previous_keys:
            obj["previous_keys"] = [
                base64.b64encode(k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
                for k in self.previous_keys
            ]
        return json.dumps(obj, indent=2) + "\n"


def load_anchor(path: Path | str) -> Anchor:
    """Read and validate ``anchor.json``; a ConfigError names the file on any problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read anchor file {str(path)!r}: {exc.strerror or exc}") from exc
    return Anchor.from_json(data, source=f"anchor file {str(path)!r}")
