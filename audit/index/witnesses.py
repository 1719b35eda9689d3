"""Whom an auditor trusts to have cosigned: the registry, and the witnesses its configuration names.

The registry is always a witness (its key is the anchor every gateway and auditor pins, its name
``crossway.registry/<instance>``). The registry configuration — signed with that same key — may
name member witnesses (a C2SP key name and an Ed25519 key each) and a quorum: how many distinct
trusted witnesses, the registry counted, must have cosigned a checkpoint before ``audit verify``
and ``verify-evidence`` accept it (issue 12). Without a configuration: the registry alone, quorum 1.

The configuration comes from a file (``--configuration``: what ``registry publish`` wrote or a
gateway holds) or from NATS (``--nats``: the registry's key-value bucket), and is checked against
the anchor. Its expiry is not held against it: auditing looks back, and the witnesses a
configuration named remain the ones the registry vouched for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nats.js.errors
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.trail import registry_witness_name
from crossway.backbone import kv_stream, kv_subject
from crossway.core.errors import RegistryUnavailable
from crossway.natsclient import NatsAccess, connect
from registry import Anchor, verify_configuration
from registry.configuration import VerifiedConfiguration
from registry.source import KV_BUCKET, KV_KEY

__all__ = ["TrustedWitnesses", "configured_witnesses", "read_configuration", "registry_witnesses"]


@dataclass(frozen=True, slots=True)
class TrustedWitnesses:
    keys: dict[str, ed25519.Ed25519PublicKey]  # key name → key
    quorum: int = 1


def registry_witnesses(anchor: Anchor) -> TrustedWitnesses:
    """The registry alone: the trust of a federation whose configuration names no witness."""
    return TrustedWitnesses({registry_witness_name(anchor.instance): anchor.public_key}, 1)


def configured_witnesses(anchor: Anchor, configuration: VerifiedConfiguration) -> TrustedWitnesses:
    """The registry and the configuration's witnesses, with the configuration's quorum."""
    keys = {**registry_witnesses(anchor).keys, **configuration.witnesses}
    return TrustedWitnesses(keys, min(configuration.witness_quorum, len(keys)))


def load_configuration(path: Path, anchor: Anchor) -> VerifiedConfiguration:
    # now_ms=0: an expired configuration still says whom the registry named (module docstring).
    return verify_configuration(path.read_bytes(), anchor, 0)


async def read_configuration(access: NatsAccess, anchor: Anchor, *, timeout: float = 5.0) -> VerifiedConfiguration:
    """The configuration the registry last published to NATS, checked against the anchor (read by
    direct get of its one subject, as any identity of the backbone may)."""
    nc = await connect(
        access, name="crossway-audit-witnesses", connect_timeout=max(1, round(timeout)), allow_reconnect=False
    )
    try:
        msg = await nc.jetstream(timeout=timeout).get_last_msg(
            kv_stream(KV_BUCKET), kv_subject(KV_BUCKET, KV_KEY), direct=True
        )
    except nats.js.errors.NotFoundError as exc:
        raise RegistryUnavailable("NATS holds no registry configuration", hint="is `registry serve` running?") from exc
    finally:
        await nc.close()
    return verify_configuration(msg.data or b"", anchor, 0)
