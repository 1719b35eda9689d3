"""Rotating the registry's configuration-signing key without a flag day (issue 17).

Every gateway pins the registry's key in its anchor (``anchor.json``), so a new key must not need
every agency to replace that file on the same day. The registry *endorses* its successor instead:

1. ``registry key announce`` makes the next key (``config-next.key``, 0600, encrypted like the
   others) and an endorsement — the current key's signature over
   ``"crossway registry key successor\\0" INSTANCE "\\0" next-public-key`` — kept in
   ``key-endorsements.json``. From then on every signed configuration carries the endorsements
   (``SignedConfiguration.key_endorsements``): gateways see the next key, vouched for by the key
   they trust, before it signs anything.
2. ``registry key rotate`` makes the next key the current one: the old ``config.key`` is kept as
   ``config-retired-<key id>.key``; ``anchor.json`` names the new key and lists the old ones under
   ``previous_keys`` (auditors need them: older checkpoints were cosigned, older changes signed,
   with them). Configurations are then signed with the new key and still carry the endorsements.
3. A gateway accepts a configuration signed by any key reachable from its anchor through the
   endorsements it carries (:func:`trusted_keys`), so gateways pinning the old anchor keep serving
   across the rotation and across restarts; agencies replace ``anchor.json`` at their own pace.

A compromised key is not rotated this way (its holder could endorse a key of its own): hand every
agency a new anchor out of band (docs/operations.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from crossway.core.errors import ConfigError
from protos.crossway.v1 import registry_pb2
from registry.anchor import Anchor, registry_key_id

__all__ = ["ENDORSEMENTS", "NEXT_KEY", "endorse", "load_endorsements", "save_endorsements", "trusted_keys"]

NEXT_KEY = "config-next.key"
ENDORSEMENTS = "key-endorsements.json"


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _statement(instance: str, successor_raw: bytes) -> bytes:
    return b"crossway registry key successor\x00" + instance.encode() + b"\x00" + successor_raw


def endorse(
    predecessor: ed25519.Ed25519PrivateKey, instance: str, successor: ed25519.Ed25519PublicKey
) -> registry_pb2.KeyEndorsement:
    raw = _raw(successor)
    return registry_pb2.KeyEndorsement(public_key=raw, signature=predecessor.sign(_statement(instance, raw)))


def trusted_keys(
    anchor: Anchor, endorsements: Iterable[registry_pb2.KeyEndorsement]
) -> Mapping[str, ed25519.Ed25519PublicKey]:
    """key id → key: the anchor's keys, and every successor a trusted key endorsed (transitively)."""
    trusted: dict[str, ed25519.Ed25519PublicKey] = {anchor.key_id: anchor.public_key}
    pending = list(endorsements)
    progress = True
    while pending and progress:
        progress = False
        for endorsement in list(pending):
            try:
                successor = ed25519.Ed25519PublicKey.from_public_bytes(endorsement.public_key)
            except ValueError:
                pending.remove(endorsement)  # malformed: never trusted
                continue
            statement = _statement(anchor.instance, endorsement.public_key)
            for key in list(trusted.values()):
                try:
                    key.verify(endorsement.signature, statement)
                except InvalidSignature:
                    continue
                trusted[registry_key_id(successor)] = successor
                pending.remove(endorsement)
                progress = True
                break
    return trusted


def load_endorsements(directory: Path) -> list[registry_pb2.KeyEndorsement]:
    path = directory / ENDORSEMENTS
    if not path.exists():
        return []
    try:
        items: Any = json.loads(path.read_text(encoding="utf-8"))
        return [
            registry_pb2.KeyEndorsement(
                public_key=base64.b64decode(item["public_key"]), signature=base64.b64decode(item["signature"])
            )
            for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a list of key endorsements", hint="restore it from a backup") from exc


def save_endorsements(directory: Path, endorsements: Iterable[registry_pb2.KeyEndorsement]) -> None:
    items = [
        {
            "public_key": base64.b64encode(e.public_key).decode(),
            "key_id": registry_key_id(ed25519.Ed25519PublicKey.from_public_bytes(e.public_key)),
            "signature": base64.b64encode(e.signature).decode(),
        }
        for e in endorsements
    ]
    path = directory / ENDORSEMENTS
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(items, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
