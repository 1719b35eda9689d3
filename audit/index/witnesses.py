"""Whom an auditor trusts to have cosigned: the registry, and the witnesses its configuration names.

The registry is always a witness (its key is the anchor every gateway and auditor pins, its name
``crossway.registry/<instance>``). The registry configuration — signed with that same key — may
name member witnesses (a key name and an Ed25519 key each) and a quorum: how many distinct
trusted witnesses must have cosigned a checkpoint before ``audit verify`` and ``verify-evidence``
accept it (issue 12). Without a configuration the registry alone, quorum 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail import registry_witness_name
from registry import Anchor

__all__ = ["TrustedWitnesses", "registry_witnesses"]


@dataclass(frozen=True, slots=True)
class TrustedWitnesses:
    keys: dict[str, ed25519.Ed25519PublicKey]  # key name → key
    quorum: int = 1


def registry_witnesses(anchor: Anchor) -> TrustedWitnesses:
    """The registry alone: the trust of a federation whose configuration names no witness."""
    return TrustedWitnesses({registry_witness_name(anchor.instance): anchor.public_key}, 1)
